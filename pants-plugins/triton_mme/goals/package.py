"""`./pants package` on a model: `<model_name>_<artifact_version>.tar.gz` for SageMaker MME.

The tarball holds the validated `ModelRepository` of the target (the model's directory, or an
ensemble's directory plus every model it needs) under the names the artifact ships (an
ensemble's members renamed `<artifact>.<member>`, see `util_rules/artifact_names.py`), written by
`scripts/write_tarball.py` in a sandboxed process so that it is byte-reproducible and multi-GB
weights never enter Pants' memory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.addresses import Addresses
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    FileContent,
    FileEntry,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import Target, WrappedTarget, WrappedTargetRequest
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from triton_mme.subsystems import tool
from triton_mme.subsystems.package import TarballWriterSubsystem
from triton_mme.subsystems.tool import ScriptTool, ScriptToolRequest
from triton_mme.target_types import (
    TritonArtifactVersionField,
    TritonCompressionField,
    TritonConfigSourceField,
    TritonEnsembleMemberOnlyField,
    TritonModelNameField,
    TritonModelOutputPathField,
    TritonModelVersionFileField,
    TritonVersionSourcesField,
)
from triton_mme.util_rules.artifact_names import (
    ArtifactModels,
    ArtifactModelsRequest,
    ArtifactName,
    ArtifactNameRequest,
    artifact_name,
)
from triton_mme.util_rules.validation import (
    ValidatedModelRepository,
    ValidatedModelRepositoryRequest,
)

REPOSITORY_DIR = "__model_repository"
EXECUTABLES_FILE = "__executables.txt"

# Safe in an S3 key and in SageMaker's TargetModel header, and not a hidden file name.
SAFE_VERSION = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


class InvalidArtifactVersion(Exception):
    pass


def check_artifact_version(version: str, origin: str) -> str:
    """The version, stripped; refuses one that is unsafe in an S3 key or a TargetModel header."""
    stripped = version.strip()
    if not SAFE_VERSION.fullmatch(stripped):
        raise InvalidArtifactVersion(
            f"{origin}: the artifact version {stripped!r} cannot name a tarball: it must be "
            "non-empty, use only letters, digits, `.`, `-` and `_`, and not start with `.` "
            "(it becomes part of an S3 key and of SageMaker's TargetModel header). "
            "Use e.g. `1.0.0` or `2024-06-01_a`."
        )
    return stripped


@dataclass(frozen=True)
class TritonPackageFieldSet(PackageFieldSet):
    required_fields = (TritonConfigSourceField, TritonVersionSourcesField)

    model_name: TritonModelNameField
    artifact_version: TritonArtifactVersionField
    model_version_file: TritonModelVersionFileField
    output_path: TritonModelOutputPathField
    ensemble_member_only: TritonEnsembleMemberOnlyField
    compression: TritonCompressionField

    @classmethod
    def opt_out(cls, tgt: Target) -> bool:
        return bool(tgt.get(TritonEnsembleMemberOnlyField).value)

    @property
    def resolved_model_name(self) -> str:
        return self.model_name.value or os.path.basename(self.address.spec_path)


@dataclass(frozen=True)
class ArtifactVersionRequest(EngineAwareParameter):
    field_set: TritonPackageFieldSet

    def debug_hint(self) -> str:
        return self.field_set.address.spec


@dataclass(frozen=True)
class ArtifactVersion:
    version: str


@dataclass(frozen=True)
class ArtifactVersionCheck:
    """The artifact version, or why there is none (`lint` reports it, `package` raises it)."""

    version: str | None
    problem: str | None


@rule(desc="Read a Triton model's artifact version", level=LogLevel.DEBUG)
async def check_model_artifact_version(request: ArtifactVersionRequest) -> ArtifactVersionCheck:
    field_set = request.field_set
    if field_set.artifact_version.value is not None:
        origin = f"{field_set.address}: `{TritonArtifactVersionField.alias}`"
        text = field_set.artifact_version.value
    else:
        contents = await Get(DigestContents, PathGlobs([field_set.model_version_file.path()]))
        if not contents:
            return ArtifactVersionCheck(
                None,
                f"{field_set.address}: no artifact version. Write it into "
                f"`{field_set.model_version_file.path()}` (e.g. `1.0.0`), "
                f"or set `{TritonArtifactVersionField.alias}` in the BUILD file. (A model only "
                f"served inside an ensemble needs neither: mark it "
                f"`{TritonEnsembleMemberOnlyField.alias}=True`.)",
            )
        origin = contents[0].path
        text = contents[0].content.decode("utf-8", errors="replace")
    try:
        return ArtifactVersionCheck(check_artifact_version(text, origin), None)
    except InvalidArtifactVersion as e:
        return ArtifactVersionCheck(None, str(e))


@rule
async def read_artifact_version(request: ArtifactVersionRequest) -> ArtifactVersion:
    check = await Get(ArtifactVersionCheck, ArtifactVersionRequest, request)
    if check.version is None:
        raise InvalidArtifactVersion(check.problem)
    return ArtifactVersion(check.version)


@rule(desc="Name a Triton model's artifact", level=LogLevel.DEBUG)
async def model_artifact_name(request: ArtifactNameRequest) -> ArtifactName:
    """What `package` would name the model's tarball; no version when it would refuse to."""
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(request.address, description_of_origin="the artifact of a model"),
    )
    field_set = TritonPackageFieldSet.create(wrapped.target)
    if TritonPackageFieldSet.opt_out(wrapped.target):
        return ArtifactName(field_set.resolved_model_name, None)
    check = await Get(ArtifactVersionCheck, ArtifactVersionRequest(field_set))
    return ArtifactName(field_set.resolved_model_name, check.version)


