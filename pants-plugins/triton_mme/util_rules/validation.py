"""Running the config.pbtxt checks of `model_config.py` on targets.

`ModelValidationRequest` checks one model directory (and, for an ensemble, its steps against the
step models' configs). `ValidatedModelRepositoryRequest` is what `package` and `test` ask for: the
model repository of some targets, refused with every problem listed when any model is invalid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from pants.engine.addresses import Address, Addresses
from pants.engine.fs import PathGlobs, Paths
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    TransitiveTargets,
    TransitiveTargetsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.logging import LogLevel
from triton_mme.dependency_inference import TritonModelNameMapping
from triton_mme.model_config import (
    check_ensemble_steps,
    check_model_directory,
    ensemble_step_model_names,
)
from triton_mme.onnx_checks import serves_onnx
from triton_mme.util_rules.onnx_graph import OnnxGraphCheck, OnnxGraphCheckRequest
from triton_mme.util_rules.repository import (
    ModelRepository,
    ModelRepositoryRequest,
    TritonModelConfig,
    TritonModelFieldSet,
)


class InvalidTritonModel(Exception):
    pass


@dataclass(frozen=True)
class ModelValidationRequest:
    address: Address


@dataclass(frozen=True)
class ModelValidation:
    """The problems found in one model directory; none means Triton will accept its config."""

    address: Address
    errors: tuple[str, ...]


@dataclass(frozen=True)
class ModelConfigRequest:
    """The parsed config of the model target at `address`."""

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


@rule(desc="Validate a Triton model config", level=LogLevel.DEBUG)
async def validate_model(
    request: ModelValidationRequest, mapping: TritonModelNameMapping
) -> ModelValidation:
    address = request.address
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(address, description_of_origin="Triton validation")
    )
    config, entries = await MultiGet(
        Get(TritonModelConfig, ModelConfigRequest(address)),
        Get(Paths, PathGlobs([os.path.join(address.spec_path, "*")])),
    )
    message = config.message()
    text = config.text.decode("utf-8")
    errors = check_model_directory(
        config.path,
        text,
        message,
        model_name=config.model_name,
        target_alias=wrapped.target.alias,
        folder_names=[os.path.basename(d) for d in entries.dirs],
        file_names=[os.path.basename(f) for f in entries.files],
    )
    if config.is_ensemble:
        step_names = [n for n in ensemble_step_model_names(message) if n in mapping]
        member_configs = await MultiGet(
            Get(TritonModelConfig, ModelConfigRequest(mapping[n])) for n in step_names
        )
        errors.extend(
            check_ensemble_steps(
                config.path,
                text,
                message,
                {name: member.message() for name, member in zip(step_names, member_configs)},
                known_model_names=mapping.keys(),
            )
        )
    # The ONNX graph too (fetched weights are cached, so lint and package read each graph once).
    graph_check = (
        await Get(OnnxGraphCheck, OnnxGraphCheckRequest(address))
        if serves_onnx(message)
        else OnnxGraphCheck(())
    )
    return ModelValidation(address, (*(str(e) for e in errors), *graph_check.errors))


@dataclass(frozen=True)
class ValidatedModelRepositoryRequest:
    roots: Addresses


@dataclass(frozen=True)
class ValidatedModelRepository:
    """A model repository whose every model passed validation."""

    repository: ModelRepository


@rule(desc="Validate a Triton model repository", level=LogLevel.DEBUG)
async def validated_model_repository(
    request: ValidatedModelRepositoryRequest,
) -> ValidatedModelRepository:
    # Validate before the repository is assembled: that may fetch weights or build envs.
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest(request.roots))
    validations = await MultiGet(
        Get(ModelValidation, ModelValidationRequest(t.address))
        for t in transitive.closure
        if TritonModelFieldSet.is_applicable(t)
    )
    errors = sorted(error for validation in validations for error in validation.errors)
    if errors:
        roots = ", ".join(str(a) for a in request.roots)
        raise InvalidTritonModel(
            f"Invalid Triton model config(s) for {roots}; Triton would refuse to load them:\n\n"
            + "\n".join(f"- {error}" for error in errors)
        )
    return ValidatedModelRepository(
        await Get(ModelRepository, ModelRepositoryRequest(request.roots))
    )


def rules() -> Iterable:
    return collect_rules()
