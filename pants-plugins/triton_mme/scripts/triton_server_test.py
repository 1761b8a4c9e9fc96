from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from triton_mme.scripts.triton_server import (
    OWNER_LABEL,
    ServerError,
    ServerSettings,
    docker,
    model_log_errors,
    stub_failures,
    remove_stale_containers,
)


def fake_docker(tmp_path: Path, listing: str, exit_code: int = 0, stderr: str = "") -> Path:
    """A `docker` that logs its arguments and prints `listing` for `ps`."""
    script = tmp_path / "docker"
    log = tmp_path / "calls"
    script.write_text(
        f"""#!{sys.executable}
import sys
with open({str(log)!r}, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "ps":
    sys.stdout.write({listing!r})
sys.stderr.write({stderr!r})
sys.exit({exit_code})
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def settings(docker_path: Path) -> ServerSettings:
    return ServerSettings(
        docker=str(docker_path),
        image="sha256:abc",
        docker_run_args=(),
        server_args=(),
        startup_timeout=10,
        lifetime=60,
    )


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_containers_are_removed(tmp_path: Path) -> None:
    host, now = socket.gethostname(), time.time()
    listing = "\n".join(
        [
            f"alive {host}:{os.getpid()} {now + 600:.0f}",
            f"alive_past_expiry {host}:{os.getpid()} {now - 5:.0f}",
            f"dead {host}:{dead_pid()} {now + 600:.0f}",
            f"expired other-host:1 {now - 5:.0f}",
            f"elsewhere other-host:1 {now + 600:.0f}",
        ]
    )
    docker_path = fake_docker(tmp_path, listing + "\n")
    assert remove_stale_containers(settings(docker_path)) == ["dead", "expired"]
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith(f"ps -a --filter label={OWNER_LABEL} --format")
    assert calls[1] == "rm -f -v dead expired"


def test_missing_engine_and_image_say_how_to_fix(tmp_path: Path) -> None:
    no_engine = fake_docker(
        tmp_path, "", 1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    )
    with pytest.raises(ServerError, match="scripts/ensure-docker"):
        docker(settings(no_engine), "ps")
    no_image = fake_docker(tmp_path, "", 1, "Unable to find image 'sha256:abc' locally")
    with pytest.raises(ServerError, match="build-support/triton-standin/build"):
        docker(settings(no_image), "create", "sha256:abc")


def test_model_log_errors() -> None:
    log = "\n".join(
        [
            'I1124 model_lifecycle.cc:472] "loading: pre:1"',
            "E1124 model_lifecycle.cc:642] \"failed to load 'pre' version 1: Internal: boom\"",
            "E1124 model_lifecycle.cc:642] \"failed to load 'other' version 1: x\"",
        ]
    )
    assert model_log_errors(log, ["pre", "pipeline"]) == [log.splitlines()[1]]


def test_stub_failures_name_the_model_whose_load_waits_on_a_dead_stub() -> None:
    log = (
        'I1128 07:08:52.915843 1 model_lifecycle.cc:472] "loading: pipeline:1"\n'
        "I1128 07:08:52.964190 42 pb_stub.cc:2105]  Failed to preinitialize Python stub: Python "
        "model file not found in '/models/pre/1/model.py'\n"
    )
    # The ensemble `pipeline` loads `pre`: its load waits on the dead stub too.
    assert stub_failures(log, {"pipeline": ("pipeline", "pre"), "other": ("other",)}) == {
        "pipeline": "Failed to preinitialize Python stub: Python model file not found in "
        "'/models/pre/1/model.py'"
    }
    assert stub_failures(log, {"prefix": ("prefix",)}) == {}
