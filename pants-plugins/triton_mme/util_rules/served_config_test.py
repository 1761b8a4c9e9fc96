"""The config Triton serves, from real files: ONNX graphs read by the `[onnx-graph]` tool (built
from the `model-tools` lockfile, as in the repo) and model.py files read for
`auto_complete_config`; and `./pants lint` on an ensemble over an ONNX model that leaves its
tensors to Triton."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from pants.backend.python.util_rules import pex
from pants.core.goals.lint import LintResult
from pants.core.util_rules import source_files, system_binaries
from pants.core.util_rules.partitions import _EmptyMetadata
from pants.engine.addresses import Address
from pants.testutil.rule_runner import QueryRule, RuleRunner
from triton_mme import dependency_inference
from triton_mme.goals import lint, package
from triton_mme.goals.lint import TritonConfigLintRequest
from triton_mme.target_types import (
    ModelPythonEnvField,
    TritonEnsembleTarget,
    TritonModelTarget,
    TritonPythonEnvTarget,
)
from triton_mme.testutil import FLOAT, local_pex_cli_options, onnx_model_bytes
from triton_mme.util_rules import onnx_graph, repository, validation
from triton_mme.util_rules.env import model_env
from triton_mme.util_rules.repository import TritonModelFieldSet
from triton_mme.util_rules.served_config import ServedConfigRequest, ServedModelConfig
from triton_mme.util_rules.validation import ModelValidation, ModelValidationRequest

CA_CERTS = "/etc/ssl/certs/ca-certificates.crt"
LOCKFILE = "3rdparty/python/model-tools.lock"

# A network that leaves everything to Triton: the graph has input `x` (FLOAT, [batch, 4]) and
# output `fc6_1` (FLOAT, [batch, 2]).
NET_GRAPH = onnx_model_bytes([("x", FLOAT, ["batch", 4])], [("fc6_1", FLOAT, ["batch", 2])])
PIPELINE = dedent(
    """\
    name: "pipeline"
    platform: "ensemble"
    max_batch_size: 4
    input [{ name: "IMAGE", data_type: TYPE_FP32, dims: [4] }]
    output [{ name: "SCORES", data_type: TYPE_FP32, dims: [2] }]
    ensemble_scheduling {
      step [{
        model_name: "net"
        input_map { key: "x", value: "IMAGE" }
        output_map { key: "fc6", value: "SCORES" }
      }]
    }
    """
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    options = local_pex_cli_options()
    if options is None:
        pytest.skip("the `pex` tool that ./pants builds is not on this machine: run ./pants once")
    rule_runner = RuleRunner(
        rules=[
            *validation.rules(),
            *lint.rules(),
            *dependency_inference.rules(),
            *repository.rules(),
            *onnx_graph.rules(),
            *pex.rules(),
            *source_files.rules(),
            *system_binaries.rules(),
            package.check_model_artifact_version,
            model_env.find_model_env,
            model_env.check_model_env,
            TritonModelTarget.register_plugin_field(ModelPythonEnvField),
            QueryRule(ServedModelConfig, [ServedConfigRequest]),
            QueryRule(ModelValidation, [ModelValidationRequest]),
            QueryRule(LintResult, [TritonConfigLintRequest.Batch]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget, TritonPythonEnvTarget],
        ca_certs_path=CA_CERTS,
    )
    rule_runner.set_options(
        [
            *options,
            "--python-enable-resolves",
            f"--python-resolves={{'model-tools': '{LOCKFILE}'}}",
            "--python-interpreter-constraints=['CPython==3.11.*']",
            "--python-bootstrap-search-path=['<PYENV>', '<PATH>']",
            "--subprocess-environment-env-vars=['PIP_CONFIG_FILE=/dev/null']",
        ],
        env_inherit={"PATH", "PYENV_ROOT", "HOME"},
    )
    rule_runner.write_files({LOCKFILE: Path(LOCKFILE).read_text()})
    return rule_runner


def write_net(rule_runner: RuleRunner, config: str = "", **extra: str | bytes) -> None:
    rule_runner.write_files(
        {
            "models/net/BUILD": "triton_model(ensemble_member_only=True)",
            "models/net/config.pbtxt": config,
            "models/net/1/model.onnx": NET_GRAPH,
            **extra,
        }
    )


def served(rule_runner: RuleRunner, spec: str) -> ServedModelConfig:
    return rule_runner.request(ServedModelConfig, [ServedConfigRequest(Address(spec))])


def test_an_empty_config_is_completed_from_the_graph(rule_runner: RuleRunner) -> None:
    write_net(rule_runner)
    net = served(rule_runner, "models/net")
    assert net.fields is not None and net.fields.decided_by == "the file 1/model.onnx"
    (version,) = net.versions
    assert version.version == 1 and version.graph is not None
    config = version.config
    assert (config.platform, config.max_batch_size) == ("onnxruntime_onnx", 4)
    assert [(t.name, t.dims, t.from_graph) for t in (*config.inputs, *config.outputs)] == [
        ("x", (4,), "1/model.onnx"),
        ("fc6_1", (2,), "1/model.onnx"),
    ]
    validation = rule_runner.request(
        ModelValidation, [ModelValidationRequest(Address("models/net"))]
    )
    assert validation.errors == ()


def test_lint_refuses_a_step_that_maps_a_tensor_the_graph_lacks(rule_runner: RuleRunner) -> None:
    write_net(
        rule_runner,
        'platform: "onnxruntime_onnx"\n',
        **{
            "models/pipeline/BUILD": "triton_ensemble()",
            "models/pipeline/config.pbtxt": PIPELINE,
            "models/pipeline/model_version.txt": "1.0.0\n",
        },
    )
    field_sets = tuple(
        TritonModelFieldSet.create(rule_runner.get_target(Address(spec)))
        for spec in ("models/net", "models/pipeline")
    )
    batch = TritonConfigLintRequest.Batch("triton-config", field_sets, _EmptyMetadata())
    result = rule_runner.request(LintResult, [batch])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "models/pipeline/config.pbtxt:10: step 1 (`net`): output_map key `fc6` is not an output "
        "of model `net` (its outputs: the graph's output `fc6_1`, which config.pbtxt leaves to "
        "Triton; graph: models/net/1/model.onnx). Did you mean `fc6_1`?",
        "models/pipeline/config.pbtxt:5: ensemble output `SCORES` is not written by any step: "
        'map a step output to it (`output_map { key: "<output>" value: "SCORES" }`).',
    ]
    # Mapped to the graph's output, the pipeline passes.
    rule_runner.write_files(
        {"models/pipeline/config.pbtxt": PIPELINE.replace('key: "fc6"', 'key: "fc6_1"')}
    )
    result = rule_runner.request(LintResult, [batch])
    assert (result.exit_code, result.stdout) == (0, "")


def test_python_models_and_auto_complete_config(rule_runner: RuleRunner) -> None:
    # Triton's qa case autofill_noplatform_success/python/incomplete_output (its config.pbtxt),
    # with a model.py whose auto_complete_config fills in the rest.
    config = dedent(
        """\
        name: "incomplete_output"

        output [
          {
            name: "OUTPUT0"
            data_type: TYPE_FP32
          },
          {
            name: "OUTPUT1"
            dims: [ 4 ]
          }
        ]
        """
    )
    model_py = dedent(
        """\
        class TritonPythonModel:
            @staticmethod
            def auto_complete_config(auto_complete_model_config):
                return auto_complete_model_config
        """
    )
    rule_runner.write_files(
        {
            "models/incomplete_output/BUILD": "triton_model(ensemble_member_only=True)",
            "models/incomplete_output/config.pbtxt": config,
            "models/incomplete_output/1/model.py": model_py,
        }
    )
    address = Address("models/incomplete_output")
    (version,) = served(rule_runner, "models/incomplete_output").versions
    assert version.auto_complete is not None and version.auto_complete.line == 3
    assert rule_runner.request(ModelValidation, [ModelValidationRequest(address)]).errors == ()
    rule_runner.write_files(
        {"models/incomplete_output/1/model.py": "class TritonPythonModel:\n    pass\n"}
    )
    errors = rule_runner.request(ModelValidation, [ModelValidationRequest(address)]).errors
    assert [e.split(": ", 1)[1].split(":")[0] for e in errors] == [
        "output `OUTPUT0` has no `dims`",
        "output `OUTPUT1` has no `data_type`",
    ]


def test_a_model_whose_backend_nothing_decides(rule_runner: RuleRunner) -> None:
    # Triton's qa case autofill_noplatform/custom/no_delimiter: an empty config.pbtxt, and a
    # version folder without a model file Triton recognizes.
    rule_runner.write_files(
        {
            "models/no_delimiter/BUILD": "triton_model(ensemble_member_only=True)",
            "models/no_delimiter/config.pbtxt": "",
            "models/no_delimiter/1/weights.bin": "",
        }
    )
    address = Address("models/no_delimiter")
    (error,) = rule_runner.request(ModelValidation, [ModelValidationRequest(address)]).errors
    assert error.startswith(
        'models/no_delimiter/config.pbtxt:1: Triton refuses this model: "Could not determine '
        "backend for model 'no_delimiter' with no backend in model configuration. Expected "
        "model name of the form 'model.<backend_name>'.\" config.pbtxt sets no `platform`, "
        "`backend` or `default_model_filename`, `models/no_delimiter/1/`, the first folder "
        "Triton looks in, holds none of the model files it recognizes"
    )
