from __future__ import annotations

from triton_mme.scripts.triton_server import model_log_errors, stub_failures


def test_model_log_errors() -> None:
    log = "\n".join(
        [
            'I1124 model_lifecycle.cc:472] "loading: pre:1"',
            "E1124 model_lifecycle.cc:642] \"failed to load 'pre' version 1: Internal: boom\"",
            "E1124 model_lifecycle.cc:642] \"failed to load 'other' version 1: x\"",
        ]
    )
    assert model_log_errors(log, ["pre", "pipeline"]) == [log.splitlines()[1]]


def test_stub_failures_name_the_model_whose_load_waits_on_a_dead_stub() -> None:
    log = (
        'I1128 07:08:52.915843 1 model_lifecycle.cc:472] "loading: pipeline:1"\n'
        "I1128 07:08:52.964190 42 pb_stub.cc:2105]  Failed to preinitialize Python stub: Python "
        "model file not found in '/models/pre/1/model.py'\n"
    )
    # The ensemble `pipeline` loads `pre`: its load waits on the dead stub too.
    assert stub_failures(log, {"pipeline": ("pipeline", "pre"), "other": ("other",)}) == {
        "pipeline": "Failed to preinitialize Python stub: Python model file not found in "
        "'/models/pre/1/model.py'"
    }
    assert stub_failures(log, {"prefix": ("prefix",)}) == {}
