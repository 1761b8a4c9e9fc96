"""Properties of the whole screen-detection pipeline that fixed cases (frames.json) cannot show."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

LABELS = ("no_screen", "phone_screen", "monitor_screen")


def frame(seed: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def classify(triton, image: np.ndarray) -> tuple[str, float]:
    out = triton.infer({"IMAGE": image})
    return out["LABEL"][0].decode("utf-8"), float(out["SCORE"][0])


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (32, 32), (120, 90)])
def test_pipeline_agrees_with_its_steps(triton, shape) -> None:
    """The ensemble gives what its three models give one after the other, and the network's
    scores are a probability distribution whose largest value is the pipeline's SCORE."""
    image = frame(sum(shape), *shape)
    pixels = triton.infer({"IMAGE": image}, model_name="screen_detection_preprocessing")["PIXELS"]
    assert pixels.shape == (1, 3, 32, 32) and pixels.dtype == np.float32
    scores = triton.infer({"pixels": pixels}, model_name="screen_detection_inferencer")["scores"]
    assert scores.shape == (1, 3)
    assert np.all(scores >= 0.0)
    np.testing.assert_allclose(scores.sum(), 1.0, rtol=1e-5)
    steps = triton.infer({"SCORES": scores}, model_name="screen_detection_postprocessing")

    label, score = classify(triton, image)
    assert label == LABELS[int(np.argmax(scores[0]))] == steps["LABEL"][0].decode("utf-8")
    np.testing.assert_allclose(score, scores.max(), rtol=1e-6)
    assert score >= 1 / 3  # the largest of three probabilities


def test_upsampled_frame_gets_the_same_answer(triton) -> None:
    """Nearest-neighbour resizing samples the same source pixels from a frame and from the frame
    with every pixel repeated 4 or 8 times (8x8 -> 32x32 -> 64x64), so the answer is the same."""
    small = frame(8, 8, 8)
    label, score = classify(triton, small)
    for factor in (4, 8):
        large = small.repeat(factor, axis=0).repeat(factor, axis=1)
        assert classify(triton, large) == (label, pytest.approx(score, rel=1e-6))


def test_concurrent_requests_get_their_own_answers(triton) -> None:
    """Requests for different frames sent at once (from several clients) each get the answer
    their frame gets alone: the ensemble keeps requests apart."""
    frames = [np.zeros((4, 4, 3), np.uint8), np.full((3, 5, 3), 255, np.uint8), frame(1, 5, 7)]
    alone = [classify(triton, f) for f in frames]
    assert len({label for label, _ in alone}) > 1, "pick frames with different labels"

    def infer(i: int) -> tuple[str, float]:
        client = httpclient.InferenceServerClient(url=triton.http_url)
        try:
            image = httpclient.InferInput("IMAGE", list(frames[i].shape), "UINT8")
            image.set_data_from_numpy(frames[i])
            result = client.infer(triton.model_name, [image])
            return result.as_numpy("LABEL")[0].decode("utf-8"), float(result.as_numpy("SCORE")[0])
        finally:
            client.close()

    order = [i % len(frames) for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(infer, order))
    for i, (label, score) in zip(order, together):
        assert label == alone[i][0]
        assert score == pytest.approx(alone[i][1], rel=1e-6)


def test_empty_frame_is_refused_with_the_reason(triton) -> None:
    with pytest.raises(InferenceServerException, match=r"IMAGE must have shape \[H, W, 3\]"):
        triton.infer({"IMAGE": np.zeros((0, 4, 3), dtype=np.uint8)})
