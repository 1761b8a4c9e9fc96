from __future__ import annotations

import ast

import pytest
from pants.testutil.option_util import create_subsystem
from triton_mme.subsystems.conda import CondaSubsystem
from triton_mme.subsystems.dvc import DvcSubsystem
from triton_mme.subsystems.local_mme import LocalMmeSubsystem
from triton_mme.subsystems.onnx_graph import OnnxGraphReaderSubsystem
from triton_mme.subsystems.package import TarballWriterSubsystem
from triton_mme.subsystems.s3 import TritonPublishSubsystem
from triton_mme.subsystems.triton_client import TritonClientSubsystem
from triton_mme.subsystems.tool import (
    SCRIPTS_PACKAGE,
    MissingToolScript,
    ScriptTool,
    ScriptToolBase,
    ScriptToolRequest,
    script_files,
)

TOOLS = (
    CondaSubsystem,
    DvcSubsystem,
    LocalMmeSubsystem,
    OnnxGraphReaderSubsystem,
    TarballWriterSubsystem,
    TritonClientSubsystem,
    TritonPublishSubsystem,
)


def test_tool_request_comes_from_the_options_and_the_class() -> None:
    local_mme = create_subsystem(LocalMmeSubsystem, resolve="boto3", requirements=["boto3"])
    assert local_mme.tool_request() == ScriptToolRequest(
        scope="local-mme",
        resolve="boto3",
        requirements=("boto3",),
        main_module="local_mme.server",
        scripts=("local_mme/", "triton_container.py", "config_platform.py"),
    )


def test_a_tool_without_resolve_has_no_requirements() -> None:
    writer = create_subsystem(TarballWriterSubsystem, resolve=None, requirements=[])
    request = writer.tool_request()
    assert (request.resolve, request.requirements) == (None, ())
    assert request.debug_hint() == "triton-package"


def test_scripts_become_the_triton_mme_scripts_package() -> None:
    files = {f.path: f.content for f in script_files(["write_tarball.py", "local_mme/"])}
    assert "triton_mme/__init__.py" in files
    assert "triton_mme/scripts/__init__.py" in files
    assert b"def write_tarball" in files["triton_mme/scripts/write_tarball.py"]
    assert "triton_mme/scripts/local_mme/__init__.py" in files
    assert "triton_mme/scripts/local_mme/server.py" in files
    assert not any(path.endswith("_test.py") for path in files)
    assert list(files) == sorted(files)


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.options_scope)
def test_a_tool_ships_every_script_its_scripts_import(tool: type[ScriptToolBase]) -> None:
    files = {f.path: f.content for f in script_files(tool.scripts)}
    imported = {
        node.module
        for path, content in files.items()
        if path.endswith(".py")
        for node in ast.walk(ast.parse(content))
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith(f"{SCRIPTS_PACKAGE}.")
    }
    shipped = {path[: -len(".py")].replace("/", ".") for path in files}
    assert imported - shipped == set()


def test_a_missing_script_fails_and_says_where_to_look() -> None:
    with pytest.raises(MissingToolScript, match="`no_such_script.py` is missing"):
        script_files(["no_such_script.py"])


def test_argv_runs_a_script_module() -> None:
    assert ScriptTool.argv("lock_env", "--out=x") == (
        "-m",
        "triton_mme.scripts.lock_env",
        "--out=x",
    )
