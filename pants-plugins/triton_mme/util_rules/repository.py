"""Model directories and model repositories, exactly as Triton (and SageMaker) will see them.

One rule lays out a single model directory (`<model_name>/config.pbtxt`, version folders, and the
files other concerns contribute, such as fetched weights or env archives); another gathers an
ensemble with every model it needs. `package` tars the latter and `test` serves it, so a test
that passes tests the bytes that ship.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Iterable

from pants.engine.addresses import Address, Addresses
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.environment import EnvironmentName
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    Directory,
    FileContent,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    FieldSet,
    HydratedSources,
    HydrateSourcesRequest,
    Target,
    TransitiveTargets,
    TransitiveTargetsRequest,
)
from pants.engine.unions import UnionMembership, union
from triton_mme.config.parse import ModelConfigFile, parse_model_config
from triton_mme.target_types import (
    TritonConfigSourceField,
    TritonModelNameField,
    TritonVersionSourcesField,
)


@dataclass(frozen=True)
class TritonModelFieldSet(FieldSet):
    """Any target that is a Triton model directory: `triton_model` or `triton_ensemble`."""

    required_fields = (TritonConfigSourceField, TritonVersionSourcesField)

    model_name: TritonModelNameField
    config: TritonConfigSourceField
    sources: TritonVersionSourcesField

    @property
    def resolved_model_name(self) -> str:
        return self.model_name.value or os.path.basename(self.address.spec_path)


@dataclass(frozen=True)
class TritonModelConfig:
    """A model's config.pbtxt, parsed once: every rule that needs it reads `parsed`."""

    model_name: str
    parsed: ModelConfigFile

    @property
    def path(self) -> str:
        return self.parsed.path

    @property
    def is_ensemble(self) -> bool:
        return self.parsed.is_ensemble


@rule
async def read_model_config(field_set: TritonModelFieldSet) -> TritonModelConfig:
    contents = await Get(DigestContents, PathGlobs([field_set.config.path()]))
    if not contents:
        raise ValueError(
            f"{field_set.address}: no config file `{field_set.config.value}` in "
            f"{field_set.address.spec_path}/. Every Triton model directory needs a config.pbtxt."
        )
    parsed = parse_model_config(contents[0].path, contents[0].content.decode("utf-8"))
    return TritonModelConfig(model_name=field_set.resolved_model_name, parsed=parsed)


# Implementations run processes (DVC, conda builds): those need the environment in scope.
@union(in_scope_types=[EnvironmentName])
@dataclass(frozen=True)
class ModelFilesRequest(EngineAwareParameter):
    """Extra files that another concern puts into a model directory (weights, env archives).

    Implementations register with `UnionRule(ModelFilesRequest, Impl)` and return `ModelFiles`.
    They read their own fields from `target` (the model's target).
    """

    target: Target
    field_set: TritonModelFieldSet
    config: TritonModelConfig

    def debug_hint(self) -> str:
        return self.field_set.address.spec

    # Subclasses say which targets they contribute to.
    required_fields: ClassVar[tuple[type, ...]] = ()

    @classmethod
    def is_applicable(cls, target: Target) -> bool:
        return target.has_fields(cls.required_fields)


@dataclass(frozen=True)
class ModelFiles:
    """Files relative to the model directory, e.g. `1/model.onnx` or `python_env.tar.gz`."""

    digest: Digest


@dataclass(frozen=True)
class ModelDirectoryRequest(EngineAwareParameter):
    target: Target

    def debug_hint(self) -> str:
        return self.target.address.spec


@dataclass(frozen=True)
class ModelDirectory:
    """One model's directory: every path in `digest` starts with `<model_name>/`."""

    address: Address
    model_name: str
    config: TritonModelConfig
    digest: Digest


def label_files(config: ModelConfigFile) -> tuple[str, ...]:
    """The `label_filename`s of a config's outputs (files beside config.pbtxt)."""
    return tuple(sorted({o.label_filename for o in config.message.output if o.label_filename}))


def version_folders(relative_paths: Iterable[str]) -> tuple[str, ...]:
    """The top-level folders (numeric version folders) that hold the given files."""
    return tuple(sorted({path.split("/", 1)[0] for path in relative_paths if "/" in path}))


@rule
async def assemble_model_directory(
    request: ModelDirectoryRequest, union_membership: UnionMembership
) -> ModelDirectory:
    target = request.target
    field_set = TritonModelFieldSet.create(target)
    config, sources = await MultiGet(
        Get(TritonModelConfig, TritonModelFieldSet, field_set),
        Get(HydratedSources, HydrateSourcesRequest(field_set.sources)),
    )
    name = config.model_name
    # Version folders and the label files outputs name (Triton reads those from the model
    # directory); config.pbtxt is written below, model_version.txt stays outside.
    directory_files = ("*/**", *label_files(config.parsed))
    version_sources = await Get(
        Digest,
        DigestSubset(
            sources.snapshot.digest,
            PathGlobs(os.path.join(target.address.spec_path, f) for f in directory_files),
        ),
    )
    relative_sources = await Get(Digest, RemovePrefix(version_sources, target.address.spec_path))
    contributions = await MultiGet(
        Get(ModelFiles, ModelFilesRequest, request_type(target, field_set, config))
        for request_type in union_membership.get(ModelFilesRequest)
        if request_type.is_applicable(target)
    )
    # Git keeps no empty folders: an ensemble whose `1/` holds nothing still needs it in Triton.
    versions = version_folders(
        os.path.relpath(path, target.address.spec_path) for path in sources.snapshot.files
    )
    empty_versions = () if versions else ("1",)
    layout = await Get(
        Digest,
        CreateDigest(
            [
                FileContent("config.pbtxt", config.parsed.text.encode("utf-8")),
                *(Directory(version) for version in empty_versions),
            ]
        ),
    )
    merged = await Get(
        Digest,
        MergeDigests([layout, relative_sources, *(files.digest for files in contributions)]),
    )
    return ModelDirectory(
        address=target.address,
        model_name=name,
        config=config,
        digest=await Get(Digest, AddPrefix(merged, name)),
    )


@dataclass(frozen=True)
class ModelRepositoryRequest(EngineAwareParameter):
    """The models that `roots` need, transitively (an ensemble and all of its steps)."""

    roots: Addresses

    def debug_hint(self) -> str:
        return ", ".join(address.spec for address in self.roots)


@dataclass(frozen=True)
class ModelRepository:
    """A Triton model repository: top-level directories are model names."""

    model_names: tuple[str, ...]
    directories: tuple[ModelDirectory, ...]
    digest: Digest


@rule
async def assemble_model_repository(request: ModelRepositoryRequest) -> ModelRepository:
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest(request.roots))
    models = sorted(
        (t for t in transitive.closure if TritonModelFieldSet.is_applicable(t)),
        key=lambda t: t.address,
    )
    directories = await MultiGet(
        Get(ModelDirectory, ModelDirectoryRequest(target)) for target in models
    )
    owners: dict[str, Address] = {}
    for directory in directories:
        other = owners.setdefault(directory.model_name, directory.address)
        if other != directory.address:
            raise ValueError(
                f"Two targets define the Triton model `{directory.model_name}`: {other} and "
                f"{directory.address}. Model names must be unique in a model repository: rename "
                "one directory or set `model_name` in its BUILD file."
            )
    digest = await Get(Digest, MergeDigests(d.digest for d in directories))
    return ModelRepository(
        model_names=tuple(sorted(owners)), directories=tuple(directories), digest=digest
    )


def rules() -> Iterable:
    return collect_rules()
