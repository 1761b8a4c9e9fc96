from __future__ import annotations

from textwrap import dedent

import pytest
from pants.backend.python.util_rules import pex
from pants.core.goals.lint import LintResult, Partitions
from pants.core.util_rules import source_files, system_binaries
from pants.core.util_rules.partitions import _EmptyMetadata
from pants.engine.addresses import Address, Addresses
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from triton_mme import dependency_inference
from triton_mme.goals import lint
from triton_mme.util_rules import onnx_graph, repository
from triton_mme.util_rules import validation
from triton_mme.goals.lint import TritonConfigLintRequest
from triton_mme.util_rules.repository import TritonModelFieldSet
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
            *lint.rules(),
            *dependency_inference.rules(),
            *repository.rules(),
            *onnx_graph.rules(),
            *pex.rules(),
            *source_files.rules(),
            *system_binaries.rules(),
            QueryRule(ModelValidation, [ModelValidationRequest]),
            QueryRule(ValidatedModelRepository, [ValidatedModelRepositoryRequest]),
            QueryRule(LintResult, [TritonConfigLintRequest.Batch]),
            QueryRule(Partitions, [TritonConfigLintRequest.PartitionRequest]),
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


def field_sets(rule_runner: RuleRunner) -> tuple[TritonModelFieldSet, ...]:
    return tuple(
        TritonModelFieldSet.create(rule_runner.get_target(Address(spec)))
        for spec in ("models/scale", "models/pipeline")
    )


def lint_result(rule_runner: RuleRunner) -> LintResult:
    batch = TritonConfigLintRequest.Batch(
        "triton-config", field_sets(rule_runner), _EmptyMetadata()
    )
    return rule_runner.request(LintResult, [batch])


def test_lint_reports_every_error(rule_runner: RuleRunner) -> None:
    write(rule_runner, **{"models/pipeline/config.pbtxt": PIPELINE.replace('"pipeline"', '"p"')})
    result = lint_result(rule_runner)
    assert result.exit_code == 1
    assert result.stdout.startswith('models/pipeline/config.pbtxt:1: `name: "p"` differs')


def test_lint_passes_valid_models(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    result = lint_result(rule_runner)
    assert (result.exit_code, result.stdout) == (0, "")


def test_lint_can_be_skipped(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    request = TritonConfigLintRequest.PartitionRequest(field_sets(rule_runner))
    assert len(rule_runner.request(Partitions, [request])) == 1
    rule_runner.set_options(["--triton-config-skip"])
    assert len(rule_runner.request(Partitions, [request])) == 0
