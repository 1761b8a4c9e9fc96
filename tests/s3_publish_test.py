"""The publish safety rules of `s3_publish.py`, against a real SeaweedFS server on loopback."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from seaweedfs import S3Server, start_seaweedfs
from triton_mme.scripts import s3_publish
from triton_mme.scripts.s3_publish import (
    MIB,
    Destination,
    Outcome,
    PublishFailed,
    PublishRefused,
    Tarball,
    Transfer,
    publish,
)

pytest_plugins = ["seaweedfs"]

BUCKET = "models-staging"
SMALL_PARTS = Transfer(multipart_threshold=5 * MIB, part_size=5 * MIB, max_attempts=2)


@pytest.fixture(scope="module")
def bucket(seaweedfs: S3Server) -> str:
    seaweedfs.create_bucket(BUCKET)
    return BUCKET


def model_tarball(weights: bytes) -> bytes:
    """A single-model tarball holding `weights`, gzip'd without compression (level 0) so that
    its size follows that of `weights`; the same bytes for the same `weights`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        config = b'backend: "python"\n'
        for name, data in (("model/config.pbtxt", config), ("model/1/model.bin", weights)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=0, mtime=0)


def write_tarball(tmp_path: Path, model: str, version: str, content: bytes) -> Tarball:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{model}_{version}.tar.gz"
    path.write_bytes(content)
    return Tarball(
        path=str(path),
        model_name=model,
        artifact_version=version,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
    )


def destination_for(
    server: S3Server, tarball: Tarball, bucket: str = BUCKET, prefix: str = "mme"
) -> Destination:
    return Destination(
        bucket=bucket,
        key=f"{prefix}/{os.path.basename(tarball.path)}",
        region=server.region,
        endpoint_url=server.endpoint_url,
    )


def object_bytes(server: S3Server, destination: Destination) -> bytes:
    response = server.client().get_object(Bucket=destination.bucket, Key=destination.key)
    return bytes(response["Body"].read())


def key_exists(server: S3Server, destination: Destination) -> bool:
    listing = server.client().list_objects_v2(Bucket=destination.bucket, Prefix=destination.key)
    return listing.get("KeyCount", 0) > 0


def test_first_publish_uploads_with_provenance(seaweedfs: S3Server, bucket: str, tmp_path):
    tarball = write_tarball(tmp_path, "fraud_tree", "1.0", model_tarball(b"tarball bytes" * 100))
    destination = destination_for(seaweedfs, tarball)

    outcome = publish(seaweedfs.client(), tarball, destination, git_commit="abc123")

    assert outcome == Outcome("uploaded", destination.uri, tarball.sha256, tarball.size)
    assert object_bytes(seaweedfs, destination) == Path(tarball.path).read_bytes()
    head = seaweedfs.client().head_object(Bucket=bucket, Key=destination.key)
    assert head["Metadata"] == {
        "sha256": tarball.sha256,
        "model-name": "fraud_tree",
        "artifact-version": "1.0",
        "git-commit": "abc123",
        "member-models": "[]",
    }


def test_republish_unchanged_uploads_nothing(seaweedfs: S3Server, bucket: str, tmp_path):
    tarball = write_tarball(tmp_path, "churn", "2", model_tarball(b"same bytes" * 50))
    destination = destination_for(seaweedfs, tarball)
    publish(seaweedfs.client(), tarball, destination)

    again = publish(seaweedfs.client(), tarball, destination)

    assert again == Outcome("already published", destination.uri, tarball.sha256, 0)


def test_changed_content_with_same_version_is_refused(seaweedfs: S3Server, bucket: str, tmp_path):
    old_model = model_tarball(b"old model")
    published = write_tarball(tmp_path / "a", "screen_detection", "1.2", old_model)
    destination = destination_for(seaweedfs, published)
    publish(seaweedfs.client(), published, destination)
    changed = write_tarball(tmp_path / "b", "screen_detection", "1.2", model_tarball(b"new model"))

    with pytest.raises(PublishRefused) as refused:
        publish(seaweedfs.client(), changed, destination)

    message = str(refused.value)
    assert "screen_detection" in message and "`1.2`" in message
    assert "model_version.txt" in message
    assert object_bytes(seaweedfs, destination) == old_model


def test_object_without_sha256_metadata_is_never_overwritten(
    seaweedfs: S3Server, bucket: str, tmp_path
):
    tarball = write_tarball(tmp_path, "legacy", "1", model_tarball(b"rebuilt"))
    # A prefix of its own: the object copied by hand is no tarball, so publishing a tarball with
    # member models beside it is refused (test_tarball_in_the_prefix_that_cannot_be_read...).
    destination = destination_for(seaweedfs, tarball, prefix="copied-by-hand")
    seaweedfs.client().put_object(Bucket=bucket, Key=destination.key, Body=b"copied by hand")

    with pytest.raises(PublishRefused, match="no sha256 metadata"):
        publish(seaweedfs.client(), tarball, destination)
    assert object_bytes(seaweedfs, destination) == b"copied by hand"


