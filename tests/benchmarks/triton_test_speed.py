#!/usr/bin/env python3
"""Benchmark `./pants test` on `triton_test` targets: cold vs warm, batched vs one server each.

Not part of CI. Run from the repository root, with Docker and the [triton].image available:

    python3 tests/benchmarks/triton_test_speed.py [--models 6]

It copies the repository's Pants setup into a temporary directory, writes N small python-backend
fixture models (plus an ensemble over the first), each with a `triton_test`, and measures:
- cold: `./pants test fixtures::` with results not in Pants' cache (a label unique to the run,
  passed through `--triton-docker-run-args`, changes the cache key), after one priming test run
  that starts pantsd and builds the runner PEX, as on a developer's machine;
- warm: the same command again, nothing changed;
- one server per test: every `triton_test` with `share_server=False`, cold.
Containers are counted with `docker events` filtered on the run's label. Results go to stdout as
a Markdown table (copied into docs/benchmarks/testing.md).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from checkout import run_pants, stop_pantsd  # noqa: E402
from pants_repo import containers_created, copy_pants_repo  # noqa: E402

CONFIG = """\
backend: "python"
max_batch_size: 0
input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
"""
MODEL = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            y = pb_utils.Tensor("OUTPUT0", (x + {k}).astype(np.float32))
            responses.append(pb_utils.InferenceResponse([y]))
        return responses
"""
ENSEMBLE = """\
platform: "ensemble"
max_batch_size: 0
input [{ name: "X", data_type: TYPE_FP32, dims: [-1] }]
output [{ name: "Y", data_type: TYPE_FP32, dims: [-1] }]
ensemble_scheduling {
  step [{
    model_name: "add_1"
    model_version: -1
    input_map { key: "INPUT0", value: "X" }
    output_map { key: "OUTPUT0", value: "Y" }
  }]
}
"""


def case(input_name: str, output_name: str, k: int) -> str:
    return json.dumps(
        {
            "inputs": [{"name": input_name, "datatype": "FP32", "shape": [3], "data": [0, 1, 2]}],
            "outputs": [
                {"name": output_name, "datatype": "FP32", "shape": [3], "data": [k, k + 1, k + 2]}
            ],
        }
    )


def write_fixtures(root: Path, models: int, share_server: bool) -> int:
    shutil.rmtree(root / "fixtures", ignore_errors=True)
    test_args = "" if share_server else ", share_server=False"
    files = {}
    for k in range(1, models + 1):
        d = f"fixtures/add_{k}"
        files[f"{d}/BUILD"] = f"triton_model()\ntriton_test(name='tests'{test_args})\n"
        files[f"{d}/config.pbtxt"] = CONFIG
        files[f"{d}/1/model.py"] = MODEL.replace("{k}", str(k))
        files[f"{d}/tests/basic.json"] = case("INPUT0", "OUTPUT0", k)
    files[
        "fixtures/pipeline/BUILD"
    ] = f"triton_ensemble(dependencies=['fixtures/add_1'])\ntriton_test(name='tests'{test_args})\n"
    files["fixtures/pipeline/config.pbtxt"] = ENSEMBLE
    files["fixtures/pipeline/tests/basic.json"] = case("X", "Y", 1)
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    return models + 1


def pants(root: Path, *args: str) -> subprocess.CompletedProcess:
    result = run_pants(root, *args, separate_stderr=True)
    if result.returncode != 0:
        sys.exit(f"./pants {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def pants_test(root: Path, label: str) -> tuple[float, int, float]:
    """Wall time, containers started, and the summed run time of the batches Pants reports."""
    start = time.time()
    result = pants(root, f"--triton-docker-run-args=+['--label={label}']", "test", "fixtures::")
    elapsed = time.time() - start
    # Batches answered from Pants' cache ("... (memoized)", "(cached locally)") ran no server.
    batch_seconds = sum(
        float(s) for s in re.findall(r"succeeded in ([0-9.]+)s\.?$", result.stderr, re.MULTILINE)
    )
    return elapsed, containers_created(label, start), batch_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=6, help="python models (plus one ensemble)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="triton-test-bench-") as tmp:
        root = copy_pants_repo(Path(tmp)).root
        rows = []
        try:
            targets = write_fixtures(root, args.models, share_server=True)
            # Start pantsd and pay one-time costs (interpreter discovery, the runner PEX, the
            # image lookup) outside the measurements: one uncached test of one model.
            prime = f"triton_mme.bench={uuid.uuid4().hex}"
            pants(root, f"--triton-docker-run-args=+['--label={prime}']", "test", "fixtures/add_1:")
            label = f"triton_mme.bench={uuid.uuid4().hex}"
            rows.append(("batched, cold", *pants_test(root, label)))
            rows.append(("batched, warm (nothing changed)", *pants_test(root, label)))
            write_fixtures(root, args.models, share_server=False)
            pants(root, "list", "fixtures::")
            label = f"triton_mme.bench={uuid.uuid4().hex}"
            rows.append(("one server per test, cold", *pants_test(root, label)))
        finally:
            stop_pantsd(root)
    print(f"{targets} triton_test targets ({args.models} python models + 1 ensemble)\n")
    print("| run | wall time of `./pants test` (s) | containers started | batch run time (s) |")
    print("|-----|------|-----|-----|")
    for name, seconds, containers, batch_seconds in rows:
        print(f"| {name} | {seconds:.1f} | {containers} | {batch_seconds:.1f} |")
    ratio = rows[2][1] / rows[0][1]
    print(f"\none server per test vs batched (cold wall time): {ratio:.2f}x")


if __name__ == "__main__":
    main()
