from __future__ import annotations

import pytest
from pants.backend.python.util_rules import pex
from pants.core.goals.lint import LintResult, Partitions
from pants.core.util_rules import source_files, system_binaries
from pants.core.util_rules.partitions import _EmptyMetadata
from pants.engine.addresses import Address
from pants.testutil.rule_runner import QueryRule, RuleRunner
from triton_mme import dependency_inference
from triton_mme.goals import lint, package
from triton_mme.goals.lint import TritonConfigLintRequest
from triton_mme.target_types import (
    ModelPythonEnvField,
    TritonEnsembleTarget,
    TritonModelTarget,
    TritonPythonEnvTarget,
)
from triton_mme.testutil import ADD_ONE_CONFIG, PIPELINE_CONFIG
from triton_mme.util_rules import onnx_graph, repository, validation
from triton_mme.util_rules.env import model_env
from triton_mme.util_rules.repository import TritonModelFieldSet

ENV_LINE = (
    'parameters: { key: "EXECUTION_ENV_PATH", value: { string_value: '
    '"$$TRITON_MODEL_DIRECTORY/python_env.tar.gz" } }\n'
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *validation.rules(),
            *lint.rules(),
            *dependency_inference.rules(),
            *repository.rules(),
            # The ONNX graph reader's rules (no model here serves ONNX, so none runs).
            *onnx_graph.rules(),
            *pex.rules(),
            *source_files.rules(),
            *system_binaries.rules(),
            # Only the checks of `package` and of the env rules, not what they build.
            package.check_model_artifact_version,
            model_env.find_model_env,
            model_env.check_model_env,
            TritonModelTarget.register_plugin_field(ModelPythonEnvField),
            QueryRule(LintResult, [TritonConfigLintRequest.Batch]),
            QueryRule(Partitions, [TritonConfigLintRequest.PartitionRequest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget, TritonPythonEnvTarget],
    )


def write(rule_runner: RuleRunner, **overrides: str) -> None:
    rule_runner.write_files(
        {
            "models/add_one/BUILD": "triton_model(ensemble_member_only=True)",
            "models/add_one/config.pbtxt": ADD_ONE_CONFIG,
            "models/add_one/1/model.py": "",
            "models/pipeline/BUILD": "triton_ensemble()",
            "models/pipeline/config.pbtxt": PIPELINE_CONFIG,
            "models/pipeline/model_version.txt": "1.0.0\n",
            **overrides,
        }
    )


def field_sets(rule_runner: RuleRunner) -> tuple[TritonModelFieldSet, ...]:
    return tuple(
        TritonModelFieldSet.create(rule_runner.get_target(Address(spec)))
        for spec in ("models/add_one", "models/pipeline")
    )


def lint_result(rule_runner: RuleRunner) -> LintResult:
    batch = TritonConfigLintRequest.Batch(
        "triton-config", field_sets(rule_runner), _EmptyMetadata()
    )
    return rule_runner.request(LintResult, [batch])


def test_lint_passes_valid_models(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    result = lint_result(rule_runner)
    assert (result.exit_code, result.stdout) == (0, "")


def test_lint_reports_every_error(rule_runner: RuleRunner) -> None:
    pipeline = PIPELINE_CONFIG.replace('"pipeline"', '"p"')
    write(rule_runner, **{"models/pipeline/config.pbtxt": pipeline})
    result = lint_result(rule_runner)
    assert result.exit_code == 1
    assert result.stdout.startswith('models/pipeline/config.pbtxt:1: `name: "p"` differs')


def test_lint_reports_a_python_model_without_model_py(rule_runner: RuleRunner) -> None:
    write(
        rule_runner,
        **{
            "models/add_one/1/model.py": "",
            "models/add_one/BUILD": (
                'triton_model(ensemble_member_only=True, sources=["*.pbtxt"])'
            ),
        },
    )
    result = lint_result(rule_runner)
    assert result.exit_code == 1
    assert "`models/add_one/1/model.py` exists but the model's BUILD target does not own it" in (
        result.stdout
    )


def test_lint_runs_the_artifact_version_check_of_package(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    rule_runner.write_files({"models/pipeline/model_version.txt": "1.0 beta\n"})
    result = lint_result(rule_runner)
    assert result.exit_code == 1
    assert "models/pipeline/model_version.txt: the artifact version '1.0 beta'" in result.stdout


def test_lint_runs_the_env_check_of_package(rule_runner: RuleRunner) -> None:
    write(rule_runner, **{"models/add_one/config.pbtxt": ADD_ONE_CONFIG + ENV_LINE})
    result = lint_result(rule_runner)
    assert result.exit_code == 1
    assert "models/add_one/config.pbtxt sets EXECUTION_ENV_PATH, but models/add_one:add_one " in (
        result.stdout
    )
    rule_runner.write_files({"models/add_one/python_env/BUILD": 'triton_python_env(python="3.11")'})
    assert lint_result(rule_runner).exit_code == 0


def test_lint_can_be_skipped(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    request = TritonConfigLintRequest.PartitionRequest(field_sets(rule_runner))
    assert len(rule_runner.request(Partitions, [request])) == 1
    rule_runner.set_options(["--triton-config-skip"])
    assert len(rule_runner.request(Partitions, [request])) == 0
