"""Writes the example models' test cases (`models/**/tests/*.json`, `*.npz`) for `./pants test`.

    ./pants run tools/make_example_cases.py

The expected outputs are computed here, outside Triton, from each model's documented behaviour
(its config.pbtxt comments and docstrings), never by importing its model.py nor by asking Triton:

- preprocessing: nearest-neighbour resize of an RGB UINT8 frame to 32x32, scaled to [0, 1],
  standardised per channel with the ImageNet mean and standard deviation;
- inferencer: the network of tools/make_screen_detection_weights.py evaluated layer by layer in
  float64 with numpy from its seeded initializers, and cross-checked with onnxruntime;
- postprocessing: the label of the largest of the three scores, and that score;
- pipeline: the three composed; every case's best class leads the runner-up by a clear margin, so
  float32 rounding cannot flip its label;
- text_normalizer: a table of inputs and their normalised forms written by hand from the
  documented rules (NFKC, case folding, single spaces), which this script checks against Python's
  `unicodedata` before writing them.

Inputs are small and seeded: the same files every run. Commit what it writes.
"""

from __future__ import annotations

import os
import sys
import unicodedata
import zipfile
from typing import Any

import numpy as np
import onnxruntime
from make_screen_detection_weights import build_model
from onnx import numpy_helper
from triton_mme.scripts.triton_cases import case_file_json

SCREEN_DETECTION = "models/screen_detection"
TEXT_NORMALIZER = "models/text_normalizer"

# Preprocessing, as documented in screen_detection_preprocessing/config.pbtxt and model.py.
SIZE = 32
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Postprocessing: the class order of the network's scores.
LABELS = ("no_screen", "phone_screen", "monitor_screen")

# float32 arithmetic (Triton) against float64 (here): generous for values of order 1, far below
# any difference a wrong resize, channel order or normalisation would make.
FLOAT32_TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}
# A pipeline case's best score must beat the runner-up by this much for its label to be certain.
LABEL_MARGIN = 1e-3

# text_normalizer's cases: (input, expected) pairs written by hand from the documented rules, in
# groups of at most its max_batch_size (8), each group one batched request.
TEXT_CASE_DESCRIPTIONS = {
    "whitespace": "runs of spaces, tabs, newlines, NBSP and U+3000 become one space; ends trimmed",
    "case_folding": "full Unicode case folding (sharp s, final sigma, titlecase digraph)",
    "compatibility_forms": "NFKC: ligatures, fullwidth forms, combining accents, numerals",
}
TEXT_CASES = {
    "whitespace": (
        ("Hello World", "hello world"),
        ("  Hello   \t WORLD \n", "hello world"),
        ("no\u00a0break\u3000space", "no break space"),  # NBSP, ideographic space: NFKC spaces
        ("", ""),
        ("   ", ""),
    ),
    "case_folding": (
        ("Straße", "strasse"),  # casefold, not lower(): ß folds to ss
        ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),  # every capital sigma folds to σ, the final one too
        ("ǅemal", "džemal"),  # a titlecase digraph
    ),
    "compatibility_forms": (
        ("ﬁle", "file"),  # the ligature ﬁ is two letters
        ("ＡＢＣ １２３", "abc 123"),  # fullwidth letters and digits
        ("cafe\u0301", "caf\u00e9"),  # e + combining acute accent composes into é
        ("Ⅳ ①", "iv 1"),  # Roman numeral four, circled digit one
    ),
}


# ---------------------------------------------------------------------------------------------
# The reference computations


