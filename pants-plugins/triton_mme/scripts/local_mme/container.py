"""The Triton container behind the local endpoint, and Triton's SageMaker API on it.

Triton runs as SageMaker MME runs it (`--allow-sagemaker=true --model-control-mode=explicit`).
Extracted tarballs live in a host directory bind-mounted read-only at /opt/ml, laid out as
SageMaker lays them out, so a model is loaded with
`POST /models {"model_name": <TargetModel>, "url": "/opt/ml/models/<hash>/model"}`; current
Triton refuses any other url. As in SageMaker's `serve` script, `--model-repository` is an empty
placeholder outside /opt/ml/models (Triton requires one).
The container's lifecycle (owner labels, stale sweep, watchdog) is `triton_container.py`'s,
shared with test batches and `run`.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from triton_mme.scripts.triton_container import (
    SERVE_LIFETIME,
    ContainerError,
    container_log,
    docker,
    host_port,
    is_running,
    owned_container,
    tail,
)

SAGEMAKER_PORT = 8080
CONTAINER_ROOT = "/opt/ml"


@dataclass(frozen=True)
class TritonReply:
    status: int
    body: bytes
    content_type: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_text(self) -> str:
        """Triton's `{"error": ...}` message, or the raw body."""
        try:
            return str(json.loads(self.body)["error"])
        except (ValueError, KeyError, TypeError):
            return self.body.decode("utf-8", errors="replace") or f"HTTP {self.status}"


class TritonContainer:
    def __init__(
        self,
        docker: str,
        image: str,
        host_root: Path,
        docker_run_args: list[str],
        server_args: list[str],
    ) -> None:
        self.docker = docker
        self.image = image
        self.host_root = host_root
        self.docker_run_args = docker_run_args
        self.server_args = server_args
        self.container_id: str | None = None
        self.base_url = ""
        self._lifecycle = contextlib.ExitStack()

    def start(self, startup_timeout: float) -> None:
        (self.host_root / "models").mkdir(parents=True, exist_ok=True)
        (self.host_root / "repository").mkdir(parents=True, exist_ok=True)
        create_args = (
            "-p",
            f"127.0.0.1::{SAGEMAKER_PORT}",
            "-v",
            f"{self.host_root}:{CONTAINER_ROOT}:ro",
            *self.docker_run_args,
            self.image,
            "tritonserver",
            "--allow-sagemaker=true",
            f"--sagemaker-port={SAGEMAKER_PORT}",
            "--model-control-mode=explicit",
            f"--model-repository={CONTAINER_ROOT}/repository",
            "--exit-on-error=false",
            *self.server_args,
        )
        container_id = self._lifecycle.enter_context(
            owned_container(self.docker, SERVE_LIFETIME, create_args)
        )
        self.container_id = container_id
        docker(self.docker, "start", container_id)
        self.base_url = f"http://127.0.0.1:{host_port(self.docker, container_id, SAGEMAKER_PORT)}"
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.request("GET", "/ping", timeout=2).ok:
                return
            if not is_running(self.docker, container_id):
                break
            time.sleep(0.25)
        raise ContainerError(
            f"Triton ({self.image}) did not become ready within {startup_timeout:.0f} s. Its "
            f"log ends with:\n{self.logs(40)}"
        )

    def logs(self, lines: int) -> str:
        if not self.container_id:
            return ""
        return tail(container_log(self.docker, self.container_id), lines)

    def remove(self) -> None:
        """Remove the container; safe to call more than once, and from a signal handler."""
        self.container_id = None
        self._lifecycle.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 600,
    ) -> TritonReply:
        request = urllib.request.Request(
            self.base_url + path,
            data=body,
            method=method,
            headers={"Content-Type": content_type} if body is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return TritonReply(
                    response.status,
                    response.read(),
                    response.headers.get("Content-Type", "application/json"),
                )
        except urllib.error.HTTPError as e:
            content_type = e.headers.get("Content-Type", "") if e.headers else ""
            return TritonReply(e.code, e.read(), content_type or "text/plain")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            return TritonReply(503, json.dumps({"error": f"Triton unreachable: {e}"}).encode(), "")

    def load(self, target_model: str, model_dir: str, timeout: float) -> TritonReply:
        """Load the model extracted to `models/<model_dir>` under the host root."""
        body = {"model_name": target_model, "url": f"{CONTAINER_ROOT}/models/{model_dir}"}
        return self.request("POST", "/models", json.dumps(body).encode(), timeout=timeout)

    def unload(self, target_model: str) -> TritonReply:
        return self.request("DELETE", f"/models/{urllib.parse.quote(target_model, safe='')}")

    def invoke(self, target_model: str, body: bytes, content_type: str) -> TritonReply:
        quoted = urllib.parse.quote(target_model, safe="")
        return self.request("POST", f"/models/{quoted}/invoke", body, content_type)
