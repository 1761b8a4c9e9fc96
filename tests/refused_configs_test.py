"""Configs Triton refuses are refused by `./pants lint` too, and a close valid one passes both.

Each model below is a python model whose config breaks one of Triton's rules (and only that
one); the stand-in Triton is asked to load each, in one container, and `./pants lint` runs on the
same directories in a copy of this checkout.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from textwrap import dedent

from checkout import copy_checkout, run_pants
from standin import serving

MODEL_PY = dedent(
    """\
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            return [
                pb_utils.InferenceResponse(
                    [pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())]
                )
                for r in requests
            ]
    """
)
IO = (
    'input [{ name: "IN", data_type: TYPE_FP32, dims: [6] }]\n'
    'output [{ name: "OUT", data_type: TYPE_FP32, dims: [6] }]\n'
)
BASE = 'backend: "python"\nmax_batch_size: 8\n'
START = '{ name: "S", control [{ kind: CONTROL_SEQUENCE_START, int32_false_true: [0, 1] }] }'

REFUSED = {
    "negative_batch": 'backend: "python"\nmax_batch_size: -1\n' + IO,
    "no_data_type": BASE
    + 'input [{ name: "IN", dims: [6] }]\n'
    + 'output [{ name: "OUT", data_type: TYPE_FP32, dims: [6] }]\n',
    "reshape_mismatch": BASE
    + 'input [{ name: "IN", data_type: TYPE_FP32, dims: [6], reshape: { shape: [5] } }]\n'
    + 'output [{ name: "OUT", data_type: TYPE_FP32, dims: [6] }]\n',
    "cpu_with_gpus": BASE + IO + "instance_group [{ kind: KIND_CPU, gpus: [0] }]\n",
    "ordering_with_levels": BASE
    + IO
    + "dynamic_batching { preserve_ordering: true, priority_levels: 2, "
    + "default_priority_level: 1 }\n",
    "control_twice": BASE
    + IO
    + f"sequence_batching {{ control_input [{START}, {START.replace('S', 'T', 1)}] }}\n",
}
ACCEPTED = {"accepted": BASE + IO + "instance_group [{ kind: KIND_CPU, count: 1 }]\n"}


def write_models(root: Path) -> None:
    for name, config in {**REFUSED, **ACCEPTED}.items():
        model = root / name
        (model / "1").mkdir(parents=True)
        (model / "config.pbtxt").write_text(config)
        (model / "1" / "model.py").write_text(MODEL_PY)
        (model / "BUILD").write_text("triton_model(ensemble_member_only=True)\n")


def load(port: str, name: str) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/repository/models/{name}/load", data=b"{}", method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, ""
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}").get("error", "")


def triton_load_results(image: str, repository: Path) -> dict[str, tuple[int, str]]:
    with serving(image, repository, "--model-control-mode=explicit") as port:
        return {name: load(port, name) for name in sorted({**REFUSED, **ACCEPTED})}


def test_triton_and_lint_refuse_the_same_configs(
    checkout: Path, image: str, tmp_path: Path
) -> None:
    root = tmp_path / "checkout"
    copy_checkout(checkout, root, leave_out=("tests",), pants_bootstrap=True)
    write_models(root / "refused")

    results = triton_load_results(image, root / "refused")
    assert {name for name, (status, _) in results.items() if status != 200} == set(REFUSED), results

    lint = run_pants(root, "lint", "--only=triton-config", "refused::")
    assert lint.returncode != 0, lint.stdout
    for name in REFUSED:
        assert f"refused/{name}/config.pbtxt:" in lint.stdout, (name, lint.stdout)
    assert "refused/accepted/" not in lint.stdout, lint.stdout
