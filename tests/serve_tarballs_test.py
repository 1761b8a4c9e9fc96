"""Each packaged tarball, extracted as is, is served by the Triton stand-in image and answers."""

from __future__ import annotations

import json
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from conftest import PackagedCheckout
from standin import serving

# The pipeline's own test cases: frames, and the LABEL and SCORE the pipeline must answer. Their
# expected values were computed outside Triton from the three models' documented behaviour
# (tools/make_example_cases.py: nearest-neighbour resize to 32x32 and ImageNet standardisation,
# the network evaluated in float64 and cross-checked with onnxruntime, then the best class and
# its score); running preprocessing/model.py, the ONNX network with onnxruntime 1.32 and
# postprocessing/model.py on these frames gives the same labels and scores within 2e-7. One file
# holds them for `./pants test` of the model and for this test.
PIPELINE_CASES = "models/screen_detection/screen_detection_pipeline/tests/frames.json"


def infer(port: str, model: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/models/{model}/infer",
        data=json.dumps({"inputs": inputs}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
    return {output["name"]: output["data"] for output in result["outputs"]}


def flatten(data: Any) -> list[Any]:
    """Nested lists in row-major order, as a KServe v2 JSON request carries a tensor."""
    if isinstance(data, list):
        return [element for item in data for element in flatten(item)]
    return [data]


def check_pipeline_cases(port: str, checkout: Path) -> None:
    """Each case of PIPELINE_CASES gets exactly its LABEL, and its SCORE within the file's
    tolerance (as `./pants test` compares it: |got - expected| <= atol + rtol * |expected|)."""
    document = json.loads((checkout / PIPELINE_CASES).read_text())
    atol, rtol = document["tolerance"]["atol"], document["tolerance"]["rtol"]
    assert atol <= 1e-5 and rtol <= 1e-4, "keep the pipeline's cases' tolerance tight"
    assert document["cases"], f"{PIPELINE_CASES} has no cases"
    for case in document["cases"]:
        (image,) = case["inputs"]
        inline_image = (image["name"], image["datatype"]) == ("IMAGE", "UINT8") and "data" in image
        assert inline_image, f"{case['name']}: this test sends an inline UINT8 IMAGE only"
        request = [{**image, "data": flatten(image["data"])}]
        expected = {output["name"]: output["data"] for output in case["outputs"]}
        outputs = infer(port, "screen_detection_pipeline", request)
        assert outputs["LABEL"] == expected["LABEL"], case["name"]
        (score,), (expected_score,) = outputs["SCORE"], expected["SCORE"]
        close = abs(score - expected_score) <= atol + rtol * abs(expected_score)
        assert close, f"{case['name']}: SCORE {score}, expected {expected_score}"


def check_answers(port: str, models: set[str], checkout: Path) -> None:
    if "screen_detection_pipeline" in models:
        check_pipeline_cases(port, checkout)
    if "text_normalizer" in models:
        text = [
            {"name": "TEXT", "datatype": "BYTES", "shape": [1, 1], "data": ["  Ｈéllo \t WORLD "]}
        ]
        assert infer(port, "text_normalizer", text) == {"NORMALIZED": ["héllo world"]}


def test_stand_in_triton_serves_each_tarball(
    packaged_twice: tuple[PackagedCheckout, PackagedCheckout], image: str, tmp_path: Path
) -> None:
    first, _ = packaged_twice
    assert first.tarballs()
    for name, tarball in first.tarballs().items():
        repository = tmp_path / name.replace("/", "_")
        repository.mkdir()
        with tarfile.open(tarball) as tar:
            tar.extractall(repository)
        models = {p.name for p in repository.iterdir()}
        with serving(image, repository) as port:
            check_answers(port, models, first.root)
