from __future__ import annotations

from textwrap import dedent

from triton_mme.config.ensemble import EnsembleMembers, check_ensemble_steps, find_cycle
from triton_mme.config.parse import ModelConfigFile, parse_model_config

PATH = "models/e/config.pbtxt"


def model(name: str, *, decoupled: bool = False, outputs: str = "OUT") -> ModelConfigFile:
    text = (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: 8\n'
        'input [{ name: "IN", data_type: TYPE_FP32, dims: [4] }]\n'
        + "".join(
            f'output [{{ name: "{o}", data_type: TYPE_FP32, dims: [4] }}]\n'
            for o in outputs.split()
        )
        + ("model_transaction_policy { decoupled: true }\n" if decoupled else "")
    )
    return parse_model_config(f"models/{name}/config.pbtxt", text)


def ensemble(steps: str, outputs: str = "Y") -> str:
    return (
        'platform: "ensemble"\nmax_batch_size: 8\n'
        'input [{ name: "X", data_type: TYPE_FP32, dims: [4] }]\n'
        + "".join(
            f'output [{{ name: "{o}", data_type: TYPE_FP32, dims: [4] }}]\n'
            for o in outputs.split()
        )
        + f"ensemble_scheduling {{ step [\n{steps}\n] }}\n"
    )


def step(model: str, reads: str, writes: str, extra: str = "") -> str:
    return (
        f'{{ model_name: "{model}" {extra} input_map {{ key: "IN", value: "{reads}" }} '
        f'output_map {{ key: "OUT", value: "{writes}" }} }}'
    )


MEMBERS = {"a": model("a"), "b": model("b"), "c": model("c")}
TWO_INPUTS = parse_model_config(
    "models/c/config.pbtxt",
    dedent(
        """\
        backend: "python"
        max_batch_size: 8
        input [{ name: "IN", data_type: TYPE_FP32, dims: [4] }]
        input [{ name: "IN2", data_type: TYPE_FP32, dims: [4] }]
        output [{ name: "OUT", data_type: TYPE_FP32, dims: [4] }]
        """
    ),
)


def errors(text: str, **members: ModelConfigFile) -> list[str]:
    found = check_ensemble_steps(
        parse_model_config(PATH, text),
        EnsembleMembers(
            configs={**MEMBERS, **members},
            versions={name: (1, 2) for name in ("a", "b", "c")},
            known_model_names=("a", "b", "c"),
        ),
    )
    return [str(e) for e in found]


def only(found: list[str]) -> str:
    assert len(found) == 1, found
    return found[0]


def test_a_chain_is_fine() -> None:
    assert errors(ensemble(step("a", "X", "T") + ",\n" + step("b", "T", "Y"))) == []


def test_duplicated_input_map_key() -> None:
    text = ensemble(
        '{ model_name: "a" input_map { key: "IN", value: "X" }\n'
        'input_map { key: "IN", value: "X2" } output_map { key: "OUT", value: "Y" } }'
    )
    message = errors(text)[0]
    assert message.startswith(f"{PATH}:7: ")
    assert "step 1 (`a`): input_map key `IN` is given twice (`X` on line 6, `X2` here)" in message


def test_tensor_written_but_never_read() -> None:
    text = ensemble(step("a", "X", "T") + ",\n" + step("b", "X", "Y"))
    message = only(errors(text))
    assert message.startswith(f"{PATH}:6: ")
    assert "step 1 (`a`) writes ensemble tensor `T`, but no step reads it" in message
    assert errors(ensemble(step("a", "X", "T") + ",\n" + step("b", "T", "Y"))) == []


def test_output_written_by_a_step_that_reads_it() -> None:
    # b writes Y from T, and a writes T from Y: neither can ever run.
    text = ensemble(
        '{ model_name: "a" input_map [{ key: "IN", value: "X" }] output_map { key: "OUT", '
        'value: "U" } },\n' + step("b", "U", "Y") + ",\n" + step("c", "Y", "Y2"),
        outputs="Y Y2",
    )
    assert errors(text) == []
    cyclic = ensemble(
        '{ model_name: "c" input_map [{ key: "IN", value: "X" }, { key: "IN2", value: "Y" }]'
        ' output_map { key: "OUT", value: "Y" } }'
    )
    message = only(errors(cyclic, c=TWO_INPUTS))
    assert message.startswith(f"{PATH}:6: ")
    assert "step 1 (`c`) can never run: it reads `Y`, which only this step" in message


