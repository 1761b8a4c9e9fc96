from __future__ import annotations

from textwrap import dedent

import pytest
from pants.backend.python.util_rules import pex
from pants.core.util_rules import source_files, system_binaries
from pants.engine.addresses import Address, Addresses
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from triton_mme import dependency_inference
from triton_mme.util_rules import onnx_graph, repository
from triton_mme.util_rules import validation
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.util_rules.validation import (
    InvalidTritonModel,
    ModelValidation,
    ModelValidationRequest,
    ValidatedModelRepository,
    ValidatedModelRepositoryRequest,
)

SCALE = dedent(
    """\
    name: "scale"
    backend: "python"
    max_batch_size: 4
    input [{ name: "IN", data_type: TYPE_FP32, dims: [2] }]
    output [{ name: "OUT", data_type: TYPE_FP32, dims: [2] }]
    """
)

PIPELINE = dedent(
    """\
    name: "pipeline"
    platform: "ensemble"
    max_batch_size: 4
    input [{ name: "X", data_type: TYPE_FP32, dims: [2] }]
    output [{ name: "Y", data_type: TYPE_FP32, dims: [2] }]
    ensemble_scheduling {
      step [{
        model_name: "scale"
        input_map { key: "IN", value: "X" }
        output_map { key: "OUT", value: "Y" }
      }]
    }
    """
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *validation.rules(),
            *dependency_inference.rules(),
            *repository.rules(),
            *onnx_graph.rules(),
            *pex.rules(),
            *source_files.rules(),
            *system_binaries.rules(),
            QueryRule(ModelValidation, [ModelValidationRequest]),
            QueryRule(ValidatedModelRepository, [ValidatedModelRepositoryRequest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget],
    )


def write(rule_runner: RuleRunner, **overrides: str) -> None:
    rule_runner.write_files(
        {
            "models/scale/BUILD": "triton_model()",
            "models/scale/config.pbtxt": SCALE,
            "models/scale/1/model.py": "",
            "models/pipeline/BUILD": "triton_ensemble()",
            "models/pipeline/config.pbtxt": PIPELINE,
            **overrides,
        }
    )


def errors(rule_runner: RuleRunner, spec: str) -> tuple[str, ...]:
    return rule_runner.request(ModelValidation, [ModelValidationRequest(Address(spec))]).errors


def test_valid_models(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    assert errors(rule_runner, "models/scale") == ()
    assert errors(rule_runner, "models/pipeline") == ()


def test_version_folders_are_read_from_disk(rule_runner: RuleRunner) -> None:
    write(rule_runner, **{"models/scale/1/model.py": "x", "models/scale/02/model.py": "x"})
    (error,) = errors(rule_runner, "models/scale")
    assert "version folder `models/scale/02/` starts with 0" in error


def test_model_without_version_folder(rule_runner: RuleRunner) -> None:
    write(
        rule_runner,
        **{
            "models/other/BUILD": "triton_model()",
            "models/other/config.pbtxt": SCALE.replace('"scale"', '"other"'),
            "models/other/tests/test_other.py": "",
        },
    )
    (error,) = errors(rule_runner, "models/other")
    assert "`models/other/` has no numeric version folder" in error


def test_name_and_target_type_come_from_the_target(rule_runner: RuleRunner) -> None:
    write(
        rule_runner,
        **{
            "models/scale/BUILD": "triton_model(model_name='scaler')",
            "models/pipeline/BUILD": "triton_model()",
        },
    )
    (name_error,) = errors(rule_runner, "models/scale")
    assert '`name: "scale"` differs from the model name `scaler`' in name_error
    pipeline_errors = errors(rule_runner, "models/pipeline")
    assert any("use `triton_ensemble()` for an ensemble" in e for e in pipeline_errors)
    assert any("calls model `scale`" in e and "`scaler`" in e for e in pipeline_errors)


def test_the_endpoint_cannot_invoke_decoupled_models(rule_runner: RuleRunner) -> None:
    decoupled = SCALE + "model_transaction_policy { decoupled: true }\n"
    write(rule_runner, **{"models/scale/config.pbtxt": decoupled})
    (model_error,) = errors(rule_runner, "models/scale")
    assert "models/scale/config.pbtxt:6: `scale` is decoupled" in model_error
    (ensemble_error,) = errors(rule_runner, "models/pipeline")
    assert "ensemble `pipeline` runs decoupled model(s) `scale`" in ensemble_error
    # Packaged only inside ensembles, a decoupled model is no TargetModel of its own.
    write(rule_runner, **{"models/scale/BUILD": "triton_model(ensemble_member_only=True)"})
    assert errors(rule_runner, "models/scale") == ()


def test_ensemble_checked_against_step_configs(rule_runner: RuleRunner) -> None:
    write(rule_runner, **{"models/scale/config.pbtxt": SCALE.replace("max_batch_size: 4", "")})
    input_error, output_error = errors(rule_runner, "models/pipeline")
    assert input_error.startswith("models/pipeline/config.pbtxt:9: ")
    assert "input `IN` of `scale` reads `X`: shape mismatch: ensemble input has shape [-1, 2]" in (
        input_error
    )
    assert "ensemble output `Y`: shape mismatch: step 1 (`scale`) output `OUT` has shape [2]" in (
        output_error
    )


def test_validated_repository_refuses_invalid_models(rule_runner: RuleRunner) -> None:
    write(
        rule_runner,
        **{"models/scale/config.pbtxt": SCALE.replace("max_batch_size: 4", "max_batch_size: 2")},
    )
    with engine_error(InvalidTritonModel, contains="smaller than the ensemble's 4"):
        rule_runner.request(
            ValidatedModelRepository,
            [ValidatedModelRepositoryRequest(Addresses([Address("models/pipeline")]))],
        )


def test_validated_repository(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    validated = rule_runner.request(
        ValidatedModelRepository,
        [ValidatedModelRepositoryRequest(Addresses([Address("models/pipeline")]))],
    )
    assert validated.repository.model_names == ("pipeline", "scale")


def test_ensembles_calling_each_other_in_a_circle(rule_runner: RuleRunner) -> None:
    outer = PIPELINE.replace('"pipeline"', '"outer"').replace('"scale"', '"pipeline"')
    looping = PIPELINE.replace('model_name: "scale"', 'model_name: "outer"')
    write(
        rule_runner,
        **{
            "models/pipeline/config.pbtxt": looping,
            "models/outer/BUILD": "triton_ensemble()",
            "models/outer/config.pbtxt": outer,
        },
    )
    found = errors(rule_runner, "models/pipeline")
    assert found[-1].startswith(
        "models/pipeline/config.pbtxt:8: step 1 (`outer`): ensembles call"
    ), found
    message = found[-1]
    assert "(`pipeline` -> `outer` -> `pipeline`), so Triton loads none of them" in message


def test_an_ensemble_calling_itself(rule_runner: RuleRunner) -> None:
    looping = PIPELINE.replace('model_name: "scale"', 'model_name: "pipeline"')
    write(rule_runner, **{"models/pipeline/config.pbtxt": looping})
    assert any(
        "(`pipeline` -> `pipeline`)" in message
        for message in errors(rule_runner, "models/pipeline")
    )


def test_pinned_version_is_checked_against_version_folders(rule_runner: RuleRunner) -> None:
    pinned = PIPELINE.replace('model_name: "scale"', 'model_name: "scale"\n    model_version: 2')
    write(rule_runner, **{"models/pipeline/config.pbtxt": pinned})
    (message,) = errors(rule_runner, "models/pipeline")
    assert "pins `model_version: 2`, but model `scale` loads version(s) 1" in message
    rule_runner.write_files({"models/scale/2/model.py": ""})
    assert errors(rule_runner, "models/pipeline") == ()


def test_model_file_missing_or_tracked_by_dvc(rule_runner: RuleRunner) -> None:
    onnx = SCALE.replace('backend: "python"', 'platform: "onnxruntime_onnx"')
    write(rule_runner, **{"models/scale/config.pbtxt": onnx})
    (message,) = errors(rule_runner, "models/scale")
    assert "`models/scale/1/model.onnx` is missing: add it (or its DVC pointer" in message
    rule_runner.write_files({"models/scale/1/model.onnx.dvc": "outs:\n- path: model.onnx\n"})
    assert errors(rule_runner, "models/scale") == ()
