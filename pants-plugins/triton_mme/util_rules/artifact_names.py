"""The model repository of one artifact with the model names it ships under.

An ensemble's members are renamed `<artifact>.<member>` (see `config/rewrite.py`), their configs
and the ensembles' steps rewritten to match, and the result validated again; python models that
build inference requests get the `triton_mme.model_names` parameter, and literal model names in
their BLS calls are checked. A single model keeps its name: SageMaker maps it to the TargetModel.
`package` tars this repository; `test` and `run` serve it (`ShippedModelsRequest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from pants.engine.addresses import Address, Addresses
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    FileContent,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from triton_mme.config.bls_calls import builds_inference_requests, check_bls_calls
from triton_mme.config.rewrite import rewrite_config, shipped_member_name
from triton_mme.config.ensemble import EnsembleMembers, check_ensemble_steps
from triton_mme.config.parse import parse_model_config
from triton_mme.util_rules.repository import (
    ModelDirectory,
    ModelRepository,
    ModelRepositoryRequest,
)
from triton_mme.util_rules.validation import InvalidTritonModel

CONFIG_FILE = "config.pbtxt"


@dataclass(frozen=True)
class ArtifactModelsRequest(EngineAwareParameter):
    """The models of `repository` as the artifact `<model_name>_<version>` of `root` ships them."""

    repository: ModelRepository
    root: Address
    artifact: str

    def debug_hint(self) -> str:
        return self.artifact


@dataclass(frozen=True)
class ArtifactModels:
    """A model repository whose top-level directories are the names the artifact ships."""

    digest: Digest
    served_model: str  # the ensemble, or the single model: it keeps its name
    # Source model name -> name in the artifact (the same for the served model).
    shipped_names: FrozenDict[str, str]

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.shipped_names.values()))


def member_renames(
    directories: Iterable[ModelDirectory], root: Address, artifact: str
) -> dict[str, str]:
    """Source name -> shipped name of every model the artifact's ensemble needs."""
    directories = tuple(directories)
    served = next(d for d in directories if d.address == root)
    if not served.config.is_ensemble:
        return {}
    return {
        d.model_name: shipped_member_name(artifact, d.model_name)
        for d in directories
        if d.address != root
    }


def source_path(path: str, spec_paths: Mapping[str, str]) -> str:
    """The path in the repo of `path` (`<model_name>/...` in a model repository)."""
    model_name, rest = path.split("/", 1)
    return f"{spec_paths[model_name]}/{rest}" if model_name in spec_paths else path


async def _python_sources(repository: ModelRepository) -> DigestContents:
    subset = await Get(Digest, DigestSubset(repository.digest, PathGlobs(["*/**/*.py"])))
    return await Get(DigestContents, Digest, subset)


def _check_shipped_ensembles(artifact: str, configs: Mapping[str, tuple[str, str]]) -> list[str]:
    """Validation of the rewritten ensembles against the members as shipped."""
    parsed = {
        name: parse_model_config(f"{artifact}: {name}/{CONFIG_FILE} (from {source})", text)
        for name, (source, text) in configs.items()
    }
    members = EnsembleMembers(configs=parsed, versions={}, known_model_names=tuple(parsed))
    return [
        str(error)
        for config in parsed.values()
        if config.steps
        for error in check_ensemble_steps(config, members)
    ]


async def _shipped_directory(
    directory: ModelDirectory, shipped_name: str, config_text: str | None
) -> Digest:
    name = directory.model_name
    digest = directory.digest
    if config_text is not None:
        rest, config = await MultiGet(
            Get(Digest, DigestSubset(digest, PathGlobs(["**", f"!{name}/{CONFIG_FILE}"]))),
            Get(Digest, CreateDigest([FileContent(f"{name}/{CONFIG_FILE}", config_text.encode())])),
        )
        digest = await Get(Digest, MergeDigests([rest, config]))
    if shipped_name == name:
        return digest
    relative = await Get(Digest, RemovePrefix(digest, name))
    return await Get(Digest, AddPrefix(relative, shipped_name))


