from __future__ import annotations

import pytest
from triton_mme.config.batching import check_batching
from triton_mme.config.parse import parse_model_config

PATH = "models/m/config.pbtxt"


def errors(text: str) -> list[str]:
    config = parse_model_config(PATH, 'backend: "python"\nmax_batch_size: 8\n' + text + "\n")
    return [str(e) for e in check_batching(config)]


START = '{ name: "START", control [{ kind: CONTROL_SEQUENCE_START, int32_false_true: [0, 1] }] }'
READY = '{ name: "READY", control [{ kind: CONTROL_SEQUENCE_READY, int32_false_true: [0, 1] }] }'

# Each case: a config Triton refuses, a close one it accepts, and what the message says.
CASES = [
    (
        "dynamic_batching { preferred_batch_size: [4, 16] }",
        "dynamic_batching { preferred_batch_size: [4, 8] }",
        "preferred_batch_size 16 is larger than max_batch_size 8",
    ),
    (
        "dynamic_batching { priority_levels: 3 }",
        "dynamic_batching { priority_levels: 3, default_priority_level: 2 }",
        "default_priority_level 0 is outside 1 to 3",
    ),
    (
        "dynamic_batching { priority_levels: 3, default_priority_level: 1, "
        "priority_queue_policy { key: 4, value: { max_queue_size: 1 } } }",
        "dynamic_batching { priority_levels: 3, default_priority_level: 1, "
        "priority_queue_policy { key: 3, value: { max_queue_size: 1 } } }",
        "priority_queue_policy has key 4, outside 1 to 3",
    ),
    (
        "dynamic_batching { preserve_ordering: true, priority_levels: 2, "
        "default_priority_level: 1 }",
        "dynamic_batching { preserve_ordering: true, priority_levels: 1, "
        "default_priority_level: 1 }",
        "`preserve_ordering: true` allows only one priority level",
    ),
    (
        "dynamic_batching { preserve_ordering: true, default_queue_policy: { "
        "timeout_action: DELAY, default_timeout_microseconds: 100 } }",
        "dynamic_batching { preserve_ordering: true, default_queue_policy: { "
        "timeout_action: REJECT, default_timeout_microseconds: 100 } }",
        "cannot go with a queue policy whose timeout_action is DELAY",
    ),
    (
        f"sequence_batching {{ control_input [{START}, "
        '{ name: "START", control [{ kind: CONTROL_SEQUENCE_READY, int32_false_true: [0, 1] }] }'
        "] }",
        f"sequence_batching {{ control_input [{START}, {READY}] }}",
        "control_input `START` is given twice",
    ),
    (
        f"sequence_batching {{ control_input [{START}, "
        '{ name: "S2", control [{ kind: CONTROL_SEQUENCE_START, int32_false_true: [0, 1] }] }'
        "] }",
        f"sequence_batching {{ control_input [{START}] }}",
        "the control kind CONTROL_SEQUENCE_START is given twice",
    ),
    (
        'sequence_batching { control_input [{ name: "READY", control [{ '
        "kind: CONTROL_SEQUENCE_READY }] }] }",
        f"sequence_batching {{ control_input [{READY}] }}",
        "the CONTROL_SEQUENCE_READY control has no value",
    ),
    (
        'sequence_batching { control_input [{ name: "READY", control [{ '
        "kind: CONTROL_SEQUENCE_READY, int32_false_true: [1] }] }] }",
        f"sequence_batching {{ control_input [{READY}] }}",
        "must have exactly 2 entries",
    ),
    (
        'sequence_batching { control_input [{ name: "CORRID", control [{ '
        "kind: CONTROL_SEQUENCE_CORRID }] }] }",
        'sequence_batching { control_input [{ name: "CORRID", control [{ '
        "kind: CONTROL_SEQUENCE_CORRID, data_type: TYPE_UINT64 }] }] }",
        "the CONTROL_SEQUENCE_CORRID control needs a `data_type`",
    ),
    (
        "sequence_batching { oldest { preferred_batch_size: [9] } }",
        "sequence_batching { oldest { preferred_batch_size: [8] } }",
        "preferred_batch_size 9 is larger than max_batch_size 8",
    ),
]


@pytest.mark.parametrize("refused, accepted, message", CASES)
def test_batching_rules(refused: str, accepted: str, message: str) -> None:
    found = errors(refused)
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:3: ")
    assert message in found[0]
    assert errors(accepted) == []


def test_preferred_sizes_need_max_batch_size_in_the_file_as_triton_checks_it_first() -> None:
    # Triton's core validates preferred sizes against config.pbtxt's max_batch_size before any
    # backend auto-completes the config (core's model_repository_manager.cc: ValidateModelConfig
    # right after GetNormalizedModelConfig), so a backend that would fill it in comes too late.
    config = parse_model_config(
        PATH, 'backend: "python"\ndynamic_batching { preferred_batch_size: [4] }\n'
    )
    assert [str(e) for e in check_batching(config)] == [
        f"{PATH}:2: dynamic_batching: preferred_batch_size 4 needs a max_batch_size of at least "
        "4, but config.pbtxt sets none, and Triton checks preferred sizes against the file "
        'before any backend fills one in, so it refuses the model ("dynamic batching preferred '
        'size must be <= max batch size for m"): set `max_batch_size: 4` (or more) in '
        "config.pbtxt."
    ]
    text = 'backend: "python"\nmax_batch_size: 4\ndynamic_batching { preferred_batch_size: [4] }\n'
    fixed = parse_model_config(PATH, text)
    assert check_batching(fixed) == []
