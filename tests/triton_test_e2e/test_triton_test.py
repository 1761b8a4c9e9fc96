"""`./pants test` on `triton_test` targets, end to end: real Triton containers from [triton].image.

Each test copies the repository's Pants setup (the `//:pants-repo` files, which Pants put into
this sandbox) into a temporary directory, writes small self-contained fixture models there
(python backend, numpy only) and runs `./pants test` in it. Containers are counted through Docker
events carrying a label unique to the test run, passed with `--triton-docker-run-args`.

This is also the Foundation's integration test: a python model and an ensemble over it are served
by a Triton container started from Pants, requests get the expected answers, and the container is
removed afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest
from pants_repo import Repo, one_step_ensemble, shared_pants_repo

ADD_ONE_CONFIG = dedent(
    """\
    backend: "python"
    max_batch_size: 0
    input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
    """
)
ADD_ONE_MODEL = dedent(
    """\
    import numpy as np
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
                y = pb_utils.Tensor("OUTPUT0", (x + 1).astype(np.float32))
                responses.append(pb_utils.InferenceResponse([y]))
            return responses
    """
)
LABEL_CONFIG = dedent(
    """\
    backend: "python"
    max_batch_size: 0
    input [{ name: "SCORES", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "LABEL", data_type: TYPE_STRING, dims: [1] }]
    """
)
LABEL_MODEL = dedent(
    """\
    import numpy as np
    import triton_python_backend_utils as pb_utils

    LABELS = np.array([b"cat", b"dog", b"bird"], dtype=object)


    class TritonPythonModel:
        def execute(self, requests):
            responses = []
            for request in requests:
                scores = pb_utils.get_input_tensor_by_name(request, "SCORES").as_numpy()
                label = LABELS[[int(np.argmax(scores))]]
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("LABEL", label)]))
            return responses
    """
)
PIPELINE_CONFIG = one_step_ensemble("add_one")


def case(inputs: list[dict], outputs: list[dict]) -> str:
    return json.dumps({"inputs": inputs, "outputs": outputs}, indent=1)


def fp32(name: str, data: list[float]) -> dict:
    return {"name": name, "datatype": "FP32", "shape": [len(data)], "data": data}


GOOD_MODELS = {
    "fixtures/add_one/BUILD": "triton_model()\ntriton_test(name='tests')\n",
    "fixtures/add_one/config.pbtxt": ADD_ONE_CONFIG,
    "fixtures/add_one/1/model.py": ADD_ONE_MODEL,
    "fixtures/add_one/tests/basic.json": case(
        [fp32("INPUT0", [1, 2, 3])], [fp32("OUTPUT0", [2, 3, 4])]
    ),
    "fixtures/add_one/tests/test_add_one.py": dedent(
        """\
        import numpy as np


        def test_http(triton):
            out = triton.infer({"INPUT0": np.array([0.5], dtype=np.float32)})
            np.testing.assert_allclose(out["OUTPUT0"], [1.5])


        def test_grpc(triton):
            assert triton.grpc.is_model_ready(triton.model_name)
        """
    ),
    "fixtures/pipeline/BUILD": (
        "triton_ensemble(dependencies=['fixtures/add_one'])\ntriton_test(name='tests')\n"
    ),
    "fixtures/pipeline/config.pbtxt": PIPELINE_CONFIG,
    "fixtures/pipeline/tests/pipeline.json": case([fp32("X", [10])], [fp32("Y", [11])]),
    "fixtures/label/BUILD": "triton_model()\ntriton_test(name='tests')\n",
    "fixtures/label/config.pbtxt": LABEL_CONFIG,
    "fixtures/label/1/model.py": LABEL_MODEL,
    "fixtures/label/tests/dog.json": case(
        [fp32("SCORES", [0.1, 0.8, 0.1])],
        [{"name": "LABEL", "datatype": "BYTES", "shape": [1], "data": ["dog"]}],
    ),
}

BAD_MODELS = {
    **GOOD_MODELS,
    # A wrong expectation: the diff must show where and by how much.
    "fixtures/add_one/tests/wrong.json": case(
        [fp32("INPUT0", [1, 2, 3])], [fp32("OUTPUT0", [2, 3, 5])]
    ),
    # A model that cannot load: Triton's own error must be shown.
    "fixtures/broken/BUILD": "triton_model()\ntriton_test(name='tests')\n",
    "fixtures/broken/config.pbtxt": ADD_ONE_CONFIG,
    "fixtures/broken/1/model.py": "raise ImportError('the broken fixture cannot be imported')\n",
    "fixtures/broken/tests/basic.json": case([fp32("INPUT0", [1])], [fp32("OUTPUT0", [2])]),
    # A model slower than its test's timeout, on a server of its own (a second container).
    "fixtures/slow/BUILD": (
        "triton_model()\ntriton_test(name='tests', timeout=3, share_server=False)\n"
    ),
    "fixtures/slow/config.pbtxt": ADD_ONE_CONFIG,
    "fixtures/slow/1/model.py": ADD_ONE_MODEL.replace(
        "import numpy as np", "import time\n\nimport numpy as np"
    ).replace("responses = []", "time.sleep(300)\n        responses = []"),
    "fixtures/slow/tests/basic.json": case([fp32("INPUT0", [1])], [fp32("OUTPUT0", [2])]),
}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return shared_pants_repo(tmp_path)


def test_passing_models_share_one_server_and_rerun_is_cached(repo: Repo) -> None:
    repo.write(GOOD_MODELS)
    result, created = repo.pants_test("fixtures::")
    assert result.returncode == 0, result.stderr
    assert "fixtures/add_one:tests and 2 other files succeeded" in result.stderr
    assert created == 1, "three models in one batch must share one container"
    assert repo.leftover_containers() == []
    reports = repo.root / "dist/test/fixtures.add_one.tests+2"
    pipeline = json.loads((reports / "fixtures.pipeline.tests.json").read_text())
    assert pipeline["passed"] and pipeline["cases"][0]["passed"]
    assert "successfully loaded 'pipeline'" in (reports / "triton-server.log").read_text()

    again, created_again = repo.pants_test("fixtures::")
    assert again.returncode == 0, again.stderr
    assert created_again == 0, "an unchanged rerun must come from Pants' cache"


def test_failures_show_the_diff_load_error_and_timeout(repo: Repo) -> None:
    repo.write(BAD_MODELS)
    result, created = repo.pants_test("fixtures::")
    assert result.returncode != 0
    output = result.stderr
    assert created == 2, "one shared server, and one for the test with share_server=False"
    assert repo.leftover_containers() == []
    # The failing case: which case, which output, expected vs actual, where.
    assert "FAIL fixtures/add_one/tests/wrong.json [wrong] output `OUTPUT0`:" in output
    assert "max abs error 1 at index (2,): expected 5, actual 4" in output
    # The model that cannot load: Triton's own error line, not a timeout.
    assert "model `broken` failed to load in Triton:" in output
    assert "ImportError: the broken fixture cannot be imported" in output
    # The other models of the batch still ran and passed.
    assert "PASSED fixtures/pipeline:tests" in output
    assert "PASSED fixtures/label:tests" in output
    # The slow model: the test's timeout is honoured, and the output says where it stopped.
    assert "timed out at fixtures/slow/tests/basic.json [basic]" in output


def test_missing_image_is_a_clear_error(repo: Repo) -> None:
    repo.write(GOOD_MODELS)
    result, created = repo.pants_test("--triton-image=triton-mme-no-such-image:0", "fixtures::")
    assert result.returncode != 0
    assert "is not in the local Docker engine" in result.stderr
    assert "build-support/triton-standin/build" in result.stderr
    assert created == 0
