from __future__ import annotations

from textwrap import dedent

import pytest
from pants.core.goals.test import TestSubsystem
from pants.core.util_rules.partitions import Partitions
from pants.engine.addresses import Address, Addresses
from pants.engine.target import DependenciesRequest
from pants.testutil.option_util import create_subsystem
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from triton_mme.util_rules import repository
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.goals import test as test_goal
from triton_mme.util_rules.triton_server import ServedTarget
from triton_mme.target_types import (
    TritonTestDependenciesField,
    TritonTestModelField,
    TritonTestShareServerField,
    TritonTestSourcesField,
    TritonTestTarget,
    TritonTestTimeoutField,
)
from triton_mme.goals.test import (
    ServedTestRequest,
    TritonModelLoadFieldSet,
    TritonModelLoadRequest,
    TritonTestFieldSet,
    TritonTestModelError,
    TritonTestRequest,
    batch_timeout,
    partition_field_sets,
    split_test_files,
)

CONFIG = dedent(
    """\
    backend: "python"
    max_batch_size: 0
    input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
    """
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *repository.rules(),
            *test_goal.rules(),
            QueryRule(Partitions, [TritonTestRequest.PartitionRequest]),
            QueryRule(Partitions, [TritonModelLoadRequest.PartitionRequest]),
            QueryRule(Addresses, [DependenciesRequest]),
            QueryRule(ServedTarget, [ServedTestRequest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget, TritonTestTarget],
    )


def write_model(rule_runner: RuleRunner, name: str, build: str) -> None:
    rule_runner.write_files(
        {
            f"models/{name}/BUILD": build,
            f"models/{name}/config.pbtxt": CONFIG,
            f"models/{name}/1/model.py": "",
            f"models/{name}/tests/basic.json": "{}",
            f"models/{name}/tests/tensor.npy": "",
            f"models/{name}/tests/test_model.py": "",
        }
    )


def field_set(rule_runner: RuleRunner, address: Address) -> TritonTestFieldSet:
    return TritonTestFieldSet.create(rule_runner.get_target(address))


def test_model_in_the_same_directory_is_inferred(rule_runner: RuleRunner) -> None:
    write_model(rule_runner, "a", "triton_model()\ntriton_test(name='tests')")
    test_target = rule_runner.get_target(Address("models/a", target_name="tests"))
    deps = rule_runner.request(
        Addresses, [DependenciesRequest(test_target[TritonTestDependenciesField])]
    )
    assert list(deps) == [Address("models/a")]
    served = rule_runner.request(
        ServedTarget,
        [
            ServedTestRequest(
                test_target.address,
                test_target[TritonTestModelField],
                test_target[TritonTestSourcesField],
            )
        ],
    )
    assert served.model_address == Address("models/a")
    assert served.case_files == ("models/a/tests/basic.json",)
    assert served.pytest_files == ("models/a/tests/test_model.py",)


def test_explicit_model(rule_runner: RuleRunner) -> None:
    write_model(rule_runner, "a", "triton_model()")
    rule_runner.write_files({"suite/BUILD": "triton_test(model='models/a', sources=[])"})
    target = rule_runner.get_target(Address("suite"))
    deps = rule_runner.request(
        Addresses, [DependenciesRequest(target[TritonTestDependenciesField])]
    )
    assert list(deps) == [Address("models/a")]


def test_no_model_is_a_clear_error(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"suite/BUILD": "triton_test(sources=[])"})
    target = rule_runner.get_target(Address("suite"))
    with engine_error(TritonTestModelError, contains="exactly one `triton_model`"):
        rule_runner.request(Addresses, [DependenciesRequest(target[TritonTestDependenciesField])])


def test_shared_tests_form_one_partition(rule_runner: RuleRunner) -> None:
    for name in ("a", "b", "c"):
        write_model(rule_runner, name, "triton_model()\ntriton_test(name='tests')")
    write_model(
        rule_runner, "alone", "triton_model()\ntriton_test(name='tests', share_server=False)"
    )
    field_sets = tuple(
        field_set(rule_runner, Address(f"models/{name}", target_name="tests"))
        for name in ("c", "alone", "a", "b")
    )
    partitions = rule_runner.request(Partitions, [TritonTestRequest.PartitionRequest(field_sets)])
    summary = [([fs.address.spec for fs in p.elements], p.metadata.description) for p in partitions]
    assert summary == [
        (
            ["models/a:tests", "models/b:tests", "models/c:tests"],
            "one shared Triton server",
        ),
        (["models/alone:tests"], "a Triton server of its own"),
    ]


