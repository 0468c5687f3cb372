"""Adaptive micro-batching: concurrent requests to one variant share one predict call."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from modelloop.serving.dataplane.payload import ModelFailed, TimedOut

if TYPE_CHECKING:
    from modelloop.serving.dataplane.variant import VariantRuntime

INLINE_BELOW_MS = 0.5  # models faster than this run on the event loop, no thread hop


class Batcher:
    """Gathers concurrent requests to one variant into one predict call.

    While a call runs (on the variant's thread), new requests queue; when it ends, everything
    queued (up to ``max_batch_rows``) goes into the next call and the results are split back.
    Models faster than ``INLINE_BELOW_MS`` are called inline: a thread hop would cost more.
    Hand-written because the serving libraries that batch (Ray Serve, BentoML, MLServer) are
    whole servers, not a component to embed in this data plane.
    """

    def __init__(self, variant: VariantRuntime, options: dict, executor: ThreadPoolExecutor):
        self.variant = variant
        self.max_rows = int(options.get("max_batch_rows", 256))
        self.max_wait = float(options.get("max_wait_ms", 0.0)) / 1000.0
        self.executor = executor
        self.queue: list = []
        self.running = False
        self.ewma_ms = 1.0  # starts on the thread until measured fast
        self.calls = 0

    async def predict(self, X, want_proba: bool, timeout: float):
        if not self.running and not self.queue and self.ewma_ms < INLINE_BELOW_MS:
            t0 = time.perf_counter()
            try:
                out = self.variant.predict_batch(X, want_proba)
            except Exception as exc:
                raise ModelFailed(f"{type(exc).__name__}: {exc}") from None
            self._measure(time.perf_counter() - t0)
            return out
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.queue.append((X, want_proba, fut))
        if not self.running:
            self.running = True
            loop.create_task(self._drain())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            raise TimedOut(
                f"the model did not answer within {timeout:g} s",
                hint="raise the endpoint's timeout_seconds option or send fewer rows",
            ) from None

    def _measure(self, seconds: float) -> None:
        self.calls += 1
        self.ewma_ms = 0.8 * self.ewma_ms + 0.2 * seconds * 1000.0

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.queue:
                if self.max_wait and len(self.queue) < self.max_rows:
                    await asyncio.sleep(self.max_wait)
                batch, rows = [], 0
                while self.queue and (not batch or rows + len(self.queue[0][0]) <= self.max_rows):
                    item = self.queue.pop(0)
                    batch.append(item)
                    rows += len(item[0])
                await loop.run_in_executor(self.executor, self._run, batch, loop)
        finally:
            self.running = False

    def _run(self, batch, loop) -> None:
        """On the variant's thread: one predict for the batch, results split back."""
        want = any(item[1] for item in batch)
        t0 = time.perf_counter()
        try:
            if len(batch) == 1:
                results = [self.variant.predict_batch(batch[0][0], want)]
            else:
                X = _concat([item[0] for item in batch])
                preds, proba = self.variant.predict_batch(X, want)
                results, start = [], 0
                for item in batch:
                    n = len(item[0])
                    results.append((preds[start:start + n],
                                    None if proba is None else proba[start:start + n]))
                    start += n
        except Exception as exc:
            if len(batch) > 1:  # one bad request must not fail its neighbours: retry singly
                for item in batch:
                    self._run([item], loop)
                return
            err = ModelFailed(f"{type(exc).__name__}: {exc}")
            loop.call_soon_threadsafe(_settle, batch[0][2], None, err)
            return
        self._measure(time.perf_counter() - t0)
        for item, res in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_settle, item[2], res, None)


def _settle(fut, result, error) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _concat(parts):
    import numpy as np

    if hasattr(parts[0], "iloc"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts)
