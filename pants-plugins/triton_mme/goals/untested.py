"""`./pants test` says which of the models it was given have no tests.

Models are not tests, so Pants would pass over them without a word, and `./pants test` on a new
model without a `triton_test` would print nothing at all. Models take part in `test` through a
test request of their own whose partitioner runs nothing: it finds the models no `triton_test`
tests and prints one line naming them and how to add a case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

from pants.core.goals.test import TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.core.util_rules.partitions import PartitionerType, Partitions
from pants.engine.addresses import Address
from pants.engine.internals.session import RunId
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import AllTargets
from pants.util.logging import LogLevel
from triton_mme.goals.test import TestedModel, TestedModelRequest
from triton_mme.subsystems.triton_testing import TritonTestSubsystem
from triton_mme.target_types import (
    TritonConfigSourceField,
    TritonTestModelField,
    TritonTestTarget,
    TritonVersionSourcesField,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelUnderTestFieldSet(TestFieldSet):
    required_fields = (TritonConfigSourceField, TritonVersionSourcesField)


class UntestedModelsRequest(TestRequest):
    tool_subsystem = TritonTestSubsystem
    field_set_type = ModelUnderTestFieldSet
    partitioner_type = PartitionerType.CUSTOM


def untested_models_message(untested: Iterable[Address]) -> str | None:
    addresses = sorted(untested)
    names = [str(a) for a in addresses]
    if not names:
        return None
    if len(names) == 1:
        subject = f"The model {names[0]} has no tests"
        where = f"{addresses[0].spec_path}/tests/"
    else:
        subject = f"{len(names)} models have no tests ({', '.join(names)})"
        where = "each model's tests/ folder"
    return (
        f"{subject}: put a case file (e.g. `cases.json`, see docs/testing.md) or a `test_*.py` "
        f"file in {where}, then run `./pants tailor ::` to add a `triton_test`."
    )


@rule(desc="Find models without tests", level=LogLevel.DEBUG)
async def report_untested_models(
    request: UntestedModelsRequest.PartitionRequest[ModelUnderTestFieldSet],
    all_targets: AllTargets,
    _run_id: RunId,  # Re-runs on every run, so the note shows each time (pantsd memoizes rules).
) -> Partitions:
    tests = [t for t in all_targets if isinstance(t, TritonTestTarget)]
    tested = await MultiGet(
        Get(TestedModel, TestedModelRequest(t.address, t[TritonTestModelField].value))
        for t in tests
    )
    tested_addresses = {t.address for t in tested}
    message = untested_models_message(
        fs.address for fs in request.field_sets if fs.address not in tested_addresses
    )
    if message:
        logger.warning(message)
    return Partitions()


@rule(desc="Models without tests", level=LogLevel.DEBUG)
async def untested_models_result(
    batch: UntestedModelsRequest.Batch[ModelUnderTestFieldSet, Any], test_subsystem: TestSubsystem
) -> TestResult:
    """The partitioner makes no batches; the test goal still needs a rule for the type."""
    return TestResult.no_tests_found_in_batch(batch, test_subsystem.output)


def rules() -> Iterable:
    return (*collect_rules(), *UntestedModelsRequest.rules())
