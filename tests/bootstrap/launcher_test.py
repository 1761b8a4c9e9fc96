"""How `./pants` behaves when its prerequisites are missing or do not match pants.toml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

LAUNCHER_FILES = (
    "pants",
    "pants.toml",
    "build-support/bootstrap/pants-requirements.txt",
    "build-support/find-python",
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the launcher and the files it reads, outside any Pants sandbox."""
    for name in LAUNCHER_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(name, tmp_path / name)
    return tmp_path


def run_launcher(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / "pants"), "--version"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_missing_python39_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    result = run_launcher(
        repo,
        {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path / "home"),
            "PYENV_ROOT": str(tmp_path / "no-pyenv"),
        },
    )
    assert result.returncode == 1
    assert "Python 3.9 was not found" in result.stderr
    assert "pyenv install 3.9" in result.stderr


def test_pex_digest_mismatch_is_refused(repo: Path) -> None:
    pants_toml = repo / "pants.toml"
    text = pants_toml.read_text()
    wrong = re.sub(r"(linux_x86_64\|)[0-9a-f]{64}", r"\g<1>" + "0" * 64, text)
    assert wrong != text
    pants_toml.write_text(wrong)
    result = run_launcher(repo, dict(os.environ))
    assert result.returncode == 1
    assert "but pants.toml [pex-cli].known_versions expects " + "0" * 64 in result.stderr
    assert not (repo / ".pants-bootstrap" / "pex-v2.1.137").exists()