@rule(desc="Name the models of an artifact", level=LogLevel.DEBUG)
async def artifact_models(request: ArtifactModelsRequest) -> ArtifactModels:
    directories = request.repository.directories
    renames = member_renames(directories, request.root, request.artifact)
    shipped = {d.model_name: renames.get(d.model_name, d.model_name) for d in directories}
    sources = await _python_sources(request.repository)
    spec_paths = {d.model_name: d.address.spec_path for d in directories}
    problems = [
        problem
        for source in sources
        for problem in check_bls_calls(
            source_path(source.path, spec_paths),
            source.content.decode("utf-8", errors="replace"),
            artifact=request.artifact,
            renames=renames,
            shipped_names=shipped.values(),
        )
    ]
    if problems:
        raise InvalidTritonModel(
            f"The python models of `{request.artifact}` call models that its tarball would not "
            "hold under those names:\n\n" + "\n\n".join(f"- {p}" for p in problems)
        )
    callers = {
        source.path.split("/", 1)[0]
        for source in sources
        if builds_inference_requests(source.content.decode("utf-8", errors="replace"))
    }
    configs: dict[str, tuple[str, str]] = {}
    rewritten: dict[str, str | None] = {}
    for d in directories:
        text = d.config.parsed.text
        rewritten[d.model_name] = rewrite_config(
            d.config.path,
            text,
            name=shipped[d.model_name],
            renames=renames,
            with_model_names=d.model_name in callers,
        )
        configs[shipped[d.model_name]] = (d.config.path, rewritten[d.model_name] or text)
    errors = _check_shipped_ensembles(request.artifact, configs) if renames else []
    if errors:
        raise InvalidTritonModel(
            f"The configs of `{request.artifact}` are invalid once its member models are "
            "renamed:\n\n" + "\n".join(f"- {e}" for e in sorted(errors))
        )
    digests = [
        await _shipped_directory(d, shipped[d.model_name], rewritten[d.model_name])
        for d in directories
    ]
    return ArtifactModels(
        digest=await Get(Digest, MergeDigests(digests)),
        served_model=next(d.model_name for d in directories if d.address == request.root),
        shipped_names=FrozenDict(shipped),
    )


def artifact_name(model_name: str, version: str) -> str:
    """`<model_name>_<version>`: the tarball's name without `.tar.gz`."""
    return f"{model_name}_{version}"


@dataclass(frozen=True)
class ArtifactNameRequest(EngineAwareParameter):
    """The artifact name of the model at `address` (`goals/package.py` reads its version)."""

    address: Address

    def debug_hint(self) -> str:
        return self.address.spec


@dataclass(frozen=True)
class ArtifactName:
    model_name: str
    # None: the model has no artifact of its own (`ensemble_member_only`), or no version yet.
    version: str | None

    @property
    def name(self) -> str:
        """`<model_name>_<version>`, or the model's name when it has no version."""
        if self.version is None:
            return self.model_name
        return artifact_name(self.model_name, self.version)


@dataclass(frozen=True)
class ShippedModelsRequest(EngineAwareParameter):
    """The repository of the model at `address` as its artifact ships it, for `test` and `run`.

    A model without an artifact version is served as if its artifact were named after it.
    """

    address: Address

    def debug_hint(self) -> str:
        return self.address.spec


@rule(desc="Name the models a Triton server serves", level=LogLevel.DEBUG)
async def shipped_models(request: ShippedModelsRequest) -> ArtifactModels:
    name, repository = await MultiGet(
        Get(ArtifactName, ArtifactNameRequest(request.address)),
        Get(ModelRepository, ModelRepositoryRequest(Addresses([request.address]))),
    )
    return await Get(ArtifactModels, ArtifactModelsRequest(repository, request.address, name.name))


def rules() -> Iterable:
    return collect_rules()
