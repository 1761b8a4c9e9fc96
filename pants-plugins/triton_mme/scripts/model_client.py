"""The client of a test server: models named as in the source, requests built from numpy tensors.

`./pants test` and `./pants run` serve each model as its artifact ships it: an ensemble's members
are named `<artifact>.<member>` (docs/models.md). Case files and pytest tests name models as in
the source; `ModelNames` maps those names to the served ones and `ModelClient` applies it to every
request, for the case runner (`run_triton_tests.py`) and the pytest `triton` fixture
(`triton_pytest_plugin.py`) alike. Runs inside the `triton-client` PEX.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

# The runner hands the map to pytest processes through the environment, as JSON.
MODEL_NAMES_ENV = "TRITON_MODEL_NAMES"


@dataclass(frozen=True)
class ModelNames:
    """Source model name -> the name the server knows it by (absent: the same name)."""

    served: Mapping[str, str]

    @classmethod
    def from_json(cls, text: str) -> ModelNames:
        return cls(dict(json.loads(text)))

    def to_json(self) -> str:
        return json.dumps(dict(sorted(self.served.items())))

    def served_name(self, model: str) -> str:
        return self.served.get(model, model)

    def describe(self, model: str) -> str:
        """`model` for messages: its source name, and its served name when that differs."""
        served = self.served_name(model)
        return f"`{model}`" if served == model else f"`{model}` (served as `{served}`)"

    def renamed(self) -> dict[str, str]:
        """Only the models whose served name differs from their source name."""
        return {
            source: served for source, served in sorted(self.served.items()) if source != served
        }


class ModelClient:
    """tritonclient's HTTP client, with models named as in the source."""

    def __init__(self, url: str, names: ModelNames, network_timeout: float = 60.0) -> None:
        self.names = names
        self.http = httpclient.InferenceServerClient(url=url, network_timeout=network_timeout)

    def metadata(self, model: str) -> Any:
        return self._call(model, self.http.get_model_metadata)

    def infer(
        self,
        model: str,
        inputs: Mapping[str, tuple[str, np.ndarray]],
        outputs: Sequence[str],
    ) -> Any:
        """Send `inputs` (name -> (Triton datatype, tensor)); the result has `as_numpy(name)`."""
        tensors = []
        for name, (datatype, array) in inputs.items():
            tensor = httpclient.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array, binary_data=True)
            tensors.append(tensor)
        requested = [httpclient.InferRequestedOutput(name, binary_data=True) for name in outputs]
        return self._call(model, self.http.infer, tensors, outputs=requested)

    def _call(self, model: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        served = self.names.served_name(model)
        try:
            return method(served, *args, **kwargs)
        except InferenceServerException as e:
            if served == model:
                raise
            # Triton's message names the served model: say which source model that is.
            raise InferenceServerException(
                msg=f"model {self.names.describe(model)}: {e.message()}",
                status=e.status(),
                debug_details=e.debug_details(),
            ) from e

    def close(self) -> None:
        self.http.close()
