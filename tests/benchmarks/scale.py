#!/usr/bin/env python3
"""Benchmark a monorepo of N models: `package` and `test`, cold, no-op and after one change.

Not part of CI. Run from the repository root, with Docker and the [triton].image available:

    python3 tests/benchmarks/scale.py --models 40

It copies this checkout into a temporary directory and adds N models under `models/scale/`:
copies of the screen-detection family (python pre/post-processing in a conda env, an ONNX network
whose weights DVC tracks, and the ensemble) and of `text_normalizer` (a python model), every one
renamed so that names stay unique. Then, with pantsd running as on a developer's machine:
- `list`: `./pants list ::`, the floor of any Pants command in this repo;
- package cold (the generated models were never built; Pants' tools and the conda env, which
  this checkout shares with the generated families, may come from the machine's cache, as on a
  developer's machine), no-op (nothing changed) and one change (a comment added to one python
  model);
- test cold, no-op, one change (again one model), and that one model's tests alone after another
  change of it: the target of stable batches is "one change" <= 2x "alone".
The models' names carry a random tag of the benchmark run, so "cold" runs every model-specific
process. Warm runs are repeated (`REPEATS` rounds; `list` and the no-op `package` interleaved, as
are "alone" and "one change", each after a new change) and the median is kept, so that ratios
compare runs made under the same load on a shared machine; each row notes the load average.
Containers are counted with `docker events` on a label passed through `[triton].docker_run_args`
(the same label for every run, so it does not change cache keys); peak memory is the highest sum
of the labelled containers' memory in `docker stats`, sampled every second; for `package`, the
bytes of dist/ (which Pants' `package` goal rewrites on every run). Results go to stdout as a
Markdown table (docs/benchmarks/scale.md).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from checkout import copy_checkout, run_pants, stop_pantsd  # noqa: E402
from pants_repo import containers_created  # noqa: E402
from standin import docker  # noqa: E402

FAMILY = Path("models/screen_detection")  # 4 models: pre, inferencer (ONNX, DVC), post, pipeline
SINGLE = Path("models/text_normalizer")  # 1 python model
FAMILY_SHARE = 0.4  # of the N models, about this many are in ensemble families
SCALE_DIR = "models/scale"
REPEATS = 3  # warm runs are repeated, interleaved; the tables show the median
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def copy_renamed(source: Path, destination: Path, replacements: list[tuple[str, str]]) -> None:
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = str(path.relative_to(source))
        data = path.read_bytes()
        for old, new in replacements:
            relative = relative.replace(old, new)
            data = data.replace(old.encode(), new.encode())
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def write_models(root: Path, models: int, tag: str) -> list[str]:
    """N models under models/scale/; returns the directories of the single python models."""
    families = max(1, round(models * FAMILY_SHARE / 4))
    singles = models - 4 * families
    for k in range(families):
        copy_renamed(
            root / FAMILY,
            root / SCALE_DIR / f"sd_{k:03d}",
            [
                (f"{FAMILY}/", f"{SCALE_DIR}/sd_{k:03d}/"),
                ("screen_detection_", f"screen_detection_{tag}{k:03d}_"),
            ],
        )
    directories = []
    for k in range(singles):
        directory = f"{SCALE_DIR}/text_normalizer_{tag}{k:03d}"
        copy_renamed(
            root / SINGLE,
            root / directory,
            [("text_normalizer", f"text_normalizer_{tag}{k:03d}")],
        )
        directories.append(directory)
    return directories


class DockerSampler:
    """Containers created, and the peak of their summed memory, for one label."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.peak_bytes = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> DockerSampler:
        self.since = time.time()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            ids = docker("ps", "-q", "--filter", f"label={self.label}", check=False).stdout.split()
            if not ids:
                continue
            usage = docker(
                "stats", "--no-stream", "--format", "{{.MemUsage}}", *ids, check=False
            ).stdout.splitlines()
            self.peak_bytes = max(self.peak_bytes, sum(parse_size(u.split("/")[0]) for u in usage))

    def containers(self) -> int:
        return containers_created(self.label, self.since)


def parse_size(text: str) -> float:
    match = re.match(r"\s*([0-9.]+)\s*([A-Za-z]+)", text)
    return float(match.group(1)) * _UNITS.get(match.group(2), 1) if match else 0.0


