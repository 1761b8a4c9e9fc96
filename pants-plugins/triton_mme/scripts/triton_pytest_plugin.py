"""pytest fixtures for a model's own pytest tests, run by `./pants test` against a live Triton.

`run_triton_tests.py` loads this plugin (`-p triton_pytest_plugin`) after the server is up and
the model under test is loaded, with the server's addresses in the environment:

    def test_add_one(triton):
        out = triton.infer({"INPUT0": np.array([1.0, 2.0], dtype=np.float32)})
        np.testing.assert_allclose(out["OUTPUT0"], [2.0, 3.0])

    def test_metadata(triton):
        assert triton.http.is_model_ready(triton.model_name)
        assert triton.grpc.get_model_metadata(triton.model_name).name == triton.model_name
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import np_to_triton_dtype


class Triton:
    """A live Triton server with the model under test loaded."""

    def __init__(self, http_url: str, grpc_url: str, model_name: str) -> None:
        self.http_url = http_url
        self.grpc_url = grpc_url
        self.model_name = model_name
        self.http = httpclient.InferenceServerClient(url=http_url)
        self.grpc = grpcclient.InferenceServerClient(url=grpc_url)

    def infer(
        self, inputs: Mapping[str, np.ndarray], model_name: str | None = None
    ) -> dict[str, np.ndarray]:
        """Send numpy inputs (over HTTP) and return every output as a numpy array."""
        name = model_name or self.model_name
        request = []
        for input_name, array in inputs.items():
            tensor = httpclient.InferInput(input_name, list(array.shape), _datatype(array))
            tensor.set_data_from_numpy(array, binary_data=True)
            request.append(tensor)
        metadata = self.http.get_model_metadata(name)
        outputs = [httpclient.InferRequestedOutput(o["name"]) for o in metadata["outputs"]]
        response = self.http.infer(name, request, outputs=outputs)
        return {o["name"]: response.as_numpy(o["name"]) for o in metadata["outputs"]}

    def close(self) -> None:
        self.http.close()
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
    server = Triton(_env("TRITON_HTTP_URL"), _env("TRITON_GRPC_URL"), _env("TRITON_MODEL_NAME"))
    yield server
    server.close()


@pytest.fixture(scope="session")
def triton_http(triton: Triton) -> Any:
    return triton.http


@pytest.fixture(scope="session")
def triton_grpc(triton: Triton) -> Any:
    return triton.grpc
