"""`./pants lint` runs the config.pbtxt checks on their own, as the `triton-config` linter."""

from __future__ import annotations

from typing import Any, Iterable

from pants.core.goals.lint import LintResult, LintTargetsRequest
from pants.core.util_rules.partitions import PartitionerType
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel
from triton_mme.util_rules.repository import TritonModelFieldSet
from triton_mme.subsystems.triton_config import TritonConfigLint
from triton_mme.util_rules.validation import ModelValidation, ModelValidationRequest


class TritonConfigLintRequest(LintTargetsRequest):
    field_set_type = TritonModelFieldSet
    tool_subsystem = TritonConfigLint
    partitioner_type = PartitionerType.DEFAULT_SINGLE_PARTITION


@rule(desc="Check Triton model configs", level=LogLevel.DEBUG)
async def lint_triton_configs(request: TritonConfigLintRequest.Batch[Any, Any]) -> LintResult:
    validations = await MultiGet(
        Get(ModelValidation, ModelValidationRequest(field_set.address))
        for field_set in request.elements
    )
    errors = [error for validation in validations for error in validation.errors]
    return LintResult(
        exit_code=1 if errors else 0,
        stdout="\n".join(errors) + ("\n" if errors else ""),
        stderr="",
        linter_name=request.tool_name,
    )


def rules() -> Iterable:
    return (*collect_rules(), *TritonConfigLintRequest.rules())
