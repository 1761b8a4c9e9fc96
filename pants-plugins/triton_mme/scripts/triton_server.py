"""A Triton container for one test batch: start, load models, report load errors, always remove.

Runs inside the `triton-client` PEX (stdlib only here). The container is labelled with its owner
(`<hostname>:<pid>`) and an expiry time; every start first removes containers whose owner process
on this host is gone (or, started from another host, whose expiry passed), and a detached
watchdog removes ours if this process is killed without a chance to clean up (SIGKILL, a killed
Pants daemon).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

OWNER_LABEL = "triton_mme.owner"
EXPIRES_LABEL = "triton_mme.expires"
HTTP_PORT, GRPC_PORT = 8000, 8001
POLL_SECONDS = 0.1
LOAD_POLL_SECONDS = 0.5
REPOSITORY = "/models"
# The python backend's stub logs this (at INFO level) when it dies before `initialize`.
STUB_FAILURE = "Failed to preinitialize Python stub"
ENSURE_DOCKER_HINT = (
    "Start a Docker engine with `scripts/ensure-docker` (or your usual way), then retry."
)
MISSING_IMAGE_HINT = (
    "Build or pull the image named by `[triton].image` in pants.toml (the CPU stand-in: "
    "`build-support/triton-standin/build`), then retry."
)


class ServerError(Exception):
    """The server could not be started; the message says why and how to fix it."""


class Interrupted(BaseException):
    """SIGTERM/SIGINT/SIGHUP: unwind through `finally` blocks so the container is removed."""


def raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, raise_interrupted)


@dataclass(frozen=True)
class ServerSettings:
    docker: str
    image: str  # an image ID (or reference) the engine has
    docker_run_args: tuple[str, ...]
    server_args: tuple[str, ...]
    startup_timeout: float
    lifetime: float  # seconds after which a leftover container counts as stale

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerSettings:
        return cls(
            docker=data["docker"],
            image=data["image"],
            docker_run_args=tuple(data["docker_run_args"]),
            server_args=tuple(data["server_args"]),
            startup_timeout=float(data["startup_timeout"]),
            lifetime=float(data["lifetime"]),
        )


def docker(settings: ServerSettings, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        [settings.docker, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        message = result.stderr.strip() or result.stdout.strip()
        if "Cannot connect to the Docker daemon" in message or "docker daemon" in message.lower():
            raise ServerError(f"no Docker engine answers: {message}\n{ENSURE_DOCKER_HINT}")
        if "No such image" in message or "Unable to find image" in message:
            raise ServerError(f"image {settings.image} is missing: {message}\n{MISSING_IMAGE_HINT}")
        raise ServerError(f"`docker {' '.join(args[:2])}` failed: {message}")
    return result.stdout


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_containers(settings: ServerSettings) -> list[str]:
    """Remove our containers whose owner on this host died, or whose expiry passed elsewhere."""
    listing = docker(
        settings,
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
        docker(settings, "rm", "-f", "-v", *stale, check=False)
    return stale


def start_watchdog(settings: ServerSettings, container_id: str) -> subprocess.Popen:
    """A detached process that removes the container once this process is gone."""
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--watch", str(os.getpid()), container_id],
        env={**os.environ, "TRITON_MME_DOCKER": settings.docker},
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
    subprocess.run(
        [docker_path, "rm", "-f", "-v", container_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Server:
    settings: ServerSettings
    container_id: str
    http_port: int
    grpc_port: int

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        result = subprocess.run(
            [self.settings.docker, "logs", self.container_id],
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        return (result.stdout + result.stderr).decode("utf-8", errors="replace")

    def request(self, method: str, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://{self.http_url}{path}", method=method, data=b"" if method == "POST" else None
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        try:
            return status, json.loads(body) if body else None
        except json.JSONDecodeError:
            return status, body.decode("utf-8", errors="replace")

    def is_running(self) -> bool:
        state = docker(
            self.settings,
            "inspect",
            "--format",
            "{{.State.Running}}",
            self.container_id,
            check=False,
        )
        return state.strip() == "true"

    def wait_until_live(self) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/v2/health/live", timeout=1.0)[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if not self.is_running():
                raise ServerError(
                    f"the Triton container exited during startup. Its log:\n{tail(self.log())}"
                )
            time.sleep(POLL_SECONDS)
        raise ServerError(
            f"Triton did not answer /v2/health/live within {self.settings.startup_timeout:g}s "
            f"([triton].startup_timeout). Its log:\n{tail(self.log())}"
        )

    def load_models(self, models: Mapping[str, Sequence[str]]) -> dict[str, str]:
        """Load models in parallel; the result maps each model that failed to Triton's error.

        `models` maps each model to load to every model its load loads (an ensemble's steps).
        Triton answers a failed load at once, except when a python model's stub dies before
        `initialize` (e.g. `model.py` is missing): the load then never ends, and only the log
        tells. So the log is watched while loads are under way, and such a model fails as soon
        as its line appears; a load still running after `[triton].startup_timeout` fails too.
        """
        results: dict[str, str | None] = {}
        timeout = max(1.0, self.settings.startup_timeout)

        def load(name: str) -> None:
            try:
                status, body = self.request("POST", f"/v2/repository/models/{name}/load", timeout)
            except OSError as e:  # a timeout, a dropped connection
                results.setdefault(name, f"the load request failed: {e}")
                return
            error = None if status == 200 else body.get("error") if isinstance(body, dict) else body
            results.setdefault(name, None if status == 200 else str(error or f"HTTP {status}"))

        threads = [threading.Thread(target=load, args=(name,), daemon=True) for name in models]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        while any(thread.is_alive() for thread in threads):
            pending = {name: models[name] for name in models if name not in results}
            for name, line in stub_failures(self.log(), pending).items():
                results.setdefault(name, line)
            if time.monotonic() > deadline:
                for name in pending:
                    results.setdefault(
                        name, f"still loading after {timeout:g}s ([triton].startup_timeout)"
                    )
            if all(name in results for name in models):
                break
            time.sleep(LOAD_POLL_SECONDS)
        return {name: error.strip() for name, error in results.items() if error}

    def repository_index(self) -> list[dict[str, Any]]:
        status, body = self.request("POST", "/v2/repository/index")
        return body if status == 200 and isinstance(body, list) else []


def tail(log: str, lines: int = 40) -> str:
    return "\n".join(log.rstrip().splitlines()[-lines:])


def stub_failures(log: str, models: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Models whose load waits on a python stub that died: the stub's line, by model loaded.

    The stub names the model by its file (`/models/<name>/<version>/model.py`), not its name.
    """
    failures: dict[str, str] = {}
    for line in log.splitlines():
        if STUB_FAILURE not in line:
            continue
        for name, loaded in models.items():
            if any(f"{REPOSITORY}/{member}/" in line for member in loaded):
                failures.setdefault(name, line.split("]", 1)[-1].strip())
    return failures


def model_log_errors(log: str, model_names: Sequence[str]) -> list[str]:
    """Triton's own error lines (`E...`) about the given models, e.g. a member of an ensemble."""
    quoted = tuple(f"'{name}'" for name in model_names)
    return [line for line in log.splitlines() if line[:1] == "E" and any(q in line for q in quoted)]


@contextlib.contextmanager
def start_server(settings: ServerSettings, repository_dir: str) -> Iterator[Server]:
    """A live server for the models in `repository_dir`; its container goes away on exit."""
    remove_stale_containers(settings)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    expires = str(int(time.time() + settings.startup_timeout + settings.lifetime))
    container_id = docker(
        settings,
        "create",
        "--label",
        f"{OWNER_LABEL}={owner}",
        "--label",
        f"{EXPIRES_LABEL}={expires}",
        # Loopback only, ephemeral host ports: parallel runs never collide.
        "-p",
        f"127.0.0.1::{HTTP_PORT}",
        "-p",
        f"127.0.0.1::{GRPC_PORT}",
        *settings.docker_run_args,
        settings.image,
        "tritonserver",
        f"--model-repository={REPOSITORY}",
        # Models are loaded one by one through the repository API: a model that fails to load
        # gets its own error, and the others still run.
        "--model-control-mode=explicit",
        *settings.server_args,
    ).strip()
    watchdog = start_watchdog(settings, container_id)
    try:
        # `docker cp` instead of a bind mount: works with remote engines too, and the sandbox
        # directory may vanish (or be unreadable to the engine) while the container runs.
        docker(settings, "cp", f"{repository_dir}/.", f"{container_id}:{REPOSITORY}")
        docker(settings, "start", container_id)
        server = Server(
            settings,
            container_id,
            http_port=_host_port(settings, container_id, HTTP_PORT),
            grpc_port=_host_port(settings, container_id, GRPC_PORT),
        )
        server.wait_until_live()
        yield server
    finally:
        docker(settings, "rm", "-f", "-v", container_id, check=False)
        watchdog.kill()
        watchdog.wait()


def _host_port(settings: ServerSettings, container_id: str, port: int) -> int:
    mapping = docker(settings, "port", container_id, f"{port}/tcp").splitlines()
    for line in mapping:
        host, _, host_port = line.strip().rpartition(":")
        if host in ("127.0.0.1", "0.0.0.0") and host_port.isdigit():
            return int(host_port)
    raise ServerError(f"Docker published no host port for the container's port {port}: {mapping}")


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--watch":
    watch(int(sys.argv[2]), sys.argv[3])
