from __future__ import annotations

import json

from triton_mme.config.rewrite import MODEL_NAMES_PARAMETER, rewrite_config, shipped_member_name
from triton_mme.config.parse import parse_model_config
from triton_mme.testutil import ADD_ONE_CONFIG, PIPELINE_CONFIG

RENAMES = {"add_one": "pipeline_2.1.0.add_one"}


def test_shipped_member_name_names_the_artifact_first() -> None:
    assert shipped_member_name("pipeline_2.1.0", "add_one") == "pipeline_2.1.0.add_one"


def test_ensemble_steps_call_the_renamed_members() -> None:
    text = rewrite_config(
        "m/pipeline/config.pbtxt", PIPELINE_CONFIG, name="pipeline", renames=RENAMES
    )
    assert text is not None
    assert text.startswith("# m/pipeline/config.pbtxt, with the member model names of this")
    config = parse_model_config("shipped", text).message
    assert config.name == "pipeline"
    assert [s.model_name for s in config.ensemble_scheduling.step] == ["pipeline_2.1.0.add_one"]
    assert config.input[0].name == "X" and config.output[0].name == "Y"


def test_a_member_gets_its_shipped_name_and_the_model_names_parameter() -> None:
    text = rewrite_config(
        "m/add_one/config.pbtxt",
        ADD_ONE_CONFIG,
        name="pipeline_2.1.0.add_one",
        renames=RENAMES,
        with_model_names=True,
    )
    assert text is not None
    config = parse_model_config("shipped", text).message
    assert config.name == "pipeline_2.1.0.add_one"
    assert json.loads(config.parameters[MODEL_NAMES_PARAMETER].string_value) == RENAMES


def test_nothing_to_change_keeps_the_source_text() -> None:
    unnamed = ADD_ONE_CONFIG.replace('name: "add_one"\n', "")
    assert rewrite_config("m/add_one/config.pbtxt", unnamed, name="x.add_one", renames={}) is None


def test_the_rewrite_is_deterministic() -> None:
    texts = {
        rewrite_config(
            "p", PIPELINE_CONFIG, name="pipeline", renames=dict(reversed(RENAMES.items()))
        )
        for _ in range(3)
    }
    assert len(texts) == 1
