"""A REAPI remote cache on loopback (PyPI's `buildgrid`, which needs Python 3.13), as a CI team
runs one for its runners (docs/ci-cd.md). conftest.py's `remote_cache` fixture serves one per
test session."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from checkout import run_in
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


@contextlib.contextmanager
def buildgrid_cache(root: Path) -> Iterator[str]:
    """The address of a BuildGrid cache on loopback, storing under `root`; stopped by its pid."""
    venv = buildgrid_venv()
    port = free_port()
    config = root / "config.yml"
    config.write_text(BUILDGRID_CONFIG.format(port=port, storage=root / "cas"))
    log = (root / "server.log").open("wb")
    # In `root`: `python -c` puts its working directory first on sys.path, where a module named
    # like the package would shadow it.
    server = subprocess.Popen(
        [str(venv / "bin" / "python"), "-c", BGD, "server", "start", str(config)],
        cwd=root,
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
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 15 s; nothing if it already exited
    (its own error, asserted above, is the one to show)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
