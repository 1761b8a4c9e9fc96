"""Running the config.pbtxt checks of the `config` package on targets.

`ModelValidationRequest` checks one model directory (and, for an ensemble, its steps against the
step models' configs). `ValidatedModelRepositoryRequest` is what `package` and `test` ask for: the
model repository of some targets, refused with every problem listed when any model is invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from pants.engine.addresses import Address, Addresses
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    TransitiveTargets,
    TransitiveTargetsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.logging import LogLevel
from triton_mme.dependency_inference import TritonModelNameMapping
from triton_mme.config.checks import check_model_directory
from triton_mme.config.endpoint import check_backend_from_name, check_invocable
from triton_mme.config.ensemble import check_ensemble_steps, find_cycle
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.onnx_graph import check_onnx_graph
from triton_mme.config.parse import ModelConfigFile
from triton_mme.config.files import ModelDirectoryListing
from triton_mme.target_types import TritonEnsembleMemberOnlyField
from triton_mme.util_rules import served_config
from triton_mme.util_rules.served_config import (
    ModelConfigRequest,
    ServedConfigRequest,
    ServedModelConfig,
    served_steps,
)
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


@rule(desc="Validate a Triton model config", level=LogLevel.DEBUG)
async def validate_model(
    request: ModelValidationRequest, mapping: TritonModelNameMapping
) -> ModelValidation:
    address = request.address
    wrapped, config, listing, served = await MultiGet(
        Get(
            WrappedTarget, WrappedTargetRequest(address, description_of_origin="Triton validation")
        ),
        Get(TritonModelConfig, ModelConfigRequest(address)),
        Get(ModelDirectoryListing, ModelConfigRequest(address)),
        # The config Triton serves: for an ONNX model, completed from the graph (fetched
        # weights are cached, so lint and package read each graph once).
        Get(ServedModelConfig, ServedConfigRequest(address)),
    )
    errors = check_model_directory(
        config.parsed,
        model_name=config.model_name,
        target_alias=wrapped.target.alias,
        listing=listing,
        served=[version.config for version in served.versions],
    )
    for version in served.versions:
        errors.extend(version.problems)
        if version.graph is not None:
            errors.extend(check_onnx_graph(version.config, version.graph))
    called = await _called_models(config, mapping) if config.is_ensemble else {}
    if config.is_ensemble:
        errors.extend(await _ensemble_errors(config, mapping, called))
    if not wrapped.target.get(TritonEnsembleMemberOnlyField).value:
        errors.extend(check_invocable(config.parsed, config.model_name, called))
    errors.extend(check_backend_from_name(config.parsed, served.fields))
    # Versions completed alike fail alike: each message once.
    return ModelValidation(address, tuple(dict.fromkeys(str(e) for e in errors)))


async def _ensemble_errors(
    config: TritonModelConfig,
    mapping: TritonModelNameMapping,
    called: Mapping[str, ModelConfigFile],
) -> list[ModelConfigError]:
    _, members = await served_steps(config.parsed, mapping)
    errors = check_ensemble_steps(config.parsed, members)
    step_models = {name: member.step_model_names() for name, member in called.items()}
    cycle = find_cycle(
        config.model_name, {**step_models, config.model_name: config.parsed.step_model_names()}
    )
    if cycle:
        step = next(s for s in config.parsed.steps if s.model_name == cycle[1])
        errors.append(
            ModelConfigError(
                config.path,
                f"{step.where}: ensembles call each other in a circle "
                f"({' -> '.join(f'`{n}`' for n in cycle)}), so Triton loads none of them: "
                "remove the step that closes the circle.",
                line=step.line,
            )
        )
    return errors


async def _called_models(
    config: TritonModelConfig, mapping: TritonModelNameMapping
) -> dict[str, ModelConfigFile]:
    """The configs of every model an ensemble calls, directly or through nested ensembles."""
    called: dict[str, ModelConfigFile] = {}
    frontier = list(config.parsed.step_model_names())
    while frontier:
        names = sorted(
            {n for n in frontier if n in mapping and n not in called and n != config.model_name}
        )
        configs = await MultiGet(
            Get(TritonModelConfig, ModelConfigRequest(mapping[n])) for n in names
        )
        called.update((n, c.parsed) for n, c in zip(names, configs))
        frontier = [m for c in configs for m in c.parsed.step_model_names()]
    return called


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
            f"Invalid Triton model config(s) for {roots}; Triton or the endpoint would refuse "
            "them:\n\n" + "\n".join(f"- {error}" for error in errors)
        )
    return ValidatedModelRepository(
        await Get(ModelRepository, ModelRepositoryRequest(request.roots))
    )


def rules() -> Iterable:
    return (*collect_rules(), *served_config.rules())
