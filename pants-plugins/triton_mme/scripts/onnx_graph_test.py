from __future__ import annotations

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from triton_mme.scripts.onnx_graph import main, read_graph


def write_model(path: str, *, ir_version: int = 8) -> None:
    weight = numpy_helper.from_array(np.arange(4, dtype=np.float32), "W")
    no_shape = onnx.ValueInfoProto(name="Z")
    no_shape.type.tensor_type.elem_type = TensorProto.FLOAT
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["X", "W"], ["S"]),
            helper.make_node("Add", ["S", "Z"], ["Y"]),
        ],
        "g",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4]),
            no_shape,
            helper.make_tensor_value_info("W", TensorProto.FLOAT, [4]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.INT64, [None, 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = ir_version
    onnx.save(model, path)


def test_inputs_initializers_and_dims(tmp_path) -> None:
    path = str(tmp_path / "model.onnx")
    write_model(path)
    assert read_graph(path) == {
        "inputs": [
            {"name": "X", "kind": "tensor", "elem_type": TensorProto.FLOAT, "dims": [-1, 4]},
            {"name": "Z", "kind": "tensor", "elem_type": TensorProto.FLOAT, "dims": None},
        ],
        "overridable": [
            {"name": "W", "kind": "tensor", "elem_type": TensorProto.FLOAT, "dims": [4]}
        ],
        "outputs": [
            {"name": "Y", "kind": "tensor", "elem_type": TensorProto.INT64, "dims": [-1, 4]}
        ],
    }


def test_initializers_are_not_overridable_before_ir_4(tmp_path) -> None:
    path = str(tmp_path / "model.onnx")
    write_model(path, ir_version=3)
    assert read_graph(path)["overridable"] == []


def test_external_data_is_not_read(tmp_path) -> None:
    path = str(tmp_path / "model.onnx")
    write_model(path)
    model = onnx.load(path)
    onnx.save(model, path, save_as_external_data=True, size_threshold=0, location="weights.bin")
    os.remove(tmp_path / "weights.bin")  # only the graph file is in the tool's sandbox
    assert [i["name"] for i in read_graph(path)["inputs"]] == ["X", "Z"]


def test_main_prints_json_and_refuses_a_pointer_file(tmp_path, capsys) -> None:
    good, bad = str(tmp_path / "model.onnx"), str(tmp_path / "bad.onnx")
    write_model(good)
    assert main([good]) == 0
    assert list(json.loads(capsys.readouterr().out)) == [good]
    with open(bad, "w") as f:
        f.write("outs:\n- md5: 0123\n  path: model.onnx\n")
    assert main([bad]) == 1
    assert f"{bad}: not a readable ONNX model" in capsys.readouterr().err