@rule(desc="Package a Triton model tarball", level=LogLevel.DEBUG)
async def package_triton_model(
    field_set: TritonPackageFieldSet, writer_subsystem: TarballWriterSubsystem
) -> BuiltPackage:
    version, validated, writer = await MultiGet(
        Get(ArtifactVersion, ArtifactVersionRequest(field_set)),
        Get(
            ValidatedModelRepository,
            ValidatedModelRepositoryRequest(Addresses([field_set.address])),
        ),
        Get(ScriptTool, ScriptToolRequest, writer_subsystem.tool_request()),
    )
    artifact = artifact_name(field_set.resolved_model_name, version.version)
    repository = await Get(
        ArtifactModels, ArtifactModelsRequest(validated.repository, field_set.address, artifact)
    )
    output = field_set.output_path.value or os.path.join(
        field_set.address.spec_path, f"{artifact}.tar.gz"
    )
    # The tarball's modes come from the digest: modes on disk in the sandbox are not reliable
    # (see write_tarball.py).
    repository_entries = await Get(DigestEntries, Digest, repository.digest)
    executables = "".join(
        f"{e.path}\n" for e in repository_entries if isinstance(e, FileEntry) and e.is_executable
    )
    prefixed, executables_file = await MultiGet(
        Get(Digest, AddPrefix(repository.digest, REPOSITORY_DIR)),
        Get(Digest, CreateDigest([FileContent(EXECUTABLES_FILE, executables.encode("utf-8"))])),
    )
    input_digest = await Get(Digest, MergeDigests([prefixed, executables_file]))
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            writer.pex,
            argv=(
                REPOSITORY_DIR,
                output,
                EXECUTABLES_FILE,
                field_set.compression.value or writer_subsystem.compression.value,
            ),
            input_digest=input_digest,
            output_files=(output,),
            description=f"Write {output}",
            level=LogLevel.DEBUG,
        ),
    )
    entries = await Get(DigestEntries, Digest, result.output_digest)
    tarball = next(e for e in entries if isinstance(e, FileEntry))
    return BuiltPackage(
        result.output_digest,
        (
            BuiltPackageArtifact(
                output,
                extra_log_lines=(
                    f"    models: {', '.join(repository.model_names)}",
                    f"    sha256: {tarball.file_digest.fingerprint}"
                    f" ({tarball.file_digest.serialized_bytes_length} bytes)",
                ),
            ),
        ),
    )


def rules() -> Iterable:
    return (
        *collect_rules(),
        *tool.rules(),
        *TarballWriterSubsystem.rules(),
        UnionRule(PackageFieldSet, TritonPackageFieldSet),
    )
