from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from triton_mme.scripts.model_client import ModelClient, ModelNames

NAMES = ModelNames({"pipe": "pipe", "pre": "pipe_1.0.0.pre"})


def test_source_names_map_to_served_names() -> None:
    assert NAMES.served_name("pre") == "pipe_1.0.0.pre"
    assert NAMES.served_name("pipe") == "pipe"
    # A name the artifact does not hold (or a served name) is sent as it is.
    assert NAMES.served_name("pipe_1.0.0.pre") == "pipe_1.0.0.pre"
    assert NAMES.describe("pre") == "`pre` (served as `pipe_1.0.0.pre`)"
    assert NAMES.describe("pipe") == "`pipe`"
    assert NAMES.renamed() == {"pre": "pipe_1.0.0.pre"}
    assert ModelNames.from_json(NAMES.to_json()) == NAMES


def test_requests_name_the_served_model_and_errors_the_source_one() -> None:
    client = ModelClient("127.0.0.1:1", NAMES)
    called = []

    def refuse(model: str) -> None:
        called.append(model)
        raise InferenceServerException(msg="unexpected shape for input 'X'", status="400")

    with pytest.raises(InferenceServerException) as raised:
        client._call("pre", refuse)
    assert called == ["pipe_1.0.0.pre"]
    error: InferenceServerException = raised.value
    assert error.message() == (
        "model `pre` (served as `pipe_1.0.0.pre`): unexpected shape for input 'X'"
    )
    assert error.status() == "400"
    client.close()
