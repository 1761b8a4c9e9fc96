"""The `[triton-publish]` options: named S3 destinations, which one this run publishes to, and how.

A team names its buckets once in pants.toml (`staging`, `production`, ...); CI picks one per run
with `PANTS_TRITON_PUBLISH_DESTINATION`, so the same command publishes a branch to staging and
main to production.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from pants.option.option_types import DictOption, IntOption, StrListOption, StrOption
from pants.util.strutil import softwrap
from triton_mme.subsystems.tool import ScriptToolBase

MIB = 1024 * 1024
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_DESTINATION_KEYS = ("bucket", "prefix", "region", "endpoint_url", "sse", "kms_key_id")
# AWS credentials: never part of a cacheable process's environment (its cache key), and masked
# where a process that needs them is logged.
SECRET_ENV_VARS = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}
)


class PublishDestinationError(ValueError):
    """The `[triton-publish]` options do not name a usable destination."""


@dataclass(frozen=True)
class S3Destination:
    """Where tarballs go: `s3://<bucket>/<prefix>/<model_name>_<artifact_version>.tar.gz`."""

    name: str
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    sse: str | None = None
    kms_key_id: str | None = None

    def key_for(self, file_name: str) -> str:
        return f"{self.prefix}/{file_name}" if self.prefix else file_name

    def uri_for(self, file_name: str) -> str:
        return f"s3://{self.bucket}/{self.key_for(file_name)}"

    @classmethod
    def parse(cls, name: str, raw: Any) -> S3Destination:
        where = f"[triton-publish].destinations[{name!r}]"
        if not isinstance(raw, Mapping):
            raise PublishDestinationError(
                f"{where} must be a table of settings such as "
                f'{{"bucket": "my-models", "prefix": "mme", "region": "eu-west-1"}}, '
                f"not {raw!r}."
            )
        unknown = sorted(set(raw) - set(_DESTINATION_KEYS))
        if unknown:
            raise PublishDestinationError(
                f"{where} has unknown setting(s) {', '.join(unknown)}. "
                f"Known settings: {', '.join(_DESTINATION_KEYS)}."
            )
        for key, value in raw.items():
            if value is not None and not isinstance(value, str):
                raise PublishDestinationError(f"{where}[{key!r}] must be a string, not {value!r}.")
        bucket = raw.get("bucket") or ""
        if not _BUCKET_NAME.match(bucket):
            raise PublishDestinationError(
                f"{where} needs a `bucket`: an S3 bucket name (3 to 63 lowercase letters, digits, "
                f"dots or hyphens), got {bucket!r}."
            )
        sse = raw.get("sse") or None
        if sse is not None and sse not in SSE_ALGORITHMS:
            raise PublishDestinationError(
                f"{where}[sse] is {sse!r}; use one of {', '.join(SSE_ALGORITHMS)} or leave it out "
                "for the bucket's default encryption."
            )
        kms_key_id = raw.get("kms_key_id") or None
        if kms_key_id and not (sse or "").startswith("aws:kms"):
            raise PublishDestinationError(
                f'{where} sets `kms_key_id` without `sse = "aws:kms"`: S3 uses a KMS key only with '
                "KMS encryption. Add the `sse` setting."
            )
        return cls(
            name=name,
            bucket=bucket,
            prefix=(raw.get("prefix") or "").strip("/"),
            region=raw.get("region") or None,
            endpoint_url=raw.get("endpoint_url") or None,
            sse=sse,
            kms_key_id=kms_key_id,
        )


class TritonPublishSubsystem(ScriptToolBase):
    options_scope = "triton-publish"
    name = "Triton publish"
    default_resolve = "boto3"
    default_requirements = ("boto3",)
    main_module = "s3_publish"
    scripts = ("s3_publish.py", "local_mme/tarball.py", "config_platform.py")
    help = softwrap(
        """
        Where `pants publish` puts MME tarballs: named S3 destinations (the buckets behind your
        SageMaker multi-model endpoints) and the one this run uses.

        A published `<model_name>_<artifact_version>.tar.gz` is never overwritten: publishing
        the same bytes again does nothing, publishing different bytes under a published version
        fails and asks for a new version. AWS credentials come from the standard chain
        (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, web identity
        with AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, ~/.aws files); set
        AWS_EC2_METADATA_DISABLED=false to allow an EC2 instance profile.
        """
    )

    destinations = DictOption[Any](
        default={},
        help=softwrap(
            f"""
            Named S3 destinations. Each is a table with `bucket` (required), `prefix` (a folder
            inside the bucket, the MME's model data URL), `region`, `endpoint_url` (for
            S3-compatible stores), `sse` (one of {', '.join(SSE_ALGORITHMS)}) and `kms_key_id`
            (with `sse = "aws:kms"`). For example:

                [triton-publish.destinations.staging]
                bucket = "acme-models-staging"
                prefix = "mme"
                region = "eu-west-1"

                [triton-publish.destinations.production]
                bucket = "acme-models"
                prefix = "mme"
                region = "eu-west-1"
                sse = "aws:kms"
                kms_key_id = "alias/models"
            """
        ),
    )
    destination = StrOption(
        default=None,
        help=softwrap(
            """
            The name of the destination (a key of `destinations`) this run publishes to. CI sets
            it per branch, e.g. `PANTS_TRITON_PUBLISH_DESTINATION=production` on main and
            `staging` elsewhere.
            """
        ),
    )
    multipart_threshold_mib = IntOption(
        default=64,
        help=softwrap(
            """
            Tarballs larger than this many MiB are uploaded in parts (each part checksummed, the
            upload aborted if any part fails); smaller ones in one request.
            """
        ),
    )
    part_size_mib = IntOption(
        default=64,
        help="Size in MiB of each part of a multipart upload (at least 5, S3's minimum).",
    )
    max_attempts = IntOption(
        default=5,
        help=softwrap(
            """
            How many times each S3 request is tried before the publish fails. Throttling, server
            errors and dropped connections are retried with exponential backoff.
            """
        ),
    )
    extra_env_vars = StrListOption(
        default=[],
        help=softwrap(
            """
            More environment variables for the upload besides the standard AWS ones, e.g.
            `HTTPS_PROXY` or `NO_PROXY`. `NAME` takes the value from the environment Pants runs
            in, `NAME=value` sets it.
            """
        ),
    )

    def chosen_destination(self) -> S3Destination:
        known = ", ".join(sorted(self.destinations)) or "none are configured"
        if not self.destination:
            raise PublishDestinationError(
                "No publish destination chosen. Set `[triton-publish].destination` (or "
                f"PANTS_TRITON_PUBLISH_DESTINATION) to one of: {known}."
            )
        if self.destination not in self.destinations:
            raise PublishDestinationError(
                f"Unknown publish destination {self.destination!r} "
                f"([triton-publish].destination). Known destinations: {known}. Add it to "
                "`[triton-publish].destinations` in pants.toml."
            )
        return S3Destination.parse(self.destination, self.destinations[self.destination])

    def transfer_args(self) -> tuple[str, ...]:
        """`s3_publish.py` arguments for sizes and retries (the script counts bytes)."""
        return (
            f"--multipart-threshold={self.multipart_threshold_mib * MIB}",
            f"--part-size={max(self.part_size_mib, 5) * MIB}",
            f"--max-attempts={max(self.max_attempts, 1)}",
        )
