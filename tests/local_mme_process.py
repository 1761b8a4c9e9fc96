"""The local SageMaker MME as a subprocess, for the end-to-end tests and the benchmark.

`LocalMme` runs `python -m triton_mme.scripts.local_mme.server` with this interpreter's
`sys.path` (so the front service and boto3 come from the same resolve) and talks to it over
HTTP as a SageMaker client would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from local_mme_models import output_of, request_body
from standin import docker

STARTUP_TIMEOUT_SECONDS = 240
VALUES = [1.0, 2.0, 3.5]
# The port Triton's SageMaker API listens on inside the container (the front service's Triton).
TRITON_SAGEMAKER_PORT = 8080


def server_argv(docker: str, image: str, source: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "triton_mme.scripts.local_mme.server",
        f"--source={source}",
        f"--image={image}",
        f"--docker={docker}",
        *args,
    ]


def server_env(extra: Mapping[str, str] = MappingProxyType({})) -> dict[str, str]:
    """This interpreter's sys.path, so the service finds itself and boto3 as the test does."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **extra}


class LocalMme:
    """The local endpoint as a subprocess, stopped with SIGTERM like a user's Ctrl-C."""

    def __init__(
        self,
        docker: str,
        image: str,
        work_dir: Path,
        source: str,
        *args: str,
        env: Mapping[str, str] = MappingProxyType({}),
    ):
        self.docker = docker
        self.ready_file = work_dir / "ready.json"
        self.log_file = work_dir / "local-mme.log"
        argv = server_argv(docker, image, source, "--port=0", f"--ready-file={self.ready_file}")
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(
                [*argv, *args], stdout=log, stderr=subprocess.STDOUT, env=server_env(env)
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local MME did not start:\n{self.output()}")
            time.sleep(0.2)
        ready = json.loads(self.ready_file.read_text())
        self.url: str = ready["url"]
        self.endpoint_name: str = ready["endpoint_name"]
        self.container_id: str = ready["container_id"]

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def invoke(self, target_model: str, values: list[float] = VALUES) -> tuple[int, Any]:
        """Sends INPUT0 = `values` to a fixture model; returns its OUTPUT0, or the error."""
        status, reply = self._invoke(target_model, request_body(values))
        return status, output_of(reply) if status == 200 else json.loads(reply)

    def invoke_json(self, target_model: str, body: bytes) -> tuple[int, Any]:
        """`invoke_endpoint` with a KServe v2 JSON body; returns the status and the JSON reply."""
        status, reply = self._invoke(target_model, body)
        return status, json.loads(reply)

    def _invoke(self, target_model: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"{self.url}/endpoints/{self.endpoint_name}/invocations",
            data=body,
            method="POST",
            headers={
                "X-Amzn-SageMaker-Target-Model": target_model,
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.loads(response.read())

    def metrics(self) -> dict[str, Any]:
        return dict(self._get("/metrics"))

    def loaded_models(self) -> list[str]:
        """The TargetModels the front service has loaded, least recently used first."""
        return list(self._get("/models")["models"])

    def triton_models(self) -> dict[str, Any]:
        """`GET /models` of Triton's own SageMaker API, on the container's published port."""
        port = docker("port", self.container_id, str(TRITON_SAGEMAKER_PORT)).stdout.splitlines()[0]
        url = f"http://127.0.0.1:{port.rsplit(':', 1)[1]}/models"
        with urllib.request.urlopen(url, timeout=30) as response:
            return dict(json.loads(response.read()))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def assert_container_removed(self) -> None:
        listed = docker("ps", "-aq", "--filter", f"id={self.container_id}").stdout.strip()
        assert listed == "", f"container {self.container_id} was left running"
