"""Ensembles checked against the configs Triton reported after loading, from real targets."""

from __future__ import annotations

import json
from textwrap import dedent

import pytest
from pants.backend.python.util_rules import pex
from pants.core.util_rules import source_files, system_binaries
from pants.engine.addresses import Address
from pants.testutil.rule_runner import QueryRule, RuleRunner
from pants.util.frozendict import FrozenDict
from triton_mme import dependency_inference
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.util_rules import loaded_config, onnx_graph, repository, served_config
from triton_mme.util_rules.loaded_config import LoadedConfigCheckRequest, LoadedConfigProblems

CASTER = dedent(
    """\
    class TritonPythonModel:
        @staticmethod
        def auto_complete_config(config):
            config.add_input({"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [-1]})
            config.add_output({"name": "OUTPUT0", "data_type": "TYPE_INT32", "dims": [-1]})
            return config
    """
)
PIPELINE = dedent(
    """\
    platform: "ensemble"
    max_batch_size: 0
    input [{ name: "X", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "Y", data_type: TYPE_FP32, dims: [-1] }]
    ensemble_scheduling {
      step [{
        model_name: "caster"
        input_map { key: "INPUT0", value: "X" }
        output_map { key: "OUTPUT0", value: "Y" }
      }]
    }
    """
)
RESULT = "models.pipe.tests"


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *loaded_config.rules(),
            *served_config.rules(),
            *dependency_inference.rules(),
            *repository.rules(),
            *onnx_graph.rules(),
            *pex.rules(),
            *source_files.rules(),
            *system_binaries.rules(),
            QueryRule(LoadedConfigProblems, [LoadedConfigCheckRequest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget],
    )


def problems(rule_runner: RuleRunner, output_type: str) -> LoadedConfigProblems:
    rule_runner.write_files(
        {
            "models/caster/BUILD": "triton_model(ensemble_member_only=True)",
            "models/caster/config.pbtxt": 'backend: "python"\n',
            "models/caster/1/model.py": CASTER,
            "models/pipe/BUILD": "triton_ensemble(dependencies=['models/caster'])",
            "models/pipe/config.pbtxt": PIPELINE,
        }
    )
    served = {
        "name": "pipe_1.0.0.caster",
        "backend": "python",
        "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": ["-1"]}],
        "output": [{"name": "OUTPUT0", "data_type": output_type, "dims": ["-1"]}],
    }
    result = {"address": "models/pipe:tests", "served_configs": {"caster": served}}
    reports = rule_runner.make_snapshot({f"{RESULT}.json": json.dumps(result)})
    return rule_runner.request(
        LoadedConfigProblems,
        [LoadedConfigCheckRequest(reports, FrozenDict({RESULT: Address("models/pipe")}))],
    )


def test_a_step_that_does_not_fit_the_served_member_fails_at_its_line(
    rule_runner: RuleRunner,
) -> None:
    (error,) = problems(rule_runner, "TYPE_INT32").by_result[RESULT]
    assert error.startswith(
        "models/pipe/config.pbtxt:4: ensemble output `Y`: data type mismatch: step 1 "
        "(`caster`) output `OUTPUT0` is TYPE_INT32, but TYPE_FP32 is expected."
    )
    assert "after its model.py's auto_complete_config ran" in error


def test_a_served_member_that_fits_passes(rule_runner: RuleRunner) -> None:
    assert not problems(rule_runner, "TYPE_FP32").by_result
