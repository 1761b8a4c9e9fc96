"""`pants publish` for Triton models: each MME tarball to the chosen S3 destination, never twice.

Pants packages the target first and hands this rule the `BuiltPackage`s; for every tarball the
rule prepares one run of `scripts/s3_publish.py` in a boto3 PEX (see that script for the rules
that keep published versions intact). The upload runs uncached, with the caller's AWS
credentials passed through the environment; `--output=FILE` gets the S3 URI and sha256 of each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.core.goals.package import BuiltPackage
from pants.core.goals.publish import (
    PublishFieldSet,
    PublishOutputData,
    PublishPackages,
    PublishProcesses,
    PublishRequest,
)
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, DigestEntries, FileEntry
from pants.engine.process import InteractiveProcess, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import Target
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from pants.vcs.git import GitWorktreeRequest, MaybeGitWorktree
from triton_mme.util_rules.repository import TritonModelFieldSet
from triton_mme.subsystems.s3 import SECRET_ENV_VARS, S3Destination, TritonPublishSubsystem
from triton_mme.subsystems.tool import ScriptTool, ScriptToolRequest
from triton_mme.target_types import (
    TritonEnsembleMemberOnlyField,
    TritonEnsembleTarget,
    TritonModelTarget,
    TritonSkipPublishField,
)

TARBALL_SUFFIX = ".tar.gz"

# What the standard AWS credential chain reads. Only the interactive upload process gets them:
# interactive processes are never cached, and Pants logs them through Python, where the secrets
# below print masked. (The engine logs a regular `Process` with its environment at debug level,
# which is why nothing looks at S3 before the upload, e.g. to report a published tarball as
# skipped: the upload itself reports "already published".)
AWS_ENV_VARS = (
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_EC2_METADATA_DISABLED",
    "HOME",  # ~/.aws/config and ~/.aws/credentials
)


class MaskedSecret(str):
    """A credential value: Pants logs publish processes (at debug level), this shows `***`."""

    def __repr__(self) -> str:
        return "'***'"


def upload_env(environment: EnvironmentVars) -> FrozenDict[str, str]:
    env = {
        name: MaskedSecret(value) if name in SECRET_ENV_VARS else value
        for name, value in environment.items()
    }
    # Never probe the cloud metadata address unless the caller asked for it explicitly.
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    return FrozenDict(env)


class PublishTritonModelRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class TritonPublishFieldSet(TritonModelFieldSet, PublishFieldSet):
    publish_request_type = PublishTritonModelRequest

    skip_publish: TritonSkipPublishField

    @classmethod
    def opt_out(cls, tgt: Target) -> bool:
        # Served only inside ensembles: there is no tarball of its own to publish.
        return bool(tgt.get(TritonEnsembleMemberOnlyField).value)

    def get_output_data(self) -> PublishOutputData:
        return PublishOutputData(
            {"publisher": "triton-s3", "model_name": self.resolved_model_name}
            | dict(super().get_output_data())
        )


@dataclass(frozen=True)
class GitCommit:
    """The commit being published (`<sha>-dirty` with uncommitted changes), None outside git."""

    sha: str | None


@rule
async def current_git_commit() -> GitCommit:
    maybe_worktree = await Get(MaybeGitWorktree, GitWorktreeRequest())
    worktree = maybe_worktree.git_worktree
    if worktree is None or not worktree.commit_id:
        return GitCommit(None)
    return GitCommit(worktree.commit_id + ("-dirty" if worktree.changed_files() else ""))


@dataclass(frozen=True)
class Tarball:
    """One built tarball: its path in the package digest and what S3 must hold for it."""

    relpath: str
    model_name: str
    artifact_version: str
    sha256: str
    size: int

    @property
    def file_name(self) -> str:
        return os.path.basename(self.relpath)


def artifact_version_of(file_name: str, model_name: str, address: str) -> str:
    prefix = f"{model_name}_"
    if not (file_name.startswith(prefix) and file_name.endswith(TARBALL_SUFFIX)):
        raise ValueError(
            f"{address}: cannot publish `{file_name}`: SageMaker serves a model under its "
            f"tarball's name, which must be `{model_name}_<artifact_version>{TARBALL_SUFFIX}`. "
            "Remove the `output_path` that renames it."
        )
    return file_name[len(prefix) : -len(TARBALL_SUFFIX)]


@dataclass(frozen=True)
class TarballsRequest(EngineAwareParameter):
    field_set: TritonPublishFieldSet
    package: BuiltPackage

    def debug_hint(self) -> str:
        return self.field_set.address.spec


@dataclass(frozen=True)
class Tarballs:
    digest: Digest
    tarballs: tuple[Tarball, ...]


@rule
async def find_tarballs(request: TarballsRequest) -> Tarballs:
    field_set, package = request.field_set, request.package
    entries = await Get(DigestEntries, Digest, package.digest)
    files = {entry.path: entry for entry in entries if isinstance(entry, FileEntry)}
    model_name = field_set.resolved_model_name
    tarballs = []
    for artifact in package.artifacts:
        if not artifact.relpath or not artifact.relpath.endswith(TARBALL_SUFFIX):
            continue
        file_name = os.path.basename(artifact.relpath)
        entry = files[artifact.relpath]
        tarballs.append(
            Tarball(
                relpath=artifact.relpath,
                model_name=model_name,
                artifact_version=artifact_version_of(file_name, model_name, field_set.address.spec),
                # Pants stores files by SHA-256: the file digest is the tarball's sha256.
                sha256=entry.file_digest.fingerprint,
                size=entry.file_digest.serialized_bytes_length,
            )
        )
    return Tarballs(package.digest, tuple(tarballs))


def upload_argv(
    tarball: Tarball,
    destination: S3Destination,
    subsystem: TritonPublishSubsystem,
    git_commit: GitCommit,
) -> tuple[str, ...]:
    optional = {
        "--region": destination.region,
        "--endpoint-url": destination.endpoint_url,
        "--sse": destination.sse,
        "--kms-key-id": destination.kms_key_id,
        "--git-commit": git_commit.sha,
    }
    return (
        tarball.relpath,
        f"--model-name={tarball.model_name}",
        f"--artifact-version={tarball.artifact_version}",
        f"--bucket={destination.bucket}",
        f"--key={destination.key_for(tarball.file_name)}",
        *(f"{flag}={value}" for flag, value in optional.items() if value),
        *subsystem.transfer_args(),
    )


@rule(desc="Prepare the S3 publish of MME tarballs", level=LogLevel.DEBUG)
async def publish_triton_model(
    request: PublishTritonModelRequest,
    subsystem: TritonPublishSubsystem,
    git_commit: GitCommit,
) -> PublishProcesses:
    field_set = request.field_set
    packaged = await MultiGet(
        Get(Tarballs, TarballsRequest(field_set, package)) for package in request.packages
    )
    tarballs = [tarball for group in packaged for tarball in group.tarballs]
    if field_set.skip_publish.value:
        return PublishProcesses(
            [
                PublishPackages(
                    names=tuple(tarball.file_name for tarball in tarballs),
                    description=f"(by `{field_set.skip_publish.alias}` on {field_set.address})",
                )
            ]
        )

    destination = subsystem.chosen_destination()
    environment, tool = await MultiGet(
        Get(EnvironmentVars, EnvironmentVarsRequest([*AWS_ENV_VARS, *subsystem.extra_env_vars])),
        Get(ScriptTool, ScriptToolRequest, subsystem.tool_request()),
    )
    env = upload_env(environment)
    to_publish = [(group.digest, tarball) for group in packaged for tarball in group.tarballs]
    processes = await MultiGet(
        Get(
            Process,
            VenvPexProcess(
                tool.pex,
                argv=upload_argv(tarball, destination, subsystem, git_commit),
                input_digest=digest,
                extra_env=env,
                description=f"Publish {tarball.file_name} to {destination.name}",
                cache_scope=ProcessCacheScope.PER_SESSION,
            ),
        )
        for digest, tarball in to_publish
    )
    return PublishProcesses(
        PublishPackages(
            names=(destination.uri_for(tarball.file_name),),
            process=InteractiveProcess.from_process(process),
            description=f"`{destination.name}`",
            data=PublishOutputData(
                {
                    "destination": destination.name,
                    "s3_uri": destination.uri_for(tarball.file_name),
                    "sha256": tarball.sha256,
                    "size": tarball.size,
                    "artifact_version": tarball.artifact_version,
                    "git_commit": git_commit.sha,
                }
            ),
        )
        for (_, tarball), process in zip(to_publish, processes)
    )


def rules():
    return (
        *collect_rules(),
        *TritonPublishFieldSet.rules(),
        TritonModelTarget.register_plugin_field(TritonSkipPublishField),
        TritonEnsembleTarget.register_plugin_field(TritonSkipPublishField),
    )
