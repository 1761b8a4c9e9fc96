"""Triton models on SageMaker multi-model endpoints: targets, packaging, tests and publishing."""

from __future__ import annotations

from typing import Iterable

from pants.engine.rules import Rule
from pants.engine.target import Target
from pants.engine.unions import UnionRule
from triton_mme import model_repository, weights
from triton_mme.subsystems import dvc
from triton_mme.subsystems.triton import TritonSubsystem
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget


def target_types() -> Iterable[type[Target]]:
    return (TritonModelTarget, TritonEnsembleTarget)


def rules() -> Iterable[Rule | UnionRule]:
    return (*model_repository.rules(), *TritonSubsystem.rules(), *weights.rules(), *dvc.rules())
