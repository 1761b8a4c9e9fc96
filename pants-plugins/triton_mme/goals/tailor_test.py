from __future__ import annotations

from textwrap import dedent

import pytest
from pants.core.goals.tailor import (
    DisjointSourcePutativeTarget,
    PutativeTarget,
    PutativeTargets,
)
from pants.core.goals.tailor import rules as core_tailor_rules
from pants.core.target_types import FilesGeneratorTarget
from pants.testutil.rule_runner import QueryRule, RuleRunner
from triton_mme.goals import tailor
from triton_mme.goals.tailor import (
    PutativeTritonModelTargetsRequest,
    PutativeTritonTestsRequest,
    putative_triton_tests,
)
from triton_mme.target_types import (
    ModelPythonEnvField,
    TritonEnsembleTarget,
    TritonModelTarget,
    TritonPythonEnvTarget,
    TritonTestTarget,
)
from triton_mme.util_rules.env.checks import EXECUTION_ENV_LINE

PYTHON_CONFIG = 'backend: "python"\n'
PIPELINE_CONFIG = dedent(
    """\
    # pipeline
    platform: "ensemble"
    ensemble_scheduling { step [
      { model_name: "pre" input_map { key: "IN" value: "RAW" }
        output_map { key: "OUT" value: "X" } },
      { model_name: "net" input_map { key: "IN" value: "X" } output_map { key: "OUT" value: "Y" } }
    ] }
    """
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *tailor.rules(),
            *core_tailor_rules(),
            TritonModelTarget.register_plugin_field(ModelPythonEnvField),
            QueryRule(PutativeTargets, [PutativeTritonModelTargetsRequest]),
            QueryRule(PutativeTargets, [PutativeTritonTestsRequest]),
            QueryRule(DisjointSourcePutativeTarget, [PutativeTarget]),
        ],
        target_types=[
            TritonModelTarget,
            TritonEnsembleTarget,
            TritonTestTarget,
            TritonPythonEnvTarget,
            # Stands in for models/BUILD's `python_sources` lint targets (same ownership).
            FilesGeneratorTarget,
        ],
    )


def model_proposals(rule_runner: RuleRunner, *dirs: str) -> list[PutativeTarget]:
    return list(rule_runner.request(PutativeTargets, [PutativeTritonModelTargetsRequest(dirs)]))


def test_proposes_the_target_type_the_config_needs(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/pre/config.pbtxt": PYTHON_CONFIG,
            "models/pre/1/model.py": "",
            "models/pipeline/config.pbtxt": '# pipeline\nplatform: "ensemble"\n',
            "models/owned/config.pbtxt": PYTHON_CONFIG,
            "models/owned/BUILD": "triton_model()",
        }
    )
    proposals = model_proposals(rule_runner, "models/pre", "models/pipeline", "models/owned")
    assert [(p.path, p.type_alias, dict(p.kwargs)) for p in proposals] == [
        ("models/pipeline", "triton_ensemble", {}),
        ("models/pre", "triton_model", {}),
    ]


