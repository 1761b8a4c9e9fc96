"""`./pants test` for `triton_test` targets: which model each tests, batching, and the result.

Tests that can share a server are cut into small, stable partitions (`[triton-testing].batch_size`
targets and `batch_max_megabytes` of models at most, boundaries chosen by address), and each
runs against one Triton container. Pants caches and reports one result per partition, so a
change to one model retests only its partition.

Every deployable model that no `triton_test` tests is a test target too, batched the same way:
its batch loads it in Triton, so a model Triton refuses (files it rejects, an `initialize` that
raises) fails `./pants test` even without test cases.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Iterable, Mapping, TypeVar

from pants.base.specs import DirLiteralSpec, RawSpecs
from pants.core.goals.test import (
    ShowOutput,
    TestDebugRequest,
    TestFieldSet,
    TestRequest,
    TestResult,
    TestSubsystem,
)
from pants.core.util_rules.partitions import Partition, PartitionerType, Partitions
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.internals.session import RunId
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    FileContent,
    DigestSubset,
    FileEntry,
    PathGlobs,
    RemovePrefix,
    Snapshot,
)
from pants.engine.process import FallibleProcessResult, InteractiveProcess, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    AllTargets,
    FieldSet,
    HydratedSources,
    HydrateSourcesRequest,
    InferDependenciesRequest,
    InferredDependencies,
    Targets,
)
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from triton_mme.util_rules.repository import (
    ModelRepository,
    ModelRepositoryRequest,
    TritonModelFieldSet,
)
from triton_mme.goals.untested import untested_models_message
from triton_mme.subsystems.triton_testing import TritonTestSubsystem
from triton_mme.util_rules import loaded_config
from triton_mme.util_rules.loaded_config import LoadedConfigCheckRequest, LoadedConfigProblems
from triton_mme.util_rules.triton_server import (
    RESULTS_DIR,
    ServedTarget,
    TritonServerProcess,
    TritonServerProcessRequest,
)
from triton_mme.target_types import (
    TritonConfigSourceField,
    TritonEnsembleMemberOnlyField,
    TritonTestModelField,
    TritonTestShareServerField,
    TritonTestSourcesField,
    TritonTestTimeoutField,
    TritonVersionSourcesField,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TritonTestFieldSet(TestFieldSet):
    required_fields = (TritonTestSourcesField,)

    sources: TritonTestSourcesField
    model: TritonTestModelField
    timeout: TritonTestTimeoutField
    share_server: TritonTestShareServerField


class TritonTestRequest(TestRequest):
    tool_subsystem = TritonTestSubsystem
    field_set_type = TritonTestFieldSet
    partitioner_type = PartitionerType.CUSTOM
    supports_debug = True


# ---------------------------------------------------------------------------------------------
# Which model a test target tests


@dataclass(frozen=True)
class TestedModelRequest(EngineAwareParameter):
    address: Address
    model: str | None

    __test__ = False

    def debug_hint(self) -> str:
        return self.address.spec


@dataclass(frozen=True)
class TestedModel:
    address: Address

    __test__ = False


class TritonTestModelError(ValueError):
    pass


@rule(desc="Find the model under test", level=LogLevel.DEBUG)
async def find_tested_model(request: TestedModelRequest) -> TestedModel:
    if request.model:
        addresses = await Get(
            Addresses,
            UnparsedAddressInputs(
                [request.model],
                owning_address=request.address,
                description_of_origin=f"the `model` field of {request.address}",
            ),
        )
        targets = await Get(Targets, Addresses, addresses)
        where = f"`model={request.model!r}`"
    else:
        targets = await Get(
            Targets,
            RawSpecs(
                dir_literals=(DirLiteralSpec(request.address.spec_path),),
                description_of_origin=f"the directory of {request.address}",
            ),
        )
        where = f"the directory {request.address.spec_path or '.'}/"
    models = [t for t in targets if TritonModelFieldSet.is_applicable(t)]
    if len(models) != 1:
        found = ", ".join(str(t.address) for t in models) or "none"
        raise TritonTestModelError(
            f"{request.address}: a `triton_test` needs exactly one `triton_model` or "
            f"`triton_ensemble` target in {where} (found: {found}). Put the `triton_test` in "
            "the BUILD file of the model it tests, or set `model` to the model's address."
        )
    return TestedModel(models[0].address)


@dataclass(frozen=True)
class TritonTestDependenciesFieldSet(FieldSet):
    required_fields = (TritonTestSourcesField, TritonTestModelField)

    model: TritonTestModelField


class InferTritonTestDependencies(InferDependenciesRequest):
    infer_from = TritonTestDependenciesFieldSet


@rule(desc="Infer the model a triton_test tests", level=LogLevel.DEBUG)
async def infer_tested_model(request: InferTritonTestDependencies) -> InferredDependencies:
    field_set = request.field_set
    tested = await Get(TestedModel, TestedModelRequest(field_set.address, field_set.model.value))
    return InferredDependencies([tested.address])


# ---------------------------------------------------------------------------------------------
# Partitions and batches


@dataclass(frozen=True)
class ServerPartitionMetadata:
    """What a batch's targets must share to be served by one Triton container."""

    shared: bool  # False: a target that asked for a server of its own

    @property
    def description(self) -> str | None:
        return "one shared Triton server" if self.shared else "a Triton server of its own"


