"""SageMaker's part of a multi-model endpoint: TargetModel -> loaded Triton model.

On the first request for a TargetModel the tarball is fetched, extracted safely and loaded
through Triton's SageMaker API; later requests go straight to the loaded model. When loading
one more model would exceed the budget, the least recently used idle models are unloaded
first. One model loads at a time; invocations of loaded models run concurrently.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from triton_mme.scripts.local_mme.budget import Budget, BudgetError, LruModels
from triton_mme.scripts.local_mme.container import TritonReply
from triton_mme.scripts.local_mme.metrics import Metrics
from triton_mme.scripts.local_mme.sources import ModelSource, SourceError, check_target_model
from triton_mme.scripts.local_mme.tarball import (
    ExtractionLimits,
    TarballError,
    extract_model_tarball,
)


def log(message: str) -> None:
    print(f"[local-mme] {message}", flush=True)


class Triton(Protocol):
    def load(self, target_model: str, cache_dir_name: str) -> TritonReply:
        ...

    def unload(self, target_model: str) -> TritonReply:
        ...

    def invoke(self, target_model: str, body: bytes, content_type: str) -> TritonReply:
        ...


@dataclass(frozen=True)
class Reply:
    """What the front service answers; `error_type` becomes SageMaker's x-amzn-ErrorType."""

    status: int
    body: bytes
    content_type: str = "application/json"
    error_type: str | None = None

    @classmethod
    def error(cls, status: int, error_type: str, message: str) -> Reply:
        body = json.dumps({"ErrorCode": error_type, "Message": message}).encode()
        return cls(status, body, "application/json", error_type)


@dataclass
class _Loaded:
    cache_dir: Path
    size: int
    in_flight: int = 0
    evicting: bool = False


