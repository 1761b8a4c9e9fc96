"""The endpoint's load / cache / evict logic against a fake Triton (no Docker)."""

from __future__ import annotations

import io
import json
import re
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from triton_mme.scripts.local_mme.budget import Budget
from triton_mme.scripts.local_mme.container import TritonReply
from triton_mme.scripts.local_mme.endpoint import MultiModelEndpoint, Reply, Timings
from triton_mme.scripts.local_mme.metrics import Metrics
from triton_mme.scripts.local_mme.sources import DirectorySource
from triton_mme.scripts.local_mme.tarball import ExtractionLimits

CONFIG = b'backend: "python"\n'


class FakeTriton:
    def __init__(self, cache_root: Path, refuse: set[str]) -> None:
        self.cache_root = cache_root
        self.refuse = refuse
        self.lock = threading.Lock()
        self.loaded: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    def load(self, target_model: str, model_dir: str, timeout: float) -> TritonReply:
        self.calls.append(("load", target_model))
        assert (self.cache_root / model_dir).is_dir()
        assert re.fullmatch(r"[0-9a-f]{32}/model", model_dir), "SageMaker's <hash>/model layout"
        if target_model in self.refuse:
            return TritonReply(400, b'{"error":"load failed for model: boom"}', "text/plain")
        self.loaded[target_model] = model_dir
        return TritonReply(200, b"", "text/plain")

    def unload(self, target_model: str) -> TritonReply:
        self.calls.append(("unload", target_model))
        with self.lock:
            del self.loaded[target_model]
        return TritonReply(200, b"", "text/plain")

    def invoke(self, target_model: str, body: bytes, content_type: str) -> TritonReply:
        self.calls.append(("invoke", target_model))
        with self.lock:
            loaded = target_model in self.loaded
        if not loaded:
            return TritonReply(404, b"", "text/plain")
        return TritonReply(200, json.dumps({"model_name": target_model}).encode(), content_type)


def _write_model(path: Path, model_dir: str, configs: dict[str, bytes] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for directory, config in (configs or {model_dir: CONFIG}).items():
            info = tarfile.TarInfo(f"{directory}/config.pbtxt")
            info.size = len(config)
            tar.addfile(info, io.BytesIO(config))


def _write_ensemble(path: Path, member: str) -> None:
    ensemble = (
        f'platform: "ensemble"\nensemble_scheduling {{ step [{{ model_name: "{member}" }}] }}\n'
    )
    _write_model(path, "", {"pipe": ensemble.encode(), member: CONFIG})


def _message(reply: Reply) -> str:
    return str(json.loads(reply.body)["Message"])


@pytest.fixture
def models(tmp_path: Path) -> Path:
    directory = tmp_path / "dist"
    directory.mkdir()
    for name in ("a", "b", "broken"):
        _write_model(directory / f"{name}_1.tar.gz", name)
    _write_model(directory / "escape_1.tar.gz", "../escape")
    return directory


def _endpoint(
    tmp_path: Path, models: Path, budget: Budget, timings: Timings = Timings()
) -> tuple[MultiModelEndpoint, FakeTriton]:
    cache = tmp_path / "cache"
    cache.mkdir()
    triton = FakeTriton(cache, refuse={"broken_1.tar.gz"})
    endpoint = MultiModelEndpoint(
        DirectorySource(models), triton, cache, budget, ExtractionLimits(), Metrics(), timings
    )
    return endpoint, triton


def test_cold_then_warm(tmp_path: Path, models: Path) -> None:
    endpoint, triton = _endpoint(tmp_path, models, Budget())
    first = endpoint.invoke("a_1.tar.gz", b"{}", "application/json")
    second = endpoint.invoke("a_1.tar.gz", b"{}", "application/json")
    assert first.status == second.status == 200
    assert json.loads(second.body) == {"model_name": "a_1.tar.gz"}
    assert triton.calls == [("load", "a_1.tar.gz"), ("invoke", "a_1.tar.gz")] + [
        ("invoke", "a_1.tar.gz")
    ]
    snapshot = endpoint.metrics.snapshot()
    assert snapshot["ModelCacheHit"] == {"hits": 1, "misses": 1, "average": 0.5}
    assert snapshot["ModelDownloadingTime"]["count"] == 1
    assert snapshot["ModelLoadingTime"]["count"] == 1
    assert snapshot["ModelLoadingWaitTime"]["count"] == 1
    assert snapshot["LoadedModelCount"] == 1


def test_budget_of_one_evicts_and_reloads(tmp_path: Path, models: Path) -> None:
    endpoint, triton = _endpoint(tmp_path, models, Budget(max_models=1))
    for name in ("a_1.tar.gz", "b_1.tar.gz", "a_1.tar.gz"):
        assert endpoint.invoke(name, b"{}", "application/json").status == 200
    assert [c for c in triton.calls if c[0] != "invoke"] == [
        ("load", "a_1.tar.gz"),
        ("unload", "a_1.tar.gz"),
        ("load", "b_1.tar.gz"),
        ("unload", "b_1.tar.gz"),
        ("load", "a_1.tar.gz"),
    ]
    snapshot = endpoint.metrics.snapshot()
    assert snapshot["Evictions"] == 2
    assert snapshot["models"]["a_1.tar.gz"]["Loads"] == 2
    assert snapshot["LoadedModelCount"] == 1
    assert endpoint.loaded_models() == ["a_1.tar.gz"]
    assert len(list((tmp_path / "cache").iterdir())) == 1, "evicted models' files are deleted"


def test_failures_leave_the_others_serving(tmp_path: Path, models: Path) -> None:
    endpoint, triton = _endpoint(tmp_path, models, Budget())
    assert endpoint.invoke("a_1.tar.gz", b"{}", "application/json").status == 200

    broken = endpoint.invoke("broken_1.tar.gz", b"{}", "application/json")
    # SageMaker's ModelError: 424, with the container's own status and message kept.
    assert (broken.status, broken.error_type) == (424, "ModelError")
    assert json.loads(broken.body)["OriginalStatusCode"] == 400
    assert _message(broken).startswith(
        'Received client error (400) from model with message "Triton could not load '
        "broken_1.tar.gz: load failed for model: boom"
    )

    escape = endpoint.invoke("escape_1.tar.gz", b"{}", "application/json")
    assert (escape.status, escape.error_type) == (400, "ValidationError")
    assert "escape_1.tar.gz: member '../escape/config.pbtxt' climbs out" in _message(escape)

    missing = endpoint.invoke("nope_1.tar.gz", b"{}", "application/json")
    assert missing.status == 404 and "No tarball 'nope_1.tar.gz'" in _message(missing)
    assert endpoint.invoke("../x.tar.gz", b"{}", "application/json").status == 400

    assert endpoint.invoke("a_1.tar.gz", b"{}", "application/json").status == 200
    snapshot = endpoint.metrics.snapshot()
    assert snapshot["LoadFailures"] == 1
    assert snapshot["InvocationErrors"] == 4
    assert endpoint.loaded_models() == ["a_1.tar.gz"]
    [extracted] = (tmp_path / "cache").iterdir()
    assert (extracted / "model" / "a" / "config.pbtxt").read_bytes() == CONFIG


def test_concurrent_requests_never_hit_an_unloaded_model(tmp_path: Path, models: Path) -> None:
    endpoint, triton = _endpoint(tmp_path, models, Budget(max_models=1))
    names = ["a_1.tar.gz", "b_1.tar.gz"] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda n: endpoint.invoke(n, b"{}", "application/json"), names))
    assert [r.status for r in replies] == [200] * len(names)
    snapshot = endpoint.metrics.snapshot()
    assert snapshot["Invocations"] == len(names)
    assert snapshot["ModelCacheHit"]["hits"] + snapshot["ModelCacheHit"]["misses"] == len(names)
    assert snapshot["Loads"] == snapshot["Evictions"] + 1
    assert len(endpoint.loaded_models()) == 1


