"""Triton models on SageMaker multi-model endpoints: targets, packaging, tests and publishing."""

from __future__ import annotations

from typing import Iterable

from pants.engine.rules import Rule
from pants.engine.target import Target
from pants.engine.unions import UnionRule
from triton_mme import model_repository
from triton_mme.subsystems.triton import TritonSubsystem
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.testing import run, runner, server_process, tailor
from triton_mme.testing.target_types import TritonTestTarget


def target_types() -> Iterable[type[Target]]:
    return (TritonModelTarget, TritonEnsembleTarget, TritonTestTarget)


def rules() -> Iterable[Rule | UnionRule]:
    return (
        *model_repository.rules(),
        *TritonSubsystem.rules(),
        *server_process.rules(),
        *runner.rules(),
        *tailor.rules(),
        *run.rules(),
    )
