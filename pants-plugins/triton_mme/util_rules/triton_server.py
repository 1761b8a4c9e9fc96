"""The process that serves a batch of models with a real Triton in Docker (`test`, `run`,
`record-outputs`).

Three small rules feed one `Process`: `DockerClient` and `TritonImage` (`util_rules/docker.py`),
and the `[triton-test]` tool (`scripts/run_triton_tests.py`, built by `subsystems/tool.py`).

The server loads each model under test as its artifact ships it: an ensemble's members are named
`<artifact>.<member>` (`util_rules/artifact_names.py`, the step `package` applies). The manifest
maps each target's source model names to the served ones, so case files and pytest tests keep
naming models as in the source (`scripts/model_client.py` applies the map).

The process's inputs are the model repository (the bytes `package` ships), the test files, the
image ID and the options, so Pants caches its result: re-running unchanged tests starts nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Mapping

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent, MergeDigests
from pants.core.goals.run import RunRequest
from pants.engine.process import Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from triton_mme.util_rules.artifact_names import ArtifactModels, ShippedModelsRequest
from triton_mme.subsystems import tool
from triton_mme.subsystems.tool import ForegroundToolRequest, ScriptTool, ScriptToolRequest
from triton_mme.subsystems.triton import TritonSubsystem
from triton_mme.subsystems.triton_client import TritonClientSubsystem
from triton_mme.util_rules.docker import DockerClient, TritonImage

REPOSITORY_DIR = "model_repository"
RESULTS_DIR = "triton_test_results"
# Where `record` mode writes the case files with their recorded outputs (same paths below it).
RECORDED_DIR = f"{RESULTS_DIR}/recorded"
MANIFEST = "manifest.json"
# Grace beyond the script's own deadline, so it can report and remove its container itself.
CLEANUP_GRACE_SECONDS = 30


@dataclass(frozen=True)
class ServedTarget:
    """One target whose model the server loads: a `triton_test`, or a model for `run`."""

    address: Address
    model_address: Address
    case_files: tuple[str, ...] = ()
    pytest_files: tuple[str, ...] = ()
    sources_digest: Digest | None = None


@dataclass(frozen=True)
class TritonServerProcessRequest(EngineAwareParameter):
    targets: tuple[ServedTarget, ...]
    mode: str  # "test", "debug" (test, then keep serving), "serve" or "record"
    timeout_seconds: int | None = None
    description: str = "Triton"
    # `record`: replace the expected outputs case files already have.
    overwrite_outputs: bool = False

    def debug_hint(self) -> str:
        return ", ".join(target.address.spec for target in self.targets)


@dataclass(frozen=True)
class TritonServerProcess:
    process: Process


def manifest_json(
    request: TritonServerProcessRequest,
    triton: TritonSubsystem,
    docker: DockerClient,
    image: TritonImage,
    served: Mapping[Address, ArtifactModels],
) -> bytes:
    """What the runner script needs; deterministic, since it is part of the cache key."""
    lifetime = (
        (request.timeout_seconds or 3600) + 2 * triton.startup_timeout
        if request.mode in ("test", "record")
        else 7 * 24 * 3600
    )
    return json.dumps(
        {
            "mode": request.mode,
            "server": {
                "docker": docker.path,
                "image": image.image_id,
                "docker_run_args": list(triton.docker_run_args),
                "server_args": list(triton.server_args),
                "startup_timeout": triton.startup_timeout,
                "lifetime": lifetime + CLEANUP_GRACE_SECONDS,
            },
            "repository": REPOSITORY_DIR,
            "results_dir": RESULTS_DIR,
            "recorded_dir": RECORDED_DIR,
            "overwrite": request.overwrite_outputs,
            "timeout": request.timeout_seconds,
            "targets": [
                {
                    "address": target.address.spec,
                    "result_name": target.address.path_safe_spec,
                    "model": served[target.model_address].served_model,
                    # Source name -> served name of every model the target's artifact holds:
                    # cases and pytest tests name models as in the source.
                    "names": dict(served[target.model_address].shipped_names),
                    "cases": list(target.case_files),
                    "pytest": list(target.pytest_files),
                }
                for target in request.targets
            ],
        },
        indent=2,
        sort_keys=True,
    ).encode()


@dataclass(frozen=True)
class ServedRepositoryRequest(EngineAwareParameter):
    """The models under test, each with the models its artifact ships, as `package` names them."""

    models: Addresses

    def debug_hint(self) -> str:
        return ", ".join(address.spec for address in self.models)


@dataclass(frozen=True)
class ServedRepository:
    digest: Digest
    by_model: FrozenDict[Address, ArtifactModels]


@rule(desc="Name the models of a Triton server", level=LogLevel.DEBUG)
async def served_repository(request: ServedRepositoryRequest) -> ServedRepository:
    artifacts = await MultiGet(
        Get(ArtifactModels, ShippedModelsRequest(address)) for address in request.models
    )
    # Member names are unique to each artifact, so the repositories merge without overlap
    # (two ensembles sharing a member each serve their own copy, as on an MME instance).
    digest = await Get(Digest, MergeDigests(artifact.digest for artifact in artifacts))
    return ServedRepository(digest, FrozenDict(zip(request.models, artifacts)))


@dataclass(frozen=True)
class TritonServerInputs:
    """The runner's sandbox (manifest, model repository, test files) and its environment."""

    digest: Digest
    env: FrozenDict[str, str]


