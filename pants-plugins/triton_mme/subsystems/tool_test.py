from __future__ import annotations

import pytest
from pants.testutil.option_util import create_subsystem
from triton_mme.subsystems.local_mme import LocalMmeSubsystem
from triton_mme.subsystems.package import TarballWriterSubsystem
from triton_mme.subsystems.tool import (
    MissingToolScript,
    ScriptTool,
    ScriptToolRequest,
    script_files,
)


def test_tool_request_comes_from_the_options_and_the_class() -> None:
    local_mme = create_subsystem(LocalMmeSubsystem, resolve="boto3", requirements=["boto3"])
    assert local_mme.tool_request() == ScriptToolRequest(
        scope="local-mme",
        resolve="boto3",
        requirements=("boto3",),
        main_module="local_mme.server",
        scripts=("local_mme/", "triton_container.py"),
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


def test_a_missing_script_fails_and_says_where_to_look() -> None:
    with pytest.raises(MissingToolScript, match="`no_such_script.py` is missing"):
        script_files(["no_such_script.py"])


def test_argv_runs_a_script_module() -> None:
    assert ScriptTool.argv("lock_env", "--out=x") == (
        "-m",
        "triton_mme.scripts.lock_env",
        "--out=x",
    )
