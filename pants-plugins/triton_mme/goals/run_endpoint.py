"""`pants run` on a `triton_mme_endpoint`: the local MME's front service, in a PEX.

The service (`triton_mme/scripts/local_mme/`, stdlib + boto3) is the `[local-mme]` tool. It runs
on the host, in the repository root, and drives the `docker` client found on
`[triton].docker_search_path`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pants.base.build_root import BuildRoot
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.rules import Get, collect_rules, rule
from triton_mme.subsystems import tool
from triton_mme.subsystems.local_mme import LocalMmeSubsystem
from triton_mme.subsystems.tool import ForegroundToolRequest
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


@rule(desc="Start a local SageMaker multi-model endpoint")
async def run_local_mme(
    field_set: TritonMmeEndpointFieldSet,
    triton: TritonSubsystem,
    local_mme: LocalMmeSubsystem,
    buildroot: BuildRoot,
    docker: DockerClient,
) -> RunRequest:
    args = server_args(field_set, triton, buildroot.path, docker.path)
    return await Get(RunRequest, ForegroundToolRequest(local_mme.tool_request(), args=args))


def rules():
    return (
        *collect_rules(),
        *tool.rules(),
        *LocalMmeSubsystem.rules(),
        *TritonMmeEndpointFieldSet.rules(),
    )