def test_pinned_version_that_no_folder_holds() -> None:
    text = ensemble(step("a", "X", "Y", extra="model_version: 3"))
    message = only(errors(text))
    assert "step 1 (`a`) pins `model_version: 3`, but model `a` loads version(s) 1, 2" in message
    assert errors(ensemble(step("a", "X", "Y", extra="model_version: 2"))) == []
    assert errors(ensemble(step("a", "X", "Y", extra="model_version: -1"))) == []


def test_step_reads_from_two_decoupled_models() -> None:
    steps = (
        step("a", "X", "T1")
        + ",\n"
        + step("b", "X", "T2")
        + ",\n"
        + '{ model_name: "c" input_map [{ key: "IN", value: "T1" }, { key: "IN2", value: "T2" }]'
        ' output_map { key: "OUT", value: "Y" } }'
    )
    assert errors(ensemble(steps), c=TWO_INPUTS) == []
    message = only(errors(ensemble(steps), a=model("a", decoupled=True), c=TWO_INPUTS))
    assert "step 3 (`c`) reads tensors that come from different decoupled models" in message


def test_outputs_from_two_decoupled_steps() -> None:
    text = ensemble(step("a", "X", "Y") + ",\n" + step("a", "X", "Y2"), outputs="Y Y2")
    assert errors(text) == []
    message = only(errors(text, a=model("a", decoupled=True)))
    assert "the ensemble's outputs are tensors that come from different decoupled models" in (
        message
    )


def test_find_cycle() -> None:
    assert find_cycle("e", {"e": ("a", "e")}) == ("e", "e")
    assert find_cycle("e", {"e": ("a", "f"), "f": ("g",), "g": ("e",)}) == ("e", "f", "g", "e")
    assert find_cycle("e", {"e": ("f",), "f": ("g",), "g": ("f",)}) is None


def test_step_model_whose_tensors_come_from_auto_complete_config() -> None:
    auto = parse_model_config("models/a/config.pbtxt", 'backend: "python"\n')
    assert errors(ensemble(step("a", "X", "T") + ",\n" + step("b", "T", "Y")), a=auto) == []


def onnx_member(name: str, text: str = "") -> ModelConfigFile:
    """A model that leaves its tensors to Triton, completed from a graph with input `x` (FLOAT,
    [batch, 4]) and output `fc6_1` (FLOAT, [batch, 2])."""
    from triton_mme.config.backend import complete_backend_fields
    from triton_mme.config.completion import serve_version
    from triton_mme.config.onnx_graph import OnnxGraph, OnnxTensor

    config = parse_model_config(f"models/{name}/config.pbtxt", text)
    graph = OnnxGraph(
        "1/model.onnx",
        (OnnxTensor("x", "tensor", 1, (-1, 4)),),
        (),
        (OnnxTensor("fc6_1", "tensor", 1, (-1, 2)),),
    )
    fields = complete_backend_fields(config, name, ("1/model.onnx",))
    return serve_version(config, model_name=name, fields=fields, version=1, graph=graph).config


def net_ensemble(out_key: str = "fc6_1", in_key: str = "x", batch: int = 4, dims: str = "2") -> str:
    return (
        f'platform: "ensemble"\nmax_batch_size: {batch}\n'
        'input [{ name: "X", data_type: TYPE_FP32, dims: [4] }]\n'
        f'output [{{ name: "Y", data_type: TYPE_FP32, dims: [{dims}] }}]\n'
        f'ensemble_scheduling {{ step [{{ model_name: "net" input_map {{ key: "{in_key}", '
        f'value: "X" }} output_map {{ key: "{out_key}", value: "Y" }} }}] }}\n'
    )


