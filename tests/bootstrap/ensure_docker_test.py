"""`scripts/ensure-docker`: an engine that answers is left alone, one that hangs fails fast."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

SCRIPT = Path("scripts/ensure-docker").resolve()


def fake_docker(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/sh\n{body}\n")
    docker.chmod(0o755)


def ensure_docker(bin_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "ENSURE_DOCKER_CALL_TIMEOUT": "1",
        "DOCKERD_LOG": str(tmp_path / "dockerd.log"),
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )


def test_a_running_engine_is_reported(tmp_path: Path) -> None:
    fake_docker(tmp_path / "bin", 'case "$1" in version) echo 28.2.2 ;; esac; exit 0')
    result = ensure_docker(tmp_path / "bin", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ensure-docker: Docker engine is running (28.2.2)\n"


def test_an_engine_that_does_not_answer_fails_within_the_call_timeout(tmp_path: Path) -> None:
    fake_docker(tmp_path / "bin", "sleep 60")
    start = time.monotonic()
    result = ensure_docker(tmp_path / "bin", tmp_path)
    assert time.monotonic() - start < 30
    assert result.returncode == 1
    assert "did not answer 'docker info' within 1s: it hangs." in result.stderr
    assert "Restart it" in result.stderr
