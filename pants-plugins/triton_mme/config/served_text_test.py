from __future__ import annotations

from textwrap import dedent

from triton_mme.config.backend import complete_backend_fields
from triton_mme.config.completion import ServedVersion, serve_version
from triton_mme.config.onnx_graph import OnnxGraph, OnnxTensor
from triton_mme.config.parse import parse_model_config
from triton_mme.config.served_text import served_configs_text


def graph(version: int, first_dim: int = -1) -> OnnxGraph:
    return OnnxGraph(
        f"{version}/model.onnx",
        (OnnxTensor("x", "tensor", 1, (first_dim, 4)),),
        (),
        (OnnxTensor("fc6_1", "tensor", 1, (first_dim, 2)),),
    )


def served_text(text: str, name: str, shipped: tuple[str, ...], **kwargs) -> str:
    config = parse_model_config(f"models/{name}/config.pbtxt", text)
    fields = complete_backend_fields(config, name, shipped)
    versions = sorted({int(path.split("/")[0]) for path in shipped})
    served = [
        serve_version(
            config,
            model_name=name,
            fields=fields,
            version=v,
            graph=kwargs.get("graphs", {}).get(v),
            model_py=kwargs.get("model_py"),
        )
        for v in versions
    ]
    return served_configs_text(config, name, served, fields)


def test_an_onnx_model_that_leaves_everything_to_triton() -> None:
    assert served_text("", "net", ("1/model.onnx",), graphs={1: graph(1)}) == dedent(
        """\
        # models/net/config.pbtxt as Triton serves `net` (version 1). A comment above each
        # field config.pbtxt leaves out says who fills it in at load; the comments of
        # config.pbtxt are not kept.

        # Not in config.pbtxt: filled in by Triton's core: the model name (on the endpoint,
        # the name the model ships under).
        name: "net"
        # Not in config.pbtxt: filled in by Triton's core, from the file 1/model.onnx.
        platform: "onnxruntime_onnx"
        # Not in config.pbtxt: filled in by Triton's core, from the file 1/model.onnx.
        backend: "onnxruntime"
        # Not in config.pbtxt: filled in by Triton's onnxruntime backend: config.pbtxt sets no
        # max_batch_size and every input and output of the graph 1/model.onnx has a variable
        # first dimension, so it takes Triton's default-max-batch-size, 4.
        max_batch_size: 4

        # Not in config.pbtxt: taken from the graph 1/model.onnx by Triton's onnxruntime
        # backend.
        input [
          {
            name: "x"
            data_type: TYPE_FP32
            dims: [ 4 ]
          }
        ]

        # Not in config.pbtxt: taken from the graph 1/model.onnx by Triton's onnxruntime
        # backend.
        output [
          {
            name: "fc6_1"
            data_type: TYPE_FP32
            dims: [ 2 ]
          }
        ]

        # Not in config.pbtxt: turned on by Triton's onnxruntime backend: the model batches
        # (max_batch_size 4) and config.pbtxt sets no scheduler.
        dynamic_batching { }

        # Not in config.pbtxt: filled in by Triton's core, from the file 1/model.onnx.
        default_model_filename: "model.onnx"
        """
    )


def test_versions_served_alike_are_written_once() -> None:
    text = 'name: "net"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 2\n'
    both = served_text(
        text, "net", ("1/model.onnx", "2/model.onnx"), graphs={1: graph(1), 2: graph(2)}
    )
    # Each version's graph is its own, so the two are written out one after the other.
    assert both.count("as Triton serves `net` (version 1)") == 1
    assert both.count("as Triton serves `net` (version 2)") == 1
    written = 'name: "net"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 2\n'
    alike = served_text(
        written + 'input [{ name: "x", data_type: TYPE_FP32, dims: [4] }]\n'
        'output [{ name: "fc6_1", data_type: TYPE_FP32, dims: [2] }]\n',
        "net",
        ("1/model.onnx", "2/model.onnx"),
        graphs={1: graph(1), 2: graph(2)},
    )
    assert alike.startswith("# models/net/config.pbtxt as Triton serves `net` (versions 1, 2).")


def test_what_is_left_to_auto_complete_config_or_refused() -> None:
    source = dedent(
        """\
        class TritonPythonModel:
            @staticmethod
            def auto_complete_config(config):
                config.add_output({"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]})
                return config
        """
    )
    python = served_text(
        'output [{ name: "OUTPUT0" }]\n',
        "p",
        ("1/model.py",),
        model_py=("models/p/1/model.py", source),
    )
    assert python.split("\n\n")[0] + "\n" == dedent(
        """\
        # models/p/config.pbtxt as Triton serves `p` (version 1). A comment above each field
        # config.pbtxt leaves out says who fills it in at load; the comments of config.pbtxt
        # are not kept.
        #
        # Left to model.py's auto_complete_config (models/p/1/model.py:3), which Triton runs
        # at load: it may add inputs and outputs, fill in their dims and data_type, raise
        # max_batch_size, and set dynamic batching and `decoupled`; what it sets is not shown.
        # Its body calls add_output.
        """
    )
    refused = served_text("max_batch_size: 8\n", "net", ("1/model.onnx",), graphs={1: graph(1, 4)})
    assert refused.split("\n\n")[0].endswith(
        dedent(
            """\
            #
            # Triton's onnxruntime backend refuses this model: "autofill failed for model 'net':
            # model does not support batching while non-zero max_batch_size is specified".
            # config.pbtxt lists no inputs and outputs, so the backend completes it from the graph
            # (1/model.onnx), and the graph's input "x" has shape [4, 4], whose first dimension is
            # not variable, so the model cannot batch. Set `max_batch_size: 0`, or export the
            # model with a dynamic first dimension (a dim_param such as "batch")."""
        )
    )
    tensorrt = served_text('platform: "tensorrt_plan"\n', "t", ("1/model.plan",))
    assert (
        "# The tensorrt backend may complete inputs, outputs and max_batch_size from the model\n"
        "# file at load; that file is not read here, so it is not shown."
    ) in tensorrt


def test_a_version_without_a_served_config() -> None:
    config = parse_model_config("models/e/config.pbtxt", 'platform: "ensemble"\n')
    served = ServedVersion(None, config)
    assert served_configs_text(config, "e", [served], None).startswith(
        "# models/e/config.pbtxt as Triton serves `e` (no version folder yet)."
    )
