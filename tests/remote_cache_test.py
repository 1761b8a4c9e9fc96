"""Two checkouts at different paths share every process through a REAPI remote cache.

A BuildGrid server (PyPI `buildgrid`, which needs Python 3.13) serves a cache on loopback, as a
CI team would run one for its runners (docs/ci-cd.md). `./pants package models/:: test
models/::` runs in one copy of this checkout and writes to it; then in a second copy at another
path, with empty local stores, as on a fresh runner. From Pants' `[stats]` counters, every
process of the second run must come from the remote cache: no absolute path, machine-specific
value or secret may sit in a process's argv, environment or inputs (docs/architecture.md). The
Triton test batches are hits too: they are keyed by the image ID, the same on this machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from checkout import copy_checkout, run_in, run_pants
from interpreters import find_python
from ports import free_port

BUILDGRID = "buildgrid==0.9.1"
BUILDGRID_CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
storages:
  - !disk-storage &storage
    path: {storage}
caches:
  - !lru-action-cache &cache
    storage: *storage
    max-cached-refs: 100000
    allow-updates: true
instances:
  - name: ""
    services:
      - !action-cache
        cache: *cache
      - !cas
        storage: *storage
      - !bytestream
        storage: *storage
# Pants writes many blobs at once; BuildGrid's default limit refuses some of those writes.
maximum-concurrent-rpcs: 2000
"""
# `bgd` as a module call: a venv's scripts name the interpreter by the path they were built at.
BGD = "from buildgrid.server.app import cli; cli()"
STARTUP_SECONDS = 60
# About a minute from PyPI here; a stalled index fails the install well within the test timeout.
BUILDGRID_INSTALL_TIMEOUT_S = 600


def buildgrid_venv() -> Path:
    """A venv with BuildGrid, built once under the bootstrap cache that ./pants also uses."""
    cache = Path(
        os.environ.get("TRITON_MME_BOOTSTRAP_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "triton-mme-bootstrap"
    )
    venv = cache / BUILDGRID.replace("==", "-")
    if (venv / "bin" / "python").exists():
        return venv
    # BuildGrid needs Python 3.13 (README.md lists it among the test command's prerequisites).
    python = find_python("3.13")
    cache.mkdir(parents=True, exist_ok=True)
    building = cache / f".{venv.name}-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    env = {"PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for argv in (
        (python, "-m", "venv", str(building)),
        (str(building / "bin" / "python"), "-m", "pip", "install", "-q", BUILDGRID),
    ):
        result = run_in(cache, *argv, env=env, timeout=BUILDGRID_INSTALL_TIMEOUT_S)
        assert result.returncode == 0, f"installing {BUILDGRID} failed:\n{result.stdout}"
    try:
        building.rename(venv)
    except OSError:  # another run finished first
        shutil.rmtree(building, ignore_errors=True)
    return venv


@pytest.fixture(scope="module")
def remote_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a BuildGrid cache on loopback; stopped by its pid afterwards."""
    venv = buildgrid_venv()
    root = tmp_path_factory.mktemp("buildgrid")
    port = free_port()
    config = root / "config.yml"
    config.write_text(BUILDGRID_CONFIG.format(port=port, storage=root / "cas"))
    log = (root / "server.log").open("wb")
    server = subprocess.Popen(
        [str(venv / "bin" / "python"), "-c", BGD, "server", "start", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert server.poll() is None, (root / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (root / "server.log").read_text()
                time.sleep(0.5)
        yield f"grpc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@dataclass(frozen=True)
class PantsRun:
    output: str

    def counter(self, name: str) -> int:
        """A counter from the `[stats]` log Pants prints at the end of a run."""
        found = re.findall(rf"^\s*{name}: (\d+)$", self.output, re.MULTILINE)
        assert found, f"no `{name}` in Pants' stats:\n{self.output[-3000:]}"
        return int(found[-1])


def package_and_test(root: Path, remote: str, *args: str) -> PantsRun:
    result = run_pants(
        root,
        "--stats-log",
        "--remote-cache-read",
        f"--remote-store-address={remote}",
        *args,
        "package",
        "test",
        "models/::",
    )
    assert result.returncode == 0, result.stdout
    return PantsRun(result.stdout)


def test_second_checkout_is_served_by_the_remote_cache(
    checkout: Path, remote_cache: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = tmp_path_factory.mktemp("runner-a")
    copy_checkout(checkout, first, pants_bootstrap=True)
    # The local cache is not read, so every process runs here and is written to the remote. (The
    # machine's warm local cache cannot seed the remote instead: Pants' local cache runner wraps
    # the remote-cache runner, so a local hit is returned before anything is written remotely.)
    written = package_and_test(first, remote_cache, "--remote-cache-write", "--no-local-cache")
    assert written.counter("remote_cache_write_successes") > 0

    # A fresh runner: another path, no local store, no named caches, nothing written back.
    second = tmp_path_factory.mktemp("runner-b-at-another-path")
    copy_checkout(checkout, second, pants_bootstrap=True)
    fresh = tmp_path_factory.mktemp("fresh-runner-caches")
    served = package_and_test(
        second,
        remote_cache,
        f"--local-store-dir={fresh / 'lmdb_store'}",
        f"--named-caches-dir={fresh / 'named_caches'}",
    )
    assert served.counter("remote_cache_requests_cached") > 0
    assert served.counter("remote_cache_requests_uncached") == 0, served.output
    assert sorted(p.name for p in (second / "dist").rglob("*.tar.gz")) == sorted(
        p.name for p in (first / "dist").rglob("*.tar.gz")
    )
