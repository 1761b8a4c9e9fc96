"""The metrics SageMaker MME publishes to CloudWatch, kept locally (times in milliseconds).

Names follow CloudWatch's (`ModelLoadingWaitTime`, `ModelDownloadingTime`, ...) so numbers seen
here can be compared with an endpoint's dashboards when sizing an instance.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from typing import Any

TIMINGS = {
    "ModelLoadingWaitTime": "request arrival until the model was ready (cache misses only)",
    "ModelDownloadingTime": "fetching the tarball from S3 or the local directory",
    "ModelLoadingTime": "extraction plus Triton's load (POST /models)",
    "ModelUnloadingTime": "Triton's unload of an evicted model (DELETE /models/<name>)",
    "ModelLatency": "Triton's inference call (POST /models/<name>/invoke)",
    "OverheadLatency": "everything else in an invocation: queueing, loading, the front service",
}


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (`fraction` in 0..1)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "count": len(ordered),
        "mean_ms": round(sum(ordered) / len(ordered), 3) if ordered else 0.0,
        "p50_ms": round(percentile(ordered, 0.50), 3),
        "p99_ms": round(percentile(ordered, 0.99), 3),
        "max_ms": round(ordered[-1], 3) if ordered else 0.0,
    }


class Metrics:
    """Thread-safe counters and timings for the endpoint and for each TargetModel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timings: dict[str, list[float]] = defaultdict(list)
        self._counters: dict[str, int] = defaultdict(int)
        self._per_model: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.loaded_model_count = 0
        self.loaded_bytes = 0

    def time(self, name: str, seconds: float) -> None:
        assert name in TIMINGS, name
        with self._lock:
            self._timings[name].append(seconds * 1000.0)

    def count(self, name: str, model: str | None = None, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount
            if model is not None:
                self._per_model[model][name] += amount

    def set_loaded(self, model_count: int, loaded_bytes: int) -> None:
        with self._lock:
            self.loaded_model_count = model_count
            self.loaded_bytes = loaded_bytes

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            hits = self._counters["CacheHits"]
            misses = self._counters["CacheMisses"]
            return {
                "Invocations": self._counters["Invocations"],
                "InvocationErrors": self._counters["InvocationErrors"],
                "ModelCacheHit": {
                    "hits": hits,
                    "misses": misses,
                    "average": round(hits / (hits + misses), 4) if hits + misses else 0.0,
                },
                "LoadedModelCount": self.loaded_model_count,
                "LoadedModelBytes": self.loaded_bytes,
                "Loads": self._counters["Loads"],
                "LoadFailures": self._counters["LoadFailures"],
                "Evictions": self._counters["Evictions"],
                **{name: summarize(self._timings[name]) for name in TIMINGS},
                "models": {
                    model: dict(sorted(counters.items()))
                    for model, counters in sorted(self._per_model.items())
                },
            }


def render(snapshot: dict[str, Any]) -> str:
    """A plain-text table of a snapshot, printed when the endpoint stops."""
    hit = snapshot["ModelCacheHit"]
    lines = [
        f"Invocations: {snapshot['Invocations']} ({snapshot['InvocationErrors']} errors); "
        f"ModelCacheHit: {hit['average']:.2%} ({hit['hits']} hits, {hit['misses']} misses)",
        f"Loads: {snapshot['Loads']}, LoadFailures: {snapshot['LoadFailures']}, "
        f"Evictions: {snapshot['Evictions']}, LoadedModelCount: {snapshot['LoadedModelCount']} "
        f"({snapshot['LoadedModelBytes']} bytes)",
        f"{'metric':<22}{'count':>7}{'p50 ms':>11}{'p99 ms':>11}{'max ms':>11}  what it measures",
    ]
    for name, meaning in TIMINGS.items():
        s = snapshot[name]
        lines.append(
            f"{name:<22}{s['count']:>7}{s['p50_ms']:>11.1f}{s['p99_ms']:>11.1f}"
            f"{s['max_ms']:>11.1f}  {meaning}"
        )
    for model, counters in snapshot["models"].items():
        lines.append(f"  {model}: " + ", ".join(f"{k}={v}" for k, v in counters.items()))
    return "\n".join(lines)
