"""The Triton image of end-to-end tests: the one way they find it, call Docker and serve with it.

The image is the one `./pants test` uses, `[triton].image` in pants.toml (scripts/test builds the
stand-in recipe's tag and checks that pants.toml names it); $TRITON_MME_TEST_IMAGE overrides it.
Tests get it from conftest.py's `image` fixture. No pytest here: benchmarks and the `model-tools`
resolve (which has no pytest) use this module too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator


READY_TIMEOUT_S = 120
# A Docker call that takes longer means the engine hangs: fail naming the call, not at Pants'
# test timeout. (`docker run -d` of the stand-in returns in about a second.)
DOCKER_TIMEOUT_S = 90
_TRITON_IMAGE = re.compile(r'^\[triton\]$(?:(?!^\[).)*?^image\s*=\s*"([^"]+)"', re.M | re.S)


class DockerTimeout(AssertionError):
    pass


def docker(
    *args: str, check: bool = True, timeout: float = DOCKER_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """`docker ARGS`, bounded by `timeout` seconds."""
    try:
        return subprocess.run(
            ["docker", *args],
            check=check,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise DockerTimeout(
            f"`docker {' '.join(args[:2])}` did not answer within {timeout:g}s: the Docker engine "
            "hangs. Restart it (scripts/ensure-docker starts one; its log is /var/log/dockerd.log)."
        ) from None


def configured_image(repo: Path) -> str:
    """$TRITON_MME_TEST_IMAGE, else `[triton].image` of `repo`'s pants.toml."""
    override = os.environ.get("TRITON_MME_TEST_IMAGE")
    if override:
        return override
    found = _TRITON_IMAGE.search((repo / "pants.toml").read_text())
    if found is None:
        raise AssertionError(f"{repo / 'pants.toml'} has no [triton] image = \"...\"")
    return found.group(1)


class ImageUnavailable(Exception):
    """Why the image cannot run here: no Docker client, no engine, or no such image."""


def available_image(repo: Path) -> str:
    """The configured image, present in a running Docker engine; else `ImageUnavailable`."""
    if shutil.which("docker") is None:
        raise ImageUnavailable(
            "docker is not installed (apt-get install docker.io; scripts/ensure-docker)"
        )
    if docker("info", check=False).returncode != 0:
        raise ImageUnavailable("the Docker engine is not running (scripts/ensure-docker starts it)")
    image = configured_image(repo)
    if docker("image", "inspect", image, check=False).returncode != 0:
        raise ImageUnavailable(
            f"no image {image} in Docker: build it with build-support/triton-standin/build"
        )
    return image


@contextlib.contextmanager
def serving(
    image: str,
    repository: Path,
    *server_args: str,
    ready_path: str = "/v2/health/ready",
    docker_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """A container of `image` serving the model repository `repository` (read-only), once
    `ready_path` answers 200; yields its HTTP port on 127.0.0.1. Removed on exit."""
    container = docker(
        "run",
        "--rm",
        "-d",
        *docker_args,
        "-p",
        "127.0.0.1::8000",
        "-v",
        f"{repository}:/models:ro",
        image,
        "tritonserver",
        "--model-repository=/models",
        *server_args,
    ).stdout.strip()
    try:
        port = docker("port", container, "8000").stdout.split(":")[-1].strip()
        _wait_until_ready(port, container, ready_path)
        yield port
    finally:
        docker("rm", "-f", container, check=False)


def _wait_until_ready(port: str, container: str, ready_path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip() != "true":
                break
            time.sleep(0.5)
    logs = docker("logs", container, check=False)
    raise AssertionError(
        f"Triton did not answer {ready_path} within {READY_TIMEOUT_S}s:\n"
        f"{logs.stdout}\n{logs.stderr}"
    )
