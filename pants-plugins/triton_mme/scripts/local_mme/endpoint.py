"""SageMaker's part of a multi-model endpoint: TargetModel -> loaded Triton model.

On the first request for a TargetModel the tarball is fetched, extracted safely to
`/opt/ml/models/<hash>/model` (where SageMaker extracts it) and loaded with that url through
Triton's SageMaker API; later requests go straight to the loaded model. As on SageMaker, an
invocation waits at most `Timings.invocation_wait` for a load and is then answered with
`ModelNotReadyException` while the load goes on (Triton gets `Timings.load_timeout` for it).
When loading one more model would exceed the budget, the least recently used idle models are
unloaded first. One model loads at a time; invocations of loaded models run concurrently.
Triton has one model namespace: a tarball whose member model directories are already loaded
from another tarball is refused, naming both, before Triton is asked.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
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
    def load(self, target_model: str, model_dir: str, timeout: float) -> TritonReply:
        ...

    def unload(self, target_model: str) -> TritonReply:
        ...

    def invoke(self, target_model: str, body: bytes, content_type: str) -> TritonReply:
        ...


# SageMaker Runtime's InvokeEndpoint errors and their HTTP statuses, from its API model
# (botocore's `sagemaker-runtime/2017-05-13/service-2.json`): ValidationError 400, ModelError 424
# (the container answered 4xx/5xx; the reply keeps its status and message), ModelNotReadyException
# 429 ("a multi-model endpoint is still downloading or loading the target model"),
# ServiceUnavailable 503. Triton's own SageMaker front end (`src/sagemaker_server.cc`) answers
# only 200, 400, 404, 409 (a name already loaded) and 507 (out of memory): ModelNotReadyException
# comes from SageMaker's side, which this service plays.
MODEL_ERROR_STATUS = 424
MODEL_NOT_READY_STATUS = 429
SERVICE_UNAVAILABLE_STATUS = 503


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

    @classmethod
    def model_error(cls, original_status: int, message: str) -> Reply:
        """SageMaker's answer when the container (Triton) answered an error of its own."""
        side = "client" if original_status < 500 else "server"
        received = f"Received {side} error ({original_status}) from model"
        body = {
            "ErrorCode": "ModelError",
            "Message": f'{received} with message "{message}"',
            "OriginalStatusCode": original_status,
            "OriginalMessage": message,
        }
        return cls(MODEL_ERROR_STATUS, json.dumps(body).encode(), "application/json", "ModelError")


@dataclass(frozen=True)
class Timings:
    """SageMaker MME's documented limits, in seconds."""

    # How long an invocation waits for its model to load before ModelNotReadyException.
    invocation_wait: float = 60
    # How long a load may take before it fails.
    load_timeout: float = 360


@dataclass
class _Loaded:
    directory: Path
    size: int
    # Model directories other than the served one: they keep their names in Triton.
    members: tuple[str, ...]
    in_flight: int = 0
    evicting: bool = False


