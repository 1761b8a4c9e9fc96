"""Screen detection, step 1: an RGB frame of any size -> the network's normalised input.

Input `IMAGE`: UINT8 [H, W, 3]. Output `PIXELS`: FP32 [1, 3, 32, 32], resized by nearest-neighbour
sampling, scaled to [0, 1] and standardised per channel (the statistics the network was made for).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

SIZE = 32
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def preprocess(image: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """[H, W, 3] UINT8 -> [1, 3, SIZE, SIZE] FP32 (config.pbtxt admits UINT8 frames only)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"IMAGE must have shape [H, W, 3] with H, W > 0, got {image.shape}")
    rows = np.arange(SIZE) * image.shape[0] // SIZE
    cols = np.arange(SIZE) * image.shape[1] // SIZE
    resized = image[rows][:, cols].astype(np.float32)
    if image.dtype == np.uint8:
        resized /= 255.0
    chw = resized.transpose(2, 0, 1)
    return ((chw - MEAN) / STD)[np.newaxis].astype(np.float32)


class TritonPythonModel:
    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            tensor = pb_utils.get_input_tensor_by_name(request, "IMAGE")
            assert tensor is not None  # A required input: Triton refuses requests without it.
            image = tensor.as_numpy()
            try:
                pixels = pb_utils.Tensor("PIXELS", preprocess(image))
                responses.append(pb_utils.InferenceResponse(output_tensors=[pixels]))
            except ValueError as e:
                error = pb_utils.TritonError(str(e))
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses
