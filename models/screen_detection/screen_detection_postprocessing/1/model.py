"""Screen detection, step 3: class scores [1, 3] -> `LABEL` (BYTES [1]) and `SCORE` (FP32 [1]).

Runs in the pipeline's conda env (models/screen_detection/python_env), whose `six` the Triton image
lacks: a LABEL in the response shows the env was unpacked and used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import six
import triton_python_backend_utils as pb_utils

LABELS = ("no_screen", "phone_screen", "monitor_screen")


def postprocess(
    scores: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float32]]:
    """The best class of the first (only) row of `scores`, as label bytes and its score."""
    if scores.shape != (1, len(LABELS)):
        raise ValueError(f"SCORES must have shape [1, {len(LABELS)}], got {list(scores.shape)}")
    best = int(np.argmax(scores[0]))
    label = np.array([six.ensure_binary(LABELS[best], "utf-8")], dtype=np.object_)
    return label, np.array([scores[0, best]], dtype=np.float32)


class TritonPythonModel:
    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            tensor = pb_utils.get_input_tensor_by_name(request, "SCORES")
            assert tensor is not None  # A required input: Triton refuses requests without it.
            scores = tensor.as_numpy()
            try:
                label, score = postprocess(scores)
                outputs = [pb_utils.Tensor("LABEL", label), pb_utils.Tensor("SCORE", score)]
                responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
            except ValueError as e:
                error = pb_utils.TritonError(str(e))
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses
