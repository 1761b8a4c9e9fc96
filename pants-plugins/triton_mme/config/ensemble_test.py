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
