"""`./pants lint` runs, as the `triton-config` linter, every check that `package` and `test` run
before they build anything: the config checks of every model, the artifact version of every
model that is packaged on its own, and the env of every python model.
"""

from __future__ import annotations

from typing import Any, Iterable

from pants.core.goals.lint import LintResult, LintTargetsRequest
from pants.core.util_rules.partitions import PartitionerType
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest
from pants.util.logging import LogLevel
from triton_mme.goals.package import (
    ArtifactVersionCheck,
    ArtifactVersionRequest,
    TritonPackageFieldSet,
)
from triton_mme.subsystems.triton_config import TritonConfigLint
from triton_mme.target_types import ModelPythonEnvField
from triton_mme.util_rules.env.model_env import CheckedModelEnv, ModelEnvCheckRequest
from triton_mme.util_rules.repository import TritonModelConfig, TritonModelFieldSet
from triton_mme.util_rules.validation import ModelValidation, ModelValidationRequest


class TritonConfigLintRequest(LintTargetsRequest):
    field_set_type = TritonModelFieldSet
    tool_subsystem = TritonConfigLint
    partitioner_type = PartitionerType.DEFAULT_SINGLE_PARTITION


@rule(desc="Check Triton model configs", level=LogLevel.DEBUG)
async def lint_triton_configs(request: TritonConfigLintRequest.Batch[Any, Any]) -> LintResult:
    field_sets: tuple[TritonModelFieldSet, ...] = tuple(request.elements)
    validations = await MultiGet(
        Get(ModelValidation, ModelValidationRequest(field_set.address)) for field_set in field_sets
    )
    errors = [error for validation in validations for error in validation.errors]
    configs = await MultiGet(Get(TritonModelConfig, TritonModelFieldSet, fs) for fs in field_sets)
    targets = await MultiGet(
        Get(WrappedTarget, WrappedTargetRequest(fs.address, description_of_origin="lint"))
        for fs in field_sets
    )
    envs = await MultiGet(
        Get(
            CheckedModelEnv,
            ModelEnvCheckRequest(fs, config, wrapped.target.get(ModelPythonEnvField).value),
        )
        for fs, config, wrapped in zip(field_sets, configs, targets)
    )
    versions = await MultiGet(
        Get(ArtifactVersionCheck, ArtifactVersionRequest(TritonPackageFieldSet.create(t.target)))
        for t in targets
        if TritonPackageFieldSet.is_applicable(t.target)
        and not TritonPackageFieldSet.opt_out(t.target)
    )
    errors.extend(env.problem for env in envs if env.problem)
    errors.extend(version.problem for version in versions if version.problem)
    return LintResult(
        exit_code=1 if errors else 0,
        stdout="\n".join(errors) + ("\n" if errors else ""),
        stderr="",
        linter_name=request.tool_name,
    )


def rules() -> Iterable:
    return (*collect_rules(), *TritonConfigLintRequest.rules())
