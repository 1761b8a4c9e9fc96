"""Each packaged tarball, extracted as is, is served by the Triton stand-in image and answers."""

from __future__ import annotations

import json
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from conftest import PackagedCheckout
from standin import serving

SCREEN_LABELS = {"no_screen", "phone_screen", "monitor_screen"}


def infer(port: str, model: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/models/{model}/infer",
        data=json.dumps({"inputs": inputs}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
    return {output["name"]: output["data"] for output in result["outputs"]}


def image_request() -> list[dict[str, Any]]:
    height, width = 24, 40
    pixels = [
        (y * 7 + x * 3 + c * 11) % 256
        for y in range(height)
        for x in range(width)
        for c in range(3)
    ]
    return [{"name": "IMAGE", "datatype": "UINT8", "shape": [height, width, 3], "data": pixels}]


def check_answers(port: str, models: set[str]) -> None:
    if "screen_detection_pipeline" in models:
        outputs = infer(port, "screen_detection_pipeline", image_request())
        assert outputs["LABEL"][0] in SCREEN_LABELS
        assert 1 / 3 <= outputs["SCORE"][0] <= 1
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
            check_answers(port, models)
