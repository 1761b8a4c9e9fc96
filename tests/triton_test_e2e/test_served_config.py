"""The config Triton will serve (docs/models.md), end to end.

- An ONNX model whose config.pbtxt names only its platform, and an ensemble over it, pass
  `./pants test` with case files: the stand-in's onnxruntime backend completes the config from
  the graph as lint does.
- An ensemble over such a model that maps a tensor the graph lacks fails `./pants lint`, which
  names the graph's tensors.
- A python member whose `auto_complete_config` makes an output INT32 where the ensemble expects
  FP32 passes lint (only Triton can tell what the method does), and fails `./pants test` with the
  ensemble's `config.pbtxt:line` naming the step, whether a `triton_test` tests the ensemble or
  only the load check loads it; the result under dist/test/ holds the config Triton served.
"""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import onnx
from onnx import TensorProto, helper, numpy_helper
from pants_repo import Repo, one_step_ensemble, shared_pants_repo

import numpy as np


def add_one_graph() -> bytes:
    """Y = X + 1 over FLOAT [batch, 4]: every tensor has a variable first dimension."""
    one = numpy_helper.from_array(np.ones([4], dtype=np.float32), "ONE")
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "ONE"], ["Y"])],
        "add_one",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def fp32(name: str, data: list[list[float]]) -> dict:
    return {"name": name, "datatype": "FP32", "shape": [len(data), len(data[0])], "data": data}


def case(inputs: list[dict], outputs: list[dict]) -> str:
    return json.dumps({"inputs": inputs, "outputs": outputs}, indent=1)


def ensemble_over_net(output_key: str = "Y") -> str:
    return dedent(
        f"""\
        platform: "ensemble"
        max_batch_size: 4
        input [{{ name: "IN", data_type: TYPE_FP32, dims: [4] }}]
        output [{{ name: "OUT", data_type: TYPE_FP32, dims: [4] }}]
        ensemble_scheduling {{
          step [{{
            model_name: "net"
            model_version: -1
            input_map {{ key: "X", value: "IN" }}
            output_map {{ key: "{output_key}", value: "OUT" }}
          }}]
        }}
        """
    )


def write_net(repo: Repo, build: str) -> None:
    repo.write(
        {
            "fixtures/net/BUILD": build,
            # All Triton needs: the rest comes from the graph.
            "fixtures/net/config.pbtxt": 'platform: "onnxruntime_onnx"\n',
            "fixtures/net/model_version.txt": "1.0.0\n",
        }
    )
    (repo.root / "fixtures/net/1").mkdir(parents=True)
    (repo.root / "fixtures/net/1/model.onnx").write_bytes(add_one_graph())


def test_a_minimal_onnx_config_and_an_ensemble_over_it_pass(tmp_path: Path) -> None:
    repo = shared_pants_repo(tmp_path)
    write_net(repo, "triton_model()\ntriton_test(name='tests')\n")
    rows = [[1.0, 2.0, 3.0, 4.0], [0.0, 0.5, -1.0, 9.0]]
    plus_one = [[x + 1 for x in row] for row in rows]
    repo.write(
        {
            "fixtures/net/tests/basic.json": case([fp32("X", rows)], [fp32("Y", plus_one)]),
            "fixtures/pipeline/BUILD": (
                "triton_ensemble(dependencies=['fixtures/net'])\ntriton_test(name='tests')\n"
            ),
            "fixtures/pipeline/config.pbtxt": ensemble_over_net(),
            "fixtures/pipeline/model_version.txt": "1.0.0\n",
            "fixtures/pipeline/tests/basic.json": case([fp32("IN", rows)], [fp32("OUT", plus_one)]),
        }
    )
    result, _ = repo.pants_test("fixtures::")
    assert result.returncode == 0, result.stderr
    reports = {
        name: json.loads(next((repo.root / "dist/test").rglob(f"{name}.json")).read_text())
        for name in ("fixtures.net.tests", "fixtures.pipeline.tests")
    }
    for report in reports.values():
        assert report["passed"] and [c["passed"] for c in report["cases"]] == [True]
    # The config Triton served for the ONNX model, recorded with the result.
    served = reports["fixtures.net.tests"]["served_configs"]["net"]
    assert served["max_batch_size"] == 4
    assert [(t["name"], t["data_type"]) for t in served["input"]] == [("X", "TYPE_FP32")]
    assert [(t["name"], t["data_type"]) for t in served["output"]] == [("Y", "TYPE_FP32")]
    assert repo.leftover_containers() == []


