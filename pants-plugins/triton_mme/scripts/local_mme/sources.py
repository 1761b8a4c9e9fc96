"""Where tarballs come from: an S3 prefix (the MME's model data URL) or a local directory.

The TargetModel of a request is the tarball's path relative to the S3 prefix, as in SageMaker
(`invoke_endpoint(TargetModel="my_model_1.0.tar.gz")`). A local directory such as `dist/` nests
tarballs by target path, while `publish` puts them side by side under the prefix: there the
TargetModel is the tarball's file name, wherever it sits below the directory.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class SourceError(LookupError):
    """The tarball cannot be fetched; `status` is the HTTP status the caller should answer."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


def check_target_model(target_model: str) -> str:
    """A TargetModel that cannot name anything outside the source; SageMaker's rules, roughly."""
    parts = target_model.split("/")
    if (
        not target_model
        or len(target_model) > 1024
        or target_model.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
        or "\\" in target_model
        or any(ord(c) < 32 for c in target_model)
    ):
        raise SourceError(
            f"TargetModel {target_model!r} is not a relative tarball path such as "
            "'my_model_1.0.tar.gz'.",
            status=400,
        )
    return target_model


class ModelSource(Protocol):
    @property
    def description(self) -> str:
        """Where the tarballs are, for messages."""

    def fetch(self, target_model: str, destination: Path, max_bytes: int) -> int:
        """Copy the tarball to `destination` and return its size in bytes."""

    def list_tarballs(self, limit: int) -> list[str]:
        """Up to `limit` TargetModel names available in the source."""


@dataclass(frozen=True)
class DirectorySource:
    directory: Path

    @property
    def description(self) -> str:
        return str(self.directory)

    def _tarballs_by_name(self) -> dict[str, Path]:
        by_name: dict[str, Path] = {}
        for path in sorted(self.directory.rglob("*.tar.gz")):
            other = by_name.setdefault(path.name, path)
            if other != path:
                raise SourceError(
                    f"Two tarballs named {path.name} in {self.directory}: {other} and {path}. "
                    "The TargetModel is the file name, as in the S3 prefix `publish` writes to.",
                    status=409,
                )
        return by_name

    def fetch(self, target_model: str, destination: Path, max_bytes: int) -> int:
        found = self._tarballs_by_name().get(check_target_model(target_model))
        path = found.resolve() if found else None
        if path is None or not path.is_relative_to(self.directory) or not path.is_file():
            raise SourceError(f"No tarball {target_model!r} in {self.directory}.")
        size = path.stat().st_size
        if size > max_bytes:
            raise SourceError(
                f"{target_model} is {size} bytes, over the {max_bytes}-byte tarball limit.", 413
            )
        shutil.copyfile(path, destination)
        return size

    def list_tarballs(self, limit: int) -> list[str]:
        return sorted(self._tarballs_by_name())[:limit]


class S3Source:
    """`s3://bucket/prefix`, read with boto3 and the standard AWS credential chain."""

    def __init__(self, url: str, endpoint_url: str | None, region: str | None) -> None:
        import boto3
        from botocore.config import Config

        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"{url!r} names no bucket; use s3://<bucket>/<prefix>.")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.description = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        self._s3 = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def _key(self, target_model: str) -> str:
        name = check_target_model(target_model)
        return f"{self.prefix}/{name}" if self.prefix else name

    def fetch(self, target_model: str, destination: Path, max_bytes: int) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(target_model)
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
            size = int(head["ContentLength"])
            if size > max_bytes:
                raise SourceError(
                    f"s3://{self.bucket}/{key} is {size} bytes, over the {max_bytes}-byte "
                    "tarball limit.",
                    413,
                )
            self._s3.download_file(self.bucket, key, str(destination))
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise SourceError(f"No tarball s3://{self.bucket}/{key}.") from e
            raise SourceError(
                f"Could not download s3://{self.bucket}/{key}: {code or e}. Check the AWS "
                "credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and the "
                "bucket's endpoint and region.",
                status=502,
            ) from e
        except BotoCoreError as e:
            raise SourceError(f"Could not download s3://{self.bucket}/{key}: {e}", 502) from e
        return destination.stat().st_size

    def list_tarballs(self, limit: int) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = f"{self.prefix}/" if self.prefix else ""
        found: list[str] = []
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"MaxItems": limit}
        )
        try:
            for page in pages:
                found.extend(
                    obj["Key"][len(prefix) :]
                    for obj in page.get("Contents", [])
                    if obj["Key"].endswith(".tar.gz")
                )
        except (BotoCoreError, ClientError) as e:
            raise SourceError(f"Could not list {self.description}: {e}", status=502) from e
        return sorted(found)


def open_source(source: str, endpoint_url: str | None, region: str | None) -> ModelSource:
    if source.startswith("s3://"):
        return S3Source(source, endpoint_url, region)
    directory = Path(source).resolve()
    if not directory.is_dir():
        raise ValueError(
            f"Model source {source!r} is neither an s3:// URL nor a directory. Run "
            "`pants package` first to fill dist/, or name the S3 prefix you publish to."
        )
    return DirectorySource(directory)
