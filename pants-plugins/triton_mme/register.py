"""Triton models on SageMaker multi-model endpoints: targets, packaging, tests and publishing."""

from __future__ import annotations

from typing import Iterable

from pants.engine.rules import Rule
from pants.engine.target import Target
from pants.engine.unions import UnionRule
from triton_mme import (
    dependency_inference,
    lint,
    model_repository,
    package,
    publish,
    tailor,
    typecheck,
    validate,
    weights,
)
from triton_mme.env import build as env_build
from triton_mme.env import channel as env_channel
from triton_mme.env import lock as env_lock
from triton_mme.env import model_env
from triton_mme.env import tools as env_tools
from triton_mme.env.target_types import ModelPythonEnvField, TritonPythonEnvTarget
from triton_mme.mme import run as mme_run
from triton_mme.mme.target_types import TritonMmeEndpointTarget
from triton_mme.subsystems.conda import CondaSubsystem
from triton_mme.subsystems import dvc
from triton_mme.subsystems.s3 import TritonPublishSubsystem
from triton_mme.subsystems.triton import TritonSubsystem
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.testing import run as testing_run
from triton_mme.testing import runner, server_process
from triton_mme.testing import tailor as testing_tailor
from triton_mme.testing.target_types import TritonTestTarget


def target_types() -> Iterable[type[Target]]:
    return (
        TritonModelTarget,
        TritonEnsembleTarget,
        TritonPythonEnvTarget,
        TritonTestTarget,
        TritonMmeEndpointTarget,
    )


def rules() -> Iterable[Rule | UnionRule]:
    return (
        *model_repository.rules(),
        *validate.rules(),
        *dependency_inference.rules(),
        *lint.rules(),
        *tailor.rules(),
        *package.rules(),
        *typecheck.rules(),
        *mme_run.rules(),
        *TritonSubsystem.rules(),
        *publish.rules(),
        *TritonPublishSubsystem.rules(),
        *server_process.rules(),
        *runner.rules(),
        *testing_tailor.rules(),
        *testing_run.rules(),
        *CondaSubsystem.rules(),
        *env_tools.rules(),
        *env_channel.rules(),
        *env_lock.rules(),
        *env_build.rules(),
        *model_env.rules(),
        TritonModelTarget.register_plugin_field(ModelPythonEnvField),
        *weights.rules(),
        *dvc.rules(),
    )