def test_an_ensemble_mapping_a_tensor_the_graph_lacks_fails_lint(tmp_path: Path) -> None:
    repo = shared_pants_repo(tmp_path)
    write_net(repo, "triton_model()\n")
    repo.write(
        {
            "fixtures/pipeline/BUILD": "triton_ensemble(dependencies=['fixtures/net'])\n",
            "fixtures/pipeline/config.pbtxt": ensemble_over_net(output_key="fc6"),
            "fixtures/pipeline/model_version.txt": "1.0.0\n",
        }
    )
    lint, _ = repo.pants("lint", "--only=triton-config", "fixtures::")
    assert lint.returncode != 0
    assert (
        "fixtures/pipeline/config.pbtxt:10: step 1 (`net`): output_map key `fc6` is not an output "
        "of model `net` (its outputs: the graph's output `Y`, which config.pbtxt leaves to "
        "Triton; graph: fixtures/net/1/model.onnx)."
    ) in lint.stdout + lint.stderr


CASTER_MODEL = dedent(
    """\
    import numpy as np
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        @staticmethod
        def auto_complete_config(auto_complete_model_config):
            auto_complete_model_config.add_input(
                {"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [-1]}
            )
            auto_complete_model_config.add_output(
                {"name": "OUTPUT0", "data_type": "TYPE_INT32", "dims": [-1]}
            )
            return auto_complete_model_config

        def execute(self, requests):
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
                y = pb_utils.Tensor("OUTPUT0", x.astype(np.int32))
                responses.append(pb_utils.InferenceResponse([y]))
            return responses
    """
)
CAST_PIPELINE = one_step_ensemble("caster")


def test_an_auto_completed_output_the_ensemble_disagrees_with_fails_test(tmp_path: Path) -> None:
    repo = shared_pants_repo(tmp_path)
    repo.write(
        {
            "fixtures/caster/BUILD": "triton_model(ensemble_member_only=True)\n",
            "fixtures/caster/config.pbtxt": 'backend: "python"\nmax_batch_size: 0\n',
            "fixtures/caster/1/model.py": CASTER_MODEL,
            "fixtures/cast_pipeline/BUILD": (
                "triton_ensemble(dependencies=['fixtures/caster'])\ntriton_test(name='tests')\n"
            ),
            "fixtures/cast_pipeline/config.pbtxt": CAST_PIPELINE,
            "fixtures/cast_pipeline/model_version.txt": "1.0.0\n",
            # The same ensemble without a triton_test: the load check of `./pants test` fails it.
            "fixtures/untested/BUILD": "triton_ensemble(dependencies=['fixtures/caster'])\n",
            "fixtures/untested/config.pbtxt": CAST_PIPELINE,
            "fixtures/untested/model_version.txt": "1.0.0\n",
            "fixtures/cast_pipeline/tests/basic.json": case(
                [{"name": "X", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]}],
                [{"name": "Y", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]}],
            ),
        }
    )
    # Lint cannot tell what auto_complete_config fills in.
    lint, _ = repo.pants("lint", "--only=triton-config", "fixtures::")
    assert lint.returncode == 0, lint.stdout + lint.stderr

    result, _ = repo.pants_test("fixtures::")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "FAILED fixtures/cast_pipeline:tests" in output
    assert (
        "fixtures/cast_pipeline/config.pbtxt:4: ensemble output `Y`: data type mismatch: step 1 "
        "(`caster`) output `OUTPUT0` is TYPE_INT32, but TYPE_FP32 is expected."
    ) in output
    (report,) = (repo.root / "dist/test").rglob("fixtures.cast_pipeline.tests.json")
    data = json.loads(report.read_text())
    assert data["passed"] is False
    served = data["served_configs"]["caster"]
    assert [(t["name"], t["data_type"]) for t in served["output"]] == [("OUTPUT0", "TYPE_INT32")]
    assert any("step 1 (`caster`)" in e for e in data["served_config_errors"])
    assert (
        "fixtures/untested/config.pbtxt:4: ensemble output `Y`: data type mismatch: step 1 "
        "(`caster`) output `OUTPUT0` is TYPE_INT32"
    ) in output
    assert repo.leftover_containers() == []
