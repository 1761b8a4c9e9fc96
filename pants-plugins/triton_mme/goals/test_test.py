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
    TritonTestSourcesField,
    TritonTestTarget,
)
from triton_mme.goals.test import (
    ServedTestRequest,
    TritonTestFieldSet,
    TritonTestModelError,
    TritonTestRequest,
    batch_timeout,
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
