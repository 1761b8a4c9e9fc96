"""A new model from files only, as docs/models.md tells a data scientist to add one.

Triton's python_backend `add_sub` example (its config as written upstream, two `input [...]`
lists and all), a pytest file using the `triton` fixture and `model_version.txt`, in a copy of
this repo with no BUILD file: `tailor` writes one that ships every file and runs the test,
`fmt` gives the config its canonical layout once and then leaves it alone, `test` passes and
`package` writes a tarball holding every file.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest
from checkout import copy_checkout, run_pants

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="needs Docker")

ADD_SUB_CONFIG = textwrap.dedent(
    """\
    # The python_backend add_sub example.
    name: "add_sub"
    backend: "python"

    input [
      {
        name: "INPUT0"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]
    input [
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
      }
    ]
    output [
      {
        name: "OUTPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    instance_group [{ kind: KIND_CPU }]
    """
)
ADD_SUB_MODEL = textwrap.dedent(
    """\
    import numpy as np
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
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
ADD_SUB_TEST = textwrap.dedent(
    """\
    import numpy as np


    def test_add_sub(triton) -> None:
        a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
        b = np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32)
        out = triton.infer({"INPUT0": a, "INPUT1": b})
        np.testing.assert_allclose(out["OUTPUT0"], a + b)
        np.testing.assert_allclose(out["OUTPUT1"], a - b)
    """
)


def pants(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pants(repo, *args)


@pytest.fixture(scope="module")
def repo(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("new-model")
    copy_checkout(checkout, root, pants_bootstrap=True)
    files = {
        "config.pbtxt": ADD_SUB_CONFIG,
        "1/model.py": ADD_SUB_MODEL,
        "model_version.txt": "1.0.0\n",
        "tests/test_add_sub.py": ADD_SUB_TEST,
    }
    for path, text in files.items():
        (root / "models/add_sub" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "models/add_sub" / path).write_text(text)
    return root


def test_files_to_tested_and_packaged_model(repo: Path) -> None:
    tailor = pants(repo, "tailor", "::")
    assert tailor.returncode == 0, tailor.stdout
    # The model keeps all its files (models/BUILD's lint targets also own 1/model.py) and its
    # pytest file gets a triton_test.
    assert (repo / "models/add_sub/BUILD").read_text() == (
        'triton_model()\n\ntriton_test(\n    name="tests",\n)\n'
    )
    # A model nothing tests (an ensemble member whose ensemble is not written yet).
    (repo / "models/lone/1").mkdir(parents=True)
    (repo / "models/lone/config.pbtxt").write_text('name: "lone"\nbackend: "python"\n')
    (repo / "models/lone/1/model.py").write_text("")
    (repo / "models/lone/BUILD").write_text("triton_model(ensemble_member_only=True)\n")

    first = pants(
        repo, "tailor", "--check", "update-build-files", "--check", "::", "fmt", "models::"
    )
    assert first.returncode == 0, first.stdout
    formatted = (repo / "models/add_sub/config.pbtxt").read_text()
    assert formatted.count("input [") == 1 and formatted.count("output [") == 1
    assert formatted.startswith("# The python_backend add_sub example.\n")

    # fmt leaves a formatted config alone, lint agrees, the test passes, the tarball is complete.
    second = pants(repo, "fmt", "lint", "test", "package", "models/add_sub::", "models/lone::")
    assert second.returncode == 0, second.stdout
    assert "triton-config-fmt made no changes" in second.stdout, second.stdout
    assert (repo / "models/add_sub/config.pbtxt").read_text() == formatted
    assert "models/add_sub:tests succeeded" in second.stdout
    assert "The model models/lone:lone has no tests" in second.stdout
    with tarfile.open(repo / "dist/models/add_sub/add_sub_1.0.0.tar.gz") as tar:
        files = {m.name for m in tar.getmembers() if m.isfile()}
    assert files == {"add_sub/config.pbtxt", "add_sub/1/model.py"}