@dataclass(frozen=True)
class Row:
    name: str
    seconds: float
    load: float  # the 1-minute load average when the run ended
    containers: int | None = None
    peak_gib: float | None = None
    dist_mib: float | None = None  # what `package` wrote into dist/


class Bench:
    def __init__(self, root: Path, label: str) -> None:
        self.root = root
        self.label = label
        self.rows: list[Row] = []

    def pants(self, *args: str) -> float:
        start = time.monotonic()
        result = run_pants(self.root, *args, separate_stderr=True)
        if result.returncode != 0:
            sys.exit(f"./pants {' '.join(args)} failed:\n{result.stderr[-5000:]}")
        return time.monotonic() - start

    def run_once(self, run: Run) -> Row:
        if run.change:
            touch(self.root, run.change, f"{run.name}, {uuid.uuid4().hex[:8]}")
        docker_args = f"--triton-docker-run-args=+['--label={self.label}']"
        with DockerSampler(self.label) as sampler:
            seconds = self.pants(docker_args, *run.args)
        tested = "test" in run.args
        print(f"{run.name}: {seconds:.1f} s", file=sys.stderr, flush=True)
        return Row(
            run.name,
            seconds,
            os.getloadavg()[0],
            sampler.containers() if tested else None,
            sampler.peak_bytes / 2**30 if tested else None,
            dist_bytes(self.root) / 2**20 if "package" in run.args else None,
        )

    def measure(self, *runs: Run, repeats: int = REPEATS) -> None:
        """Runs `runs` in turn, `repeats` rounds; keeps the median-time row of each."""
        rounds = [[self.run_once(run) for run in runs] for _ in range(repeats)]
        for same_run in zip(*rounds):
            self.rows.append(sorted(same_run, key=lambda row: row.seconds)[len(same_run) // 2])


@dataclass(frozen=True)
class Run:
    name: str
    args: tuple[str, ...]
    change: str | None = None  # a model directory to change (its model.py) before each run


def dist_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "dist").rglob("*") if p.is_file())


def touch(root: Path, directory: str, note: str) -> None:
    model = root / directory / "1" / "model.py"
    model.write_text(model.read_text() + f"# {note}\n")


def run(root: Path, models: int) -> Bench:
    singles = write_models(root, models, uuid.uuid4().hex[:6])
    changed = singles[len(singles) // 2]
    bench = Bench(root, f"triton_mme.scale={uuid.uuid4().hex}")
    scale = f"{SCALE_DIR}::"
    bench.pants("list", "::")  # starts pantsd; interpreter and tool set-up outside the figures
    package, test = ("package", scale), ("test", scale)
    bench.measure(Run("package, cold", package), repeats=1)
    bench.measure(Run("list ::", ("list", "::")), Run("package, no-op", package))
    bench.measure(Run("package, one change", package, changed))
    bench.measure(Run("test, cold", test), repeats=1)
    bench.measure(Run("test, no-op", test))
    bench.measure(
        Run("test, one model alone (after a change)", ("test", f"{changed}:"), changed),
        Run("test, one change", test, changed),
    )
    return bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=40)
    args = parser.parse_args()
    source = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="triton-scale-bench-") as tmp:
        root = Path(tmp)
        copy_checkout(source, root, pants_bootstrap=True)
        try:
            bench = run(root, args.models)
        finally:
            stop_pantsd(root)
    print(f"\nN = {args.models} models under {SCALE_DIR}/\n")
    print(
        "| run | wall time (s) | load average | containers started "
        "| peak memory of Triton (GiB) | written to dist/ (MiB) |"
    )
    print("|-----|-----|-----|-----|-----|-----|")
    for row in bench.rows:
        containers = "" if row.containers is None else str(row.containers)
        peak = "" if row.peak_gib is None else f"{row.peak_gib:.2f}"
        dist = "" if row.dist_mib is None else f"{row.dist_mib:.0f}"
        print(
            f"| {row.name} | {row.seconds:.1f} | {row.load:.1f} | {containers} | {peak} | {dist} |"
        )
    times = {row.name: row.seconds for row in bench.rows}
    print(
        f"\nno-op package / list: {times['package, no-op'] / times['list ::']:.2f}x; "
        "one-change package / list: "
        f"{times['package, one change'] / times['list ::']:.2f}x; one-change test / one model "
        f"alone: {times['test, one change'] / times['test, one model alone (after a change)']:.2f}x"
    )


if __name__ == "__main__":
    main()
