"""The `docker` client and the Triton image, as every process that runs Triton needs them.

- `DockerClient`: the `docker` binary (from `[triton].docker_search_path`) and the `DOCKER_*`
  variables that are set, passed through the sandbox's clean environment;
- `TritonImage`: the image ID of `[triton].image`, looked up once per Pants run (uncached), so a
  rebuilt image invalidates cached results; a missing engine or image fails here, at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, BinaryPathTest
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from pants.util.strutil import softwrap
from triton_mme.subsystems.triton import TritonSubsystem

DOCKER_ENV_VARS = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_API_VERSION",
)
ENSURE_DOCKER = "scripts/ensure-docker"
BUILD_STANDIN = "build-support/triton-standin/build"


class TritonDockerError(Exception):
    """No usable Docker engine or image: says how to fix it."""


@dataclass(frozen=True)
class DockerClient:
    path: str
    env: FrozenDict[str, str]  # only the DOCKER_* variables that are set


@rule(desc="Find the docker client", level=LogLevel.DEBUG)
async def find_docker(triton: TritonSubsystem) -> DockerClient:
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(("PATH", *DOCKER_ENV_VARS)))
    search_path = tuple(
        directory
        for entry in triton.docker_search_path
        for directory in (
            (env.get("PATH") or "").split(os.pathsep) if entry == "<PATH>" else (entry,)
        )
        if directory
    )
    paths = await Get(
        BinaryPaths,
        BinaryPathRequest(
            binary_name="docker",
            search_path=search_path,
            test=BinaryPathTest(args=["--version"]),
        ),
    )
    if not paths.first_path:
        raise TritonDockerError(
            softwrap(
                f"""
                No `docker` client found on [triton].docker_search_path ({', '.join(search_path)}).
                Model tests and the local MME run Triton in Docker: install Docker (on Debian, as
                root, `{ENSURE_DOCKER}` installs and starts it) or point
                `[triton].docker_search_path` at the directory holding `docker`.
                """
            )
        )
    return DockerClient(
        path=paths.first_path.path,
        env=FrozenDict({name: env[name] for name in DOCKER_ENV_VARS if env.get(name)}),
    )


@dataclass(frozen=True)
class TritonImage:
    reference: str
    image_id: str


def docker_error_hint(image: str, stderr: str) -> str:
    """What to do about a failed `docker image inspect`."""
    if "No such image" in stderr:
        return softwrap(
            f"""
            The Triton image `{image}` ([triton].image) is not in the local Docker engine. Pull
            or build it; for the CPU stand-in image, run `{BUILD_STANDIN}` (and set
            [triton].image to the tag it prints).
            """
        )
    return softwrap(
        f"""
        No Docker engine answers ({stderr.strip()}). Start one with `{ENSURE_DOCKER}` (as root
        on Debian it installs and starts dockerd), or make DOCKER_HOST point at a running engine.
        """
    )


@rule(desc="Look up the Triton image", level=LogLevel.DEBUG)
async def find_triton_image(triton: TritonSubsystem, docker: DockerClient) -> TritonImage:
    result = await Get(
        FallibleProcessResult,
        Process(
            argv=(docker.path, "image", "inspect", "--format", "{{.Id}}", triton.image),
            env=docker.env,
            description=f"Look up the image ID of {triton.image}",
            level=LogLevel.DEBUG,
            # Never cached across runs: a rebuilt image under the same tag must rerun tests.
            cache_scope=ProcessCacheScope.PER_SESSION,
        ),
    )
    if result.exit_code != 0:
        raise TritonDockerError(docker_error_hint(triton.image, result.stderr.decode()))
    return TritonImage(reference=triton.image, image_id=result.stdout.decode().strip())


def rules() -> Iterable:
    return collect_rules()
