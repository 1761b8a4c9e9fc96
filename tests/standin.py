"""The Triton stand-in image for end-to-end tests: find it, and serve a directory with it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

IMAGE_NAME = "triton-mme-standin"
READY_TIMEOUT_S = 120


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def standin_image(checkout: Path) -> str | None:
    """The stand-in image this checkout's recipe builds, or else the newest one present."""
    wanted = subprocess.run(
        [str(checkout / "build-support/triton-standin/build"), "--print-tag"],
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()
    if wanted and docker("image", "inspect", wanted, check=False).returncode == 0:
        return wanted
    present = docker("images", IMAGE_NAME, "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    return present[0] if present else None


def require_image(checkout: Path) -> str:
    """The stand-in image, or skip the test saying what is missing."""
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed (apt-get install docker.io; scripts/ensure-docker)")
    if docker("info", check=False).returncode != 0:
        pytest.skip("the Docker engine is not running (scripts/ensure-docker starts it)")
    found = standin_image(checkout)
    if found is None:
        pytest.skip(f"no {IMAGE_NAME} image: build it with build-support/triton-standin/build")
    return found


@contextlib.contextmanager
def serving(image: str, repository: Path, *server_args: str) -> Iterator[str]:
    """A container of `image` serving the model repository `repository` (read-only), once
    Triton is ready; yields its HTTP port on 127.0.0.1. The container is removed on exit."""
    container = docker(
        "run",
        "--rm",
        "-d",
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
        _wait_until_ready(port, container)
        yield port
    finally:
        docker("rm", "-f", container, check=False)


def _wait_until_ready(port: str, container: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            if docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip() != "true":
                break
            time.sleep(0.5)
    logs = docker("logs", container, check=False)
    pytest.fail(f"Triton did not become ready:\n{logs.stdout}\n{logs.stderr}")
