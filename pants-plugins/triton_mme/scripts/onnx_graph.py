"""Print the inputs and outputs of ONNX graphs as JSON, as onnxruntime reports them to Triton.

Runs inside the `model-tools` PEX (the `onnx` package). Usage: `onnx_graph.py FILE...`; prints
`{FILE: graph}` where a graph is `{"inputs": [...], "overridable": [...], "outputs": [...]}` and
each tensor is `{"name", "kind", "elem_type", "dims"}`:

- `inputs`: graph inputs that no initializer provides (what a request must send);
- `overridable`: graph inputs an initializer provides (IR version 4 and later): a config may
  list them, as optional inputs;
- `kind`: `tensor`, `sequence`, `map`, `sparse_tensor`, `optional` or `opaque`;
- `elem_type`: ONNX's `TensorProto.DataType` number (0 when not a tensor);
- `dims`: one number per dimension, -1 for a symbolic or unknown one; `null` when the graph
  declares no shape at all.

Weights are never read: the graph is loaded without its external data, so a model of any size
costs only the size of its graph file.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import onnx

# Initializers may be graph inputs (overridable defaults) only from this IR version on.
OVERRIDABLE_IR_VERSION = 4


def _dims(tensor_type: Any) -> list[int] | None:
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]


def describe(value_info: Any) -> dict[str, Any]:
    kind = value_info.type.WhichOneof("value") or "unknown"
    tensor = value_info.type.tensor_type if kind == "tensor_type" else None
    return {
        "name": value_info.name,
        "kind": kind.removesuffix("_type"),
        "elem_type": tensor.elem_type if tensor is not None else 0,
        "dims": _dims(tensor) if tensor is not None else None,
    }


def read_graph(path: str) -> dict[str, Any]:
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    initialized = {t.name for t in graph.initializer}
    initialized |= {t.values.name for t in graph.sparse_initializer}
    overridable = model.ir_version >= OVERRIDABLE_IR_VERSION
    return {
        "inputs": [describe(i) for i in graph.input if i.name not in initialized],
        "overridable": [describe(i) for i in graph.input if i.name in initialized and overridable],
        "outputs": [describe(o) for o in graph.output],
    }


def main(paths: list[str]) -> int:
    graphs = {}
    for path in paths:
        try:
            graphs[path] = read_graph(path)
        except Exception as e:  # onnx raises DecodeError, ValueError, ... for a bad file
            print(
                f"{path}: not a readable ONNX model ({type(e).__name__}: {e}). Check that the "
                'file is the exported model (`python -c "import onnx; onnx.checker.check_model'
                f"('{path}')\"`), not a DVC pointer or a truncated download.",
                file=sys.stderr,
            )
            return 1
    json.dump(graphs, sys.stdout, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
