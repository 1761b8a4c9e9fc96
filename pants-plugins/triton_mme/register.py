"""Triton models on SageMaker multi-model endpoints: targets, packaging, tests and publishing."""

from __future__ import annotations

from typing import Iterable

from pants.engine.rules import Rule
from pants.engine.target import Target
from pants.engine.unions import UnionRule
from triton_mme import model_repository
from triton_mme.env import build as env_build
from triton_mme.env import channel as env_channel
from triton_mme.env import lock as env_lock
from triton_mme.env import model_env, tools as env_tools
from triton_mme.env.target_types import ModelPythonEnvField, TritonPythonEnvTarget
from triton_mme.subsystems.conda import CondaSubsystem
from triton_mme.subsystems.triton import TritonSubsystem
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget


def target_types() -> Iterable[type[Target]]:
    return (TritonModelTarget, TritonEnsembleTarget, TritonPythonEnvTarget)


def rules() -> Iterable[Rule | UnionRule]:
    return (
        *model_repository.rules(),
        *TritonSubsystem.rules(),
        *CondaSubsystem.rules(),
        *env_tools.rules(),
        *env_channel.rules(),
        *env_lock.rules(),
        *env_build.rules(),
        *model_env.rules(),
        TritonModelTarget.register_plugin_field(ModelPythonEnvField),
    )
