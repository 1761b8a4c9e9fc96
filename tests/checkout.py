"""Copies of this checkout for end-to-end tests that run ./pants in them.

The ./pants launcher exports the checkout's path in TRITON_MME_BUILDROOT (Pants runs tests in a
sandbox that holds only their own files); `copy_checkout` copies what git knows of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Mapping


def find_checkout() -> Path | None:
    """The checkout `./pants test` runs in (the ./pants launcher exports its path)."""
    root = os.environ.get("TRITON_MME_BUILDROOT")
    return Path(root) if root and (Path(root) / "pants.toml").is_file() else None


def run_pants(
    root: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`./pants <args>` (no pantsd, plain output) in the copy at `root`; stdout and stderr as one.

    TRITON_MME_BUILDROOT is dropped so that the copy's ./pants exports its own root; `env` adds
    variables.
    """
    environment = {k: v for k, v in os.environ.items() if k != "TRITON_MME_BUILDROOT"}
    return subprocess.run(
        ["./pants", "--no-pantsd", "--no-dynamic-ui", *args],
        cwd=root,
        env={**environment, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


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
        subprocess.run(["cp", "-a", str(bootstrap), str(destination)], check=True)
