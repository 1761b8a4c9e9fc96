"""The config Triton serves for a model target: config.pbtxt completed as Triton completes it.

`ServedConfigRequest(address)` gives a `ServedModelConfig`: the backend fields Triton's core
fills in (from the config, the first version folder's model file, or the model name), and for
each version Triton loads, the config its backend completes (`config/completion.py`): from the
ONNX graph of the version's model file for onnxruntime models (read by the `[onnx-graph]`
tool, so DVC-tracked weights are fetched, once), with what model.py's `auto_complete_config`
may fill in left open for python models. Validation (`util_rules/validation.py`) checks these
configs, and `./pants served-config` prints them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

from pants.engine.addresses import Address
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.fs import DigestContents, PathGlobs, Paths
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    MultipleSourcesField,
    SourcesPaths,
    SourcesPathsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.logging import LogLevel
from triton_mme.config.backend import BackendFields, NoBackendError, complete_backend_fields
from triton_mme.config.completion import ServedVersion, serve_version
from triton_mme.config.ensemble import EnsembleMembers
from triton_mme.config.files import ModelDirectoryListing, loaded_versions
from triton_mme.config.onnx_graph import ONNX_BACKEND, ONNX_FILE_NAME
from triton_mme.config.parse import ModelConfigFile
from triton_mme.target_types import TritonVersionSourcesField, TritonWeightsField
from triton_mme.util_rules.onnx_graph import OnnxGraphs, OnnxGraphsRequest
from triton_mme.util_rules.repository import TritonModelConfig, TritonModelFieldSet

DVC_SUFFIX = ".dvc"
PYTHON_BACKEND = "python"


@dataclass(frozen=True)
class ModelConfigRequest:
    """The parsed config (or the directory listing) of the model target at `address`."""

    address: Address


@rule
async def model_config_of(request: ModelConfigRequest) -> TritonModelConfig:
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(request.address, description_of_origin="Triton validation"),
    )
    return await Get(
        TritonModelConfig, TritonModelFieldSet, TritonModelFieldSet.create(wrapped.target)
    )


@rule
async def model_directory_listing(request: ModelConfigRequest) -> ModelDirectoryListing:
    """What the model directory holds on disk, and what the model ships: its sources plus the
    files its DVC pointers name (`1/model.onnx.dvc` ships `1/model.onnx`; nothing is fetched)."""
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(request.address, description_of_origin="Triton validation"),
    )
    target = wrapped.target
    directory = request.address.spec_path
    fields: list[MultipleSourcesField] = [target[TritonVersionSourcesField]]
    if target.has_field(TritonWeightsField):
        fields.append(target[TritonWeightsField])
    entries, on_disk, *sources = await MultiGet(
        Get(Paths, PathGlobs([os.path.join(directory, "*")])),
        Get(Paths, PathGlobs([os.path.join(directory, "[0-9]*", "**")])),
        *(Get(SourcesPaths, SourcesPathsRequest(field)) for field in fields),
    )
    paths = [os.path.relpath(path, directory) for source in sources for path in source.files]
    tracked = {path[: -len(DVC_SUFFIX)] for path in paths if path.endswith(DVC_SUFFIX)}
    shipped = {path for path in paths if not path.endswith(DVC_SUFFIX)} | tracked
    return ModelDirectoryListing(
        folders=tuple(os.path.basename(d) for d in entries.dirs),
        files=tuple(os.path.basename(f) for f in entries.files),
        shipped=tuple(sorted(shipped)),
        on_disk=tuple(os.path.relpath(f, directory) for f in on_disk.files),
        tracked=tuple(sorted(tracked)),
    )


@dataclass(frozen=True)
class ServedConfigRequest(EngineAwareParameter):
    address: Address

    def debug_hint(self) -> str:
        return self.address.spec


@dataclass(frozen=True)
class ServedModelConfig:
    """A model's config as Triton serves it, for each version it loads."""

    address: Address
    model_name: str
    source: ModelConfigFile  # config.pbtxt as written
    fields: BackendFields | None  # None: Triton cannot tell the backend (validation says why)
    # One per loaded version, in version order; one with `version=None` when none is loaded
    # (an ensemble before packaging gives it `1/`, or a model missing its folder).
    versions: tuple[ServedVersion, ...]

    @property
    def latest(self) -> ModelConfigFile:
        """The config of the version an ensemble step without a pinned version calls."""
        return self.versions[-1].config

    @property
    def loaded(self) -> tuple[int, ...]:
        return tuple(v.version for v in self.versions if v.version is not None)


@rule(desc="Complete a Triton model config as Triton serves it", level=LogLevel.DEBUG)
async def served_model_config(request: ServedConfigRequest) -> ServedModelConfig:
    wrapped, config, listing = await MultiGet(
        Get(
            WrappedTarget,
            WrappedTargetRequest(request.address, description_of_origin="Triton validation"),
        ),
        Get(TritonModelConfig, ModelConfigRequest(request.address)),
        Get(ModelDirectoryListing, ModelConfigRequest(request.address)),
    )
    parsed, model_name = config.parsed, config.model_name
    try:
        fields: BackendFields | None = complete_backend_fields(
            parsed, model_name, listing.shipped, listing.tracked
        )
    except NoBackendError:
        fields = None
    versions: tuple[int | None, ...] = loaded_versions(parsed, listing.folders) or (None,)
    backend = fields.backend if fields else ""
    file_name = (fields.default_model_filename if fields else "") or ""
    graphs = OnnxGraphs(())
    if backend == ONNX_BACKEND and not parsed.is_ensemble:
        graphs = await Get(
            OnnxGraphs, OnnxGraphsRequest(wrapped.target, file_name or ONNX_FILE_NAME)
        )
    sources: dict[int, tuple[str, str]] = {}
    if backend == PYTHON_BACKEND:
        relative = {v: f"{v}/{file_name or 'model.py'}" for v in versions if v is not None}
        contents = await Get(
            DigestContents,
            PathGlobs(
                os.path.join(request.address.spec_path, path)
                for path in relative.values()
                if path in listing.shipped
            ),
        )
        by_path = {c.path: c.content.decode("utf-8", "replace") for c in contents}
        for version, path in relative.items():
            full = os.path.join(request.address.spec_path, path)
            if full in by_path:
                sources[version] = (full, by_path[full])
    return ServedModelConfig(
        address=request.address,
        model_name=model_name,
        source=parsed,
        fields=fields,
        versions=tuple(
            serve_version(
                parsed,
                model_name=model_name,
                fields=fields,
                version=version,
                graph=graphs.for_version(version) if version is not None else None,
                model_py=sources.get(version) if version is not None else None,
            )
            for version in versions
        ),
    )


async def served_steps(
    ensemble: ModelConfigFile, models: Mapping[str, Address]
) -> tuple[dict[str, ServedModelConfig], EnsembleMembers]:
    """An ensemble's step models (those of `models`, by model name) as Triton serves them, and
    the members its step rules compare with: an ONNX model's tensors may come from its graph."""
    names = [name for name in ensemble.step_model_names() if name in models]
    served = dict(
        zip(
            names,
            await MultiGet(
                Get(ServedModelConfig, ServedConfigRequest(models[name])) for name in names
            ),
        )
    )
    members = EnsembleMembers(
        configs={name: member.latest for name, member in served.items()},
        versions={name: member.loaded for name, member in served.items()},
        known_model_names=tuple(models.keys()),
        version_configs={
            name: {v.version: v.config for v in member.versions if v.version is not None}
            for name, member in served.items()
        },
    )
    return served, members


def rules() -> Iterable:
    return collect_rules()