def test_a_step_over_a_model_completed_from_its_graph() -> None:
    net = onnx_member("net")
    assert errors(net_ensemble(), net=net) == []
    assert errors(net_ensemble(out_key="fc6"), net=net) == [
        f"{PATH}:5: step 1 (`net`): output_map key `fc6` is not an output of model `net` (its "
        "outputs: the graph's output `fc6_1`, which config.pbtxt leaves to Triton; graph: "
        "models/net/1/model.onnx). Did you mean `fc6_1`?",
        f"{PATH}:4: ensemble output `Y` is not written by any step: map a step output to it "
        '(`output_map { key: "<output>" value: "Y" }`).',
    ]
    assert errors(net_ensemble(in_key="X"), net=net) == [
        f"{PATH}:5: step 1 (`net`): input_map key `X` is not an input of model `net` (its "
        "inputs: the graph's input `x`, which config.pbtxt leaves to Triton; graph: "
        "models/net/1/model.onnx).",
        f"{PATH}:5: step 1 (`net`): required input `x` of model `net` (the graph's, which "
        "config.pbtxt leaves to Triton; graph: models/net/1/model.onnx) is not in the step's "
        'input_map: add `input_map { key: "x" value: "<tensor>" }`.',
    ]


def test_dtypes_shapes_and_batch_size_of_a_completed_model() -> None:
    net = onnx_member("net")
    assert errors(net_ensemble(dims="3"), net=net) == [
        f"{PATH}:4: ensemble output `Y`: shape mismatch: step 1 (`net`) output `fc6_1` (the "
        "graph's, which config.pbtxt leaves to Triton; graph: models/net/1/model.onnx) has shape "
        "[-1, 2], but [-1, 3] is expected (shapes include the batch dimension -1 when "
        "max_batch_size > 0; -1 matches any size). Make the dims agree."
    ]
    assert errors(net_ensemble(batch=8), net=net) == [
        f"{PATH}:5: step 1 (`net`): model `net` has max_batch_size 4 (filled in by Triton's "
        "onnxruntime backend: config.pbtxt sets no max_batch_size and every input and output of "
        "the graph 1/model.onnx has a variable first dimension, so it takes Triton's "
        "default-max-batch-size, 4), smaller than the ensemble's 8: set `max_batch_size: 8` (or "
        "more) in the model's config.pbtxt, or lower the ensemble's."
    ]
    assert errors(net_ensemble(batch=8), net=onnx_member("net", "max_batch_size: 8\n")) == []


def test_what_auto_complete_config_may_add_is_not_refused() -> None:
    from triton_mme.config.completion import leave_to_auto_complete
    from triton_mme.config.auto_complete import AutoCompleteMethod

    # The step model lists one input without dims and no outputs; model.py's
    # auto_complete_config may add `IN2`, `OUT` and raise max_batch_size.
    listed = parse_model_config(
        "models/a/config.pbtxt",
        'backend: "python"\ninput [{ name: "IN", data_type: TYPE_FP32 }]\n',
    )
    auto = leave_to_auto_complete(listed, AutoCompleteMethod("models/a/1/model.py", 3))
    text = ensemble(
        '{ model_name: "a" input_map [{ key: "IN", value: "X" }, { key: "IN2", value: "X" }] '
        'output_map { key: "OUT", value: "Y" } }'
    )
    assert errors(text, a=auto) == []
    # Without auto_complete_config, the file is all there is.
    plain = leave_to_auto_complete(listed, None)
    assert errors(text, a=plain) == [
        f"{PATH}:6: step 1 (`a`): output_map key `OUT` is not an output of model `a` (its "
        "outputs: none).",
        f"{PATH}:6: step 1 (`a`): input `IN` of `a` reads `X`: shape mismatch: ensemble input "
        "has shape [-1, 4], but [] is expected (shapes include the batch dimension -1 when "
        "max_batch_size > 0; -1 matches any size). Make the dims agree.",
        f"{PATH}:6: step 1 (`a`): input_map key `IN2` is not an input of model `a` (its inputs: "
        "IN). Did you mean `IN`?",
        f"{PATH}:4: ensemble output `Y` is not written by any step: map a step output to it "
        '(`output_map { key: "<output>" value: "Y" }`).',
    ]
