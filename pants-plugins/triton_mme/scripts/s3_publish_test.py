"""How `s3_publish.py` reads member models, with an in-memory stand-in for S3.

The publish rules against a real S3 server are in tests/s3_publish_test.py.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, IncompleteReadError
from triton_mme.scripts.s3_publish import (
    Destination,
    PublishFailed,
    PublishRefused,
    Tarball,
    UnreadableTarball,
    check_member_collisions,
    member_models,
    publish,
    sha256_of,
)

BUCKET = "models"
DESTINATION = Destination(bucket=BUCKET, key="mme/new_1.tar.gz")


def tar_bytes(ensemble: str, members: list[str], root: str = "") -> bytes:
    """An uncompressed MME tar archive: `ensemble` and its member model directories, their
    paths starting with `root` (`./` for an archive made with `tar -C <dir> .`)."""
    files: dict[str, bytes | None] = {root: None} if root else {}
    files[f"{root}{ensemble}/config.pbtxt"] = b'platform: "ensemble"\n'
    for member in members:
        files[f"{root}{member}/config.pbtxt"] = b'backend: "python"\n'
        files[f"{root}{member}/1/model.bin"] = b"weights" * 100
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            if content is None:
                directory = tarfile.TarInfo(name.rstrip("/") or ".")
                directory.type = tarfile.DIRTYPE
                tar.addfile(directory)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


PIPELINE_TAR = tar_bytes("pipe", ["pipe_1.pre", "pipe_1.post"])
PIPELINE = gzip.compress(PIPELINE_TAR, mtime=0)


def test_a_complete_tarball_gives_its_member_models() -> None:
    assert member_models(io.BytesIO(PIPELINE)) == ("pipe_1.post", "pipe_1.pre")
    single = gzip.compress(tar_bytes("alone", []), mtime=0)
    assert member_models(io.BytesIO(single)) == ()
    # `tar -czf m.tar.gz -C <dir> .` also stores the root, `.`: no model directory.
    dotted = gzip.compress(tar_bytes("pipe", ["pipe_1.pre"], root="./"), mtime=0)
    assert member_models(io.BytesIO(dotted)) == ("pipe_1.pre",)
    dotted_single = gzip.compress(tar_bytes("alone", [], root="./"), mtime=0)
    assert member_models(io.BytesIO(dotted_single)) == ()


def offset_after(tar: bytes, name: str) -> int:
    """Where the header after member `name` starts in the tar archive `tar`."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        member = archive.getmember(name)
        return member.offset_data + -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def with_bad_crc(data: bytes) -> bytes:
    crc, size = struct.unpack("<II", data[-8:])
    return data[:-8] + struct.pack("<II", crc ^ 1, size)


CUT_AT_A_HEADER = offset_after(PIPELINE_TAR, "pipe_1.post/config.pbtxt")