@rule(desc="Set up a Triton server's inputs", level=LogLevel.DEBUG)
async def triton_server_inputs(
    request: TritonServerProcessRequest,
    triton: TritonSubsystem,
    docker: DockerClient,
    image: TritonImage,
) -> TritonServerInputs:
    models = Addresses(sorted({t.model_address for t in request.targets}))
    served = await Get(ServedRepository, ServedRepositoryRequest(models))
    manifest, served_repository = await MultiGet(
        Get(
            Digest,
            CreateDigest(
                [
                    FileContent(
                        MANIFEST, manifest_json(request, triton, docker, image, served.by_model)
                    )
                ]
            ),
        ),
        Get(Digest, AddPrefix(served.digest, REPOSITORY_DIR)),
    )
    input_digest = await Get(
        Digest,
        MergeDigests(
            [
                manifest,
                served_repository,
                *(t.sources_digest for t in request.targets if t.sources_digest),
            ]
        ),
    )
    return TritonServerInputs(input_digest, docker.env)


@rule(desc="Set up a Triton server process", level=LogLevel.DEBUG)
async def triton_server_process(
    request: TritonServerProcessRequest, triton: TritonSubsystem, runner: TritonClientSubsystem
) -> TritonServerProcess:
    inputs, tool = await MultiGet(
        Get(TritonServerInputs, TritonServerProcessRequest, request),
        Get(ScriptTool, ScriptToolRequest, runner.tool_request()),
    )
    # The script enforces the tests' timeout itself; start-up (live, then loading) may take up to
    # twice `startup_timeout`; the grace lets it report and remove its container.
    timeout = (
        None
        if request.timeout_seconds is None or request.mode != "test"
        else request.timeout_seconds + 2 * triton.startup_timeout + CLEANUP_GRACE_SECONDS
    )
    process = await Get(
        Process,
        VenvPexProcess(
            tool.pex,
            argv=(MANIFEST,),
            description=request.description,
            input_digest=inputs.digest,
            extra_env=inputs.env,
            output_directories=(RESULTS_DIR,),
            timeout_seconds=timeout,
            level=LogLevel.DEBUG,
        ),
    )
    return TritonServerProcess(process)


@rule(desc="Set up a Triton server in the foreground", level=LogLevel.DEBUG)
async def triton_server_in_foreground(
    request: TritonServerProcessRequest, runner: TritonClientSubsystem
) -> RunRequest:
    inputs = await Get(TritonServerInputs, TritonServerProcessRequest, request)
    return await Get(
        RunRequest,
        ForegroundToolRequest(
            runner.tool_request(),
            args=(f"{{chroot}}/{MANIFEST}",),
            input_digest=inputs.digest,
            extra_env=inputs.env,
        ),
    )


def rules() -> Iterable:
    return (*collect_rules(), *tool.rules(), *TritonClientSubsystem.rules())