def test_deployable_models_without_tests_are_loaded(rule_runner: RuleRunner) -> None:
    write_model(rule_runner, "tested", "triton_model()\ntriton_test(name='tests')")
    write_model(rule_runner, "untested", "triton_model()")
    write_model(rule_runner, "member", "triton_model(ensemble_member_only=True)")
    rule_runner.write_files(
        {
            "models/pipeline/BUILD": "triton_ensemble()",
            "models/pipeline/config.pbtxt": 'platform: "ensemble"\n',
        }
    )
    targets = [
        rule_runner.get_target(Address(f"models/{name}"))
        for name in ("tested", "untested", "member", "pipeline")
    ]
    assert all(TritonModelLoadFieldSet.is_applicable(t) for t in targets)
    field_sets = tuple(TritonModelLoadFieldSet.create(t) for t in targets)
    partitions = rule_runner.request(
        Partitions, [TritonModelLoadRequest.PartitionRequest(field_sets)]
    )
    # `models/tested` is loaded by its triton_test's batch; a member only ever ships inside its
    # ensemble, which loads it.
    assert [[fs.address.spec_path for fs in p.elements] for p in partitions] == [
        ["models/pipeline", "models/untested"]
    ]


def test_untested_models_are_loaded_in_small_stable_batches(rule_runner: RuleRunner) -> None:
    names = [f"m{k:02d}" for k in range(20)]
    for name in names:
        write_model(rule_runner, name, "triton_model()")
    field_sets = tuple(
        TritonModelLoadFieldSet.create(rule_runner.get_target(Address(f"models/{name}")))
        for name in names
    )
    partitions = rule_runner.request(
        Partitions, [TritonModelLoadRequest.PartitionRequest(field_sets)]
    )
    batches = [[fs.address.spec_path[7:] for fs in p.elements] for p in partitions]
    assert sum(batches, []) == names
    assert len(batches) > 1 and all(len(batch) <= 8 for batch in batches)


def test_split_test_files() -> None:
    cases, pytest_files = split_test_files(
        [
            "m/tests/b.json",
            "m/tests/a.json",
            "m/tests/x.npz",
            "m/tests/test_m.py",
            "m/tests/conftest.py",
        ]
    )
    assert cases == ("m/tests/a.json", "m/tests/b.json")
    assert pytest_files == ("m/tests/test_m.py",)


@pytest.mark.parametrize(
    "timeouts, default, maximum, fields, expected",
    [
        (True, None, None, [None, None], None),
        (True, None, None, [10, None], 10),
        (True, 30, None, [10, None], 40),
        (True, 30, 20, [10, None], 30),
        (False, 30, None, [10, 20], None),
    ],
)
def test_batch_timeout_sums_the_targets_timeouts(
    rule_runner: RuleRunner, timeouts, default, maximum, fields, expected
) -> None:
    for i, timeout in enumerate(fields):
        build = f"triton_model()\ntriton_test(name='tests', timeout={timeout})"
        write_model(rule_runner, f"m{i}", build)
    field_sets = [
        field_set(rule_runner, Address(f"models/m{i}", target_name="tests"))
        for i in range(len(fields))
    ]
    test_subsystem = create_subsystem(
        TestSubsystem, timeouts=timeouts, timeout_default=default, timeout_maximum=maximum
    )
    assert batch_timeout(field_sets, test_subsystem) == expected


def shared_field_set(name: str, share_server: bool = True) -> TritonTestFieldSet:
    address = Address(f"models/{name}", target_name="tests")
    return TritonTestFieldSet(
        address,
        sources=TritonTestSourcesField(None, address),
        model=TritonTestModelField(None, address),
        timeout=TritonTestTimeoutField(None, address),
        share_server=TritonTestShareServerField(share_server, address),
    )


def partitioned(
    names: list[str], sizes: dict[str, int] | None = None, batch_size: int = 8, max_bytes: int = 100
) -> list[list[str]]:
    field_sets = [shared_field_set(name) for name in names]
    served = {
        fs.address: {
            Address(f"models/{fs.address.spec_path[7:]}"): (sizes or {}).get(
                fs.address.spec_path[7:], 1
            )
        }
        for fs in field_sets
    }
    partitions = partition_field_sets(field_sets, served, batch_size, max_bytes)
    return [[fs.address.spec_path[7:] for fs in p.elements] for p in partitions]


def test_partitions_are_capped_and_stable() -> None:
    names = [f"m{k:03d}" for k in range(60)]
    batches = partitioned(names)
    assert sorted(sum(batches, [])) == names
    assert all(4 <= len(batch) <= 8 for batch in batches[:-1]) and len(batches[-1]) <= 8
    # A new model changes at most the partition it joins and the one after it; the others keep
    # their members, so their cached results stay valid.
    with_new = partitioned(sorted([*names, "m030x"]))
    unchanged = [batch for batch in batches if batch in with_new]
    assert len(unchanged) >= len(batches) - 2


def test_partitions_respect_the_memory_bound() -> None:
    sizes = {"a": 60, "b": 30, "c": 20, "d": 150, "e": 10}
    assert partitioned(list(sizes), sizes, max_bytes=100) == [["a", "b"], ["c"], ["d"], ["e"]]


def test_models_served_by_several_tests_count_once() -> None:
    field_sets = [shared_field_set("pipeline"), shared_field_set("pre")]
    shared_member = {Address("models/pre"): 60}
    served = {
        field_sets[0].address: {Address("models/pipeline"): 1, **shared_member},
        field_sets[1].address: shared_member,
    }
    (partition,) = partition_field_sets(field_sets, served, 8, 100)
    assert len(partition.elements) == 2
