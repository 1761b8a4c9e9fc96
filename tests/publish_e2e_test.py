"""`./pants publish` end to end: a copy of this repo, fixture models, SeaweedFS on loopback.

Finds the checkout to copy through TRITON_MME_BUILDROOT, which ./pants sets (Pants runs tests in
a sandbox that holds only their own files).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

from checkout import copy_checkout, run_in, run_pants
from seaweedfs import S3Server

pytest_plugins = ["seaweedfs"]

BUCKET = "models-staging"
MIB = 1024 * 1024

PYTHON_CONFIG = textwrap.dedent(
    """\
    backend: "python"
    max_batch_size: 0
    input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
    """
)


def write_models(repo: Path) -> None:
    files = {
        "models/e2e_add_one/BUILD": "triton_model()\n",
        "models/e2e_add_one/config.pbtxt": PYTHON_CONFIG,
        "models/e2e_add_one/1/model.py": "# a python-backend model\n",
        "models/e2e_add_one/model_version.txt": "1.0\n",
        "models/e2e_big/BUILD": "triton_model()\n",
        "models/e2e_big/config.pbtxt": PYTHON_CONFIG,
        "models/e2e_big/1/model.py": "# a python-backend model with its weights beside it\n",
        "models/e2e_big/model_version.txt": "3\n",
        "models/e2e_experiment/BUILD": "triton_model(skip_publish=True)\n",
        "models/e2e_experiment/config.pbtxt": PYTHON_CONFIG,
        "models/e2e_experiment/1/model.py": "# not for the endpoints\n",
        "models/e2e_experiment/model_version.txt": "0.1\n",
    }
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)
    # Random bytes do not compress: the tarball is large enough for a multipart upload.
    # (Not an ONNX file: random bytes are no graph, and validation reads ONNX graphs.)
    (repo / "models/e2e_big/1/weights.bin").write_bytes(os.urandom(12 * MIB))


def configure_destinations(repo: Path, server: S3Server) -> None:
    with open(repo / "pants.toml", "a") as config:
        config.write(
            textwrap.dedent(
                f"""
                [triton-publish]
                multipart_threshold_mib = 5
                part_size_mib = 5

                [triton-publish.destinations.staging]
                bucket = "{BUCKET}"
                prefix = "mme"
                region = "{server.region}"
                endpoint_url = "{server.endpoint_url}"
                """
            )
        )


def pants(repo: Path, server: S3Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PANTS_TRITON_PUBLISH_DESTINATION": "staging", **server.credentials_env()}
    return run_pants(repo, *args, env=env, separate_stderr=True)


def git_commit_all(repo: Path) -> str:
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "models"]):
        result = run_in(repo, "git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *argv)
        assert result.returncode == 0, result.stdout
    return run_in(repo, "git", "rev-parse", "HEAD", separate_stderr=True).stdout.strip()


def test_publish_uploads_once_and_never_overwrites(
    checkout: Path, seaweedfs: S3Server, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    copy_checkout(checkout, repo, leave_out=("models",), pants_bootstrap=True)
    write_models(repo)
    configure_destinations(repo, seaweedfs)
    commit = git_commit_all(repo)
    seaweedfs.create_bucket(BUCKET)

    first = pants(repo, seaweedfs, "publish", "--output=first.json", "models::")
    assert first.returncode == 0, first.stdout + first.stderr
    uploaded = [line for line in first.stdout.splitlines() if line.startswith("uploaded: ")]
    assert len(uploaded) == 2, first.stdout + "\n---\n" + first.stderr
    assert "part 3/3" in first.stdout  # e2e_big went multipart
    assert "e2e_experiment_0.1.tar.gz skipped (by `skip_publish`" in first.stderr
    report = {
        entry["s3_uri"]: entry
        for entry in json.loads((repo / "first.json").read_text())
        if "s3_uri" in entry
    }
    assert set(report) == {
        f"s3://{BUCKET}/mme/e2e_add_one_1.0.tar.gz",
        f"s3://{BUCKET}/mme/e2e_big_3.tar.gz",
    }

    packaged = pants(repo, seaweedfs, "package", "models::")
    assert packaged.returncode == 0, packaged.stderr
    client = seaweedfs.client()
    for uri, entry in report.items():
        key = uri.split("/", 3)[3]
        obj = client.get_object(Bucket=BUCKET, Key=key)
        (tarball,) = (repo / "dist").glob(f"**/{Path(key).name}")
        assert obj["Body"].read() == tarball.read_bytes()
        assert obj["Metadata"]["sha256"] == entry["sha256"]
        assert obj["Metadata"]["git-commit"] == commit == entry["git_commit"]

    second = pants(repo, seaweedfs, "publish", "models::")
    assert second.returncode == 0, second.stdout + second.stderr
    lines = [line for line in second.stdout.splitlines() if "bytes_uploaded=" in line]
    assert len(lines) == 2 and all(
        line.startswith("already published: ") and line.endswith("bytes_uploaded=0")
        for line in lines
    ), second.stdout

    # A changed model under the same version is refused, and the published object stays.
    (repo / "models/e2e_add_one/1/model.py").write_text("# changed without a new version\n")
    third = pants(repo, seaweedfs, "publish", "models/e2e_add_one::")
    assert third.returncode != 0
    assert "refused: Refused to overwrite" in third.stdout and "model_version.txt" in third.stdout
    assert seaweedfs.credentials_env()["AWS_SECRET_ACCESS_KEY"] not in third.stdout + third.stderr
