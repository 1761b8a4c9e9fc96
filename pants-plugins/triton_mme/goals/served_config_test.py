from __future__ import annotations

from textwrap import dedent

import pytest
from pants.backend.python.util_rules import pex
from pants.core.target_types import GenericTarget
from pants.core.util_rules import source_files, system_binaries
from pants.testutil.rule_runner import GoalRuleResult, RuleRunner
from triton_mme.goals import served_config
from triton_mme.goals.served_config import ServedConfig
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.testutil import PIPELINE_CONFIG, QA_INCOMPLETE_INPUT
from triton_mme.util_rules import onnx_graph, repository, validation

# The model.py of Triton's qa case autofill_noplatform_success/python/incomplete_input (from
# qa/L0_model_config/ of triton-inference-server/server; its config.pbtxt is in testutil).
QA_INCOMPLETE_INPUT_MODEL = dedent(
    """\
    class TritonPythonModel:
        @staticmethod
        def auto_complete_config(auto_complete_model_config):
            input0 = {"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]}
            output0 = {"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]}
            output1 = {"name": "OUTPUT1", "data_type": "TYPE_FP32", "dims": [4]}

            auto_complete_model_config.set_max_batch_size(0)
            auto_complete_model_config.add_input(input0)
            auto_complete_model_config.add_output(output0)
            auto_complete_model_config.add_output(output1)

            return auto_complete_model_config

        def execute(self, requests):
            pass
    """
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *served_config.rules(),
            *validation.rules(),
            *repository.rules(),
            # The ONNX graph reader's rules (no model here serves ONNX, so none runs).
            *onnx_graph.rules(),
            *pex.rules(),
            *source_files.rules(),
            *system_binaries.rules(),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget, GenericTarget],
    )


def run(rule_runner: RuleRunner, *specs: str) -> GoalRuleResult:
    return rule_runner.run_goal_rule(ServedConfig, args=list(specs))


def test_prints_what_triton_fills_in_and_what_is_left_to_model_py(
    rule_runner: RuleRunner,
) -> None:
    rule_runner.write_files(
        {
            "models/incomplete_input/BUILD": "triton_model()",
            "models/incomplete_input/config.pbtxt": QA_INCOMPLETE_INPUT,
            "models/incomplete_input/1/model.py": QA_INCOMPLETE_INPUT_MODEL,
        }
    )
    result = run(rule_runner, "models/incomplete_input")
    assert result.exit_code == 0
    assert result.stdout == dedent(
        """\
        # models/incomplete_input/config.pbtxt as Triton serves `incomplete_input` (version
        # 1). A comment above each field config.pbtxt leaves out says who fills it in at load;
        # the comments of config.pbtxt are not kept.
        #
        # Left to model.py's auto_complete_config (models/incomplete_input/1/model.py:3),
        # which Triton runs at load: it may add inputs and outputs, fill in their dims and
        # data_type, raise max_batch_size, and set dynamic batching and `decoupled`; what it
        # sets is not shown. Its body calls set_max_batch_size, add_input, add_output.

        name: "incomplete_input"
        # Not in config.pbtxt: filled in by Triton's core, from the file 1/model.py.
        backend: "python"

        input [
          {
            name: "INPUT1"
            data_type: TYPE_FP32
            dims: [ 4 ]
          }
        ]

        # Not in config.pbtxt: filled in by Triton's core, from the file 1/model.py.
        default_model_filename: "model.py"
        """
    )


def test_an_ensemble_and_no_model(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/pipeline/BUILD": "triton_ensemble()",
            "models/pipeline/config.pbtxt": PIPELINE_CONFIG,
            "models/other/BUILD": "target()",
        }
    )
    result = run(rule_runner, "models/pipeline")
    assert result.stdout.startswith(
        "# models/pipeline/config.pbtxt as Triton serves `pipeline` (no version folder yet)."
    )
    assert 'platform: "ensemble"\n' in result.stdout
    nothing = run(rule_runner, "models/other")
    assert (nothing.exit_code, nothing.stdout) == (0, "")
    assert "No Triton model given" in nothing.stderr
