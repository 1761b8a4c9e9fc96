"""Small MME tarballs for the local-endpoint tests and benchmarks (python backend, numpy only).

`write_tarballs(directory)` writes, as `pants package` names them:
- `add_one_1.tar.gz`: one python model, OUTPUT0 = INPUT0 + 1;
- `double_1.tar.gz`: one python model, OUTPUT0 = INPUT0 * 2;
- `pipeline_1.tar.gz`: an ensemble `pipeline` over its member `times_ten`, OUTPUT0 = INPUT0 * 10;
and two that SageMaker must refuse: `hostile_1.tar.gz` (a `../` member) and `corrupt_1.tar.gz`
(cut short, bad gzip).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Callable

PYTHON_CONFIG = """\
backend: "python"
max_batch_size: 0
input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
instance_group [{ kind: KIND_CPU, count: 1 }]
"""

MODEL_PY = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            y = ({expression}).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", y)]))
        return responses
"""

ENSEMBLE_CONFIG = """\
platform: "ensemble"
max_batch_size: 0
input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
ensemble_scheduling {
  step [{
    model_name: "times_ten"
    model_version: -1
    input_map { key: "INPUT0" value: "INPUT0" }
    output_map { key: "OUTPUT0" value: "OUTPUT0" }
  }]
}
"""

# TargetModel -> what OUTPUT0 is for INPUT0 = x.
EXPECTED = {
    "add_one_1.tar.gz": lambda x: x + 1,
    "double_1.tar.gz": lambda x: x * 2,
    "pipeline_1.tar.gz": lambda x: x * 10,
}


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", **kinds: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in kinds.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if data else None)


def _dir(tar: tarfile.TarFile, name: str) -> None:
    _add(tar, name, type=tarfile.DIRTYPE, mode=0o755)


def _python_model(tar: tarfile.TarFile, name: str, expression: str) -> None:
    _dir(tar, f"{name}")
    _add(tar, f"{name}/config.pbtxt", PYTHON_CONFIG.encode())
    _dir(tar, f"{name}/1")
    _add(tar, f"{name}/1/model.py", MODEL_PY.format(expression=expression).encode())


def write_tarball(path: Path, build: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        build(tar)
    return path


def write_tarballs(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)

    def pipeline(tar: tarfile.TarFile) -> None:
        _dir(tar, "pipeline")
        _add(tar, "pipeline/config.pbtxt", ENSEMBLE_CONFIG.encode())
        _dir(tar, "pipeline/1")
        _python_model(tar, "times_ten", "x * 10")

    def hostile(tar: tarfile.TarFile) -> None:
        _python_model(tar, "hostile", "x")
        _add(tar, "hostile/../../escaped.txt", b"owned")

    tarballs = {
        "add_one_1.tar.gz": lambda tar: _python_model(tar, "add_one", "x + 1"),
        "double_1.tar.gz": lambda tar: _python_model(tar, "double", "x * 2"),
        "pipeline_1.tar.gz": pipeline,
        "hostile_1.tar.gz": hostile,
    }
    written = {name: write_tarball(directory / name, build) for name, build in tarballs.items()}
    good = written["add_one_1.tar.gz"].read_bytes()
    corrupt = directory / "corrupt_1.tar.gz"
    corrupt.write_bytes(good[: len(good) // 2] + b"\x00garbage" * 8)
    written["corrupt_1.tar.gz"] = corrupt
    return written


def request_body(values: list[float]) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [len(values)], "data": values}]}
    ).encode()


def output_of(response_body: bytes) -> list[float]:
    outputs = json.loads(response_body)["outputs"]
    return [float(v) for v in outputs[0]["data"]]
