"""A Triton container for one test batch: start, load models, report load errors, always remove.

Runs inside the `triton-client` PEX (stdlib only here). The container's lifecycle (owner labels,
stale sweep, watchdog, expiry) is `triton_container.py`'s, shared with the local MME.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from triton_mme.scripts.triton_container import (
    ContainerError,
    container_log,
    cp_timeout,
    docker,
    host_port,
    is_running,
    owned_container,
    tail,
)

HTTP_PORT, GRPC_PORT = 8000, 8001
POLL_SECONDS = 0.1
LOAD_POLL_SECONDS = 0.5
REPOSITORY = "/models"
# The python backend's stub logs this (at INFO level) when it dies before `initialize`.
STUB_FAILURE = "Failed to preinitialize Python stub"


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
        return container_log(self.settings.docker, self.container_id)

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
        return is_running(self.settings.docker, self.container_id)

    def wait_until_live(self) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/v2/health/live", timeout=1.0)[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if not self.is_running():
                raise ContainerError(
                    f"the Triton container exited during startup. Its log:\n{tail(self.log())}"
                )
            time.sleep(POLL_SECONDS)
        raise ContainerError(
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
    create_args = (
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
    )
    lifetime = settings.startup_timeout + settings.lifetime
    with owned_container(settings.docker, lifetime, create_args) as container_id:
        # `docker cp` instead of a bind mount: works with remote engines too, and the sandbox
        # directory may vanish (or be unreadable to the engine) while the container runs.
        docker(
            settings.docker,
            "cp",
            f"{repository_dir}/.",
            f"{container_id}:{REPOSITORY}",
            timeout=cp_timeout(repository_dir),
        )
        docker(settings.docker, "start", container_id)
        server = Server(
            settings,
            container_id,
            http_port=host_port(settings.docker, container_id, HTTP_PORT),
            grpc_port=host_port(settings.docker, container_id, GRPC_PORT),
        )
        server.wait_until_live()
        yield server
