"""pytest fixtures for a model's own pytest tests, run by `./pants test` against a live Triton.

`run_triton_tests.py` loads this plugin (`-p triton_pytest_plugin`) after the server is up and
the model under test is loaded, with the server's addresses in the environment:

    def test_add_one(triton):
        out = triton.infer({"INPUT0": np.array([1.0, 2.0], dtype=np.float32)})
        np.testing.assert_allclose(out["OUTPUT0"], [2.0, 3.0])

    def test_metadata(triton):
        assert triton.http.is_model_ready(triton.model_name)
        assert triton.grpc.get_model_metadata(triton.model_name).name == triton.model_name

Models are named as in the source: `triton.infer(inputs, model_name="preprocessing")` reaches an
ensemble's member, which the server knows by its artifact's name (docs/models.md). The `.http`
and `.grpc` clients take served names: `triton.served_name("preprocessing")`.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import np_to_triton_dtype

from triton_mme.scripts.model_client import MODEL_NAMES_ENV, ModelClient, ModelNames


class Triton:
    """A live Triton server with the model under test loaded."""

    def __init__(self, http_url: str, grpc_url: str, model_name: str, names: ModelNames) -> None:
        self.http_url = http_url
        self.grpc_url = grpc_url
        self.model_name = model_name
        self.client = ModelClient(http_url, names)
        self.http = self.client.http
        self.grpc = grpcclient.InferenceServerClient(url=grpc_url)

    def served_name(self, model_name: str) -> str:
        """The name the server knows a model by (for `.http` and `.grpc` calls)."""
        return self.client.names.served_name(model_name)

    def infer(
        self, inputs: Mapping[str, np.ndarray], model_name: str | None = None
    ) -> dict[str, np.ndarray]:
        """Send numpy inputs (over HTTP) to the model under test, or to `model_name` (its source
        name), and return every output as a numpy array."""
        name = model_name or self.model_name
        outputs = [o["name"] for o in self.client.metadata(name)["outputs"]]
        tensors = {input_name: (_datatype(array), array) for input_name, array in inputs.items()}
        response = self.client.infer(name, tensors, outputs)
        return {output: response.as_numpy(output) for output in outputs}

    def close(self) -> None:
        self.client.close()
        self.grpc.close()


def _datatype(array: np.ndarray) -> str:
    return "BYTES" if array.dtype == np.object_ else str(np_to_triton_dtype(array.dtype))


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise pytest.UsageError(
            f"{name} is not set: these tests need a running Triton. Run them with "
            "`./pants test <dir>:` (a `triton_test` target owns them), not with plain pytest."
        )
    return value


@pytest.fixture(scope="session")
def triton() -> Iterator[Triton]:
    """A `Triton` with `.http` and `.grpc` clients, `.model_name` and `.infer(...)`."""
    server = Triton(
        _env("TRITON_HTTP_URL"),
        _env("TRITON_GRPC_URL"),
        _env("TRITON_MODEL_NAME"),
        ModelNames.from_json(os.environ.get(MODEL_NAMES_ENV, "{}")),
    )
    yield server
    server.close()


@pytest.fixture(scope="session")
def triton_http(triton: Triton) -> Any:
    return triton.http


@pytest.fixture(scope="session")
def triton_grpc(triton: Triton) -> Any:
    return triton.grpc