def test_sources_owned_by_lint_targets_do_not_narrow_the_model(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/BUILD": 'files(name="model_code", sources=["**/[0-9]*/*.py"])',
            "models/add_sub/config.pbtxt": PYTHON_CONFIG,
            "models/add_sub/model_version.txt": "1.0\n",
            "models/add_sub/1/model.py": "",
        }
    )
    (proposal,) = model_proposals(rule_runner, "models/add_sub")
    disjoint = rule_runner.request(DisjointSourcePutativeTarget, [proposal]).putative_target
    assert disjoint == proposal
    assert "sources" not in disjoint.kwargs
    assert disjoint.generate_build_file_stanza("    ") == "triton_model()\n"


def test_ensemble_members_without_a_version_file_ship_only_in_the_ensemble(
    rule_runner: RuleRunner,
) -> None:
    rule_runner.write_files(
        {
            "models/g/pipeline/config.pbtxt": PIPELINE_CONFIG,
            "models/g/pipeline/model_version.txt": "1\n",
            "models/g/pre/config.pbtxt": PYTHON_CONFIG,
            "models/g/net/config.pbtxt": 'platform: "onnxruntime_onnx"\n',
            "models/g/net/model_version.txt": "2\n",
            "models/lone/config.pbtxt": PYTHON_CONFIG,
        }
    )
    proposals = model_proposals(rule_runner, "models/g/pre", "models/g/net", "models/lone")
    assert {p.path: dict(p.kwargs) for p in proposals} == {
        "models/g/net": {},  # Called, but versioned: it is also deployed on its own.
        "models/g/pre": {"ensemble_member_only": True},
        "models/lone": {},  # No ensemble calls it: packaging asks for its version.
    }
    (pre,) = [p for p in proposals if p.path == "models/g/pre"]
    assert pre.comments == (
        "# Shipped inside the tarball of models/g/pipeline; it has no model_version.txt, so it "
        "gets no tarball of its own.",
    )


def test_names_the_one_env_that_fits_a_model_setting_execution_env_path(
    rule_runner: RuleRunner,
) -> None:
    rule_runner.write_files(
        {
            "models/g/python_env/BUILD": 'triton_python_env(python="3.11")',
            "models/g/python_env/python_env.lock": "",
            "models/g/pre/config.pbtxt": PYTHON_CONFIG + EXECUTION_ENV_LINE + "\n",
            "models/g/post/config.pbtxt": PYTHON_CONFIG,
            "models/h/a/BUILD": 'triton_python_env(python="3.11")',
            "models/h/a/python_env.lock": "",
            "models/h/b/BUILD": 'triton_python_env(python="3.11")',
            "models/h/b/python_env.lock": "",
            "models/h/pre/config.pbtxt": PYTHON_CONFIG + EXECUTION_ENV_LINE + "\n",
        }
    )
    proposals = model_proposals(rule_runner, "models/g/pre", "models/g/post", "models/h/pre")
    assert {p.path: dict(p.kwargs) for p in proposals} == {
        "models/g/post": {},  # No EXECUTION_ENV_PATH: no env.
        "models/g/pre": {"python_env": "models/g/python_env:python_env"},
        "models/h/pre": {},  # Two envs fit: the model's check asks to name one.
    }


def test_proposes_triton_test_whoever_else_owns_the_files(rule_runner: RuleRunner) -> None:
    tests = {
        "tests/basic.json": "{}",
        "tests/tensor.npy": "",
        "tests/test_model.py": "",
    }
    rule_runner.write_files(
        {
            "models/BUILD": 'files(name="model_tests", sources=["**/tests/*.py"])',
            **{f"models/a/{path}": content for path, content in tests.items()},
            "models/a/config.pbtxt": PYTHON_CONFIG,
            "models/owned/BUILD": "triton_model()\ntriton_test(name='tests')",
            **{f"models/owned/{path}": content for path, content in tests.items()},
            "models/owned/config.pbtxt": PYTHON_CONFIG,
            "not_a_model/tests/case.json": "{}",
        }
    )
    putative = rule_runner.request(
        PutativeTargets, [PutativeTritonTestsRequest(("models/a", "models/owned", "not_a_model"))]
    )
    (proposal,) = putative
    assert (proposal.path, proposal.name, proposal.type_alias) == (
        "models/a",
        "tests",
        "triton_test",
    )
    assert proposal.triggering_sources == tuple(sorted(tests))
    disjoint = rule_runner.request(DisjointSourcePutativeTarget, [proposal]).putative_target
    assert disjoint.generate_build_file_stanza("    ") == 'triton_test(\n    name="tests",\n)\n'


def test_putative_triton_tests_needs_a_model_config() -> None:
    assert putative_triton_tests(["x/tests/a.json"], ["y/config.pbtxt"], []) == []
