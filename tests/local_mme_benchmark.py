"""Cold-load and warm-invoke latency of the local SageMaker MME for the fixture models.

    ./pants run tests/local_mme_benchmark.py -- --requests 200 --cold-loads 10 [--s3]

Cold: a budget of one model and requests that alternate between models, so every request
downloads, extracts and loads its tarball (after unloading the previous model). Warm: every
model loaded once, then `--requests` sequential requests per model. Latencies are measured by
the client (HTTP round trip through the front service) and printed as a Markdown table, with
the server's own metrics (docs/benchmarks/local-mme.md explains them).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from local_mme_models import EXPECTED, write_tarballs
from local_mme_process import LocalMme
from standin import ImageUnavailable, available_image
from seaweedfs import start_seaweedfs
from triton_mme.scripts.local_mme.metrics import summarize

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def _timed_invoke(mme: LocalMme, target_model: str) -> float:
    started = time.perf_counter()
    status, body = mme.invoke(target_model)
    elapsed = (time.perf_counter() - started) * 1000.0
    if status != 200:
        raise RuntimeError(f"{target_model}: HTTP {status}: {body}")
    return elapsed


def _cold(mme: LocalMme, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in EXPECTED}
    for _ in range(rounds):
        for name in EXPECTED:
            timings[name].append(_timed_invoke(mme, name))
    return timings


def _warm(mme: LocalMme, requests: int) -> dict[str, list[float]]:
    for name in EXPECTED:
        _timed_invoke(mme, name)
    return {name: [_timed_invoke(mme, name) for _ in range(requests)] for name in EXPECTED}


def _server_line(label: str, metrics: dict[str, Any]) -> str:
    parts = []
    for name in ("ModelDownloadingTime", "ModelLoadingTime", "ModelUnloadingTime", "ModelLatency"):
        if metrics[name]["count"]:
            s = metrics[name]
            parts.append(
                f"{name} p50 {s['p50_ms']:.1f} / p99 {s['p99_ms']:.1f} ms (n={s['count']})"
            )
    return f"- {label}: " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="warm requests per model")
    parser.add_argument("--cold-loads", type=int, default=10, help="cold loads per model")
    parser.add_argument("--s3", action="store_true", help="also time cold loads from SeaweedFS")
    args = parser.parse_args()
    docker = shutil.which("docker") or "docker"
    try:
        # Run from the repository root (`./pants run`), whose pants.toml names the image.
        image = available_image(Path.cwd())
    except ImageUnavailable as e:
        raise SystemExit(f"Needs Docker and the Triton image: {e}")

    rows: list[tuple[str, dict[str, list[float]]]] = []
    server_lines = []
    with tempfile.TemporaryDirectory(prefix="local-mme-bench-") as tmp:
        work = Path(tmp)
        dist = write_tarballs(work / "dist")["add_one_1.tar.gz"].parent
        # (label, --source, extra arguments, extra environment)
        sources: list[tuple[str, str, list[str], dict[str, str]]] = [
            ("directory", str(dist), [], {})
        ]
        s3 = None
        if args.s3:
            s3 = start_seaweedfs(work / "seaweedfs")
            s3.create_bucket("models")
            for path in dist.glob("*.tar.gz"):
                s3.client().upload_file(str(path), "models", f"mme/{path.name}")
            sources.append(
                (
                    "S3 (SeaweedFS)",
                    "s3://models/mme",
                    [f"--s3-endpoint-url={s3.endpoint_url}"],
                    s3.credentials_env(),
                )
            )
        try:
            for label, source, extra_args, env in sources:
                mme = LocalMme(
                    docker, image, _fresh(work), source, *extra_args, "--max-models=1", env=env
                )
                try:
                    rows.append((f"cold, {label}", _cold(mme, args.cold_loads)))
                    server_lines.append(_server_line(f"cold, {label}", mme.metrics()))
                finally:
                    mme.stop()
            mme = LocalMme(docker, image, _fresh(work), str(dist))
            try:
                rows.append(("warm", _warm(mme, args.requests)))
                server_lines.append(_server_line("warm", mme.metrics()))
            finally:
                mme.stop()
        finally:
            if s3 is not None:
                s3.kill()

    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"Image: {image}\n")
    print("| case | TargetModel | requests | p50 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|")
    for case, timings in rows:
        for name, values in timings.items():
            s = summarize(values)
            print(
                f"| {case} | {name} | {s['count']} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} "
                f"| {s['max_ms']:.1f} |"
            )
    print("\nServer-side metrics:")
    print("\n".join(server_lines))


def _fresh(work: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=work, prefix="mme-"))


if __name__ == "__main__":
    main()
