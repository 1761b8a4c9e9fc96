from __future__ import annotations

from textwrap import dedent

import pytest
from pants.engine.addresses import Address
from pants.engine.target import InferredDependencies
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from triton_mme import dependency_inference
from triton_mme.util_rules import repository
from triton_mme.dependency_inference import (
    DuplicateTritonModelNames,
    EnsembleStepsInferenceFieldSet,
    InferEnsembleStepDependencies,
    TritonModelNameMapping,
    UnknownEnsembleStepModel,
)
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget


def model(name: str) -> str:
    return dedent(
        f"""\
        name: "{name}"
        backend: "python"
        input [{{ name: "IN", data_type: TYPE_FP32, dims: [1] }}]
        output [{{ name: "OUT", data_type: TYPE_FP32, dims: [1] }}]
        """
    )


def ensemble(*steps: str) -> str:
    step_text = ",\n".join(
        f'{{ model_name: "{s}" input_map {{ key: "IN" value: "X" }} '
        f'output_map {{ key: "OUT" value: "Y{i}" }} }}'
        for i, s in enumerate(steps)
    )
    return (
        dedent(
            """\
        platform: "ensemble"
        input [{ name: "X", data_type: TYPE_FP32, dims: [1] }]
        ensemble_scheduling { step [
        """
        )
        + step_text
        + "\n] }\n"
    )


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *dependency_inference.rules(),
            *repository.rules(),
            QueryRule(InferredDependencies, [InferEnsembleStepDependencies]),
            QueryRule(TritonModelNameMapping, []),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget],
    )


def infer(rule_runner: RuleRunner, spec: str) -> set[Address]:
    target = rule_runner.get_target(Address(spec))
    request = InferEnsembleStepDependencies(EnsembleStepsInferenceFieldSet.create(target))
    return set(rule_runner.request(InferredDependencies, [request]).include)


def write(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/pre/BUILD": "triton_model()",
            "models/pre/config.pbtxt": model("pre"),
            "models/net/BUILD": "triton_model(model_name='classifier')",
            "models/net/config.pbtxt": model("classifier"),
            "models/inner/BUILD": "triton_ensemble()",
            "models/inner/config.pbtxt": ensemble("pre", "classifier"),
            "models/outer/BUILD": "triton_ensemble()",
            "models/outer/config.pbtxt": ensemble("inner", "pre"),
        }
    )


def test_mapping_uses_model_names(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    assert dict(rule_runner.request(TritonModelNameMapping, [])) == {
        "classifier": Address("models/net"),
        "inner": Address("models/inner"),
        "outer": Address("models/outer"),
        "pre": Address("models/pre"),
    }


def test_ensemble_steps_are_inferred(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    assert infer(rule_runner, "models/inner") == {Address("models/pre"), Address("models/net")}
    # A nested ensemble is a dependency like any step; its own steps follow transitively.
    assert infer(rule_runner, "models/outer") == {Address("models/inner"), Address("models/pre")}
    assert infer(rule_runner, "models/pre") == set()


def test_unknown_step_model_lists_close_matches(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    rule_runner.write_files({"models/outer/config.pbtxt": ensemble("clasifier")})
    with engine_error(
        UnknownEnsembleStepModel,
        contains=(
            "of the ensemble models/outer:outer calls model `clasifier`, but no `triton_model` "
            "or `triton_ensemble` target has that model name. Did you mean `classifier`?"
        ),
    ):
        infer(rule_runner, "models/outer")


def test_two_targets_with_one_model_name(rule_runner: RuleRunner) -> None:
    write(rule_runner)
    rule_runner.write_files(
        {"other/pre/BUILD": "triton_model()", "other/pre/config.pbtxt": model("pre")}
    )
    with engine_error(
        DuplicateTritonModelNames, contains="`pre`: models/pre:pre and other/pre:pre"
    ):
        infer(rule_runner, "models/inner")
