"""The data plane of one server process: every protocol calls :meth:`DataPlane.infer`, which
routes, validates once on arrays, predicts through the variant's batcher, captures and counts.

A background thread keeps the endpoints in step with the store (``refresh``), drives rollouts
that are due and writes the statistics (``stats``)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelloop.common.ids import time_ordered_uuid
from modelloop.errors import InvalidInput, ModelloopError
from modelloop.serving.dataplane.batching import _concat
from modelloop.serving.dataplane.online_variant import OnlineModels
from modelloop.serving.dataplane.payload import Payload, Result
from modelloop.serving.dataplane.recent import RecentRequests
from modelloop.serving.dataplane.refresh import EndpointRuntimes
from modelloop.serving.dataplane.routing import EndpointRuntime
from modelloop.serving.dataplane.stats import MetricSink, ServerStats
from modelloop.serving.dataplane.variant import VariantRuntime
from modelloop.telemetry import capture as _capture

if TYPE_CHECKING:
    from modelloop.registry.registry import Registry
    from modelloop.store.base import MetadataStore

log = logging.getLogger(__name__)


class DataPlane:
    """All endpoints this server process serves, kept in step with the metadata ``store``.

    ``models`` resolves and loads model versions; ``capture`` writes captured traffic;
    ``put_metrics`` receives the endpoint metric series every ``metrics_seconds``;
    ``advance_rollouts(owner)`` moves the rollouts that are due (None: this server drives none).
    """

    def __init__(self, store: MetadataStore, models: Registry, capture: _capture.CaptureWriter,
                 *, put_metrics: MetricSink,
                 advance_rollouts: Callable[[str], object] | None = None,
                 poll_seconds: float = 0.5, metrics_seconds: float = 10.0,
                 online_poll_seconds: float = 0.1, features=None):
        self.poll_seconds = poll_seconds
        self.metrics_seconds = metrics_seconds
        self.advance_rollouts = advance_rollouts
        self.server_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.endpoints = EndpointRuntimes(store, models, features)
        # online variants follow their learners' revisions on their own, faster clock
        self.online = OnlineModels(store, models.artifacts, self.endpoints.online_variants,
                                   poll_seconds=online_poll_seconds)
        self.stats = ServerStats(store, put_metrics, self.server_id)
        self.capture = capture
        self.recent = RecentRequests()  # online endpoints' requests, for joining feedback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shadow_tasks: set = set()
        warnings.filterwarnings("ignore", message="X does not have valid feature names")

    @property
    def runtimes(self) -> dict[str, EndpointRuntime]:
        """name -> the endpoint's current runtime."""
        return self.endpoints.runtimes

    def runtime(self, name: str) -> EndpointRuntime:
        return self.endpoints.runtime(name)

    # -- lifecycle
    def start(self) -> None:
        self.endpoints.refresh()
        self._thread = threading.Thread(target=self._loop, name="dataplane-poll", daemon=True)
        self._thread.start()
        self.online.start()

    def stop(self) -> None:
        self._stop.set()
        self.online.stop()
        if self._thread:
            self._thread.join(timeout=10)
        self.stats.flush()
        try:
            self.stats.write_series()
        except Exception as exc:  # the store may be gone at shutdown; say so, stop anyway
            log.warning("could not write endpoint metric series: %s", exc)
        self.capture.close()
        self.endpoints.close()

    def _loop(self) -> None:
        last_stats = 0.0
        last_series = time.monotonic()
        while not self._stop.wait(self.poll_seconds):
            try:
                self.endpoints.refresh()
                if self.advance_rollouts is not None:
                    self.advance_rollouts(f"server:{self.server_id}")
                if time.monotonic() - last_stats >= 1.0:
                    self.stats.flush()
                    last_stats = time.monotonic()
                if time.monotonic() - last_series >= self.metrics_seconds:
                    last_series = time.monotonic()
                    self.stats.write_series()
            except Exception as exc:  # keep serving what we have; say why
                log.warning("endpoint refresh failed: %s", exc)

    # -- requests
    async def infer(self, rt: EndpointRuntime, payload: Payload, *, target: str | None = None,
                    routing_key: str | None = None, inference_id: str | None = None,
                    want_proba: bool = False, t_start: float | None = None) -> Result:
        """Route, validate, predict, capture, count. Raises ModelloopError subclasses."""
        t0 = t_start or time.perf_counter()
        variant = rt.choose(target, routing_key)
        stats = self.stats.of(rt.name, variant.name)
        model_ms = 0.0
        status = 200
        try:
            if want_proba and not variant.has_proba:
                raise InvalidInput(f"variant {variant.name!r} ({variant.model_ref}) gives no "
                                   "class probabilities",
                                   hint="ask a classifier for probabilities; this model answers "
                                        "with predictions only")
            X = variant.prepare(payload)
            cap = rt.capture
            capturing = cap["enabled"] and (cap["sampling"] >= 100
                                            or random.random() * 100 < cap["sampling"])
            # a capture that wants probabilities the request did not ask for gets them from the
            # capture writer, computed for many requests at once (not one call per request)
            tm = time.perf_counter()
            preds, probs = await variant.batcher.predict(X, want_proba and variant.has_proba,
                                                         rt.timeout)
            model_ms = (time.perf_counter() - tm) * 1000.0
            result = Result(variant.name, variant.model_ref, preds.tolist(),
                            None if probs is None or not want_proba else probs.tolist(),
                            variant.classes, model_ms, inference_id or time_ordered_uuid())
            if capturing:
                self._capture(rt, variant, X, preds, probs, result.inference_id, shadow=False)
            if rt.learns:
                self.recent.remember(rt.name, result.inference_id, variant.columns, X)
            if rt.shadows:
                self._mirror(rt, X, result.inference_id)
            return result
        except ModelloopError as exc:
            status = exc.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            stats.observe(status, model_ms, (time.perf_counter() - t0) * 1000.0,
                          len(X) if status == 200 else 0)

    def _capture(self, rt, variant, X, preds, probs, inference_id, *, shadow: bool) -> None:
        """Hand the capture to the writer as references to its arrays (not touched after the
        response): the writer thread builds, encodes and writes records in batches, and computes
        the probabilities the answer did not include in one model call per batch."""
        mode = rt.capture["mode"]
        output = mode != "input"
        self.capture.write(_capture.Pending(
            endpoint=rt.name, variant=variant.name, model=variant.model_ref, shadow=shadow,
            ts=time.time(), inference_id=inference_id, columns=variant.columns, x=X,
            keep_input=mode != "output", predictions=preds if output else None,
            probabilities=probs if output else None, classes=variant.classes,
            probas_of=_probas_of(variant) if output and probs is None and variant.has_proba
            else None))

    def _mirror(self, rt: EndpointRuntime, X, inference_id: str) -> None:
        """Send a copy to each shadow variant (sampled); never awaited by the request."""
        for shadow in rt.shadows:
            if shadow.sample < 100 and random.random() * 100 >= shadow.sample:
                continue
            task = asyncio.get_running_loop().create_task(
                self._shadow(rt, shadow, X, inference_id))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, rt, shadow: VariantRuntime, X, inference_id: str) -> None:
        stats = self.stats.of(rt.name, shadow.name)
        t0 = time.perf_counter()
        status = 200
        try:
            # the shadow takes the primary's validated input (same signature expected)
            preds, probs = await shadow.batcher.predict(X, shadow.has_proba, rt.timeout)
            self._capture(rt, shadow, X, preds, probs, inference_id, shadow=True)
        except ModelloopError as exc:
            status = exc.status
        except Exception:
            status = 500
        finally:
            ms = (time.perf_counter() - t0) * 1000.0
            stats.observe(status, ms, ms)


def _probas_of(variant: VariantRuntime) -> Callable[[list], list]:
    """The capture writer's way to a variant's probabilities: many requests' inputs, one call."""
    def probas(xs: list) -> list:
        X = xs[0] if len(xs) == 1 else _concat(xs)
        _, proba = variant.predict_batch(X, True)
        out, start = [], 0
        for x in xs:
            out.append(proba[start:start + len(x)])
            start += len(x)
        return out

    return probas
