"""Building `python_env.tar.gz` from a lock, and `package` of a `triton_python_env`.

The build downloads nothing itself: Pants fetches every locked file by URL and sha256 (or takes it
from the offline channel digest), then one sandboxed, cached process installs them at a fixed
prefix, packs the env with conda-pack and re-tars it deterministically. An unchanged lock is
never rebuilt, and models that share an env share the one build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestEntries,
    DigestSubset,
    DownloadFile,
    FileContent,
    FileDigest,
    FileEntry,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from triton_mme.config.model import ENV_ARCHIVE_NAME
from triton_mme.util_rules.env.channel import CHANNEL_DIR, OfflineChannel, OfflineChannelRequest
from triton_mme.util_rules.env.checks import check_stub_python
from triton_mme.util_rules.env.lock import (
    EnvSources,
    EnvSourcesRequest,
    LockedFile,
    StaleLockError,
    check_lock_is_current,
)
from triton_mme.target_types import (
    LockfileSourceField,
    PythonEnvOutputPathField,
    lock_command,
)
from triton_mme.subsystems.tool import ScriptTool, ScriptToolRequest
from triton_mme.subsystems.conda import CondaSubsystem
from triton_mme.subsystems.triton import TritonSubsystem


@dataclass(frozen=True)
class PythonEnvArchiveRequest(EngineAwareParameter):
    address: Address

    def debug_hint(self) -> str:
        return self.address.spec


@dataclass(frozen=True)
class PythonEnvArchive:
    """`digest` holds one file, `python_env.tar.gz`."""

    address: Address
    python: str
    digest: Digest


@dataclass(frozen=True)
class LockedFilesRequest:
    files: tuple[LockedFile, ...]
    offline_channel: Digest | None
    directory: str


@dataclass(frozen=True)
class LockedFiles:
    digest: Digest


@rule
async def fetch_locked_files(request: LockedFilesRequest) -> LockedFiles:
    """Every locked file, named by its file name under `directory/`: downloaded by URL and
    sha256, or taken from the offline channel."""
    downloads = await MultiGet(
        Get(Digest, DownloadFile(f.url, FileDigest(f.sha256, f.size)))
        for f in request.files
        if not f.in_offline_channel
    )
    offline = [f for f in request.files if f.in_offline_channel]
    from_channel: list[Digest] = []
    if offline:
        assert request.offline_channel is not None
        entries = await Get(
            DigestEntries,
            DigestSubset(
                request.offline_channel,
                PathGlobs([f"{CHANNEL_DIR}/{f.offline_channel_path}" for f in offline]),
            ),
        )
        from_channel.append(
            await Get(
                Digest,
                CreateDigest(
                    FileEntry(os.path.basename(e.path), e.file_digest)
                    for e in entries
                    if isinstance(e, FileEntry)
                ),
            )
        )
    merged = await Get(Digest, MergeDigests([*downloads, *from_channel]))
    return LockedFiles(await Get(Digest, AddPrefix(merged, request.directory)))


@rule(desc="Build a conda env archive", level=LogLevel.DEBUG)
async def build_python_env(
    request: PythonEnvArchiveRequest,
    conda: CondaSubsystem,
    triton: TritonSubsystem,
) -> PythonEnvArchive:
    sources = await Get(EnvSources, EnvSourcesRequest(request.address))
    lock = sources.lock
    if lock is None:
        raise StaleLockError(
            f"{request.address} has no lock file ({sources.lock_path}). Run "
            f"`{lock_command(request.address)}` and commit the file it writes."
        )
    check_lock_is_current(lock, sources.inputs, request.address)
    check_stub_python(
        request.address, lock.python_version, triton.image, triton.image_python_versions
    )
    uses_offline = any(f.in_offline_channel for f in (*lock.conda, *lock.pip))
    channel = (await Get(OfflineChannel, OfflineChannelRequest())).digest if uses_offline else None
    packages, wheels, lock_file, tools = await MultiGet(
        Get(LockedFiles, LockedFilesRequest(lock.conda, channel, "packages")),
        Get(LockedFiles, LockedFilesRequest(lock.pip, channel, "wheels")),
        Get(Digest, CreateDigest([FileContent("python_env.lock", lock.text)])),
        Get(ScriptTool, ScriptToolRequest, conda.tool_request()),
    )
    prefix = os.path.join(conda.env_prefix_root, f"env-{lock.content_hash[:16]}")
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tools.pex,
            argv=tools.argv(
                "build_env",
                "--lock=python_env.lock",
                "--packages=packages",
                "--wheels=wheels",
                f"--prefix={prefix}",
                f"--python={lock.python_version}",
                f"--out={ENV_ARCHIVE_NAME}",
            ),
            input_digest=await Get(
                Digest,
                MergeDigests([packages.digest, wheels.digest, lock_file]),
            ),
            extra_env={"PATH": "/usr/bin:/bin"},
            output_files=(ENV_ARCHIVE_NAME,),
            description=f"Build the conda env {request.address} ({lock.path})",
            level=LogLevel.INFO,
        ),
    )
    return PythonEnvArchive(
        address=request.address, python=lock.python_version, digest=result.output_digest
    )


@dataclass(frozen=True)
class PythonEnvFieldSet(PackageFieldSet):
    required_fields = (LockfileSourceField,)

    lockfile: LockfileSourceField
    output_path: PythonEnvOutputPathField


@rule(desc="Package a conda env archive", level=LogLevel.DEBUG)
async def package_python_env(field_set: PythonEnvFieldSet) -> BuiltPackage:
    archive = await Get(PythonEnvArchive, PythonEnvArchiveRequest(field_set.address))
    output_path = field_set.output_path.value or os.path.join(
        field_set.address.spec_path.replace(os.sep, "."), ENV_ARCHIVE_NAME
    )
    entries = await Get(DigestEntries, Digest, archive.digest)
    digest = await Get(
        Digest,
        CreateDigest(
            FileEntry(output_path, e.file_digest) for e in entries if isinstance(e, FileEntry)
        ),
    )
    return BuiltPackage(digest, (BuiltPackageArtifact(output_path),))


def rules() -> Iterable:
    return (*collect_rules(), UnionRule(PackageFieldSet, PythonEnvFieldSet))
