#!/usr/bin/env python3
"""Time the repo's test command as CI runs it: cold (a fresh clone and empty caches), then warm.

Not part of CI. Run from the repository root, as root on a machine like CI's:

    python3 tests/benchmarks/ci_speed.py [--warm-runs 1] [--logs DIR]

It clones this checkout's HEAD into a temporary directory and runs `CI=true bash .ci/run` there
with HOME pointing at an empty directory: Pants' caches, the ./pants bootstrap (its venv and the
pex tool), the BuildGrid venv and the stand-in recipe's download cache all start empty, as on a
new machine. pyenv's interpreters are found through PYENV_ROOT (default ~/.pyenv), whatever
`pyenv global` names. What it cannot empty: the Docker engine (installed once per machine, about
30 s) and its images; remove the stand-in image first (`docker rmi <[triton].image>`) to include
its build (about 60 s). Then it runs the command again in the same clone, with nothing changed:
once with the pantsd the first run left (as on a developer's machine or a CI runner that keeps
its daemon), and once after stopping it (as a new CI job on a runner that keeps its caches).

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
sys.path.insert(0, str(REPO / "tests"))
from checkout import stop_pantsd  # noqa: E402

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
    parser.add_argument("--logs", type=Path, help="keep each run's output in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="test-command-bench-") as tmp:
        work = Path(tmp)
        clone, home = work / "checkout", work / "home"
        home.mkdir()
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=300)
        logs = args.logs or work
        logs.mkdir(parents=True, exist_ok=True)
        runs = [("cold (fresh clone, empty caches)", False)]
        for _ in range(args.warm_runs):
            runs += [("warm, pantsd running", False), ("warm, pantsd stopped first", True)]
        rows = []
        for index, (name, restart) in enumerate(runs):
            if restart:
                stop_pantsd(clone)
            seconds, status, output = run_ci(clone, home, logs / f"run-{index}.log")
            print(f"{name}: {seconds:.0f} s, exit {status}", file=sys.stderr, flush=True)
            rows.append((name, seconds, status, closing_line(output)))
            if index == 0:
                slowest = slowest_table(output)
        stop_pantsd(clone)
        print("| run | wall time (s) | exit | closing line |")
        print("|---|---:|---:|---|")
        for name, seconds, status, line in rows:
            print(f"| {name} | {seconds:.0f} | {status} | {line} |")
        print(f"\nSlowest test targets of the cold run:\n\n{slowest}")


if __name__ == "__main__":
    main()
