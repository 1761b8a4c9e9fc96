"""Which env a python model runs in, and the hook that puts its archive into the model directory.

The archive goes to the path config.pbtxt's `EXECUTION_ENV_PATH` names (relative to the model
directory), so every tarball holding the model, and every test serving it, carries the env.

The env a model ships is also one of its dependencies (inferred below, from the same walk), so
Pants' `--changed-since ... --changed-dependents=transitive` goes from a changed requirements or
lock file to the env, then to every model that ships it and every ensemble shipping those.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from pants.engine.addresses import Address, AddressInput
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.fs import CreateDigest, Digest, DigestEntries, FileEntry
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    AllTargets,
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule
from triton_mme.util_rules.env.build import PythonEnvArchive, PythonEnvArchiveRequest
from triton_mme.util_rules.env.checks import (
    EnvCheckError,
    check_env_declared,
    execution_env_path,
)
from triton_mme.target_types import (
    ModelPythonEnvField,
    TritonConfigSourceField,
    TritonDependenciesField,
    TritonPythonEnvTarget,
)
from triton_mme.util_rules.repository import (
    ModelFiles,
    ModelFilesRequest,
    TritonModelConfig,
    TritonModelFieldSet,
)

PYTHON_BACKEND = "python"


class PythonEnvModelFilesRequest(ModelFilesRequest):
    required_fields = (ModelPythonEnvField,)


@dataclass(frozen=True)
class ModelEnvRequest(EngineAwareParameter):
    model: Address
    named_env: str | None  # the model's `python_env` field

    def debug_hint(self) -> str:
        return self.model.spec


@dataclass(frozen=True)
class ModelEnv:
    """The env target of a model, or None."""

    env: Address | None


def nearest_env(model: Address, candidates: Iterable[Address]) -> Address | None:
    """The one env in the model's directory or below it; else, walking up from the model, the
    env of the first directory that has one in itself or in a folder directly inside it (so a
    `python_env/` folder beside the model directories of a group counts)."""
    model_dir = model.spec_path
    candidates = sorted(set(candidates))
    found = [
        a for a in candidates if a.spec_path == model_dir or a.spec_path.startswith(model_dir + "/")
    ]
    directory = model_dir
    while not found and directory:
        directory = os.path.dirname(directory)
        found = [a for a in candidates if directory in (a.spec_path, os.path.dirname(a.spec_path))]
    if len(found) > 1:
        raise EnvCheckError(
            f"{model} could use any of the envs {', '.join(str(a) for a in found)}: name one "
            'with `python_env="..."` in its BUILD file.'
        )
    return found[0] if found else None


@rule
async def find_model_env(request: ModelEnvRequest, all_targets: AllTargets) -> ModelEnv:
    named = request.named_env
    if named:
        env = await Get(
            Address,
            AddressInput,
            AddressInput.parse(
                named,
                relative_to=request.model.spec_path,
                description_of_origin=f"the `python_env` field of {request.model}",
            ),
        )
        return ModelEnv(env)
    envs = [t.address for t in all_targets if isinstance(t, TritonPythonEnvTarget)]
    return ModelEnv(nearest_env(request.model, envs))


@dataclass(frozen=True)
class ModelEnvCheckRequest:
    field_set: TritonModelFieldSet
    config: TritonModelConfig
    named_env: str | None  # the model's `python_env` field


@dataclass(frozen=True)
class CheckedModelEnv:
    """The env a model ships and where (`archive_path`), or `problem` when that is wrong."""

    env: Address | None
    archive_path: str | None
    problem: str | None = None


@rule
async def check_model_env(request: ModelEnvCheckRequest) -> CheckedModelEnv:
    """A python model has both an env target and `EXECUTION_ENV_PATH`, or neither."""
    try:
        archive_path = execution_env_path(request.config.parsed)
    except EnvCheckError as e:
        return CheckedModelEnv(None, None, str(e))
    if request.config.parsed.backend != PYTHON_BACKEND and not archive_path:
        return CheckedModelEnv(None, None)
    model_env = await Get(ModelEnv, ModelEnvRequest(request.field_set.address, request.named_env))
    try:
        check_env_declared(
            request.field_set.address, request.config.path, archive_path, model_env.env
        )
    except EnvCheckError as e:
        return CheckedModelEnv(None, None, str(e))
    return CheckedModelEnv(model_env.env, archive_path)


@rule
async def python_env_model_files(request: PythonEnvModelFilesRequest) -> ModelFiles:
    named_env = request.target[ModelPythonEnvField].value
    checked = await Get(
        CheckedModelEnv, ModelEnvCheckRequest(request.field_set, request.config, named_env)
    )
    if checked.problem:
        raise EnvCheckError(checked.problem)
    if checked.env is None or checked.archive_path is None:
        return ModelFiles(await Get(Digest, CreateDigest(())))
    archive = await Get(PythonEnvArchive, PythonEnvArchiveRequest(checked.env))
    entries = await Get(DigestEntries, Digest, archive.digest)
    placed = await Get(
        Digest,
        CreateDigest(
            FileEntry(checked.archive_path, e.file_digest)
            for e in entries
            if isinstance(e, FileEntry)
        ),
    )
    return ModelFiles(placed)


@dataclass(frozen=True)
class ModelEnvInferenceFieldSet(FieldSet):
    required_fields = (TritonConfigSourceField, ModelPythonEnvField, TritonDependenciesField)

    config: TritonConfigSourceField
    python_env: ModelPythonEnvField
    dependencies: TritonDependenciesField


class InferModelEnvDependency(InferDependenciesRequest):
    infer_from = ModelEnvInferenceFieldSet


@rule(desc="Infer the conda env of Triton python models")
async def infer_model_env_dependency(request: InferModelEnvDependency) -> InferredDependencies:
    """The env the model ships, found as packaging finds it; none when that finds a problem
    (validation reports it, naming the config line)."""
    field_set = request.field_set
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(field_set.address, description_of_origin="Triton env inference"),
    )
    model_field_set = TritonModelFieldSet.create(wrapped.target)
    config = await Get(TritonModelConfig, TritonModelFieldSet, model_field_set)
    checked = await Get(
        CheckedModelEnv, ModelEnvCheckRequest(model_field_set, config, field_set.python_env.value)
    )
    return InferredDependencies([checked.env] if checked.env and not checked.problem else [])


def rules() -> Iterable:
    return (
        *collect_rules(),
        UnionRule(ModelFilesRequest, PythonEnvModelFilesRequest),
        UnionRule(InferDependenciesRequest, InferModelEnvDependency),
    )