UNREADABLE = {
    "no_gzip": (b"tarball bytes" * 100, "its gzip data is not valid (Not a gzipped file"),
    "empty": (b"", "its tar archive is not valid (empty file)"),
    "cut_short": (
        PIPELINE[: len(PIPELINE) // 2],
        "it ends inside its gzip data: it is cut short (Compressed file ended",
    ),
    "bad_crc": (with_bad_crc(PIPELINE), "its gzip data is not valid (CRC check failed"),
    "trailing_data": (PIPELINE + b"more bytes", "its gzip data is not valid (Not a gzipped file"),
    "gzip_of_text": (
        gzip.compress(b"no tar here\n" * 100, mtime=0),
        "its tar archive is not valid (invalid header)",
    ),
    "tar_cut_inside_a_file": (
        gzip.compress(PIPELINE_TAR[: CUT_AT_A_HEADER - 100], mtime=0),
        "its tar archive is not valid (unexpected end of data)",
    ),
    "tar_cut_at_a_header": (
        gzip.compress(PIPELINE_TAR[:CUT_AT_A_HEADER], mtime=0),
        f"its tar archive has no end-of-archive block at byte {CUT_AT_A_HEADER}, after its last "
        "readable member: it is cut short, or holds data that is no tar header",
    ),
    "tar_then_garbage": (
        gzip.compress(PIPELINE_TAR[:CUT_AT_A_HEADER] + b"\x01" * 4096, mtime=0),
        f"its tar archive has no end-of-archive block at byte {CUT_AT_A_HEADER}",
    ),
}


@pytest.mark.parametrize("content, problem", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_what_is_no_complete_tarball_is_unreadable_not_memberless(
    content: bytes, problem: str
) -> None:
    with pytest.raises(UnreadableTarball) as unreadable:
        member_models(io.BytesIO(content))
    assert str(unreadable.value).startswith(problem)


class FailingBody(io.BytesIO):
    """An object body whose connection drops after `after` bytes."""

    def __init__(self, content: bytes, after: int) -> None:
        super().__init__(content)
        self.after = after

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.after:
            raise IncompleteReadError(actual_bytes=self.after, expected_bytes=len(self.getvalue()))
        limit = self.after - self.tell()
        return super().read(limit if size is None or size < 0 else min(size, limit))


class FakeS3:
    """The calls `publish` makes, on objects held in memory (key -> (bytes, metadata))."""

    def __init__(self, objects: dict[str, tuple[bytes, dict[str, str]]]) -> None:
        self.objects = objects
        self.fail_reading_after: int | None = None
        self.written: list[str] = []

    def head_bucket(self, Bucket: str) -> dict[str, Any]:
        return {}

    def head_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        if Key not in self.objects:
            error = {"Error": {"Code": "404"}, "ResponseMetadata": {"HTTPStatusCode": 404}}
            raise ClientError(error, "HeadObject")
        content, metadata = self.objects[Key]
        return {"Metadata": metadata, "ContentLength": len(content)}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        content = self.objects[Key][0]
        if self.fail_reading_after is not None:
            return {"Body": FailingBody(content, self.fail_reading_after)}
        return {"Body": io.BytesIO(content)}

    def get_paginator(self, operation: str) -> FakeS3:
        assert operation == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str, Delimiter: str) -> list[dict[str, Any]]:
        keys = [k for k in sorted(self.objects) if k.startswith(Prefix)]
        return [{"Contents": [{"Key": k} for k in keys if Delimiter not in k[len(Prefix) :]]}]

    def put_object(self, Key: str, **_: Any) -> None:
        self.written.append(Key)

    def create_multipart_upload(self, Key: str, **_: Any) -> None:
        self.written.append(Key)


@pytest.mark.parametrize("content, problem", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_object_in_the_prefix_is_refused_naming_it(
    content: bytes, problem: str
) -> None:
    s3 = FakeS3({"mme/legacy_1.tar.gz": (content, {})})
    with pytest.raises(PublishRefused) as refused:
        check_member_collisions(s3, Tarball("t.tar.gz", "new", "1", "0", 0), DESTINATION, ["a"])
    message = str(refused.value)
    assert message.startswith(
        f"Refused to publish s3://{BUCKET}/mme/new_1.tar.gz: s3://{BUCKET}/mme/legacy_1.tar.gz, "
        f"a tarball of the same prefix, cannot be read: {problem}"
    )
    assert "If that object is a broken upload, delete it or upload it again whole" in message


def test_readable_objects_in_the_prefix_are_compared() -> None:
    s3 = FakeS3(
        {
            "mme/listed_1.tar.gz": (b"never read", {"member-models": '["listed_1.pre"]'}),
            "mme/pipe_1.tar.gz": (PIPELINE, {}),
            "mme/notes.txt": (b"not a tarball: not read", {}),
            "mme/old/other_1.tar.gz": (b"another prefix: not read", {}),
        }
    )
    tarball = Tarball("t.tar.gz", "new", "1", "0", 0)
    compared = check_member_collisions(s3, tarball, DESTINATION, ["new_1.pre"])
    assert compared == ["mme/listed_1.tar.gz", "mme/pipe_1.tar.gz"]
    assert check_member_collisions(s3, tarball, DESTINATION, []) == []
    with pytest.raises(PublishRefused, match=r"`listed_1.pre` are also in s3://models/mme/listed"):
        check_member_collisions(s3, tarball, DESTINATION, ["listed_1.pre"])
    with pytest.raises(PublishRefused, match=r"`pipe_1.post` are also in s3://models/mme/pipe_1"):
        check_member_collisions(s3, tarball, DESTINATION, ["pipe_1.post"])


def test_metadata_that_lists_no_names_is_not_trusted() -> None:
    s3 = FakeS3({"mme/legacy_1.tar.gz": (b"not gzip", {"member-models": '"legacy_1.pre"'})})
    with pytest.raises(PublishRefused, match="legacy_1.tar.gz, a tarball of the same prefix"):
        check_member_collisions(s3, Tarball("t", "new", "1", "0", 0), DESTINATION, ["a"])


def test_a_download_that_breaks_off_fails_naming_the_object() -> None:
    s3 = FakeS3({"mme/legacy_1.tar.gz": (PIPELINE, {})})
    s3.fail_reading_after = 100
    with pytest.raises(PublishFailed) as failed:
        check_member_collisions(s3, Tarball("t", "new", "1", "0", 0), DESTINATION, ["a"])
    assert str(failed.value) == (
        f"Cannot publish s3://{BUCKET}/mme/new_1.tar.gz: reading s3://{BUCKET}/mme/legacy_1.tar.gz"
        " of the same prefix, to compare its member models with this tarball's, failed "
        "(IncompleteReadError: 100 read, but total bytes expected is "
        f"{len(PIPELINE)}.). Nothing was uploaded; publish again."
    )


def local_tarball(tmp_path: Path, content: bytes) -> Tarball:
    path = tmp_path / "new_1.tar.gz"
    path.write_bytes(content)
    return Tarball(str(path), "new", "1", sha256_of(str(path)), len(content))


@pytest.mark.parametrize("content, problem", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_tarball_to_publish_is_refused(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    s3 = FakeS3({})
    tarball = local_tarball(tmp_path, content)
    with pytest.raises(PublishRefused) as refused:
        publish(s3, tarball, DESTINATION)
    assert str(refused.value).startswith(
        f"Refused to publish s3://{BUCKET}/mme/new_1.tar.gz: {tarball.path} cannot be read as a "
        f"tarball: {problem}"
    )
    assert "Package the model again (`pants package`)" in str(refused.value)
    assert s3.written == []
