from __future__ import annotations

from triton_mme.scripts.triton_server import model_log_errors


def test_model_log_errors() -> None:
    log = "\n".join(
        [
            'I1124 model_lifecycle.cc:472] "loading: pre:1"',
            "E1124 model_lifecycle.cc:642] \"failed to load 'pre' version 1: Internal: boom\"",
            "E1124 model_lifecycle.cc:642] \"failed to load 'other' version 1: x\"",
        ]
    )
    assert model_log_errors(log, ["pre", "pipeline"]) == [log.splitlines()[1]]
