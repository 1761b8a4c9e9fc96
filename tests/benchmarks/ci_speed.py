#!/usr/bin/env python3
"""Time the repo's test command as CI runs it: cold (a fresh clone and empty caches), then warm.

Not part of CI. Run from the repository root, as root on a machine like CI's:

    python3 tests/benchmarks/ci_speed.py [--warm-runs 1]

It clones this checkout's HEAD into a temporary directory and runs `CI=true bash .ci/run` there
with HOME pointing at an empty directory: Pants' caches, the ./pants bootstrap (its venv and the
pex tool), the BuildGrid venv and the stand-in recipe's download cache all start empty, as on a
new machine. pyenv's interpreters are found through PYENV_ROOT (default ~/.pyenv), whatever
`pyenv global` names. What it cannot empty: the Docker engine (installed once per machine, about
30 s) and its images; remove the stand-in image first (`docker rmi <[triton].image>`) to include
its build (about 60 s). Then it runs the command again in the same clone, with nothing changed.

Prints each run's wall time and closing line, and the cold run's table of the slowest test
targets (scripts/test prints it), for docs/benchmarks/testing.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SLOWEST_HEADING = "Slowest test targets that ran"


def run_ci(clone: Path, home: Path, log: Path) -> tuple[float, int, str]:
    env = {
        **os.environ,
        "HOME": str(home),
        "PYENV_ROOT": os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv")),
        "CI": "true",
    }
    env.pop("XDG_CACHE_HOME", None)
    env.pop("TRITON_MME_BOOTSTRAP_CACHE", None)
    start = time.monotonic()
    with log.open("w") as out:
        # CI's own limit: 90 minutes.
        status = subprocess.run(
            ["bash", ".ci/run"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=5400,
        ).returncode
    return time.monotonic() - start, status, log.read_text(errors="replace")


def closing_line(output: str) -> str:
    lines = [line for line in output.splitlines() if " passed, " in line and " failed" in line]
    return lines[-1] if lines else "(no closing line)"


def slowest_table(output: str) -> str:
    _, _, rest = output.rpartition(SLOWEST_HEADING)
    table = [line for line in rest.splitlines() if line.startswith("|")]
    return "\n".join(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm-runs", type=int, default=1, help="runs with nothing changed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="test-command-bench-") as tmp:
        work = Path(tmp)
        clone, home = work / "checkout", work / "home"
        home.mkdir()
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=300)
        rows = []
        for index in range(1 + args.warm_runs):
            name = "cold (fresh clone, empty caches)" if index == 0 else "warm (nothing changed)"
            seconds, status, output = run_ci(clone, home, work / f"run-{index}.log")
            print(f"{name}: {seconds:.0f} s, exit {status}", file=sys.stderr, flush=True)
            rows.append((name, seconds, status, closing_line(output)))
            if index == 0:
                slowest = slowest_table(output)
        print("| run | wall time (s) | exit | closing line |")
        print("|---|---:|---:|---|")
        for name, seconds, status, line in rows:
            print(f"| {name} | {seconds:.0f} | {status} | {line} |")
        print(f"\nSlowest test targets of the cold run:\n\n{slowest}")


if __name__ == "__main__":
    main()