def _may_start_batch(address: Address, batch_size: int) -> bool:
    """Whether `address` may open a new batch, decided by its name alone (about one address in
    `batch_size / 4`), so that batch boundaries stay put when other models come and go."""
    digest = hashlib.sha256(address.spec.encode()).digest()
    return int.from_bytes(digest[:4], "big") % max(1, batch_size // 4) == 0


_FS = TypeVar("_FS", bound=FieldSet)


def partition_field_sets(
    field_sets: Iterable[_FS],
    served_sizes: Mapping[Address, Mapping[Address, int]],
    batch_size: int,
    batch_max_bytes: int,
) -> list[Partition[_FS, ServerPartitionMetadata]]:
    """Stable small partitions of targets that share a server: a change to one model reruns only
    the targets of its partition.

    `served_sizes` maps each target to the model directories its server loads, with their sizes
    in bytes. Targets stay in address order (an ensemble beside its members). A partition of at
    least `batch_size / 2` targets ends before a target that `_may_start_batch` (content-defined
    boundaries, as in rsync), and every partition ends before it would exceed `batch_size`
    targets or `batch_max_bytes` of distinct model directories.
    """
    min_size = max(1, batch_size // 2)
    partitions: list[Partition[_FS, ServerPartitionMetadata]] = []
    current: list[_FS] = []
    current_models: dict[Address, int] = {}
    for field_set in sorted(field_sets, key=lambda fs: fs.address):
        models = {**current_models, **served_sizes.get(field_set.address, {})}
        if current and (
            (len(current) >= min_size and _may_start_batch(field_set.address, batch_size))
            or len(current) >= batch_size
            or sum(models.values()) > batch_max_bytes
        ):
            partitions.append(Partition(tuple(current), ServerPartitionMetadata(shared=True)))
            current, models = [], dict(served_sizes.get(field_set.address, {}))
        current.append(field_set)
        current_models = models
    if current:
        partitions.append(Partition(tuple(current), ServerPartitionMetadata(shared=True)))
    return partitions


@dataclass(frozen=True)
class ServedModelSizesRequest:
    model: Address  # the model (or ensemble) under test


@dataclass(frozen=True)
class ServedModelSizes:
    by_directory: FrozenDict[Address, int]  # every model directory the server loads, in bytes


@rule(desc="Measure the models a Triton server loads", level=LogLevel.DEBUG)
async def served_model_sizes(request: ServedModelSizesRequest) -> ServedModelSizes:
    repository = await Get(ModelRepository, ModelRepositoryRequest(Addresses([request.model])))
    entries = await MultiGet(
        Get(DigestEntries, Digest, directory.digest) for directory in repository.directories
    )
    return ServedModelSizes(
        FrozenDict(
            {
                directory.address: sum(
                    e.file_digest.serialized_bytes_length
                    for e in dir_entries
                    if isinstance(e, FileEntry)
                )
                for directory, dir_entries in zip(repository.directories, entries)
            }
        )
    )


@rule(desc="Partition Triton tests", level=LogLevel.DEBUG)
async def partition_triton_tests(
    request: TritonTestRequest.PartitionRequest[TritonTestFieldSet],
    subsystem: TritonTestSubsystem,
) -> Partitions[TritonTestFieldSet, ServerPartitionMetadata]:
    shared = [fs for fs in request.field_sets if fs.share_server.value]
    own_server = [
        Partition((fs,), ServerPartitionMetadata(shared=False))
        for fs in sorted(request.field_sets, key=lambda fs: fs.address)
        if not fs.share_server.value
    ]
    tested = await MultiGet(
        Get(TestedModel, TestedModelRequest(fs.address, fs.model.value)) for fs in shared
    )
    sizes = await MultiGet(
        Get(ServedModelSizes, ServedModelSizesRequest(model.address)) for model in tested
    )
    shared_partitions = partition_field_sets(
        shared,
        {fs.address: size.by_directory for fs, size in zip(shared, sizes)},
        subsystem.batch_size,
        subsystem.batch_max_bytes,
    )
    return Partitions([*shared_partitions, *own_server])


def split_test_files(paths: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(case files, pytest files) of a target's sources; `.npy`/`.npz` are data, not cases."""
    cases, pytest_files = [], []
    for path in sorted(paths):
        name = os.path.basename(path)
        if name.endswith(".json"):
            cases.append(path)
        elif name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
            pytest_files.append(path)
    return tuple(cases), tuple(pytest_files)


@dataclass(frozen=True)
class ServedTestRequest(EngineAwareParameter):
    """A `triton_test` (for `test` or `run`): its model and its test files."""

    address: Address
    model: TritonTestModelField
    sources: TritonTestSourcesField

    def debug_hint(self) -> str:
        return self.address.spec


@rule
async def served_triton_test(request: ServedTestRequest) -> ServedTarget:
    tested, sources = await MultiGet(
        Get(TestedModel, TestedModelRequest(request.address, request.model.value)),
        Get(HydratedSources, HydrateSourcesRequest(request.sources)),
    )
    case_files, pytest_files = split_test_files(sources.snapshot.files)
    return ServedTarget(
        address=request.address,
        model_address=tested.address,
        case_files=case_files,
        pytest_files=pytest_files,
        sources_digest=sources.snapshot.digest,
    )


def batch_timeout(
    field_sets: Iterable[TritonTestFieldSet], test_subsystem: TestSubsystem
) -> int | None:
    """The sum of the targets' timeouts (as Pants' pytest runner does), or None for no limit."""
    timeouts = [fs.timeout.calculate_from_global_options(test_subsystem) for fs in field_sets]
    if not test_subsystem.timeouts or not any(timeouts):
        return None
    return sum(t or 0 for t in timeouts)


@dataclass(frozen=True)
class TritonTestBatchRequest(EngineAwareParameter):
    field_sets: tuple[TritonTestFieldSet, ...]
    description: str
    mode: str  # "test" or "debug"

    def debug_hint(self) -> str:
        return self.description


@rule(desc="Set up a batch of Triton tests", level=LogLevel.DEBUG)
async def triton_test_batch_process(
    request: TritonTestBatchRequest, test_subsystem: TestSubsystem
) -> TritonServerProcess:
    targets = await MultiGet(
        Get(ServedTarget, ServedTestRequest(fs.address, fs.model, fs.sources))
        for fs in request.field_sets
    )
    return await Get(
        TritonServerProcess,
        TritonServerProcessRequest(
            targets=tuple(targets),
            mode=request.mode,
            timeout_seconds=batch_timeout(request.field_sets, test_subsystem),
            description=f"Run Triton tests: {request.description}",
        ),
    )


@dataclass(frozen=True)
class TritonBatchOutcome:
    """A batch's server process, run: its result and the per-target reports it wrote."""

    result: FallibleProcessResult
    reports: Snapshot


@rule
async def run_triton_batch(process: TritonServerProcess) -> TritonBatchOutcome:
    result = await Get(FallibleProcessResult, Process, process.process)
    results = await Get(
        Snapshot, DigestSubset(result.output_digest, PathGlobs([f"{RESULTS_DIR}/**"]))
    )
    reports = await Get(Snapshot, RemovePrefix(results.digest, RESULTS_DIR))
    return TritonBatchOutcome(result, reports)


@dataclass(frozen=True)
class CheckedBatchRequest:
    """A batch's outcome, and the model each of its targets tests."""

    outcome: TritonBatchOutcome
    models: FrozenDict[Address, Address]  # target -> model under test


@rule(desc="Check the configs Triton served", level=LogLevel.DEBUG)
async def check_batch_outcome(request: CheckedBatchRequest) -> TritonBatchOutcome:
    """Fails the batch's targets whose ensemble does not fit the configs Triton served (a python
    member's `auto_complete_config` decides them): their results say why, with the config
    lines of the step, and keep `passed: false`."""
    outcome = request.outcome
    names = {address.path_safe_spec: address for address in request.models}
    problems = await Get(
        LoadedConfigProblems,
        LoadedConfigCheckRequest(
            outcome.reports,
            FrozenDict({name: request.models[a] for name, a in names.items()}),
        ),
    )
    if not problems.by_result:
        return outcome
    contents = await Get(DigestContents, Digest, outcome.reports.digest)
    rewritten = []
    for content in contents:
        name = os.path.splitext(content.path)[0]
        if content.path.endswith(".json") and name in problems.by_result:
            data = json.loads(content.content)
            data["served_config_errors"] = list(problems.by_result[name])
            data["passed"] = False
            content = FileContent(content.path, json.dumps(data, indent=2, sort_keys=True).encode())
        rewritten.append(content)
    lines = []
    for name, errors in sorted(problems.by_result.items()):
        lines.append(
            f"FAILED {names[name]}: its ensemble does not fit the config Triton serves for a "
            "step model:"
        )
        lines.extend(f"  {error}" for error in errors)
    stdout = outcome.result.stdout + ("\n".join(lines) + "\n").encode()
    stdout_digest, reports = await MultiGet(
        Get(Digest, CreateDigest([FileContent("stdout", stdout)])),
        Get(Snapshot, CreateDigest(rewritten)),
    )
    entries = await Get(DigestEntries, Digest, stdout_digest)
    file_digest = next(e.file_digest for e in entries if isinstance(e, FileEntry))
    result = dataclasses.replace(
        outcome.result,
        stdout=stdout,
        stdout_digest=file_digest,
        exit_code=outcome.result.exit_code or 1,
    )
    return TritonBatchOutcome(result, reports)


def batch_test_result(
    outcome: TritonBatchOutcome, batch: TestRequest.Batch, output_setting: ShowOutput
) -> TestResult:
    return TestResult.from_batched_fallible_process_result(
        outcome.result,
        batch=batch,
        output_setting=output_setting,
        extra_output=outcome.reports,
        log_extra_output=True,
    )


@rule(desc="Run Triton tests", level=LogLevel.DEBUG)
async def run_triton_tests(
    batch: TritonTestRequest.Batch[TritonTestFieldSet, ServerPartitionMetadata],
    test_subsystem: TestSubsystem,
) -> TestResult:
    setup = await Get(
        TritonServerProcess, TritonTestBatchRequest(batch.elements, batch.debug_hint(), "test")
    )
    tested = await MultiGet(
        Get(TestedModel, TestedModelRequest(fs.address, fs.model.value)) for fs in batch.elements
    )
    outcome = await Get(TritonBatchOutcome, TritonServerProcess, setup)
    models = FrozenDict({fs.address: t.address for fs, t in zip(batch.elements, tested)})
    checked = await Get(TritonBatchOutcome, CheckedBatchRequest(outcome, models))
    return batch_test_result(checked, batch, test_subsystem.output)


# ---------------------------------------------------------------------------------------------
# Load checks: deployable models that no `triton_test` tests are still loaded in Triton


@dataclass(frozen=True)
class TritonModelLoadFieldSet(TestFieldSet):
    """A model target: named when no `triton_test` tests it, and loaded when it is deployable
    (a `triton_ensemble`, or a `triton_model` not `ensemble_member_only`)."""

    required_fields = (TritonConfigSourceField, TritonVersionSourcesField)

    sources: TritonVersionSourcesField
    ensemble_member_only: TritonEnsembleMemberOnlyField


class TritonModelLoadRequest(TestRequest):
    tool_subsystem = TritonTestSubsystem
    field_set_type = TritonModelLoadFieldSet
    partitioner_type = PartitionerType.CUSTOM


@rule(desc="Find the models no triton_test tests", level=LogLevel.DEBUG)
async def partition_model_loads(
    request: TritonModelLoadRequest.PartitionRequest[TritonModelLoadFieldSet],
    all_targets: AllTargets,
    subsystem: TritonTestSubsystem,
    _run_id: RunId,  # Re-runs on every run, so the line below shows each time (pantsd memoizes).
) -> Partitions[TritonModelLoadFieldSet, ServerPartitionMetadata]:
    # A model that a `triton_test` tests is loaded by that test's batch already.
    tested = await MultiGet(
        Get(TestedModel, TestedModelRequest(t.address, t[TritonTestModelField].value))
        for t in all_targets
        if TritonTestFieldSet.is_applicable(t)
    )
    tested_addresses = {model.address for model in tested}
    untested = tuple(
        fs
        for fs in sorted(request.field_sets, key=lambda fs: fs.address)
        if fs.address not in tested_addresses
    )
    if not untested:
        return Partitions()
    message = untested_models_message(fs.address for fs in untested)
    if message:
        logger.warning(message)
    # A member-only model is loaded by the tests of the ensembles that use it.
    deployable = tuple(fs for fs in untested if not fs.ensemble_member_only.value)
    sizes = await MultiGet(
        Get(ServedModelSizes, ServedModelSizesRequest(fs.address)) for fs in deployable
    )
    # Small, stable batches, as for `triton_test` targets: a change reloads only its batch.
    return Partitions(
        partition_field_sets(
            deployable,
            {fs.address: size.by_directory for fs, size in zip(deployable, sizes)},
            subsystem.batch_size,
            subsystem.batch_max_bytes,
        )
    )


@rule(desc="Load models in Triton", level=LogLevel.DEBUG)
async def run_model_loads(
    batch: TritonModelLoadRequest.Batch[TritonModelLoadFieldSet, ServerPartitionMetadata],
    test_subsystem: TestSubsystem,
) -> TestResult:
    setup = await Get(
        TritonServerProcess,
        TritonServerProcessRequest(
            targets=tuple(ServedTarget(fs.address, fs.address) for fs in batch.elements),
            mode="test",
            description=f"Load models in Triton: {batch.debug_hint()}",
        ),
    )
    outcome = await Get(TritonBatchOutcome, TritonServerProcess, setup)
    models = FrozenDict({fs.address: fs.address for fs in batch.elements})
    checked = await Get(TritonBatchOutcome, CheckedBatchRequest(outcome, models))
    return batch_test_result(checked, batch, test_subsystem.output)


@rule(desc="Serve models for Triton tests interactively", level=LogLevel.DEBUG)
async def debug_triton_tests(
    batch: TritonTestRequest.Batch[TritonTestFieldSet, ServerPartitionMetadata]
) -> TestDebugRequest:
    setup = await Get(
        TritonServerProcess, TritonTestBatchRequest(batch.elements, batch.debug_hint(), "debug")
    )
    return TestDebugRequest(InteractiveProcess.from_process(setup.process))


def rules() -> Iterable:
    return (
        *collect_rules(),
        *loaded_config.rules(),
        *TritonTestRequest.rules(),
        *TritonModelLoadRequest.rules(),
        UnionRule(InferDependenciesRequest, InferTritonTestDependencies),
    )
