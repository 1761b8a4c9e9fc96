"""Models Triton refuses at load fail before they ship, end to end.

- Six ONNX models whose config.pbtxt disagrees with the graph (data type, dims, an input the graph
  lacks, a graph input the config leaves out, an output the graph lacks, batching on a graph with
  a fixed first dimension) fail `./pants lint` and `./pants package`, each named by file and
  tensor; the stand-in image refuses each at load, as NGC's onnxruntime backend does (one
  container for all six).
- A deployable python model with no `triton_test` whose `initialize` raises fails `./pants test`
  with Triton's own message, and its result is not recorded as passed.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from textwrap import dedent

import onnx
from onnx import TensorProto, helper
from pants_repo import Repo, shared_pants_repo
from ports import free_port
from standin import docker

FLOAT = TensorProto.FLOAT


def onnx_model(inputs: dict[str, list], outputs: dict[str, list]) -> bytes:
    """A FLOAT graph: the sum of its inputs (Identity of one) under every output name."""
    names = list(inputs)
    nodes = [helper.make_node("Sum", names, ["total"])] if len(names) > 1 else []
    source = "total" if nodes else names[0]
    nodes += [helper.make_node("Identity", [source], [name]) for name in outputs]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, FLOAT, s) for n, s in outputs.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def config(inputs: str, outputs: str, max_batch_size: int = 8) -> str:
    return (
        f'platform: "onnxruntime_onnx"\nmax_batch_size: {max_batch_size}\n'
        f"input [{inputs}]\noutput [{outputs}]\n"
    )


X = '{ name: "X", data_type: TYPE_FP32, dims: [4] }'
Y = '{ name: "Y", data_type: TYPE_FP32, dims: [4] }'
Q = '{ name: "Q", data_type: TYPE_FP32, dims: [4] }'
BATCHED = onnx_model({"X": ["batch", 4]}, {"Y": ["batch", 4]})

# name: (config.pbtxt, graph, what the linter says, what the stand-in (Triton) says)
ONNX_CASES = {
    "onnx_dtype": (
        config(X.replace("TYPE_FP32", "TYPE_INT32"), Y),
        BATCHED,
        'input "X" has data_type: TYPE_INT32, but the ONNX graph\'s is FLOAT',
        "configuration expects datatype TYPE_INT32 for input 'X', model provides TYPE_FP32",
    ),
    "onnx_dims": (
        config(X.replace("[4]", "[5]"), Y),
        BATCHED,
        'input "X" has dims: [5], which is [-1, 5]',
        "the model expects 2 dimensions (shape [-1,4]) but the model configuration specifies 2 "
        "dimensions (an initial batch dimension because max_batch_size > 0 followed by the "
        "explicit tensor shape, making complete shape [-1,5])",
    ),
    "onnx_unknown_input": (
        config(f"{X}, {Q}", Y),
        BATCHED,
        'input "Q" is not an input of the ONNX graph',
        "configuration expects 2 inputs, model provides 1",
    ),
    "onnx_missing_input": (
        config(X, Y),
        onnx_model({"X": ["batch", 4], "Z": ["batch", 4]}, {"Y": ["batch", 4]}),
        'the ONNX graph has the input "Z"',
        "configuration expects 1 inputs, model provides 2",
    ),
    "onnx_unknown_output": (
        config(X, Q),
        BATCHED,
        'output "Q" is not an output of the ONNX graph',
        "unexpected inference output 'Q', allowed outputs are: Y",
    ),
    "onnx_fixed_batch": (
        config(X, Y),
        onnx_model({"X": [1, 4]}, {"Y": [1, 4]}),
        "but the ONNX graph fixes its first dimension (shape [1, 4])",
        "the first dimension must be -1; but shape expected by the model is [1,4]",
    ),
}

RAISES_CONFIG = dedent(
    """\
    backend: "python"
    max_batch_size: 0
    input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
    """
)
RAISES_MODEL = dedent(
    """\
    class TritonPythonModel:
        def initialize(self, args):
            raise RuntimeError("the raises fixture found no weights")
    """
)


def write_onnx_fixtures(repo: Repo) -> None:
    repo.write(
        {
            "fixtures/good/BUILD": "triton_model()",
            "fixtures/good/config.pbtxt": config(X, Y),
            "fixtures/good/model_version.txt": "1.0.0\n",
        }
    )
    (repo.root / "fixtures/good/1").mkdir(parents=True)
    (repo.root / "fixtures/good/1/model.onnx").write_bytes(BATCHED)
    for name, (text, graph, _, _) in ONNX_CASES.items():
        repo.write(
            {
                f"fixtures/{name}/BUILD": "triton_model()",
                f"fixtures/{name}/config.pbtxt": text,
                f"fixtures/{name}/model_version.txt": "1.0.0\n",
            }
        )
        (repo.root / f"fixtures/{name}/1").mkdir()
        (repo.root / f"fixtures/{name}/1/model.onnx").write_bytes(graph)


def load_errors_in_standin(repo: Repo, names: list[str]) -> dict[str, str | None]:
    """Load each model directory of fixtures/ in one stand-in container; Triton's error by name."""
    port = free_port()
    container = docker(
        *("create", "--label", repo.label, "--shm-size=1g"),
        *("-p", f"127.0.0.1:{port}:8000", repo.triton_image()),
        *("tritonserver", "--model-repository=/models", "--model-control-mode=explicit"),
    ).stdout.strip()
    try:
        docker("cp", f"{repo.root}/fixtures/.", f"{container}:/models")
        docker("start", container)
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/live", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            log = docker("logs", container, check=False).stderr[-4000:]
            raise AssertionError(f"Triton did not answer /v2/health/live:\n{log}")
        errors: dict[str, str | None] = {}
        for name in names:
            url = f"http://127.0.0.1:{port}/v2/repository/models/{name}/load"
            try:
                urllib.request.urlopen(
                    urllib.request.Request(url, method="POST", data=b""), timeout=120
                )
                errors[name] = None
            except urllib.error.HTTPError as e:
                errors[name] = json.loads(e.read())["error"]
        return errors
    finally:
        docker("rm", "-f", "-v", container, check=False)


