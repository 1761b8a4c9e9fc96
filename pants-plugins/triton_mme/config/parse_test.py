from __future__ import annotations

from textwrap import dedent

from triton_mme.config.parse import parse_model_config

ENSEMBLE = dedent(
    """\
    platform: "ensemble"
    input [{ name: "A", data_type: TYPE_FP32, dims: [1] }]
    input { name: "B" data_type: TYPE_FP32 dims: [1] }
    ensemble_scheduling {
      step [
        {
          input_map { key: "x", value: "A" }
          output_map { key: "y", value: "C" }
        },
        {
          model_name: "m"  # a comment with model_name: "n"
          model_version: 2
          input_map { key: "x", value: "B" }
          input_map { key: "x", value: "C" }
          output_map [{ key: "y", value: "D" }]
        }
      ]
    }
    """
)


def test_lines_of_repeated_blocks_index_like_the_message() -> None:
    config = parse_model_config("e/config.pbtxt", ENSEMBLE)
    assert [(t.name, t.line) for t in config.inputs] == [("A", 2), ("B", 3)]
    assert config.line("input[1]", "name") == 3


def test_a_step_without_model_name_keeps_the_next_steps_line() -> None:
    config = parse_model_config("e/config.pbtxt", ENSEMBLE)
    assert [(s.where, s.line) for s in config.steps] == [("step 1", 6), ("step 2 (`m`)", 11)]


def test_map_entries_keep_order_and_duplicates() -> None:
    step = parse_model_config("e/config.pbtxt", ENSEMBLE).steps[1]
    assert [(e.key, e.value, e.line) for e in step.input_map] == [("x", "B", 13), ("x", "C", 14)]
    assert step.inputs() == {"x": "C"}  # Triton keeps the last.
    assert step.model_version == 2
    assert [(e.key, e.value, e.line) for e in step.output_map] == [("y", "D", 15)]


def test_parameters_and_their_lines() -> None:
    config = parse_model_config(
        "m/config.pbtxt",
        'backend: "python"\nparameters: {\n  key: "A"\n  value: { string_value: "1" }\n}\n'
        'parameters [{ key: "B", value: { string_value: "x" "y" } }]\n',
    )
    assert dict(config.parameters) == {"A": "1", "B": "xy"}
    assert config.map_entry_line("parameters", "A") == 3
    assert config.map_entry_line("parameters", "B") == 6
