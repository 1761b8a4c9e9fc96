"""The `triton_test` target: a model's test cases and pytest files, run against a live Triton."""

from __future__ import annotations

from pants.core.goals.test import TestTimeoutField
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    Dependencies,
    MultipleSourcesField,
    StringField,
    Target,
)
from pants.util.strutil import help_text

CASE_FILE_EXTENSIONS = (".json", ".npy", ".npz")


class TritonTestSourcesField(MultipleSourcesField):
    default = (
        "tests/*.json",
        "tests/*.npy",
        "tests/*.npz",
        "tests/test_*.py",
        "tests/*_test.py",
        "tests/conftest.py",
    )
    expected_file_extensions = (*CASE_FILE_EXTENSIONS, ".py")
    help = help_text(
        """
        The test files: JSON case files (each one or more requests with expected outputs, see
        docs/testing.md), the `.npy`/`.npz` tensors they refer to, and pytest files that use the
        `triton` fixture.

        JSON files are cases; `.npy`/`.npz` files are data for them; `test_*.py`/`*_test.py`
        files run with pytest once the server is up.
        """
    )


class TritonTestModelField(StringField):
    alias = "model"
    help = help_text(
        """
        The address of the `triton_model` or `triton_ensemble` under test, e.g.
        `models/screen_detection/pipeline`.

        Defaults to the one model or ensemble target in this BUILD file's directory.
        """
    )


class TritonTestDependenciesField(Dependencies):
    help = help_text(
        """
        Extra targets the tests need. The model under test (see `model`) is added for you.
        """
    )


class TritonTestTimeoutField(TestTimeoutField):
    help = help_text(
        """
        Seconds this target's cases and pytest files may take once the server is up (server
        start-up has its own limit, `[triton].startup_timeout`).

        If unset, `[test].timeout_default` applies (if set); never more than
        `[test].timeout_maximum`. Ignored with `--no-test-timeouts`.
        """
    )


class TritonTestShareServerField(BoolField):
    alias = "share_server"
    default = True
    help = help_text(
        """
        Whether the model may be served by one Triton server together with the models of other
        `triton_test` targets (much faster: one container per batch instead of one per test).

        Set to False for a model that must run alone, e.g. one that changes global state of the
        server.
        """
    )


class TritonTestTarget(Target):
    alias = "triton_test"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        TritonTestSourcesField,
        TritonTestModelField,
        TritonTestDependenciesField,
        TritonTestTimeoutField,
        TritonTestShareServerField,
    )
    help = help_text(
        """
        Tests of a Triton model or ensemble, run by `./pants test` against a real Triton server
        in Docker serving exactly the model directories `package` ships.

        Put case files (`tests/*.json`, with `.npy`/`.npz` tensors) and pytest files
        (`tests/test_*.py`) beside the model and add `triton_test()` to the model's BUILD file
        (`./pants tailor` does it for you). See docs/testing.md.
        """
    )
