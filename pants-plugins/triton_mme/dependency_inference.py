"""Ensemble steps become dependencies: `ensemble_scheduling` names models, targets provide them.

As Pants' helm backend does for charts, one rule maps every model name in the repo to the target
that provides it; inference then looks each step's `model_name` up in that mapping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from pants.engine.addresses import Address
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    AllTargets,
    DependenciesRequest,
    ExplicitlyProvidedDependencies,
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from pants.util.strutil import bullet_list
from triton_mme.config.ensemble import unknown_model_message
from triton_mme.config.errors import ModelConfigError
from triton_mme.util_rules.repository import TritonModelConfig, TritonModelFieldSet
from triton_mme.target_types import TritonConfigSourceField, TritonDependenciesField

logger = logging.getLogger(__name__)


class AllTritonModelTargets(Targets):
    """Every `triton_model` and `triton_ensemble` target in the repo."""


@rule(desc="Find all Triton model targets", level=LogLevel.DEBUG)
def all_triton_model_targets(all_targets: AllTargets) -> AllTritonModelTargets:
    return AllTritonModelTargets(t for t in all_targets if TritonModelFieldSet.is_applicable(t))


class DuplicateTritonModelNames(Exception):
    pass


class UnknownEnsembleStepModel(Exception):
    pass


class TritonModelNameMapping(FrozenDict[str, Address]):
    """Model name -> the one target that provides it."""


@rule(desc="Map Triton model names to targets", level=LogLevel.DEBUG)
def map_triton_model_names(targets: AllTritonModelTargets) -> TritonModelNameMapping:
    owners: dict[str, list[Address]] = {}
    for target in targets:
        name = TritonModelFieldSet.create(target).resolved_model_name
        owners.setdefault(name, []).append(target.address)
    duplicates = {name: addresses for name, addresses in owners.items() if len(addresses) > 1}
    if duplicates:
        raise DuplicateTritonModelNames(
            "More than one target provides the same Triton model name; model names must be "
            "unique, since ensembles and SageMaker refer to models by name. Rename a directory "
            "or set `model_name` in one of the BUILD files:\n\n"
            + bullet_list(
                f"`{name}`: {' and '.join(str(a) for a in sorted(addresses))}"
                for name, addresses in sorted(duplicates.items())
            )
        )
    return TritonModelNameMapping(
        sorted((name, addresses[0]) for name, addresses in owners.items())
    )


@dataclass(frozen=True)
class EnsembleStepsInferenceFieldSet(FieldSet):
    required_fields = (TritonConfigSourceField, TritonDependenciesField)

    config: TritonConfigSourceField
    dependencies: TritonDependenciesField


class InferEnsembleStepDependencies(InferDependenciesRequest):
    infer_from = EnsembleStepsInferenceFieldSet


@rule(desc="Infer the step models of Triton ensembles", level=LogLevel.DEBUG)
async def infer_ensemble_step_dependencies(
    request: InferEnsembleStepDependencies, mapping: TritonModelNameMapping
) -> InferredDependencies:
    address = request.field_set.address
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(address, description_of_origin="Triton dependency inference"),
    )
    config, explicitly_provided = await MultiGet(
        Get(TritonModelConfig, TritonModelFieldSet, TritonModelFieldSet.create(wrapped.target)),
        Get(ExplicitlyProvidedDependencies, DependenciesRequest(request.field_set.dependencies)),
    )
    dependencies: set[Address] = set()
    for step in config.parsed.steps:
        if not step.model_name:
            continue  # Validation reports the step without a model.
        step_address = mapping.get(step.model_name)
        if step_address is None:
            message = unknown_model_message(
                f"{step.where} of the ensemble {address}", step.model_name, mapping.keys()
            )
            raise UnknownEnsembleStepModel(
                str(ModelConfigError(config.path, message, line=step.line))
            )
        if step_address == address:
            continue
        explicitly_provided.maybe_warn_of_ambiguous_dependency_inference(
            (step_address,),
            address,
            context=f"The Triton ensemble {address} calls model `{step.model_name}`",
            import_reference="ensemble step",
        )
        chosen = explicitly_provided.disambiguated((step_address,))
        if chosen:
            dependencies.add(chosen)
    return InferredDependencies(sorted(dependencies))


def rules() -> Iterable:
    return (
        *collect_rules(),
        UnionRule(InferDependenciesRequest, InferEnsembleStepDependencies),
    )
