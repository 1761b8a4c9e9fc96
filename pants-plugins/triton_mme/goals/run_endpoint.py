"""`pants run` on a `triton_mme_endpoint`: the local MME's front service, in a PEX.

The service (`triton_mme/scripts/local_mme/`, stdlib + boto3) runs from the `boto3` resolve
on the host, in the repository root, and drives the `docker` client found on
`[triton].docker_search_path`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources

from pants.backend.python.subsystems.setup import PythonSetup
from pants.base.build_root import BuildRoot
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import Pex, PexRequest
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.backend.python.util_rules.pex_requirements import PexRequirements, Resolve
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from triton_mme.target_types import (
    EndpointNameField,
    MaxBytesField,
    MaxModelsField,
    ModelSourceField,
    PortField,
    S3EndpointUrlField,
    S3RegionField,
)
from triton_mme.subsystems.triton import TritonSubsystem
from triton_mme.util_rules.docker import DockerClient

RESOLVE = "boto3"
SERVER_PACKAGE = "triton_mme.scripts.local_mme"
SERVER_MODULE = f"{SERVER_PACKAGE}.server"
PEX_NAME = "local_mme.pex"


@dataclass(frozen=True)
class TritonMmeEndpointFieldSet(RunFieldSet):
    required_fields = (ModelSourceField,)
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED

    model_source: ModelSourceField
    s3_endpoint_url: S3EndpointUrlField
    s3_region: S3RegionField
    max_models: MaxModelsField
    max_bytes: MaxBytesField
    port: PortField
    endpoint_name: EndpointNameField


class LocalMmeError(ValueError):
    pass


def server_args(
    field_set: TritonMmeEndpointFieldSet, triton: TritonSubsystem, buildroot: str, docker: str
) -> tuple[str, ...]:
    """The front service's command-line arguments for this target and the `[triton]` options."""
    source = field_set.model_source.value or ModelSourceField.default
    if not source.startswith("s3://"):
        if os.path.isabs(source) or ".." in source.split("/"):
            raise LocalMmeError(
                f"{field_set.address}: model_source={source!r} must be a directory inside the "
                "repository (such as `dist`) or an `s3://<bucket>/<prefix>` URL."
            )
        source = os.path.join(buildroot, source)
    for name, value in (("max_models", field_set.max_models.value), ("port", field_set.port.value)):
        if value is not None and value < 0:
            raise LocalMmeError(f"{field_set.address}: {name} must be 0 or more, not {value}.")
    if (field_set.max_bytes.value or 0) < 0:
        raise LocalMmeError(f"{field_set.address}: max_bytes must be 0 or more.")
    args = [
        f"--source={source}",
        f"--image={triton.image}",
        f"--docker={docker}",
        f"--startup-timeout={triton.startup_timeout}",
        f"--endpoint-name={field_set.endpoint_name.value}",
        f"--port={field_set.port.value}",
        f"--max-models={field_set.max_models.value}",
        f"--max-bytes={field_set.max_bytes.value}",
        *(f"--docker-run-arg={arg}" for arg in triton.docker_run_args),
        *(f"--server-arg={arg}" for arg in triton.server_args),
    ]
    if field_set.s3_endpoint_url.value:
        args.append(f"--s3-endpoint-url={field_set.s3_endpoint_url.value}")
    if field_set.s3_region.value:
        args.append(f"--s3-region={field_set.s3_region.value}")
    return tuple(args)


def _server_sources() -> list[FileContent]:
    package_dir = resources.files(SERVER_PACKAGE)
    return [
        FileContent(f"{SERVER_PACKAGE.replace('.', '/')}/{entry.name}", entry.read_bytes())
        for entry in sorted(package_dir.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py") and not entry.name.endswith("_test.py")
    ]


@rule(desc="Start a local SageMaker multi-model endpoint")
async def run_local_mme(
    field_set: TritonMmeEndpointFieldSet,
    triton: TritonSubsystem,
    python_setup: PythonSetup,
    buildroot: BuildRoot,
    docker: DockerClient,
) -> RunRequest:
    args = server_args(field_set, triton, buildroot.path, docker.path)
    interpreter_constraints = InterpreterConstraints(
        python_setup.resolves_to_interpreter_constraints.get(
            RESOLVE, python_setup.interpreter_constraints
        )
    )
    sources = await Get(Digest, CreateDigest(_server_sources()))
    pex, python = await MultiGet(
        Get(
            Pex,
            PexRequest(
                output_filename=PEX_NAME,
                internal_only=True,
                requirements=PexRequirements(["boto3"], from_superset=Resolve(RESOLVE, False)),
                interpreter_constraints=interpreter_constraints,
                sources=sources,
                main=EntryPoint(SERVER_MODULE),
                description="Build the local MME front service",
            ),
        ),
        Get(PythonExecutable, InterpreterConstraints, interpreter_constraints),
    )
    return RunRequest(digest=pex.digest, args=(python.path, f"{{chroot}}/{PEX_NAME}", *args))


def rules():
    return (*collect_rules(), *TritonMmeEndpointFieldSet.rules())
