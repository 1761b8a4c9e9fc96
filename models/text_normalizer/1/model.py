"""Normalises UTF-8 text: Unicode NFKC, case folding, whitespace collapsed to single spaces."""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def normalize_all(texts: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Each element (bytes, UTF-8) normalised, in an array of the same shape."""
    flat = [normalize(bytes(t).decode("utf-8")).encode("utf-8") for t in texts.ravel()]
    return np.array(flat, dtype=np.object_).reshape(texts.shape)


class TritonPythonModel:
    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            tensor = pb_utils.get_input_tensor_by_name(request, "TEXT")
            assert tensor is not None  # A required input: Triton refuses requests without it.
            texts = tensor.as_numpy()
            try:
                normalized = pb_utils.Tensor("NORMALIZED", normalize_all(texts))
                responses.append(pb_utils.InferenceResponse(output_tensors=[normalized]))
            except UnicodeDecodeError as e:
                error = pb_utils.TritonError(f"TEXT must be UTF-8: {e}")
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses
