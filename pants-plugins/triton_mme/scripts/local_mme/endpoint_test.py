"""The endpoint's load / cache / evict logic against a fake Triton (no Docker)."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from triton_mme.scripts.local_mme.budget import Budget
from triton_mme.scripts.local_mme.container import TritonReply
from triton_mme.scripts.local_mme.endpoint import MultiModelEndpoint, Reply
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

    def load(self, target_model: str, cache_dir_name: str) -> TritonReply:
        self.calls.append(("load", target_model))
        assert (self.cache_root / cache_dir_name).is_dir()
        if target_model in self.refuse:
            return TritonReply(400, b'{"error":"load failed for model: boom"}', "text/plain")
        self.loaded[target_model] = cache_dir_name
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


def _write_model(path: Path, model_dir: str) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{model_dir}/config.pbtxt")
        info.size = len(CONFIG)
        tar.addfile(info, io.BytesIO(CONFIG))


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
    tmp_path: Path, models: Path, budget: Budget
) -> tuple[MultiModelEndpoint, FakeTriton]:
    cache = tmp_path / "cache"
    cache.mkdir()
    triton = FakeTriton(cache, refuse={"broken_1.tar.gz"})
    endpoint = MultiModelEndpoint(
        DirectorySource(models), triton, cache, budget, ExtractionLimits(), Metrics()
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
    assert (broken.status, broken.error_type) == (400, "ModelError")
    assert "Triton could not load broken_1.tar.gz: load failed for model: boom" in _message(broken)

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
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["00001-a_1.tar.gz"]


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