def test_onnx_mismatches_fail_lint_package_and_the_standin(tmp_path: Path) -> None:
    repo = shared_pants_repo(tmp_path)
    write_onnx_fixtures(repo)

    # The config rules only: the fixtures are not in the canonical layout of `fmt`.
    lint, _ = repo.pants("lint", "--only=triton-config", "fixtures::")
    assert lint.returncode != 0
    for name, (_, _, linter_says, _) in ONNX_CASES.items():
        assert f"fixtures/{name}/config.pbtxt:" in lint.stdout + lint.stderr
        assert linter_says in lint.stdout + lint.stderr, name
    assert "fixtures/good/" not in lint.stdout + lint.stderr

    package, _ = repo.pants("package", "fixtures/onnx_dims")
    assert package.returncode != 0
    assert 'fixtures/onnx_dims/config.pbtxt:3: input "X" has dims: [5]' in package.stderr
    assert not (repo.root / "dist/fixtures/onnx_dims").exists()

    errors = load_errors_in_standin(repo, ["good", *ONNX_CASES])
    assert errors.pop("good") is None
    for name, (_, _, _, triton_says) in ONNX_CASES.items():
        assert triton_says in (errors[name] or ""), name
    assert repo.leftover_containers() == []


def test_a_model_without_tests_that_cannot_load_fails_the_run(tmp_path: Path) -> None:
    repo = shared_pants_repo(tmp_path)
    repo.write(
        {
            "fixtures/raises/BUILD": "triton_model()",
            "fixtures/raises/config.pbtxt": RAISES_CONFIG,
            "fixtures/raises/1/model.py": RAISES_MODEL,
            "fixtures/raises/model_version.txt": "1.0.0\n",
        }
    )
    result, created = repo.pants_test("fixtures::")
    assert result.returncode != 0
    assert created == 1
    assert "FAILED fixtures/raises:raises (model `raises`): no cases ran" in result.stderr
    assert "model `raises` failed to load in Triton:" in result.stderr
    assert "RuntimeError: the raises fixture found no weights" in result.stderr
    (report,) = (repo.root / "dist/test").rglob("fixtures.raises*.json")
    assert json.loads(report.read_text())["passed"] is False
    assert repo.leftover_containers() == []
