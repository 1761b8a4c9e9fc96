from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from triton_mme.scripts import triton_container
from triton_mme.scripts.triton_container import (
    EXPIRES_LABEL,
    OWNER_LABEL,
    ContainerError,
    docker,
    owner_labels,
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
    assert remove_stale_containers(str(docker_path)) == ["dead", "expired"]
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith(f"ps -a --filter label={OWNER_LABEL} --format")
    assert calls[1] == "rm -f -v dead expired"


def test_missing_engine_and_image_say_how_to_fix(tmp_path: Path) -> None:
    no_engine = fake_docker(
        tmp_path, "", 1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    )
    with pytest.raises(ContainerError, match="scripts/ensure-docker"):
        docker(str(no_engine), "ps")
    no_image = fake_docker(tmp_path, "", 1, "Unable to find image 'sha256:abc' locally")
    with pytest.raises(ContainerError, match="build-support/triton-standin/build"):
        docker(str(no_image), "create", "sha256:abc")


def test_owner_labels_name_this_process_and_its_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(triton_container.time, "time", lambda: 1000.0)
    assert owner_labels(lifetime=60) == (
        "--label",
        f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}",
        "--label",
        f"{EXPIRES_LABEL}=1060",
    )


def test_a_docker_engine_that_hangs_fails_the_call_naming_it(tmp_path: Path) -> None:
    hanging = tmp_path / "docker"
    hanging.write_text("#!/bin/sh\nsleep 30\n")
    hanging.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(ContainerError) as error:
        docker(str(hanging), "create", "--label", "x", timeout=0.5)
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert message.startswith("`docker create --label` did not answer within 0.5s")
    assert "the Docker engine hangs" in message
    assert "scripts/ensure-docker" in message


def test_docker_cp_may_take_longer_for_a_larger_repository(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\0" * (40 * 2**20))
    assert triton_container.cp_timeout(str(tmp_path)) == pytest.approx(
        triton_container.DOCKER_TIMEOUT_S + 2.0
    )
