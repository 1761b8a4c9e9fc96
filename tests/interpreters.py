"""The one way tests find a CPython X.Y: `build-support/find-python`, which ./pants uses too.

It prefers pyenv's installs over shims and trusts a candidate only once it has run (pyenv's shim
of an installed but inactive version exits 127). A missing interpreter fails the test with
find-python's own words (what it looked at, what to install): the test command's prerequisites
are in README.md, so a machine without them is broken, not a reason to skip.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

# Test targets depend on //:launcher, which puts the script into their sandbox; scripts run from
# the checkout (benchmarks) find it beside this file.
_SCRIPT = "build-support/find-python"


class InterpreterNotFound(RuntimeError):
    pass


def _script() -> Path:
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / _SCRIPT).is_file():
            return root / _SCRIPT
    raise InterpreterNotFound(
        f"{_SCRIPT} is not in this sandbox: add '//:launcher' to the test target's dependencies"
    )


@lru_cache(maxsize=None)
def find_python(version: str) -> str:
    """The real path of a working CPython `version` ("3.13"); `InterpreterNotFound` otherwise."""
    try:
        result = subprocess.run(
            [str(_script()), version],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired as e:
        raise InterpreterNotFound(f"{_SCRIPT} {version} did not finish within {e.timeout:g}s")
    if result.returncode != 0:
        raise InterpreterNotFound(result.stderr.strip())
    return result.stdout.strip()