class RacingClient:
    """Holds the write (`put_object` / `complete_multipart_upload`) until both racers reach it,
    so both have seen "no object" before either writes; then the writes reach the server one
    after the other. That two writes arriving at the same instant are settled atomically is the
    store's guarantee (S3 gives it; SeaweedFS does not for multipart completions), not ours."""

    def __init__(
        self, client: Any, barrier: threading.Barrier, writing: threading.Lock, operation: str
    ) -> None:
        self._client = client
        self._barrier = barrier
        self._writing = writing
        self._operation = operation

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)
        if name != self._operation:
            return method

        def after_barrier(**kwargs: Any) -> Any:
            self._barrier.wait(timeout=60)
            with self._writing:
                return method(**kwargs)

        return after_barrier


def race(
    server: S3Server, tarballs: list[Tarball], operation: str, transfer: Transfer = Transfer()
) -> list[Outcome | Exception]:
    barrier = threading.Barrier(len(tarballs))
    writing = threading.Lock()
    results: list[Outcome | Exception] = [Exception("not run")] * len(tarballs)

    def run(index: int) -> None:
        client = RacingClient(server.client(), barrier, writing, operation)
        tarball = tarballs[index]
        try:
            results[index] = publish(
                client,
                tarball,
                destination_for(server, tarball),
                transfer=transfer,
                out=io.StringIO(),
            )
        except (PublishRefused, PublishFailed) as e:
            results[index] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tarballs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_publishes_of_same_bytes_upload_once(seaweedfs: S3Server, bucket, tmp_path):
    tarballs = [
        write_tarball(tmp_path / str(i), "race_same", "1", model_tarball(b"identical"))
        for i in range(2)
    ]

    results = race(seaweedfs, tarballs, "put_object")

    statuses = sorted(r.status for r in results if isinstance(r, Outcome))
    assert statuses == ["already published", "uploaded"], results


def test_concurrent_publishes_of_different_bytes_one_wins(seaweedfs: S3Server, bucket, tmp_path):
    tarballs = [
        write_tarball(tmp_path / str(i), "race_diff", "1", model_tarball(f"build {i}".encode()))
        for i in range(2)
    ]

    results = race(seaweedfs, tarballs, "put_object")

    winners = [i for i, r in enumerate(results) if isinstance(r, Outcome)]
    losers = [r for r in results if isinstance(r, PublishRefused)]
    assert len(winners) == 1 and len(losers) == 1, results
    winner = tarballs[winners[0]]
    assert (
        object_bytes(seaweedfs, destination_for(seaweedfs, winner))
        == Path(winner.path).read_bytes()
    )


def test_concurrent_multipart_publishes_one_wins(seaweedfs: S3Server, bucket, tmp_path):
    size = 6 * MIB
    tarballs = [
        write_tarball(tmp_path / str(i), "race_big", "1", model_tarball(bytes([i]) * size))
        for i in range(2)
    ]

    results = race(seaweedfs, tarballs, "complete_multipart_upload", SMALL_PARTS)

    winners = [i for i, r in enumerate(results) if isinstance(r, Outcome)]
    assert len(winners) == 1 and isinstance(results[1 - winners[0]], PublishRefused), results
    winner = tarballs[winners[0]]
    assert (
        object_bytes(seaweedfs, destination_for(seaweedfs, winner))
        == Path(winner.path).read_bytes()
    )
    uploads = seaweedfs.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert not [u for u in uploads if u["Key"].endswith("race_big_1.tar.gz")]


def test_large_tarball_goes_multipart_with_part_checksums(seaweedfs: S3Server, bucket, tmp_path):
    content = model_tarball(os.urandom(12 * MIB + 123))
    tarball = write_tarball(tmp_path, "big_cv_model", "3", content)
    destination = destination_for(seaweedfs, tarball)
    progress = io.StringIO()

    outcome = publish(seaweedfs.client(), tarball, destination, transfer=SMALL_PARTS, out=progress)

    assert outcome.status == "uploaded" and outcome.bytes_uploaded == len(content)
    assert "part 3/3" in progress.getvalue()
    assert object_bytes(seaweedfs, destination) == content
    head = seaweedfs.client().head_object(Bucket=bucket, Key=destination.key)
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"]["sha256"] == tarball.sha256
    again = publish(seaweedfs.client(), tarball, destination, transfer=SMALL_PARTS)
    assert again.status == "already published" and again.bytes_uploaded == 0