class MultiModelEndpoint:
    def __init__(
        self,
        source: ModelSource,
        triton: Triton,
        cache_root: Path,
        budget: Budget,
        limits: ExtractionLimits,
        metrics: Metrics,
    ) -> None:
        self.source = source
        self.triton = triton
        self.cache_root = cache_root
        self.limits = limits
        self.metrics = metrics
        self._lru = LruModels(budget)
        self._loaded: dict[str, _Loaded] = {}
        self._changed = threading.Condition()
        self._load_lock = threading.Lock()
        self._serial = 0

    def loaded_models(self) -> list[str]:
        """Least recently used first."""
        with self._changed:
            return self._lru.names()

    def invoke(self, target_model: str, body: bytes, content_type: str) -> Reply:
        arrived = time.monotonic()
        self.metrics.count("Invocations", target_model)
        loaded = self._acquire_or_error(target_model, arrived)
        if isinstance(loaded, Reply):
            self.metrics.count("InvocationErrors", target_model)
            return loaded
        try:
            started = time.monotonic()
            reply = self.triton.invoke(target_model, body, content_type)
            self.metrics.time("ModelLatency", time.monotonic() - started)
            self.metrics.time("OverheadLatency", started - arrived)
        finally:
            self._release(loaded)
        if not reply.ok:
            self.metrics.count("InvocationErrors", target_model)
            return Reply.error(reply.status, "ModelError", reply.error_text())
        return Reply(reply.status, reply.body, reply.content_type or "application/json")

    def check(self, target_model: str) -> Reply | None:
        """Load `target_model` as its first request would, without invoking it.

        Returns None when it loaded, else the error a client would have received.
        """
        loaded = self._acquire_or_error(target_model, time.monotonic())
        if isinstance(loaded, Reply):
            return loaded
        self._release(loaded)
        return None

    def _acquire_or_error(self, target_model: str, arrived: float) -> _Loaded | Reply:
        try:
            check_target_model(target_model)
            return self._acquire(target_model, arrived)
        except SourceError as e:
            error = Reply.error(e.status, "ValidationError", str(e))
        except TarballError as e:
            error = Reply.error(400, "ValidationError", str(e))
        except BudgetError as e:
            error = Reply.error(507, "ServiceUnavailable", str(e))
        except _LoadFailed as e:
            error = e.reply
        log(f"{target_model}: HTTP {error.status}: {json.loads(error.body)['Message']}")
        return error

    def _release(self, loaded: _Loaded) -> None:
        with self._changed:
            loaded.in_flight -= 1
            self._changed.notify_all()

    def _take_if_loaded(self, target_model: str) -> _Loaded | None:
        with self._changed:
            loaded = self._loaded.get(target_model)
            if loaded is None or loaded.evicting:
                return None
            loaded.in_flight += 1
            self._lru.touch(target_model)
            return loaded

    def _acquire(self, target_model: str, arrived: float) -> _Loaded:
        loaded = self._take_if_loaded(target_model)
        if loaded is not None:
            self.metrics.count("CacheHits", target_model)
            return loaded
        self.metrics.count("CacheMisses", target_model)
        with self._load_lock:
            loaded = self._take_if_loaded(target_model) or self._load(target_model)
        self.metrics.time("ModelLoadingWaitTime", time.monotonic() - arrived)
        return loaded

    def _load(self, target_model: str) -> _Loaded:
        """Fetch, extract and load `target_model`; called with the load lock held."""
        self._serial += 1
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", target_model)[:100]
        cache_dir_name = f"{self._serial:05d}-{safe_name}"
        cache_dir = self.cache_root / cache_dir_name
        download = self.cache_root / f"{cache_dir_name}.download"
        try:
            started = time.monotonic()
            self.source.fetch(target_model, download, self.limits.max_tarball_bytes)
            self.metrics.time("ModelDownloadingTime", time.monotonic() - started)
            started = time.monotonic()
            extracted = extract_model_tarball(download, cache_dir, self.limits, target_model)
            extraction_time = time.monotonic() - started
            with self._changed:
                victims = self._lru.victims_for(target_model, extracted.extracted_bytes)
            for victim in victims:
                self._evict(victim)
            started = time.monotonic()
            reply = self.triton.load(target_model, cache_dir_name)
            if not reply.ok:
                self.metrics.count("LoadFailures", target_model)
                raise _LoadFailed(
                    Reply.error(
                        reply.status,
                        "ModelError",
                        f"Triton could not load {target_model}: {reply.error_text()}",
                    )
                )
            self.metrics.time("ModelLoadingTime", extraction_time + time.monotonic() - started)
        except BaseException:
            shutil.rmtree(cache_dir, ignore_errors=True)
            raise
        finally:
            download.unlink(missing_ok=True)
        self.metrics.count("Loads", target_model)
        log(
            f"loaded {target_model} ({extracted.extracted_bytes} bytes, "
            f"{', '.join(extracted.layout.model_dirs)}; serves {extracted.layout.served_model})"
        )
        loaded = _Loaded(cache_dir=cache_dir, size=extracted.extracted_bytes, in_flight=1)
        with self._changed:
            self._loaded[target_model] = loaded
            self._lru.add(target_model, loaded.size)
            self.metrics.set_loaded(len(self._lru), self._lru.total_bytes)
        return loaded

    def _evict(self, target_model: str) -> None:
        """Unload a model once its running requests finish; called with the load lock held."""
        with self._changed:
            loaded = self._loaded[target_model]
            loaded.evicting = True
            self._changed.wait_for(lambda: loaded.in_flight == 0)
        started = time.monotonic()
        reply = self.triton.unload(target_model)
        self.metrics.time("ModelUnloadingTime", time.monotonic() - started)
        if not reply.ok:
            log(f"Triton did not unload {target_model}: {reply.error_text()}")
        shutil.rmtree(loaded.cache_dir, ignore_errors=True)
        self.metrics.count("Evictions", target_model)
        log(f"evicted {target_model} (least recently used)")
        with self._changed:
            del self._loaded[target_model]
            self._lru.remove(target_model)
            self.metrics.set_loaded(len(self._lru), self._lru.total_bytes)


class _LoadFailed(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body.decode())
        self.reply = reply
