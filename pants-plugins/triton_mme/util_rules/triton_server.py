"""The process that serves a batch of models with a real Triton in Docker (for `test` and `run`).

Three small rules feed one `Process`: `DockerClient` and `TritonImage` (`util_rules/docker.py`),
and `TritonTestRunner`, the `triton-client` resolve PEX with the scripts in `triton_mme/scripts`.

The process's inputs are the model repository (the bytes `package` ships), the test files, the
image ID and the options, so Pants caches its result: re-running unchanged tests starts nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.backend.python.util_rules.pex_requirements import PexRequirements, Resolve
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel
from pants.util.resources import read_resource
from triton_mme.util_rules.repository import ModelRepository, ModelRepositoryRequest
from triton_mme.subsystems.triton import TritonSubsystem
from triton_mme.util_rules.docker import DockerClient, TritonImage

# The resolve whose lockfile pins tritonclient, numpy and pytest for the runner (pants.toml).
CLIENT_RESOLVE = "triton-client"
CLIENT_REQUIREMENTS = ("tritonclient[http,grpc]", "numpy", "pytest")
SCRIPTS_PACKAGE = "triton_mme.scripts"
SCRIPTS = ("run_triton_tests.py", "triton_server.py", "triton_cases.py", "triton_pytest_plugin.py")
REPOSITORY_DIR = "model_repository"
RESULTS_DIR = "triton_test_results"
MANIFEST = "manifest.json"
# Grace beyond the script's own deadline, so it can report and remove its container itself.
CLEANUP_GRACE_SECONDS = 30


@dataclass(frozen=True)
class TritonTestRunner:
    pex: VenvPex


@rule(desc="Build the Triton test runner", level=LogLevel.DEBUG)
async def build_test_runner(python_setup: PythonSetup) -> TritonTestRunner:
    package_dir = SCRIPTS_PACKAGE.replace(".", "/")
    scripts = await Get(
        Digest,
        CreateDigest(
            [
                FileContent("triton_mme/__init__.py", b""),
                FileContent(f"{package_dir}/__init__.py", b""),
                *(
                    FileContent(f"{package_dir}/{name}", read_resource(SCRIPTS_PACKAGE, name))
                    for name in SCRIPTS
                ),
            ]
        ),
    )
    constraints = python_setup.resolves_to_interpreter_constraints.get(
        CLIENT_RESOLVE, python_setup.interpreter_constraints
    )
    pex = await Get(
        VenvPex,
        PexRequest(
            output_filename="triton_test_runner.pex",
            internal_only=True,
            requirements=PexRequirements(
                CLIENT_REQUIREMENTS,
                from_superset=Resolve(CLIENT_RESOLVE, use_entire_lockfile=False),
                description_of_origin="the triton_test runner",
            ),
            interpreter_constraints=InterpreterConstraints(constraints),
            main=EntryPoint(f"{SCRIPTS_PACKAGE}.run_triton_tests"),
            sources=scripts,
        ),
    )
    return TritonTestRunner(pex)


@dataclass(frozen=True)
class ServedTarget:
    """One target whose model the server loads: a `triton_test`, or a model for `run`."""

    address: Address
    model_address: Address
    case_files: tuple[str, ...] = ()
    pytest_files: tuple[str, ...] = ()
    sources_digest: Digest | None = None


@dataclass(frozen=True)
class TritonServerProcessRequest:
    targets: tuple[ServedTarget, ...]
    mode: str  # "test", "debug" (test, then keep serving) or "serve"
    timeout_seconds: int | None = None
    description: str = "Triton"


@dataclass(frozen=True)
class TritonServerProcess:
    process: Process


def manifest_json(
    request: TritonServerProcessRequest,
    triton: TritonSubsystem,
    docker: DockerClient,
    image: TritonImage,
    model_names: dict[Address, tuple[str, tuple[str, ...]]],
) -> bytes:
    """What the runner script needs; deterministic, since it is part of the cache key."""
    lifetime = (
        (request.timeout_seconds or 3600) + 2 * triton.startup_timeout
        if request.mode == "test"
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
            "timeout": request.timeout_seconds,
            "targets": [
                {
                    "address": target.address.spec,
                    "result_name": target.address.path_safe_spec,
                    "model": model_names[target.model_address][0],
                    "models": list(model_names[target.model_address][1]),
                    "cases": list(target.case_files),
                    "pytest": list(target.pytest_files),
                }
                for target in request.targets
            ],
        },
        indent=2,
        sort_keys=True,
    ).encode()


@rule(desc="Set up a Triton server process", level=LogLevel.DEBUG)
async def triton_server_process(
    request: TritonServerProcessRequest,
    triton: TritonSubsystem,
    docker: DockerClient,
    image: TritonImage,
    runner: TritonTestRunner,
) -> TritonServerProcess:
    model_addresses = sorted({t.model_address for t in request.targets})
    repository, *own_repositories = await MultiGet(
        Get(ModelRepository, ModelRepositoryRequest(Addresses(model_addresses))),
        *(
            Get(ModelRepository, ModelRepositoryRequest(Addresses([address])))
            for address in model_addresses
        ),
    )
    # Per model under test: its name, and every model its own repository holds (for errors).
    model_names: dict[Address, tuple[str, tuple[str, ...]]] = {}
    for address, own in zip(model_addresses, own_repositories):
        root = next(d.model_name for d in own.directories if d.address == address)
        model_names[address] = (root, own.model_names)
    manifest, served_repository = await MultiGet(
        Get(
            Digest,
            CreateDigest(
                [FileContent(MANIFEST, manifest_json(request, triton, docker, image, model_names))]
            ),
        ),
        Get(Digest, AddPrefix(repository.digest, REPOSITORY_DIR)),
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
            runner.pex,
            argv=(MANIFEST,),
            description=request.description,
            input_digest=input_digest,
            extra_env=docker.env,
            output_directories=(RESULTS_DIR,),
            timeout_seconds=timeout,
            level=LogLevel.DEBUG,
        ),
    )
    return TritonServerProcess(process)


def rules() -> Iterable:
    return collect_rules()
