"""Copies of this checkout for end-to-end tests that run ./pants in them.

The ./pants launcher exports the checkout's path in TRITON_MME_BUILDROOT (Pants runs tests in a
sandbox that holds only their own files); `copy_checkout` copies what git knows of it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Mapping


def find_checkout() -> Path | None:
    """The checkout `./pants test` runs in (the ./pants launcher exports its path)."""
    root = os.environ.get("TRITON_MME_BUILDROOT")
    return Path(root) if root and (Path(root) / "pants.toml").is_file() else None


# Every command a test runs has a bound: a hung Pants, Docker engine or server fails the test
# naming the command, long before Pants' own test timeout.
COMMAND_TIMEOUT_S = 1200


class CommandTimeout(AssertionError):
    pass


def run_in(
    root: Path,
    *argv: str,
    env: Mapping[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT_S,
    separate_stderr: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`argv` in `root`, without TRITON_MME_BUILDROOT (a copy's ./pants exports its own root),
    with `env` added; stdout and stderr as one unless `separate_stderr`. Never waits longer than
    `timeout` seconds: then `CommandTimeout` names the command and shows its last output."""
    environment = {k: v for k, v in os.environ.items() if k != "TRITON_MME_BUILDROOT"}
    try:
        return subprocess.run(
            argv,
            cwd=root,
            env={**environment, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if separate_stderr else subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        output = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        raise CommandTimeout(
            f"`{' '.join(argv)}` in {root} did not finish within {timeout:g}s; its last output:\n"
            f"{(output or '')[-4000:]}"
        ) from None


# Copies whose pantsd this process started: stopped when it exits (`stop_pantsd` stops one).
_PANTSD_ROOTS: set[Path] = set()


def run_pants(
    root: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT_S,
    separate_stderr: bool = False,
    pantsd: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`./pants <args>` (plain output) in the copy at `root`, as `run_in` runs it.

    With pantsd, as on a developer's machine: the first run in a copy starts it (about as long
    as a run without it, ~20 s here), every later one in that copy then takes ~1.5 s instead of
    ~20 s of Pants starting up. The daemon is stopped when this process exits."""
    if pantsd:
        if not _PANTSD_ROOTS:
            atexit.register(_stop_all_pantsd)
        _PANTSD_ROOTS.add(root)
    return run_in(
        root,
        "./pants",
        *(() if pantsd else ("--no-pantsd",)),
        "--no-dynamic-ui",
        *args,
        env=env,
        timeout=timeout,
        separate_stderr=separate_stderr,
    )


def stop_pantsd(root: Path) -> None:
    """Stops the pantsd of the copy at `root`, if one runs (SIGTERM to the pid it recorded)."""
    _PANTSD_ROOTS.discard(root)
    for pid_file in root.glob(".pids/*/pantsd/pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError, OSError):
            pass


def _stop_all_pantsd() -> None:
    for root in list(_PANTSD_ROOTS):
        stop_pantsd(root)


def copy_checkout(
    source: Path,
    destination: Path,
    *,
    reverse: bool = False,
    mtime: int | None = None,
    leave_out: tuple[str, ...] = (),
    pants_bootstrap: bool = False,
) -> None:
    """Copies the files git knows (tracked, and new files not ignored) in sorted order.

    `reverse` and `mtime` (every file's) make copies that differ in everything but content;
    `leave_out` skips top-level directories; `pants_bootstrap` also copies the locally built pex
    tool (.pants-bootstrap/, ignored by git), so that ./pants in the copy need not rebuild it.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        check=True,
        stdout=subprocess.PIPE,
        timeout=60,
    ).stdout.decode()
    paths = sorted(
        {
            p
            for p in listed.split("\0")
            if p and p.split("/", 1)[0] not in leave_out and (source / p).is_file()
        },
        reverse=reverse,
    )
    for path in paths:
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / path, target)
        if mtime is not None:
            os.utime(target, (mtime, mtime))
    bootstrap = source / ".pants-bootstrap"
    if pants_bootstrap and bootstrap.is_dir():
        subprocess.run(["cp", "-a", str(bootstrap), str(destination)], check=True, timeout=60)