def test_wrong_credentials_fail_clearly_without_printing_secrets(
    seaweedfs: S3Server, bucket: str, tmp_path, monkeypatch, capsys
):
    tarball = write_tarball(tmp_path, "secretive", "1", model_tarball(b"x"))
    wrong_secret = "WRONG-secret-do-not-print-4242"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong_secret)

    exit_code = s3_publish.main(
        [
            tarball.path,
            *("--model-name", "secretive", "--artifact-version", "1"),
            *("--bucket", bucket, "--key", "mme/secretive_1.tar.gz"),
            *("--endpoint-url", seaweedfs.endpoint_url, "--region", seaweedfs.region),
        ]
    )

    output = capsys.readouterr()
    assert exit_code == s3_publish.EXIT_FAILED
    assert "access denied" in output.out
    assert wrong_secret not in output.out + output.err
    assert not key_exists(seaweedfs, destination_for(seaweedfs, tarball))


def test_missing_bucket_fails_clearly(seaweedfs: S3Server, bucket: str, tmp_path):
    tarball = write_tarball(tmp_path, "orphan", "1", model_tarball(b"x"))
    destination = destination_for(seaweedfs, tarball, bucket="no-such-bucket")

    with pytest.raises(PublishFailed, match="Bucket `no-such-bucket` does not exist"):
        publish(seaweedfs.client(), tarball, destination)


def test_cli_reports_one_line_per_outcome(
    seaweedfs: S3Server, bucket: str, tmp_path, monkeypatch, capsys
):
    for name, value in seaweedfs.credentials_env().items():
        monkeypatch.setenv(name, value)
    tarball = write_tarball(tmp_path, "cli_model", "7", model_tarball(b"cli bytes"))
    argv = [
        tarball.path,
        *("--model-name", "cli_model", "--artifact-version", "7", "--git-commit", "deadbeef"),
        *("--bucket", bucket, "--key", "mme/cli_model_7.tar.gz"),
        *("--endpoint-url", seaweedfs.endpoint_url),
    ]

    assert s3_publish.main(argv) == 0
    assert s3_publish.main(argv) == 0
    Path(tarball.path).write_bytes(b"rebuilt differently")
    assert s3_publish.main(argv) == s3_publish.EXIT_REFUSED

    lines = capsys.readouterr().out.splitlines()
    uri = f"s3://{bucket}/mme/cli_model_7.tar.gz"
    assert lines[0] == f"uploaded: {uri} sha256={tarball.sha256} bytes_uploaded={tarball.size}"
    assert lines[1] == f"already published: {uri} sha256={tarball.sha256} bytes_uploaded=0"
    assert lines[2].startswith(f"refused: Refused to overwrite {uri}")


class KillServerOnFirstPart(io.StringIO):
    def __init__(self, server: S3Server) -> None:
        super().__init__()
        self.server = server

    def write(self, text: str) -> int:
        if "part 1/" in text:
            self.server.kill()
        return super().write(text)


def test_server_killed_mid_upload_leaves_nothing_and_rerun_succeeds(tmp_path):
    server = start_seaweedfs(tmp_path / "server")
    try:
        server.create_bucket(BUCKET)
        content = model_tarball(os.urandom(11 * MIB))
        tarball = write_tarball(tmp_path, "interrupted", "1", content)
        destination = destination_for(server, tarball)

        with pytest.raises(PublishFailed, match="Cannot upload to"):
            publish(
                server.client(),
                tarball,
                destination,
                transfer=SMALL_PARTS,
                out=KillServerOnFirstPart(server),
            )

        server.start()
        assert not key_exists(server, destination)
        outcome = publish(server.client(), tarball, destination, transfer=SMALL_PARTS)
        assert outcome.status == "uploaded"
        assert object_bytes(server, destination) == content
    finally:
        server.kill()


def ensemble_tarball(ensemble: str, members: list[str], weights: int = 0) -> bytes:
    """An MME tarball: `ensemble` (platform "ensemble") and its member model directories."""
    files = {f"{ensemble}/config.pbtxt": b'platform: "ensemble"\n'}
    for member in members:
        files[f"{member}/config.pbtxt"] = b'backend: "python"\n'
        files[f"{member}/1/model.bin"] = os.urandom(weights)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buffer.getvalue(), compresslevel=1)


def test_members_are_read_from_concatenated_gzip_members() -> None:
    # `pants package` writes one gzip member (write_tarball.py), but wrote one per 1 MiB piece
    # before, and a prefix may still hold such objects, or ones concatenated by hand: tarfile's
    # own `r|gz` stops after the first member, so the last member model would go unseen.
    whole = gzip.decompress(ensemble_tarball("pipe", ["pipe_1.pre", "pipe_1.post"], weights=MIB))
    half = len(whole) // 2
    split = gzip.compress(whole[:half], compresslevel=1) + gzip.compress(whole[half:])
    assert s3_publish.member_models(io.BytesIO(split)) == ("pipe_1.post", "pipe_1.pre")


