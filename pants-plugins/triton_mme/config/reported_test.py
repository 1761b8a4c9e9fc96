from __future__ import annotations

from typing import Any

from triton_mme.config.ensemble import EnsembleMembers
from triton_mme.config.parse import parse_model_config
from triton_mme.config.reported import check_steps_with_reported, reported_config

ENSEMBLE = parse_model_config(
    "models/pipe/config.pbtxt",
    """platform: "ensemble"
max_batch_size: 0
input [{ name: "X", data_type: TYPE_FP32, dims: [-1] }]
output [{ name: "Y", data_type: TYPE_FP32, dims: [-1] }]
ensemble_scheduling {
  step [{
    model_name: "caster"
    model_version: -1
    input_map { key: "INPUT0", value: "X" }
    output_map { key: "OUTPUT0", value: "Y" }
  }]
}
""",
)

# What Triton answers to GET /v2/models/<name>/config once model.py's auto_complete_config ran.
CASTER_AS_SERVED: dict[str, Any] = {
    "name": "pipe_1.0.0.caster",
    "backend": "python",
    "max_batch_size": 0,
    "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [-1], "format": "FORMAT_NONE"}],
    "output": [{"name": "OUTPUT0", "data_type": "TYPE_INT32", "dims": ["-1"]}],
    "version_policy": {"latest": {"num_versions": 1}},
    "a_field_of_a_newer_triton": True,
}


def test_triton_config_json_becomes_a_completed_config() -> None:
    config = reported_config("models/caster/config.pbtxt", CASTER_AS_SERVED)
    assert config.path == "models/caster/config.pbtxt"
    assert [(t.name, t.dims) for t in config.outputs] == [("OUTPUT0", (-1,))]
    assert config.completion is not None and config.completion.left_open == ()
    assert config.batching_decided


def test_an_auto_completed_output_the_ensemble_disagrees_with_is_reported_at_its_line() -> None:
    # Lint left the python member open: its config.pbtxt lists no tensors.
    source = parse_model_config("models/caster/config.pbtxt", 'backend: "python"\n')
    members = EnsembleMembers(configs={"caster": source}, versions={"caster": (1,)})
    reported = {"caster": reported_config("models/caster/config.pbtxt", CASTER_AS_SERVED)}
    assert [str(e) for e in check_steps_with_reported(ENSEMBLE, members, reported)] == [
        "models/pipe/config.pbtxt:4: ensemble output `Y`: data type mismatch: step 1 (`caster`) "
        "output `OUTPUT0` is TYPE_INT32, but TYPE_FP32 is expected. Make both configs use the "
        "same data_type."
    ]
    output = {"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [-1]}
    fp32 = {**CASTER_AS_SERVED, "output": [output]}
    fits = {"caster": reported_config("models/caster/config.pbtxt", fp32)}
    assert check_steps_with_reported(ENSEMBLE, members, fits) == []
    assert check_steps_with_reported(ENSEMBLE, members, {}) == []
