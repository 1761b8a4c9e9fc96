from __future__ import annotations

from textwrap import dedent

import pytest
from triton_mme.config.format import format_model_config
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import parse_model_config

# Triton's python_backend `add_sub` example as people write it: two `input [...]` lists, fields
# in no particular order, comments everywhere.
WRITTEN = dedent(
    """\
    # Copyright: the add_sub example.

    # Adds and subtracts.
    backend: "python"
    name: "add_sub"
    input [
      {
        name: "INPUT0"  # the first operand
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]
    instance_group [{ kind: KIND_CPU }]
    input [
      # the second operand
      {
        dims: 4
        name: "INPUT1", data_type: TYPE_FP32
      }
    ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
             { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]
    parameters: { key: "EXECUTION_ENV_PATH", value: { string_value: "$$TRITON_MODEL_DIRECTORY/e" } }
    max_batch_size: 8  # requests per batch
    # the end
    """
)

CANONICAL = dedent(
    """\
    # Copyright: the add_sub example.

    name: "add_sub"
    # Adds and subtracts.
    backend: "python"
    max_batch_size: 8  # requests per batch

    input [
      {
        name: "INPUT0"  # the first operand
        data_type: TYPE_FP32
        dims: [ 4 ]
      },
      # the second operand
      {
        name: "INPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    output [
      {
        name: "OUTPUT0"
        data_type: TYPE_FP32
        dims: [ 4 ]
      },
      {
        name: "OUTPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    instance_group [
      {
        kind: KIND_CPU
      }
    ]

    parameters { key: "EXECUTION_ENV_PATH" value { string_value: "$$TRITON_MODEL_DIRECTORY/e" } }
    # the end
    """
)


def test_canonical_layout_keeps_every_comment_and_the_meaning() -> None:
    formatted = format_model_config("m/config.pbtxt", WRITTEN)
    assert formatted == CANONICAL
    assert parse_model_config("a", formatted).message == parse_model_config("b", WRITTEN).message

    def comments(text: str) -> list[str]:
        return sorted(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)

    assert comments(formatted) == comments(WRITTEN)


def test_formatting_is_idempotent() -> None:
    assert format_model_config("m/config.pbtxt", CANONICAL) == CANONICAL


@pytest.mark.parametrize(
    "text",
    [
        'name: "x"\nbackend: "python"\n',
        'platform: "ensemble"\nensemble_scheduling { step [ { model_name: "a" '
        'input_map { key: "IN" value: "RAW" } } ] }\n',
        'name: "s" "t"\nbackend: "python"\ninput < name: "a" data_type: TYPE_STRING dims: -1 >\n',
        "backend: 'python'\ndynamic_batching { }\n",
        'platform: "ensemble"\nensemble_scheduling { step [ { model_name: "a" input_map { key: "IN"'
        '  # the raw image\n value: "RAW" } output_map: [ { key: "O" value: "X" } ] } ] }\n',
    ],
)
def test_meaning_kept_and_idempotent(text: str) -> None:
    formatted = format_model_config("m/config.pbtxt", text)
    assert parse_model_config("a", formatted).message == parse_model_config("b", text).message
    assert format_model_config("m/config.pbtxt", formatted) == formatted


def test_a_config_that_does_not_parse_is_left_to_validation() -> None:
    with pytest.raises(ModelConfigError, match="m/config.pbtxt:1"):
        format_model_config("m/config.pbtxt", "backend: python\nnot_a_field: 1\n")
