"""`[onnx-graph]`: the tool that reads ONNX graphs for the config checks."""

from __future__ import annotations

from triton_mme.subsystems.tool import ScriptToolBase


class OnnxGraphReaderSubsystem(ScriptToolBase):
    options_scope = "onnx-graph"
    name = "ONNX graph reader"
    help = (
        "Reads the inputs and outputs of each `model.onnx` (never its external weight data) with "
        "the `onnx` package, so `lint`, `package` and `test` compare them with config.pbtxt as "
        "Triton's onnxruntime backend does at load."
    )

    default_resolve = "model-tools"
    default_requirements = ("onnx",)
    main_module = "onnx_graph"
    scripts = ("onnx_graph.py",)
