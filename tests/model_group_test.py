"""A new model group from files only, following docs/models.md's "Your first model group".

In a git copy of this repo with no BUILD file for the group: a python model shaped like Triton's
`add_sub` that runs in a conda env from a sibling `python_env/` folder, an ONNX network whose
weights DVC tracks, and the ensemble clients call. The steps and commands are the walkthrough's:
tailor, lock the env, `dvc add` + `dvc push` + commit, record the case outputs, fmt, test,
package. Each tarball must hold every file (configs, model.py, the env archive, the weights).
"""

from __future__ import annotations

import json
import shutil
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from checkout import copy_checkout, run_in, run_pants

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="needs Docker")

GROUP = "models/my_group"
ENV = f"{GROUP}/python_env:python_env"
PRE_CONFIG = (
    textwrap.dedent(
        """\
    # Sum and difference of two vectors (Triton's add_sub example), in the group's conda env.
    name: "my_group_pre"
    backend: "python"
    max_batch_size: 0

    input [
      {
        name: "INPUT0"
        data_type: TYPE_FP32
        dims: [ 4 ]
      },
      {
        name: "INPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    output [
      {
        name: "OUTPUT0"
        data_type: TYPE_FP32
        dims: [ 4 ]
      },
      {
        name: "OUTPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    """
    )
    + (
        'parameters { key: "EXECUTION_ENV_PATH" value { string_value: '
        '"$$TRITON_MODEL_DIRECTORY/python_env.tar.gz" } }\n'
    )
)
PRE_MODEL = textwrap.dedent(
    """\
    import numpy as np
    import six  # from the group's conda env: the Triton image has no `six`
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            assert six.PY3
            responses = []
            for request in requests:
                a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
                b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
                outputs = [
                    pb_utils.Tensor("OUTPUT0", (a + b).astype(np.float32)),
                    pb_utils.Tensor("OUTPUT1", (a - b).astype(np.float32)),
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
            return responses
    """
)
NET_CONFIG = textwrap.dedent(
    """\
    # Scales a vector by learned weights (1/model.onnx, tracked by DVC).
    name: "my_group_net"
    platform: "onnxruntime_onnx"
    max_batch_size: 0

    input [
      {
        name: "x"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    output [
      {
        name: "y"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]
    """
)
PIPELINE_CONFIG = textwrap.dedent(
    """\
    # The model clients call: SCALED = (INPUT0 + INPUT1) * weights, DIFF = INPUT0 - INPUT1.
    name: "my_group_pipeline"
    platform: "ensemble"
    max_batch_size: 0

    input [
      {
        name: "INPUT0"
        data_type: TYPE_FP32
        dims: [ 4 ]
      },
      {
        name: "INPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    output [
      {
        name: "SCALED"
        data_type: TYPE_FP32
        dims: [ 4 ]
      },
      {
        name: "DIFF"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    ensemble_scheduling {
      step [
        {
          model_name: "my_group_pre"
          model_version: -1
          input_map { key: "INPUT0" value: "INPUT0" }
          input_map { key: "INPUT1" value: "INPUT1" }
          output_map { key: "OUTPUT0" value: "sum" }
          output_map { key: "OUTPUT1" value: "DIFF" }
        },
        {
          model_name: "my_group_net"
          model_version: -1
          input_map { key: "x" value: "sum" }
          output_map { key: "y" value: "SCALED" }
        }
      ]
    }
    """
)
# The group's weights script, in tools/ (never in a version folder, which ships): the network
# y = x * weights, one initializer standing in for trained weights.
WEIGHTS = np.array([0.5, 2.0, -1.0, 0.1], dtype=np.float32)
WEIGHTS_SCRIPT = textwrap.dedent(
    """\
    \"\"\"Writes models/my_group/my_group_net/1/model.onnx: y = x * weights.\"\"\"

    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    WEIGHTS = np.array([0.5, 2.0, -1.0, 0.1], dtype=np.float32)

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "weights"], ["y"])],
        "my_group_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        initializer=[numpy_helper.from_array(WEIGHTS, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, "models/my_group/my_group_net/1/model.onnx")
    """
)
# The case files as a data scientist writes them: inputs only (outputs are recorded).
CASES = """\
{
  "inputs": [
    {"name": "INPUT0", "datatype": "FP32", "shape": [4], "data": [1.0, 2.0, 3.0, 4.0]},
    {"name": "INPUT1", "datatype": "FP32", "shape": [4], "data": [0.5, 0.5, 0.5, 0.5]}
  ]
}
"""
MEMBER_NOTE = (
    "# Shipped inside the tarball of models/my_group/my_group_pipeline; it has no "
    "model_version.txt, so it gets no tarball of its own.\n"
)
# What `./pants tailor ::` writes (docs/models.md shows the same).
BUILD_FILES = {
    "my_group_pre": MEMBER_NOTE
    + "triton_model(\n"
    + "    ensemble_member_only=True,\n"
    + '    python_env="models/my_group/python_env:python_env",\n'
    + ")\n\n"
    + 'triton_test(\n    name="tests",\n)\n',
    "my_group_net": MEMBER_NOTE + "triton_model(\n    ensemble_member_only=True,\n)\n",
    "my_group_pipeline": 'triton_ensemble()\n\ntriton_test(\n    name="tests",\n)\n',
}


def run(repo: Path, *argv: str) -> str:
    result = run_in(repo, *argv)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}"
    return result.stdout


def pants(repo: Path, *args: str) -> str:
    result = run_pants(repo, *args)
    assert result.returncode == 0, f"./pants {' '.join(args)}:\n{result.stdout}"
    return result.stdout


@pytest.fixture(scope="module")
def repo(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git clone-like copy of this checkout plus the group's files, as step 1 lays them out."""
    root = tmp_path_factory.mktemp("model-group")
    copy_checkout(checkout, root, pants_bootstrap=True)
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "checkout")
    files = {
        "python_env/BUILD": 'triton_python_env(python="3.11")\n',
        "python_env/requirements.txt": "six==1.17.0\n",
        "my_group_pre/config.pbtxt": PRE_CONFIG,
        "my_group_pre/1/model.py": PRE_MODEL,
        "my_group_pre/tests/add_sub.json": CASES,
        "my_group_net/config.pbtxt": NET_CONFIG,
        "my_group_pipeline/config.pbtxt": PIPELINE_CONFIG,
        "my_group_pipeline/model_version.txt": "1.0.0\n",
        "my_group_pipeline/tests/pipeline.json": CASES,
    }
    for path, text in files.items():
        (root / GROUP / path).parent.mkdir(parents=True, exist_ok=True)
        (root / GROUP / path).write_text(text)
    (root / "tools/make_my_group_weights.py").write_text(WEIGHTS_SCRIPT)
    (root / GROUP / "my_group_net/1").mkdir()
    pants(root, "run", "tools/make_my_group_weights.py")
    return root


def tailor_and_lock(repo: Path) -> None:
    """Steps 2 and 3: BUILD files that need no hand fix, and the env's lock."""
    pants(repo, "tailor", "::")
    for model, build in BUILD_FILES.items():
        assert (repo / GROUP / model / "BUILD").read_text() == build, model
    pants(repo, "tailor", "--check", "::")
    pants(repo, "generate-lockfiles", f"--resolve={ENV}")
    assert (repo / GROUP / "python_env/python_env.lock").is_file()


def track_weights(repo: Path) -> None:
    """Step 4: `dvc add`, `dvc push`, commit what the walkthrough says; then the weights live
    only in the committed remote (as in a fresh clone)."""
    weights = f"{GROUP}/my_group_net/1/model.onnx"
    pants(repo, "run", "3rdparty/python:dvc-cli", "--", "add", weights)
    pants(repo, "run", "3rdparty/python:dvc-cli", "--", "push")
    run(repo, "git", "add", GROUP, "tools", ".dvc-storage")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "my_group")
    assert run(repo, "git", "status", "--porcelain") == ""
    (repo / weights).unlink()


def record_cases(repo: Path) -> None:
    """Step 5: the case files get the outputs the models answer."""
    output = pants(repo, "record-outputs", f"{GROUP}::")
    assert f"+++ b/{GROUP}/my_group_pipeline/tests/pipeline.json" in output, output
    pipeline = json.loads((repo / GROUP / "my_group_pipeline/tests/pipeline.json").read_text())
    assert pipeline["inputs"] == json.loads(CASES)["inputs"]
    # SCALED is float32 (1.5, 2.5, 3.5, 4.5) * WEIGHTS, written in its shortest digits.
    assert pipeline["outputs"] == [
        {"name": "SCALED", "datatype": "FP32", "shape": [4], "data": [0.75, 5.0, -3.5, 0.45000002]},
        {"name": "DIFF", "datatype": "FP32", "shape": [4], "data": [0.5, 1.5, 2.5, 3.5]},
    ]
    scaled = np.array([1.5, 2.5, 3.5, 4.5], dtype=np.float32) * WEIGHTS
    assert np.array_equal(np.array(pipeline["outputs"][0]["data"], dtype=np.float32), scaled)
    pre = json.loads((repo / GROUP / "my_group_pre/tests/add_sub.json").read_text())
    assert [o["data"] for o in pre["outputs"]] == [[1.5, 2.5, 3.5, 4.5], [0.5, 1.5, 2.5, 3.5]]
    # Recorded once: a second run keeps them.
    again = pants(repo, "record-outputs", f"{GROUP}::")
    assert "No case file changed." in again, again


def test_a_new_group_from_files_to_tarball(repo: Path) -> None:
    tailor_and_lock(repo)
    track_weights(repo)
    record_cases(repo)

    pants(repo, "fmt", f"{GROUP}::")
    configs = {p: p.read_text() for p in (repo / GROUP).glob("*/config.pbtxt")}
    output = pants(repo, "fmt", "test", "package", f"{GROUP}::")
    assert "triton-config-fmt made no changes" in output, output
    assert {p: p.read_text() for p in configs} == configs
    results = {p.name: json.loads(p.read_text()) for p in (repo / "dist/test").glob("*/*.json")}
    for target in ("my_group_pre", "my_group_pipeline"):
        result = results[f"models.my_group.{target}.tests.json"]
        assert result["passed"] and len(result["cases"]) == 1, result

    tarball = repo / f"dist/{GROUP}/my_group_pipeline/my_group_pipeline_1.0.0.tar.gz"
    with tarfile.open(tarball) as tar:
        files = {m.name for m in tar.getmembers() if m.isfile()}
    member = "my_group_pipeline_1.0.0.my_group"
    assert files == {
        "my_group_pipeline/config.pbtxt",
        f"{member}_pre/config.pbtxt",
        f"{member}_pre/1/model.py",
        f"{member}_pre/python_env.tar.gz",
        f"{member}_net/config.pbtxt",
        f"{member}_net/1/model.onnx",
    }
