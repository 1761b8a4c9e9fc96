#!/usr/bin/env python3
"""Benchmark model tarballs: write, size, extract and endpoint load, against `tar | gzip -6`.

Not part of CI. Run from the repository root with Python 3.11 (numpy), Docker and the stand-in
image available (`./scripts/test` provides both):

    python3.11 tests/benchmarks/packaging_speed.py [--weights-mb 1024] [--env-mb 55]

It copies the repository's Pants setup into a temporary directory and writes one python-backend
model whose version folder holds float32 weights (normally distributed, as trained weights look
to a compressor) and a gzip'd env-like archive. Then, in the same run:
- `./pants package` of that model with each `[triton-package].compression` (after a priming run
  that starts pantsd; the first one also snapshots the new weights, as after a change);
- the writer script alone (`write_tarball.py`) on the model directory, per compression;
- `tar -c | gzip -6` (what the writer produced before per-member compression) and `| pigz -6`;
- extraction of each tarball with GNU tar and with Python's `tarfile`;
- the local MME's ModelDownloadingTime and ModelLoadingTime (extraction + Triton load) for the
  gzip -6 tarball and the `auto` one, each cold on a fresh endpoint.
Results go to stdout as Markdown (copied into docs/benchmarks/packaging.md).
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[2]
# tests/ for the helpers; pants-plugins/ for the local MME, which runs on this sys.path.
sys.path[:0] = [str(REPO / "tests"), str(REPO / "pants-plugins")]

from checkout import stop_pantsd  # noqa: E402
from local_mme_process import LocalMme  # noqa: E402
from pants_repo import copy_pants_repo  # noqa: E402
from standin import ImageUnavailable, available_image  # noqa: E402
import triton_test_speed as speed  # noqa: E402 # pants: no-infer-dep

# The writer runs as in its tool PEX: the `triton_mme.scripts` package, on this interpreter.
WRITER_ENV = {**os.environ, "PYTHONPATH": str(REPO / "pants-plugins")}
COMPRESSIONS = ("auto", "best", "none")  # [triton-package].compression

MODEL_DIR = "models/bench/big_weights"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def write_model(root: Path, weights_mb: int, env_mb: int) -> Path:
    model = root / MODEL_DIR
    (model / "1").mkdir(parents=True)
    (model / "BUILD").write_text("triton_model()\n")
    (model / "config.pbtxt").write_text(speed.CONFIG)
    (model / "model_version.txt").write_text("1\n")
    (model / "1" / "model.py").write_text(speed.MODEL.replace("{k}", "1"))  # answers x + 1
    rng = np.random.default_rng(0)
    with open(model / "1" / "weights.bin", "wb") as f:
        for _ in range(weights_mb):
            f.write(rng.standard_normal(1 << 18, dtype=np.float32).tobytes())
    # An env-like archive: already gzip'd, as conda-pack writes python_env.tar.gz.
    with gzip.open(model / "1" / "python_env.tar.gz", "wb", compresslevel=6) as f:
        text = (Path(os.__file__).read_bytes() * 64)[: 1 << 20]
        for index in range(env_mb * 3):  # gzip shrinks this text to about a third
            f.write(text[index % 7 :] + rng.bytes(index % 7))
    return model


def changed_weights(model: Path, times: int) -> Iterator[None]:
    """Change the weights `times` times: their first bytes, so Pants hashes the whole file again."""
    for change in range(times):
        with open(model / "1" / "weights.bin", "r+b") as weights:
            weights.write(struct.pack("<f", float(change)))
        yield


def edited_config(model: Path, times: int) -> Iterator[None]:
    """Edit the config `times` times: each edit reruns the writer (the weights are snapshotted)."""
    for _ in range(times):
        with open(model / "config.pbtxt", "a") as config:
            config.write("# edited\n")
        yield


def shell(command: str, cwd: Path) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, check=True)


def extract_times(tarball: Path, work: Path, repeats: int) -> tuple[float, float, float]:
    """(GNU tar, Python tarfile, `gzip -dc`) seconds: the best of `repeats` runs of each.

    Each extraction goes into a fresh directory. `gzip -dc > /dev/null` is the part of GNU tar's
    time that is its decompressor alone (`tar -xzf` pipes through `gzip -d`).
    """
    target = work / "extracted"

    def fresh() -> Path:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        return target

    def python_extract() -> None:
        with tarfile.open(tarball) as tar:
            tar.extractall(fresh())

    def best(action: Callable[[], object]) -> float:
        return min(timed(action) for _ in range(repeats))

    gnu = best(lambda: shell(f"tar -xzf {tarball} -C {fresh()}", work))
    python = best(python_extract)
    gzip_alone = best(lambda: shell(f"gzip -dc {tarball} > /dev/null", work))
    shutil.rmtree(target)
    return gnu, python, gzip_alone


def endpoint_times(docker: str, image: str, tarball: Path, work: Path) -> tuple[float, float]:
    """The local MME's (ModelDownloadingTime, ModelLoadingTime) in ms for one cold load."""
    source = work / "mme-source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    os.link(tarball, source / "big_weights_1.tar.gz")
    cache = Path(tempfile.mkdtemp(dir=work, prefix="mme-"))
    mme = LocalMme(docker, image, cache, str(source))
    try:
        status, reply = mme.invoke("big_weights_1.tar.gz", [1.0])
        if status != 200 or reply != [2.0]:
            raise RuntimeError(f"the model did not answer: {status} {reply}\n{mme.output()}")
        metrics = mme.metrics()
    finally:
        mme.stop()
        shutil.rmtree(cache, ignore_errors=True)
    return (metrics["ModelDownloadingTime"]["p50_ms"], metrics["ModelLoadingTime"]["p50_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights-mb", type=int, default=1024, help="float32 weights, MiB")
    parser.add_argument("--env-mb", type=int, default=55, help="env-like gzip archive, MiB")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each timing (weights changes, extraction)"
    )
    args = parser.parse_args()
    docker = shutil.which("docker") or "docker"
    try:
        image: str | None = available_image(REPO)
    except ImageUnavailable as e:
        print(f"no local MME timings: {e}", file=sys.stderr)
        image = None
    pigz = shutil.which("pigz")
    rows: list[tuple[str, float | None, float | None, int, float, float, float]] = []
    endpoint: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="packaging-bench-") as tmp:
        work = Path(tmp)
        root = work / "repo"
        root.mkdir()
        copy_pants_repo(root, source=REPO)
        if (REPO / ".pants-bootstrap").is_dir():
            shutil.copytree(REPO / ".pants-bootstrap", root / ".pants-bootstrap")
        try:
            # Start pantsd and build the writer's PEX with small weights, as on a developer's
            # machine; then the real weights arrive, as after `dvc pull` of a new version.
            write_model(root, 1, 1)
            speed.pants(root, "package", f"{MODEL_DIR}:")
            shutil.rmtree(root / MODEL_DIR)
            model = write_model(root, args.weights_mb, args.env_mb)
            input_bytes = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
            dist = root / "dist" / MODEL_DIR / "big_weights_1.tar.gz"
            after_change = min(
                timed(lambda: speed.pants(root, "package", f"{MODEL_DIR}:"))
                for _ in changed_weights(model, args.repeats)
            )
            packed_configs = {}
            for compression in COMPRESSIONS:
                # A config edit reruns the writer; the weights are already snapshotted.
                option = f"--triton-package-compression={compression}"
                seconds = min(
                    timed(lambda: speed.pants(root, option, "package", f"{MODEL_DIR}:"))
                    for _ in edited_config(model, args.repeats)
                )
                packed_configs[compression] = (model / "config.pbtxt").read_text()
                tarball = work / f"pants-{compression}.tar.gz"
                shutil.copy2(dist, tarball)
                size = tarball.stat().st_size
                label = f"`./pants package`, {compression}"
                rows.append(
                    (label, seconds, None, size, *extract_times(tarball, work, args.repeats))
                )
            # The writer alone, on the directory Pants packs (config.pbtxt and the version folder).
            materialized = work / "materialized" / "big_weights"
            materialized.mkdir(parents=True)
            shutil.copytree(model / "1", materialized / "1")
            for compression in COMPRESSIONS:
                (materialized / "config.pbtxt").write_text(packed_configs[compression])
                direct = work / f"direct-{compression}.tar.gz"
                (work / "executables.txt").write_text("")
                argv = [
                    sys.executable,
                    "-m",
                    "triton_mme.scripts.write_tarball",
                    str(work / "materialized"),
                ]
                writer = [*argv, str(direct), str(work / "executables.txt"), compression]
                seconds = min(
                    timed(lambda: subprocess.run(writer, check=True, env=WRITER_ENV))
                    for _ in range(args.repeats)
                )
                if direct.read_bytes() != (work / f"pants-{compression}.tar.gz").read_bytes():
                    raise RuntimeError(f"{compression}: the writer and Pants disagree")
                size = direct.stat().st_size
                label = f"writer alone, {compression}"
                rows.append(
                    (label, None, seconds, size, *extract_times(direct, work, args.repeats))
                )
            for label, compressor in (("gzip -6", "gzip -6"), ("pigz -6", f"{pigz} -6")):
                if label.startswith("pigz") and not pigz:
                    continue
                output = work / f"{label.split()[0]}.tar.gz"
                command = f"tar -cf - big_weights | {compressor} > {output}"
                seconds = min(
                    timed(lambda: shell(command, work / "materialized"))
                    for _ in range(args.repeats)
                )
                size = output.stat().st_size
                rows.append(
                    (
                        f"`tar -c \\| {label}`",
                        None,
                        seconds,
                        size,
                        *extract_times(output, work, args.repeats),
                    )
                )
            if docker and image:
                endpoint["`tar -c \\| gzip -6`"] = endpoint_times(
                    docker, image, work / "gzip.tar.gz", work
                )
                endpoint["auto"] = endpoint_times(docker, image, work / "pants-auto.tar.gz", work)
        finally:
            stop_pantsd(root)

    reference = next(row for row in rows if row[0] == "`tar -c \\| gzip -6`")
    gzip_seconds = reference[2] or 1.0
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"Model directory: {input_bytes / 2**20:.0f} MiB ({args.weights_mb} MiB float32 weights,")
    print(f"a {args.env_mb} MiB-ish gzip'd env-like archive, config and model.py)")
    print(
        f"`./pants package` right after the weights changed (auto): {after_change:.1f} s "
        f"({after_change / gzip_seconds:.2f}x gzip -6)\n"
    )
    print(f"Best of {args.repeats} runs for every timing.\n")
    print(
        "| what | `./pants package` s | writer s | size MiB | size vs gzip -6 "
        "| extract GNU tar s (vs gzip -6) | extract tarfile s (vs gzip -6) "
        "| `gzip -dc` alone s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, pants_s, writer_s, size, gnu, python, gzip_alone in rows:
        cells = [
            label,
            f"{pants_s:.1f} ({pants_s / gzip_seconds:.2f}x)" if pants_s else "",
            f"{writer_s:.1f} ({writer_s / gzip_seconds:.2f}x)" if writer_s else "",
            f"{size / 2**20:.0f}",
            f"{size / reference[3]:.3f}x",
            f"{gnu:.1f} ({gnu / reference[4]:.2f}x)",
            f"{python:.1f} ({python / reference[5]:.2f}x)",
            f"{gzip_alone:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    if endpoint:
        print("\n| local MME, one cold load | ModelDownloadingTime ms | ModelLoadingTime ms |")
        print("|---|---:|---:|")
        for label, (download, load) in endpoint.items():
            print(f"| {label} | {download:.0f} | {load:.0f} |")


if __name__ == "__main__":
    main()