def preprocess(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] UINT8 -> [1, 3, SIZE, SIZE] float64: output pixel (i, j) samples source pixel
    (floor(i * H / SIZE), floor(j * W / SIZE))."""
    height, width, _ = image.shape
    rows = [i * height // SIZE for i in range(SIZE)]
    cols = [j * width // SIZE for j in range(SIZE)]
    pixels = np.empty((1, 3, SIZE, SIZE))
    for channel in range(3):
        for i, row in enumerate(rows):
            for j, col in enumerate(cols):
                value = image[row, col, channel] / 255.0
                pixels[0, channel, i, j] = (value - MEAN[channel]) / STD[channel]
    return pixels


class Network:
    """The screen-detection network, evaluated with numpy in float64 from its initializers."""

    OPS = ["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm", "Softmax"]

    def __init__(self) -> None:
        self.model = build_model()
        ops = [node.op_type for node in self.model.graph.node]
        if ops != self.OPS:
            # The reference below implements exactly this graph: a changed network needs it changed.
            raise SystemExit(f"the network's layers are {ops}, this script implements {self.OPS}")
        weights = {i.name: numpy_helper.to_array(i) for i in self.model.graph.initializer}
        self.conv_w = weights["conv_w"].astype(np.float64)  # [out, in, 3, 3]
        self.conv_b = weights["conv_b"].astype(np.float64)
        self.fc_w = weights["fc_w"].astype(np.float64)  # [in, out]
        self.fc_b = weights["fc_b"].astype(np.float64)
        self.session = onnxruntime.InferenceSession(
            self.model.SerializeToString(), providers=["CPUExecutionProvider"]
        )

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """[1, 3, 32, 32] -> softmax scores [1, 3] (float64), checked against onnxruntime."""
        # Conv 3x3, stride 1, zero padding 1: a sum over the 9 kernel offsets of shifted inputs.
        padded = np.pad(pixels[0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
        conv = self.conv_b[:, None, None] + sum(
            np.einsum("chw,oc->ohw", padded[:, i : i + SIZE, j : j + SIZE], self.conv_w[:, :, i, j])
            for i in range(3)
            for j in range(3)
        )
        features = np.maximum(conv, 0.0).mean(axis=(1, 2))
        logits = features @ self.fc_w + self.fc_b
        exp = np.exp(logits - logits.max())
        scores = (exp / exp.sum())[np.newaxis]
        (onnxruntime_scores,) = self.session.run(["scores"], {"pixels": pixels.astype(np.float32)})
        if not np.allclose(onnxruntime_scores, scores, atol=1e-6, rtol=1e-5):
            raise SystemExit(f"numpy says {scores}, onnxruntime says {onnxruntime_scores}")
        return scores


def postprocess(scores: np.ndarray) -> tuple[str, float]:
    best = int(np.argmax(scores[0]))
    return LABELS[best], float(scores[0, best])


def normalize_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# ---------------------------------------------------------------------------------------------
# The example inputs


def noise(seed: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def solid(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)).copy()


# Frames for the whole pipeline: small enough to read in the case file, of several shapes.
PIPELINE_FRAMES = {
    "black_4x4": solid(4, 4, (0, 0, 0)),
    "white_3x5": solid(3, 5, (255, 255, 255)),
    "green_2x2": solid(2, 2, (0, 255, 0)),
    "blue_1x1": solid(1, 1, (0, 0, 255)),
    "noise_5x7": noise(1, 5, 7),
}
# Frames for preprocessing alone: up- and down-sampling, square and not; results go in a .npz.
PREPROCESSING_FRAMES = {
    "noise_5x7_upsampled": noise(1, 5, 7),
    "noise_45x70_downsampled": noise(2, 45, 70),
    "red_1x2": solid(1, 2, (255, 0, 0)),
}
# Scores for postprocessing alone: each class wins once, probabilities or not.
POSTPROCESSING_SCORES = {
    "no_screen_wins": [0.7, 0.2, 0.1],
    "phone_screen_wins": [0.25, 0.5, 0.25],
    "monitor_screen_wins": [0.001, 0.002, 0.997],
    "raw_logits": [-3.5, -1.25, -2.0],
}


# ---------------------------------------------------------------------------------------------
# Writing case files


def tensor(name: str, datatype: str, array: np.ndarray) -> dict[str, Any]:
    """A tensor given inline: its shape and its data as nested lists (BYTES as UTF-8 strings)."""
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": _plain(array)}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, float):
        return float(f"{value:.9g}")  # float32 needs 9 significant digits to round-trip
    return value


def file_tensor(name: str, datatype: str, npz: str, key: str, shape: tuple[int, ...]) -> dict:
    return {"name": name, "datatype": datatype, "shape": list(shape), "file": npz, "key": key}


def write_cases(model_dir: str, file_name: str, cases: list[dict[str, Any]], **top: Any) -> None:
    path = os.path.join(model_dir, "tests", file_name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(case_file_json({**top, "cases": cases}) + "\n")
    print(f"wrote {path} ({len(cases)} cases)")


def write_npz(model_dir: str, file_name: str, arrays: dict[str, np.ndarray]) -> None:
    """What `np.savez` writes, but with fixed zip timestamps, so that reruns change no byte."""
    path = os.path.join(model_dir, "tests", file_name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
    print(f"wrote {path} ({', '.join(arrays)})")


# ---------------------------------------------------------------------------------------------
# The cases of each model


def preprocessing_cases() -> None:
    model_dir = f"{SCREEN_DETECTION}/screen_detection_preprocessing"
    arrays, cases = {}, []
    for name, frame in PREPROCESSING_FRAMES.items():
        pixels = preprocess(frame).astype(np.float32)
        arrays[f"{name}_image"], arrays[f"{name}_pixels"] = frame, pixels
        image = (
            tensor("IMAGE", "UINT8", frame)
            if frame.size <= 120
            else file_tensor("IMAGE", "UINT8", "frames.npz", f"{name}_image", frame.shape)
        )
        expected = file_tensor("PIXELS", "FP32", "frames.npz", f"{name}_pixels", pixels.shape)
        description = f"a {frame.shape[0]}x{frame.shape[1]} frame, resized and standardised"
        cases.append({"name": name, "description": description, "inputs": [image]})
        cases[-1]["outputs"] = [expected]
    write_npz(model_dir, "frames.npz", arrays)
    write_cases(model_dir, "frames.json", cases, tolerance=FLOAT32_TOLERANCE)


def inferencer_cases(network: Network) -> None:
    model_dir = f"{SCREEN_DETECTION}/screen_detection_inferencer"
    inputs = {
        "standard_normal_pixels": np.random.default_rng(3).standard_normal((1, 3, SIZE, SIZE)),
        "black_frame_pixels": preprocess(PIPELINE_FRAMES["black_4x4"]),
        "white_frame_pixels": preprocess(PIPELINE_FRAMES["white_3x5"]),
    }
    arrays, cases = {}, []
    for name, pixels in inputs.items():
        arrays[name] = pixels.astype(np.float32)
        scores = network.scores(arrays[name])
        cases.append(
            {
                "name": name,
                "inputs": [file_tensor("pixels", "FP32", "pixels.npz", name, pixels.shape)],
                "outputs": [
                    {**tensor("scores", "FP32", scores), "argmax": [int(np.argmax(scores))]}
                ],
            }
        )
    write_npz(model_dir, "pixels.npz", arrays)
    write_cases(model_dir, "scores.json", cases, tolerance=FLOAT32_TOLERANCE)


def postprocessing_cases() -> None:
    model_dir = f"{SCREEN_DETECTION}/screen_detection_postprocessing"
    cases = []
    for name, row in POSTPROCESSING_SCORES.items():
        scores = np.array([row], dtype=np.float32)
        label, score = postprocess(scores)
        outputs = [
            tensor("LABEL", "BYTES", np.array([label.encode()], dtype=np.object_)),
            tensor("SCORE", "FP32", np.array([score], dtype=np.float32)),
        ]
        cases.append(
            {"name": name, "inputs": [tensor("SCORES", "FP32", scores)], "outputs": outputs}
        )
    write_cases(model_dir, "scores.json", cases)


def pipeline_cases(network: Network) -> None:
    model_dir = f"{SCREEN_DETECTION}/screen_detection_pipeline"
    cases = []
    for name, frame in PIPELINE_FRAMES.items():
        scores = network.scores(preprocess(frame))
        runner_up, best = np.sort(scores[0])[-2:]
        if best - runner_up < LABEL_MARGIN:
            raise SystemExit(f"{name}: the two best scores {best}, {runner_up} are too close")
        label, score = postprocess(scores)
        outputs = [
            tensor("LABEL", "BYTES", np.array([label.encode()], dtype=np.object_)),
            tensor("SCORE", "FP32", np.array([score], dtype=np.float32)),
        ]
        description = f"scores {np.round(scores[0], 4).tolist()} for {list(LABELS)}"
        cases.append(
            {
                "name": name,
                "description": description,
                "inputs": [tensor("IMAGE", "UINT8", frame)],
                "outputs": outputs,
            }
        )
    write_cases(model_dir, "frames.json", cases, tolerance=FLOAT32_TOLERANCE)


def text_normalizer_cases() -> None:
    cases = []
    for name, pairs in TEXT_CASES.items():
        texts, expected = zip(*pairs)
        for text, normalized in pairs:
            if normalize_text(text) != normalized:
                raise SystemExit(
                    f"{text!r} normalises to {normalize_text(text)!r}, not {normalized!r}"
                )
        column = [[t.encode()] for t in texts]
        outputs = [[t.encode()] for t in expected]
        cases.append(
            {
                "name": name,
                "description": TEXT_CASE_DESCRIPTIONS[name],
                "inputs": [tensor("TEXT", "BYTES", np.array(column, dtype=np.object_))],
                "outputs": [tensor("NORMALIZED", "BYTES", np.array(outputs, dtype=np.object_))],
            }
        )
    write_cases(TEXT_NORMALIZER, "texts.json", cases)


def main() -> int:
    # `./pants run` runs this in the build root, to which the model paths are relative.
    network = Network()
    preprocessing_cases()
    inferencer_cases(network)
    postprocessing_cases()
    pipeline_cases(network)
    text_normalizer_cases()
    return 0


if __name__ == "__main__":
    sys.exit(main())
