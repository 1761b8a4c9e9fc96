"""Upload one MME tarball to S3 without ever replacing a published version.

Runs inside the boto3 PEX that `pants publish` builds (stdlib + boto3 only). The rules:

- the key already holds the same bytes (sha256 metadata) -> nothing is uploaded, "already
  published" (so re-running CI is harmless);
- the key holds other bytes -> refused: SageMaker instances may still cache the old object, so a
  change needs a new artifact version;
- the write is conditional (`If-None-Match: *`), so of two jobs racing on one key exactly one
  wins; the loser then reports "already published" (same bytes) or "refused";
- S3 checks the SHA-256 of the body (of every part for multipart uploads); a multipart upload
  that fails is aborted, and S3 never shows an object before its upload completes;
- transient errors (throttling, 5xx, dropped connections) are retried by botocore's `standard`
  retry mode with exponential backoff;
- a tarball whose member models (the model directories besides the one SageMaker maps to the
  TargetModel) share a name with those of a tarball already in the destination prefix is
  refused, naming both objects: one MME instance may load any two objects of its prefix, and
  Triton has one model namespace. Each published object lists its member names in its
  `member-models` metadata; objects without it (hand-made, or older) are read whole as a
  stream, member names only, never written to disk: a member directory may come after
  gigabytes of weights;
- a tarball whose member models cannot be known is refused, never taken to have none: the one
  to publish, or an object of the destination prefix that must be read (not a .tar.gz,
  truncated, corrupt). An object that cannot be downloaded to the end fails the publish.

Credentials come from the standard AWS chain (environment, profiles, web identity); this program
never prints them.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import math
import os
import re
import sys
import tarfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, Iterable, TextIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from triton_mme.scripts.config_platform import declares_ensemble

MIB = 1024 * 1024
HASH_BLOCK = 4 * MIB
# S3 limits: every part but the last is at least 5 MiB; at most 10,000 parts.
MIN_PART_SIZE = 5 * MIB
MAX_PARTS = 10_000
CONTENT_TYPE = "application/x-gzip"

EXIT_REFUSED = 3
EXIT_FAILED = 4

MEMBERS_METADATA = "member-models"


@dataclass(frozen=True)
class Tarball:
    path: str
    model_name: str
    artifact_version: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Destination:
    bucket: str
    key: str
    region: str | None = None
    endpoint_url: str | None = None
    sse: str | None = None
    kms_key_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def encryption_args(self) -> dict[str, str]:
        args = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args


@dataclass(frozen=True)
class Transfer:
    """How bytes move: sizes in bytes, attempts per request (botocore's retry budget)."""

    multipart_threshold: int = 64 * MIB
    part_size: int = 64 * MIB
    max_attempts: int = 5


@dataclass(frozen=True)
class Outcome:
    status: str  # "uploaded" or "already published"
    uri: str
    sha256: str
    bytes_uploaded: int

    def line(self) -> str:
        return (
            f"{self.status}: {self.uri} sha256={self.sha256} bytes_uploaded={self.bytes_uploaded}"
        )


class PublishRefused(Exception):
    """Publishing would break a rule: replace a published version, give two tarballs of one
    prefix the same member model, or publish beside a tarball whose member models are unknown."""


class PublishFailed(Exception):
    """S3 could not be used (credentials, bucket, network) or did not accept the bytes."""


class UnreadableTarball(Exception):
    """Not a complete .tar.gz, so its member models are unknown; the message says what is wrong."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def hex_to_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def make_client(destination: Destination, transfer: Transfer) -> Any:
    return boto3.session.Session().client(
        "s3",
        region_name=destination.region,
        endpoint_url=destination.endpoint_url,
        config=Config(
            retries={"mode": "standard", "max_attempts": transfer.max_attempts},
            connect_timeout=10,
            read_timeout=120,
        ),
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def http_status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def explain(error: Exception, destination: Destination, action: str) -> PublishFailed:
    """A PublishFailed whose message says what to check. Never includes credentials."""
    where = destination.uri + (
        f" at {destination.endpoint_url}" if destination.endpoint_url else ""
    )
    if isinstance(error, NoCredentialsError):
        return PublishFailed(
            f"{action} {where}: no AWS credentials found. Set AWS_PROFILE, AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE."
        )
    if isinstance(error, ClientError):
        code, status = error_code(error), http_status(error)
        if status == 403 or code in (
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
        ):
            return PublishFailed(
                f"{action} {where}: access denied ({code or status}). Check that the AWS "
                "credentials of this run are valid and allowed to read and write that bucket."
            )
        return PublishFailed(f"{action} {where}: S3 answered {code or status}: {error}")
    return PublishFailed(f"{action} {where}: {type(error).__name__}: {error}")


def published_sha256(client: Any, destination: Destination) -> str | None:
    """The sha256 metadata of the object at the key ("" if it has none), None if no object."""
    try:
        head = client.head_object(Bucket=destination.bucket, Key=destination.key)
    except ClientError as e:
        if http_status(e) == 404 or error_code(e) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise explain(e, destination, "Cannot read") from None
    except BotoCoreError as e:
        raise explain(e, destination, "Cannot read") from None
    return str(head.get("Metadata", {}).get("sha256", ""))


def check_bucket(client: Any, destination: Destination) -> None:
    try:
        client.head_bucket(Bucket=destination.bucket)
    except ClientError as e:
        if http_status(e) == 404 or error_code(e) in ("404", "NoSuchBucket", "NotFound"):
            raise PublishFailed(
                f"Bucket `{destination.bucket}` does not exist"
                + (f" at {destination.endpoint_url}" if destination.endpoint_url else "")
                + ". Check the destination's `bucket` in [triton-publish].destinations; "
                "publish never creates buckets."
            ) from None
        raise explain(e, destination, "Cannot access bucket of") from None
    except BotoCoreError as e:
        raise explain(e, destination, "Cannot reach") from None


def refusal(tarball: Tarball, destination: Destination, existing_sha256: str) -> PublishRefused:
    existing = f"sha256 {existing_sha256}" if existing_sha256 else "no sha256 metadata"
    return PublishRefused(
        f"Refused to overwrite {destination.uri}: model `{tarball.model_name}` version "
        f"`{tarball.artifact_version}` is already published with different content ({existing}; "
        f"this build is sha256 {tarball.sha256}). SageMaker may still serve the published "
        "object: bump the model's version (its model_version.txt or `artifact_version`) and "
        "publish again."
    )


def resolve_existing(tarball: Tarball, destination: Destination, existing_sha256: str) -> Outcome:
    if existing_sha256 == tarball.sha256:
        return Outcome("already published", destination.uri, tarball.sha256, 0)
    raise refusal(tarball, destination, existing_sha256)


def member_models(stream: IO[bytes]) -> tuple[str, ...]:
    """The member model directories of a tarball read as a stream: every top-level directory but
    the ensemble's (or, for a single model, none).

    Raises UnreadableTarball unless the stream is one complete .tar.gz: gzip data whose CRCs and
    lengths check out, holding a tar archive read up to its end-of-archive block. What could be
    read of anything else says nothing about what it holds.
    """
    directories: set[str] = set()
    ensembles: set[str] = set()
    end_of_archive = b"\0" * tarfile.BLOCKSIZE
    last_header = [b""]

    class LastHeaderTarInfo(tarfile.TarInfo):
        # tarfile ends its iteration quietly at any header block it cannot read (the end of a
        # tar cut short, or data that is no header); only a block of zeros is the archive's end.
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> LastHeaderTarInfo:
            last_header[0] = bytes(buf)
            return super().frombuf(buf, encoding, errors)

    try:
        # gzip decompresses and tarfile reads the plain stream: gzip reads every member of a
        # multi-member file, tarfile's own `r|gz` only the first. `package` now writes one gzip
        # member (write_tarball.py), but earlier versions wrote one per 1 MiB piece, and some of
        # those published objects without `member-models` metadata, so they are read here; so
        # are objects concatenated by hand. For a single member, reading through gzip is the same.
        with gzip.GzipFile(fileobj=stream, mode="rb") as plain:
            with tarfile.open(
                fileobj=cast(IO[bytes], plain),
                mode="r|",
                bufsize=MIB,
                tarinfo=LastHeaderTarInfo,
            ) as tar:
                for member in tar:
                    top, _, rest = re.sub(r"^(\./)+", "", member.name).partition("/")
                    # `.` is the root of `tar -C model_dir .`, no model directory.
                    if not top or top == "." or not (rest or member.isdir()):
                        continue
                    directories.add(top)
                    if rest == "config.pbtxt" and member.isfile():
                        config = tar.extractfile(member)
                        text = config.read().decode("utf-8", "replace") if config else ""
                        if declares_ensemble(text):
                            ensembles.add(top)
                if last_header[0] != end_of_archive:
                    raise UnreadableTarball(
                        f"its tar archive has no end-of-archive block at byte {tar.offset}, "
                        "after its last readable member: it is cut short, or holds data that is "
                        "no tar header"
                    )
            # gzip checks the CRC and length of what it decompressed at the end of the stream.
            while plain.read(MIB):
                pass
    except EOFError as e:
        raise UnreadableTarball(f"it ends inside its gzip data: it is cut short ({e})") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise UnreadableTarball(f"its gzip data is not valid ({e})") from None
    except tarfile.TarError as e:
        raise UnreadableTarball(f"its tar archive is not valid ({e})") from None
    if len(directories) <= 1:
        return ()
    return tuple(sorted(directories - ensembles))


def _listed_members(metadata: dict[str, str]) -> tuple[str, ...] | None:
    """The `member-models` metadata, when it is a JSON list of names."""
    listed = metadata.get(MEMBERS_METADATA)
    try:
        names = json.loads(listed) if listed is not None else None
    except ValueError:
        return None
    if isinstance(names, list) and all(isinstance(name, str) for name in names):
        return tuple(names)
    return None


def published_members(client: Any, destination: Destination, key: str) -> tuple[str, ...]:
    """The member models of the published object `key` of `destination`'s bucket, from its
    metadata or else its content.

    Raises UnreadableTarball when its content is no complete .tar.gz, PublishFailed when it
    cannot be downloaded to the end.
    """
    head = client.head_object(Bucket=destination.bucket, Key=key)
    listed = _listed_members(head.get("Metadata", {}))
    if listed is not None:
        return listed
    body = client.get_object(Bucket=destination.bucket, Key=key)["Body"]
    try:
        return member_models(body)
    except (BotoCoreError, OSError) as e:
        # Connection errors: those the gzip and tar data cause are UnreadableTarball.
        raise PublishFailed(
            f"Cannot publish {destination.uri}: reading s3://{destination.bucket}/{key} of the "
            f"same prefix, to compare its member models with this tarball's, failed "
            f"({type(e).__name__}: {e}). Nothing was uploaded; publish again."
        ) from None
    finally:
        body.close()


def check_member_collisions(
    client: Any, tarball: Tarball, destination: Destination, members: Iterable[str]
) -> list[str]:
    """Refuse `tarball` when a tarball in the destination prefix holds a member of its names.

    Returns the keys of the tarballs it compared with (none when `tarball` has no members).
    """
    own = set(members)
    if not own:
        return []
    compared = []
    prefix = destination.key.rsplit("/", 1)[0] + "/" if "/" in destination.key else ""
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=destination.bucket, Prefix=prefix, Delimiter="/"
    )
    try:
        for page in pages:
            for listed in page.get("Contents", []):
                key = listed["Key"]
                if key == destination.key or not key.endswith(".tar.gz"):
                    continue
                try:
                    theirs = published_members(client, destination, key)
                except UnreadableTarball as e:
                    raise PublishRefused(
                        f"Refused to publish {destination.uri}: s3://{destination.bucket}/{key}, "
                        f"a tarball of the same prefix, cannot be read: {e}. Its member models "
                        "are unknown, so nothing shows that this tarball's differ from them (one "
                        "SageMaker instance may load both, and Triton keeps one model "
                        "namespace). If that object is a broken upload, delete it or upload it "
                        "again whole; if it is no model tarball, move it out of the prefix "
                        "(SageMaker could not load it either). Then publish again."
                    ) from None
                shared = sorted(own & set(theirs))
                if shared:
                    raise PublishRefused(
                        f"Refused to publish {destination.uri}: its member model(s) "
                        f"{', '.join(f'`{n}`' for n in shared)} are also in "
                        f"s3://{destination.bucket}/{key}. One SageMaker instance may load both, "
                        "and Triton keeps one model namespace, so the second would fail to load. "
                        "Rebuild it with `pants package` (an ensemble's members are named after "
                        "their artifact), or rename the member model."
                    )
                compared.append(key)
    except ClientError as e:
        raise explain(e, destination, "Cannot list the prefix of") from None
    except BotoCoreError as e:
        raise explain(e, destination, "Cannot list the prefix of") from None
    return compared


def object_metadata(
    tarball: Tarball, git_commit: str | None, members: Iterable[str] = ()
) -> dict[str, str]:
    metadata = {
        "sha256": tarball.sha256,
        "model-name": tarball.model_name,
        "artifact-version": tarball.artifact_version,
        MEMBERS_METADATA: json.dumps(sorted(members), separators=(",", ":")),
    }
    if git_commit:
        metadata["git-commit"] = git_commit
    return metadata


def is_precondition_failed(error: ClientError) -> bool:
    return http_status(error) == 412 or error_code(error) == "PreconditionFailed"


def put_single(client: Any, tarball: Tarball, destination: Destination, metadata: dict) -> None:
    with open(tarball.path, "rb") as body:
        client.put_object(
            Bucket=destination.bucket,
            Key=destination.key,
            Body=body,
            ContentLength=tarball.size,
            ContentType=CONTENT_TYPE,
            Metadata=metadata,
            IfNoneMatch="*",
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=hex_to_b64(tarball.sha256),
            **destination.encryption_args(),
        )


def part_size_for(size: int, transfer: Transfer) -> int:
    return max(transfer.part_size, MIN_PART_SIZE, math.ceil(size / MAX_PARTS))


def put_multipart(
    client: Any,
    tarball: Tarball,
    destination: Destination,
    metadata: dict,
    transfer: Transfer,
    out: TextIO,
) -> None:
    part_size = part_size_for(tarball.size, transfer)
    total = math.ceil(tarball.size / part_size)
    upload_id = client.create_multipart_upload(
        Bucket=destination.bucket,
        Key=destination.key,
        ContentType=CONTENT_TYPE,
        Metadata=metadata,
        ChecksumAlgorithm="SHA256",
        **destination.encryption_args(),
    )["UploadId"]
    try:
        parts = []
        with open(tarball.path, "rb") as f:
            for number in range(1, total + 1):
                chunk = f.read(part_size)
                checksum = b64_sha256(chunk)
                response = client.upload_part(
                    Bucket=destination.bucket,
                    Key=destination.key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
                parts.append(
                    {"ETag": response["ETag"], "PartNumber": number, "ChecksumSHA256": checksum}
                )
                out.write(f"  {destination.uri}: part {number}/{total} ({len(chunk)} bytes)\n")
                out.flush()
        client.complete_multipart_upload(
            Bucket=destination.bucket,
            Key=destination.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
    except BaseException:
        abort_multipart(client, destination, upload_id, out)
        raise


def abort_multipart(client: Any, destination: Destination, upload_id: str, out: TextIO) -> None:
    """Drop the parts of an unfinished upload. S3 never shows them as an object either way."""
    try:
        client.abort_multipart_upload(
            Bucket=destination.bucket, Key=destination.key, UploadId=upload_id
        )
    except (BotoCoreError, ClientError) as e:
        out.write(
            f"  could not abort multipart upload {upload_id} of {destination.uri} "
            f"({type(e).__name__}); its parts are invisible and expire with the bucket's "
            "AbortIncompleteMultipartUpload lifecycle rule.\n"
        )


def verify(client: Any, tarball: Tarball, destination: Destination, multipart: bool) -> None:
    try:
        head = client.head_object(
            Bucket=destination.bucket, Key=destination.key, ChecksumMode="ENABLED"
        )
    except (BotoCoreError, ClientError) as e:
        raise explain(e, destination, "Cannot verify") from None
    published = head.get("Metadata", {}).get("sha256")
    if published and published != tarball.sha256:
        # A concurrent publish of this version completed after ours (stores whose conditional
        # multipart completion is not atomic let both finish): its object stands, ours lost.
        raise refusal(tarball, destination, published)
    problems = []
    if published != tarball.sha256:
        problems.append("sha256 metadata")
    if head.get("ContentLength") != tarball.size:
        problems.append(f"size {head.get('ContentLength')} != {tarball.size}")
    if not multipart and head.get("ChecksumSHA256") not in (None, hex_to_b64(tarball.sha256)):
        problems.append("SHA-256 checksum")
    if problems:
        raise PublishFailed(
            f"{destination.uri} does not match the tarball after upload ({', '.join(problems)})."
        )


def publish(
    client: Any,
    tarball: Tarball,
    destination: Destination,
    *,
    git_commit: str | None = None,
    transfer: Transfer = Transfer(),
    out: TextIO = sys.stdout,
) -> Outcome:
    """Publish `tarball` at `destination` or explain why not (PublishRefused, PublishFailed)."""
    check_bucket(client, destination)
    existing = published_sha256(client, destination)
    if existing is not None:
        return resolve_existing(tarball, destination, existing)

    try:
        with open(tarball.path, "rb") as stream:
            members = member_models(stream)
    except UnreadableTarball as e:
        raise PublishRefused(
            f"Refused to publish {destination.uri}: {tarball.path} cannot be read as a tarball: "
            f"{e}. Its member models, which must not collide with those of the other tarballs "
            "of the prefix, are unknown. Package the model again (`pants package`) and publish "
            "what it writes."
        ) from None
    check_member_collisions(client, tarball, destination, members)
    multipart = tarball.size > transfer.multipart_threshold
    metadata = object_metadata(tarball, git_commit, members)
    try:
        if multipart:
            put_multipart(client, tarball, destination, metadata, transfer, out)
        else:
            put_single(client, tarball, destination, metadata)
    except ClientError as e:
        if not is_precondition_failed(e):
            raise explain(e, destination, "Cannot upload to") from None
        # Another job created the key between our check and our write: judge its bytes.
        existing = published_sha256(client, destination)
        return resolve_existing(tarball, destination, existing or "")
    except BotoCoreError as e:
        raise explain(e, destination, "Cannot upload to") from None
    verify(client, tarball, destination, multipart)
    return Outcome("uploaded", destination.uri, tarball.sha256, tarball.size)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", help="Path of the tarball to publish.")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--artifact-version", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--sse")
    parser.add_argument("--kms-key-id")
    parser.add_argument("--git-commit")
    parser.add_argument("--multipart-threshold", type=int, default=Transfer.multipart_threshold)
    parser.add_argument("--part-size", type=int, default=Transfer.part_size)
    parser.add_argument("--max-attempts", type=int, default=Transfer.max_attempts)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    destination = Destination(
        bucket=args.bucket,
        key=args.key,
        region=args.region,
        endpoint_url=args.endpoint_url,
        sse=args.sse,
        kms_key_id=args.kms_key_id,
    )
    transfer = Transfer(args.multipart_threshold, args.part_size, args.max_attempts)
    try:
        tarball = Tarball(
            path=args.tarball,
            model_name=args.model_name,
            artifact_version=args.artifact_version,
            sha256=sha256_of(args.tarball),
            size=os.path.getsize(args.tarball),
        )
        outcome = publish(
            make_client(destination, transfer),
            tarball,
            destination,
            git_commit=args.git_commit,
            transfer=transfer,
        )
    except PublishRefused as e:
        print(f"refused: {e}", flush=True)
        return EXIT_REFUSED
    except PublishFailed as e:
        print(f"failed: {e}", flush=True)
        return EXIT_FAILED
    print(outcome.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