def test_member_names_colliding_with_a_published_tarball_are_refused(
    seaweedfs: S3Server, bucket: str, tmp_path
):
    first = write_tarball(tmp_path / "a", "pipe", "1.0", ensemble_tarball("pipe", ["pipe_1.0.pre"]))
    publish(seaweedfs.client(), first, destination_for(seaweedfs, first))
    head = seaweedfs.client().head_object(Bucket=bucket, Key=destination_for(seaweedfs, first).key)
    assert head["Metadata"]["member-models"] == '["pipe_1.0.pre"]'

    clash = write_tarball(tmp_path / "b", "other", "1.0", ensemble_tarball("o", ["pipe_1.0.pre"]))
    destination = destination_for(seaweedfs, clash)
    with pytest.raises(PublishRefused) as refused:
        publish(seaweedfs.client(), clash, destination)
    assert str(refused.value).startswith(
        f"Refused to publish {destination.uri}: its member model(s) `pipe_1.0.pre` are also in "
        f"s3://{bucket}/mme/pipe_1.0.tar.gz."
    )
    assert not key_exists(seaweedfs, destination)

    fine = write_tarball(tmp_path / "c", "pipe", "1.1", ensemble_tarball("pipe", ["pipe_1.1.pre"]))
    assert publish(seaweedfs.client(), fine, destination_for(seaweedfs, fine)).status == "uploaded"


def test_hand_made_tarball_without_metadata_is_read_whole(
    seaweedfs: S3Server, bucket: str, tmp_path
):
    # Uploaded by hand (no member-models metadata): its second member model comes after 5 MiB
    # of incompressible weights, so only reading the whole object finds the collision.
    hand_made = ensemble_tarball("zz_pipeline", ["legacy_pre", "legacy_post"], weights=5 * MIB)
    assert len(hand_made) > 5 * MIB
    seaweedfs.client().put_object(Bucket=bucket, Key="hand/legacy_1.tar.gz", Body=hand_made)
    tarball = write_tarball(tmp_path, "new", "1", ensemble_tarball("new", ["legacy_post"]))
    destination = Destination(
        bucket=bucket,
        key="hand/new_1.tar.gz",
        region=seaweedfs.region,
        endpoint_url=seaweedfs.endpoint_url,
    )
    with pytest.raises(PublishRefused, match="`legacy_post` are also in s3://.*/legacy_1.tar.gz"):
        publish(seaweedfs.client(), tarball, destination)


@pytest.mark.parametrize(
    "name, cut, problem",
    [
        ("truncated", True, "it ends inside its gzip data: it is cut short"),
        ("not_gzip", False, "its gzip data is not valid (Not a gzipped file"),
    ],
    ids=["truncated", "not_gzip"],
)
def test_tarball_in_the_prefix_that_cannot_be_read_is_refused(
    seaweedfs: S3Server, bucket: str, tmp_path, name: str, cut: bool, problem: str
):
    # Uploaded by hand (no member-models metadata), so publish must read it: cut short, its
    # member models after the cut are unknown; not a .tar.gz, none are known.
    whole = ensemble_tarball("old_pipeline", ["old_pre", "old_post"], weights=MIB)
    broken = whole[: len(whole) // 2] if cut else b"<html>an error page saved as a tarball</html>"
    seaweedfs.client().put_object(Bucket=bucket, Key=f"{name}/old_1.tar.gz", Body=broken)
    tarball = write_tarball(tmp_path, "new", "1", ensemble_tarball("new", ["old_post"]))
    destination = Destination(
        bucket=bucket,
        key=f"{name}/new_1.tar.gz",
        region=seaweedfs.region,
        endpoint_url=seaweedfs.endpoint_url,
    )

    with pytest.raises(PublishRefused) as refused:
        publish(seaweedfs.client(), tarball, destination)

    message = str(refused.value)
    assert message.startswith(
        f"Refused to publish {destination.uri}: s3://{bucket}/{name}/old_1.tar.gz, a tarball of "
        f"the same prefix, cannot be read: {problem}"
    )
    assert "delete it or upload it again whole" in message
    assert not key_exists(seaweedfs, destination)


def test_tarball_that_cannot_be_read_is_not_published(seaweedfs: S3Server, bucket: str, tmp_path):
    whole = ensemble_tarball("pipe", ["pipe_9.pre", "pipe_9.post"], weights=MIB)
    tarball = write_tarball(tmp_path, "pipe", "9", whole[: len(whole) // 2])
    destination = destination_for(seaweedfs, tarball)

    with pytest.raises(PublishRefused) as refused:
        publish(seaweedfs.client(), tarball, destination)

    assert str(refused.value).startswith(
        f"Refused to publish {destination.uri}: {tarball.path} cannot be read as a tarball: it "
        "ends inside its gzip data: it is cut short"
    )
    assert not key_exists(seaweedfs, destination)
