"""`build-support/find-python`: pyenv's installs first, shims and broken candidates never."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path("build-support/find-python").resolve()


def fake_python(path: Path, version: str, *, works: bool = True) -> Path:
    """An executable that answers find-python's probe as CPython `version` would (or, like an
    inactive pyenv shim, exits 127)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = f'printf "%s\\n%s\\n" "{version}" "{path}"' if works else "exit 127"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def find(version: str, tmp_path: Path, path_dirs: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path / "home"),
        "PYENV_ROOT": str(tmp_path / "pyenv"),
    }
    return subprocess.run(
        [str(SCRIPT), version], env=env, capture_output=True, text=True, timeout=120
    )


def test_an_inactive_pyenv_shim_is_passed_over_for_pyenv_s_install(tmp_path: Path) -> None:
    shims = tmp_path / "pyenv" / "shims"
    fake_python(shims / "python3.13", "3.13", works=False)
    real = fake_python(tmp_path / "pyenv/versions/3.13.0/bin/python3.13", "3.13")
    result = find("3.13", tmp_path, [shims])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{real}\n"


def test_the_newest_pyenv_patch_release_wins(tmp_path: Path) -> None:
    fake_python(tmp_path / "pyenv/versions/3.11.9/bin/python3.11", "3.11")
    newest = fake_python(tmp_path / "pyenv/versions/3.11.10/bin/python3.11", "3.11")
    result = find("3.11", tmp_path, [])
    assert result.stdout == f"{newest}\n"


def test_a_candidate_reporting_another_version_is_refused(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3.12", "3.11")  # a mislabelled link
    result = find("3.12", tmp_path, [bin_dir])
    assert result.returncode == 1
    assert "no working Python 3.12 was found" in result.stderr
    assert f"    {bin_dir / 'python3.12'}\n" in result.stderr
    assert "pyenv install 3.12" in result.stderr


def test_nothing_found_says_where_it_looked_and_what_to_install(tmp_path: Path) -> None:
    result = find("3.13", tmp_path, [])
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"Looked under {tmp_path / 'pyenv'}/versions/3.13*" in result.stderr
    assert "Install it, e.g. 'pyenv install 3.13'" in result.stderr


def test_a_real_interpreter_on_path_is_found(tmp_path: Path) -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    link_dir = tmp_path / "bin"
    link_dir.mkdir()
    (link_dir / f"python{version}").symlink_to(sys.executable)
    result = find(version, tmp_path, [link_dir])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{link_dir / f'python{version}'}\n"


@pytest.mark.parametrize("argument", ["3", "python3.11", "3.11.7", ""])
def test_usage(argument: str, tmp_path: Path) -> None:
    result = find(argument, tmp_path, [])
    assert result.returncode == 2
    assert "build-support/find-python 3.13" in result.stderr
