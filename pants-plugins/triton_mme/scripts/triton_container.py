"""The life of a Triton container, for test batches, `run` and the local MME (stdlib only).

Every container the plugin starts is labelled with its owner (`<hostname>:<pid>`) and an expiry
time. Starting one first removes containers whose owner process on this host is gone (or, started
from another host, whose expiry passed); a detached watchdog removes ours if this process is
killed without a chance to clean up (SIGKILL, a killed Pants daemon); leaving `owned_container`
removes it on every other path.

    python triton_container.py --watch OWNER_PID CONTAINER_ID   (the watchdog; needs
    TRITON_MME_DOCKER, the docker client)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Iterator, Sequence

OWNER_LABEL = "triton_mme.owner"
EXPIRES_LABEL = "triton_mme.expires"
# A container that serves until Ctrl-C (`run`, the local MME) counts as stale on another host
# only after this long; on this host its owner's pid decides.
SERVE_LIFETIME = 7 * 24 * 3600
ENSURE_DOCKER_HINT = (
    "Start a Docker engine with `scripts/ensure-docker` (or your usual way), then retry."
)
# A Docker call that takes longer means the engine hangs: fail naming the call, not at Pants'
# test timeout. `docker cp` of a model repository is bounded by its size instead (`cp_timeout`).
DOCKER_TIMEOUT_S = 120.0
COPY_MIB_PER_S = 20.0
MISSING_IMAGE_HINT = (
    "Build or pull the image named by `[triton].image` in pants.toml (the CPU stand-in: "
    "`build-support/triton-standin/build`), then retry."
)


class ContainerError(Exception):
    """Docker could not run the container; the message says why and how to fix it."""


class Interrupted(BaseException):
    """SIGTERM/SIGINT/SIGHUP: unwind through `finally` blocks so the container is removed."""


def raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, raise_interrupted)


def docker(
    docker_path: str, *args: str, check: bool = True, timeout: float = DOCKER_TIMEOUT_S
) -> str:
    """`docker ARGS`'s stdout; a failure, or no answer within `timeout` seconds, raises
    `ContainerError` naming the fix."""
    try:
        result = subprocess.run(
            [docker_path, *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ContainerError(
            f"`docker {' '.join(args[:2])}` did not answer within {timeout:g}s: the Docker engine "
            f"hangs. Restart it.\n{ENSURE_DOCKER_HINT}"
        ) from None
    if check and result.returncode != 0:
        message = result.stderr.strip() or result.stdout.strip()
        if "Cannot connect to the Docker daemon" in message or "docker daemon" in message.lower():
            raise ContainerError(f"no Docker engine answers: {message}\n{ENSURE_DOCKER_HINT}")
        if "No such image" in message or "Unable to find image" in message:
            raise ContainerError(f"the Triton image is missing: {message}\n{MISSING_IMAGE_HINT}")
        raise ContainerError(f"`docker {' '.join(args[:2])}` failed: {message}")
    return result.stdout


def cp_timeout(directory: str) -> float:
    """How long `docker cp` of `directory` may take: the usual bound plus 1 s per 20 MiB."""
    size = sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
        if not os.path.islink(os.path.join(root, name))
    )
    return DOCKER_TIMEOUT_S + size / (COPY_MIB_PER_S * 2**20)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_labels(lifetime: float) -> tuple[str, ...]:
    """`docker create` arguments that label a container as this process's, until `lifetime`."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    expires = str(int(time.time() + lifetime))
    return ("--label", f"{OWNER_LABEL}={owner}", "--label", f"{EXPIRES_LABEL}={expires}")


def remove_stale_containers(docker_path: str) -> list[str]:
    """Remove our containers whose owner on this host died, or whose expiry passed elsewhere."""
    listing = docker(
        docker_path,
        "ps",
        "-a",
        "--filter",
        f"label={OWNER_LABEL}",
        "--format",
        f'{{{{.ID}}}} {{{{.Label "{OWNER_LABEL}"}}}} {{{{.Label "{EXPIRES_LABEL}"}}}}',
    )
    host, now, stale = socket.gethostname(), time.time(), []
    for line in listing.splitlines():
        container_id, owner, expires = (line.split(" ") + ["", ""])[:3]
        owner_host, _, owner_pid = owner.rpartition(":")
        if owner_host == host and owner_pid.isdigit():
            # On this host the owner's pid is the truth: a long run may outlive its expiry.
            is_stale = not pid_alive(int(owner_pid))
        else:
            # Another host (a shared remote engine): only the expiry can tell.
            is_stale = expires.replace(".", "", 1).isdigit() and float(expires) < now
        if is_stale:
            stale.append(container_id)
    if stale:
        docker(docker_path, "rm", "-f", "-v", *stale, check=False)
    return stale


def start_watchdog(docker_path: str, container_id: str) -> subprocess.Popen:
    """A detached process that removes the container once this process is gone."""
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--watch", str(os.getpid()), container_id],
        env={**os.environ, "TRITON_MME_DOCKER": docker_path},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives this process group when Pants kills it
        close_fds=True,
    )


def watch(owner_pid: int, container_id: str) -> None:
    docker_path = os.environ["TRITON_MME_DOCKER"]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while pid_alive(owner_pid):
        time.sleep(0.5)
    docker(docker_path, "rm", "-f", "-v", container_id, check=False)


@contextlib.contextmanager
def owned_container(docker_path: str, lifetime: float, create_args: Sequence[str]) -> Iterator[str]:
    """A created (not started) container, labelled and watched; removed when the block exits."""
    remove_stale_containers(docker_path)
    container_id = docker(docker_path, "create", *owner_labels(lifetime), *create_args).strip()
    watchdog = start_watchdog(docker_path, container_id)
    try:
        yield container_id
    finally:
        docker(docker_path, "rm", "-f", "-v", container_id, check=False)
        watchdog.kill()
        watchdog.wait()


def host_port(docker_path: str, container_id: str, port: int) -> int:
    """The loopback host port Docker published for the container's `port`."""
    mapping = docker(docker_path, "port", container_id, f"{port}/tcp").splitlines()
    for line in mapping:
        host, _, published = line.strip().rpartition(":")
        if host in ("127.0.0.1", "0.0.0.0") and published.isdigit():
            return int(published)
    raise ContainerError(
        f"Docker published no host port for the container's port {port}: {mapping}"
    )


def is_running(docker_path: str, container_id: str) -> bool:
    state = docker(
        docker_path, "inspect", "--format", "{{.State.Running}}", container_id, check=False
    )
    return state.strip() == "true"


def container_log(docker_path: str, container_id: str) -> str:
    """The container's output so far (stdout and stderr)."""
    try:
        result = subprocess.run(
            [docker_path, "logs", container_id],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=DOCKER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"(`docker logs` did not answer within {DOCKER_TIMEOUT_S:g}s)"
    return (result.stdout + result.stderr).decode("utf-8", errors="replace")


def tail(log: str, lines: int = 40) -> str:
    return "\n".join(log.rstrip().splitlines()[-lines:])


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--watch":
    watch(int(sys.argv[2]), sys.argv[3])