class MultiModelEndpoint:
    def __init__(
        self,
        source: ModelSource,
        triton: Triton,
        models_root: Path,
        budget: Budget,
        limits: ExtractionLimits,
        metrics: Metrics,
        timings: Timings = Timings(),
    ) -> None:
        self.source = source
        self.triton = triton
        self.models_root = models_root
        self.limits = limits
        self.metrics = metrics
        self.timings = timings
        self._lru = LruModels(budget)
        self._loaded: dict[str, _Loaded] = {}
        self._loading: dict[str, Future[None]] = {}
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
        loaded = self._acquire_or_error(target_model, arrived, self.timings.invocation_wait)
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
            return Reply.model_error(reply.status, reply.error_text())
        return Reply(reply.status, reply.body, reply.content_type or "application/json")

    def check(self, target_model: str) -> Reply | None:
        """Load `target_model` as its first request would, without invoking it.

        Waits for the load however long it takes. Returns None when it loaded, else the error a
        client would have received.
        """
        loaded = self._acquire_or_error(target_model, time.monotonic(), None)
        if isinstance(loaded, Reply):
            return loaded
        self._release(loaded)
        return None

    def _acquire_or_error(
        self, target_model: str, arrived: float, wait: float | None
    ) -> _Loaded | Reply:
        try:
            check_target_model(target_model)
            return self._acquire(target_model, arrived, wait)
        except ModelNotReady as e:
            error = Reply.error(MODEL_NOT_READY_STATUS, "ModelNotReadyException", str(e))
        except SourceError as e:
            error = Reply.error(e.status, "ValidationError", str(e))
        except TarballError as e:
            error = Reply.error(400, "ValidationError", str(e))
        except BudgetError as e:
            error = Reply.error(SERVICE_UNAVAILABLE_STATUS, "ServiceUnavailable", str(e))
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

    def _acquire(self, target_model: str, arrived: float, wait: float | None) -> _Loaded:
        loaded = self._take_if_loaded(target_model)
        if loaded is not None:
            self.metrics.count("CacheHits", target_model)
            return loaded
        self.metrics.count("CacheMisses", target_model)
        while loaded is None:
            remaining = None if wait is None else max(0.0, arrived + wait - time.monotonic())
            try:
                self._load_in_background(target_model).result(timeout=remaining)
            except FutureTimeout:
                raise ModelNotReady(
                    f"{target_model} is still loading after {wait:g} s; the load goes on. "
                    "Retry the request (SageMaker answers ModelNotReadyException the same way)."
                ) from None
            # Evicted again between its load and this request: load it once more.
            loaded = self._take_if_loaded(target_model)
        self.metrics.time("ModelLoadingWaitTime", time.monotonic() - arrived)
        return loaded

    def _load_in_background(self, target_model: str) -> Future[None]:
        """The pending load of `target_model`, started unless one is under way."""
        with self._changed:
            under_way = self._loading.get(target_model)
            if under_way is not None:
                return under_way
            pending: Future[None] = Future()
            self._loading[target_model] = pending

        def run() -> None:
            try:
                with self._load_lock:
                    with self._changed:
                        # A load that finished since the caller looked needs no second one.
                        done = target_model in self._loaded
                    if not done:
                        self._load(target_model)
                pending.set_result(None)
            except BaseException as e:  # handed to every waiting request
                pending.set_exception(e)
            finally:
                with self._changed:
                    del self._loading[target_model]

        threading.Thread(target=run, name=f"load {target_model}", daemon=True).start()
        return pending

    def _colliding(self, target_model: str, members: tuple[str, ...]) -> str | None:
        """Why `target_model`'s member directories cannot join the loaded models, if so."""
        with self._changed:
            clashes = {
                other: sorted(set(members) & set(loaded.members))
                for other, loaded in self._loaded.items()
            }
        for other, shared in sorted(clashes.items()):
            if shared:
                return (
                    f"{target_model} and {other} both hold the model directory "
                    f"{', '.join(f'`{name}`' for name in shared)}. SageMaker keeps member model "
                    "names as they are in Triton's one namespace, so the two cannot be loaded "
                    "on one instance. Rebuild both with `pants package` (it names an ensemble's "
                    "members after their artifact), or rename the member in one of them."
                )
        return None

    def _load(self, target_model: str) -> None:
        """Fetch, extract and load `target_model`; called with the load lock held."""
        self._serial += 1
        # SageMaker's layout and Triton's url rule: /opt/ml/models/<hash>/model.
        model_hash = hashlib.sha256(f"{self._serial}/{target_model}".encode()).hexdigest()[:32]
        directory = self.models_root / model_hash
        download = self.models_root / f"{model_hash}.download"
        try:
            started = time.monotonic()
            self.source.fetch(target_model, download, self.limits.max_tarball_bytes)
            self.metrics.time("ModelDownloadingTime", time.monotonic() - started)
            started = time.monotonic()
            extracted = extract_model_tarball(
                download, directory / "model", self.limits, target_model
            )
            extraction_time = time.monotonic() - started
            layout = extracted.layout
            members = tuple(d for d in layout.model_dirs if d != layout.served_model)
            collision = self._colliding(target_model, members)
            if collision:
                raise _LoadFailed(Reply.error(409, "ValidationError", collision))
            with self._changed:
                victims = self._lru.victims_for(target_model, extracted.extracted_bytes)
            for victim in victims:
                self._evict(victim)
            started = time.monotonic()
            reply = self.triton.load(target_model, f"{model_hash}/model", self.timings.load_timeout)
            if not reply.ok:
                self.metrics.count("LoadFailures", target_model)
                raise _LoadFailed(
                    Reply.model_error(
                        reply.status, f"Triton could not load {target_model}: {reply.error_text()}"
                    )
                )
            self.metrics.time("ModelLoadingTime", extraction_time + time.monotonic() - started)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        finally:
            download.unlink(missing_ok=True)
        self.metrics.count("Loads", target_model)
        log(
            f"loaded {target_model} ({extracted.extracted_bytes} bytes, "
            f"{', '.join(layout.model_dirs)}; serves {layout.served_model})"
        )
        with self._changed:
            self._loaded[target_model] = _Loaded(directory, extracted.extracted_bytes, members)
            self._lru.add(target_model, extracted.extracted_bytes)
            self.metrics.set_loaded(len(self._lru), self._lru.total_bytes)

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
        shutil.rmtree(loaded.directory, ignore_errors=True)
        self.metrics.count("Evictions", target_model)
        log(f"evicted {target_model} (least recently used)")
        with self._changed:
            del self._loaded[target_model]
            self._lru.remove(target_model)
            self.metrics.set_loaded(len(self._lru), self._lru.total_bytes)


class ModelNotReady(Exception):
    pass


class _LoadFailed(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body.decode())
        self.reply = reply
