"""Triton models on SageMaker multi-model endpoints: targets, packaging, tests and publishing."""

from __future__ import annotations

from typing import Iterable

from pants.engine.rules import Rule
from pants.engine.target import Target
from pants.engine.unions import UnionRule
from triton_mme import dependency_inference
from triton_mme.goals import (
    check,
    fmt,
    lint,
    package,
    publish,
    record_outputs,
    run,
    run_endpoint,
    served_config,
    tailor,
    test,
)
from triton_mme.subsystems import dvc, tool
from triton_mme.subsystems.conda import CondaSubsystem
from triton_mme.subsystems.s3 import TritonPublishSubsystem
from triton_mme.subsystems.triton import TritonSubsystem
from triton_mme.target_types import (
    ModelPythonEnvField,
    TritonEnsembleTarget,
    TritonMmeEndpointTarget,
    TritonModelTarget,
    TritonPythonEnvTarget,
    TritonTestTarget,
)
from triton_mme.util_rules import (
    artifact_names,
    docker,
    onnx_graph,
    repository,
    triton_server,
    validation,
    weights,
)
from triton_mme.util_rules.env import build as env_build
from triton_mme.util_rules.env import channel as env_channel
from triton_mme.util_rules.env import lock as env_lock
from triton_mme.util_rules.env import model_env


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
        *repository.rules(),
        *artifact_names.rules(),
        *validation.rules(),
        *onnx_graph.rules(),
        *dependency_inference.rules(),
        *lint.rules(),
        *fmt.rules(),
        *tailor.rules(),
        *package.rules(),
        *check.rules(),
        *run.rules(),
        *run_endpoint.rules(),
        *TritonSubsystem.rules(),
        *publish.rules(),
        *TritonPublishSubsystem.rules(),
        *docker.rules(),
        *triton_server.rules(),
        *test.rules(),
        *record_outputs.rules(),
        *served_config.rules(),
        *CondaSubsystem.rules(),
        *tool.rules(),
        *env_channel.rules(),
        *env_lock.rules(),
        *env_build.rules(),
        *model_env.rules(),
        TritonModelTarget.register_plugin_field(ModelPythonEnvField),
        *weights.rules(),
        *dvc.rules(),
    )