def test_tarballs_sharing_a_member_name_are_refused_before_triton(
    tmp_path: Path, models: Path
) -> None:
    _write_ensemble(models / "pipe_1.tar.gz", "pipe_1.pre")
    _write_ensemble(models / "pipe_2.tar.gz", "pipe_2.pre")
    _write_ensemble(models / "other_1.tar.gz", "pipe_1.pre")
    endpoint, triton = _endpoint(tmp_path, models, Budget())
    assert endpoint.check("pipe_1.tar.gz") is None
    assert endpoint.check("pipe_2.tar.gz") is None, "the ensemble directory maps to TargetModel"
    refused = endpoint.check("other_1.tar.gz")
    assert refused is not None and (refused.status, refused.error_type) == (409, "ValidationError")
    assert _message(refused).startswith(
        "other_1.tar.gz and pipe_1.tar.gz both hold the model directory `pipe_1.pre`."
    )
    assert ("load", "other_1.tar.gz") not in triton.calls


class SlowTriton(FakeTriton):
    """Loads only once `release` is set."""

    def __init__(self, cache_root: Path) -> None:
        super().__init__(cache_root, refuse=set())
        self.release = threading.Event()

    def load(self, target_model: str, model_dir: str, timeout: float) -> TritonReply:
        assert self.release.wait(timeout=30)
        return super().load(target_model, model_dir, timeout)


def test_a_slow_load_answers_model_not_ready_and_goes_on(tmp_path: Path, models: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    triton = SlowTriton(cache)
    endpoint = MultiModelEndpoint(
        DirectorySource(models),
        triton,
        cache,
        Budget(),
        ExtractionLimits(),
        Metrics(),
        Timings(invocation_wait=0.05, load_timeout=360),
    )
    waited = endpoint.invoke("a_1.tar.gz", b"{}", "application/json")
    assert (waited.status, waited.error_type) == (429, "ModelNotReadyException")
    assert "a_1.tar.gz is still loading after 0.05 s; the load goes on." in _message(waited)
    triton.release.set()
    assert endpoint.check("a_1.tar.gz") is None, "the first load finishes and is shared"
    assert endpoint.invoke("a_1.tar.gz", b"{}", "application/json").status == 200
    assert [c for c in triton.calls if c[0] == "load"] == [("load", "a_1.tar.gz")]
