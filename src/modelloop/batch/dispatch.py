"""Scoring a transform's chunks on an executor (``local``, ``threads``, ``processes``, ``ray``).

Every executor calls :func:`modelloop.batch.scoring.score_chunk` and hands each result to
``finished`` in *this* process, which alone writes blobs and chunk records. At most two chunks
per worker are in flight, so memory stays bounded whatever the number of chunks.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from modelloop.batch.scoring import PACKAGE_ENV, load_model, score_chunk
from modelloop.common import executors


def warm_up(package_dir: str) -> None:
    """Start the fork server of the process pool now, so it loads the model while we plan.

    The server is a fresh interpreter that imports the model's libraries and loads the model
    once (:mod:`modelloop.batch.warm`); workers forked from it start ready, sharing those pages.
    Calling it again is a no-op; a server started for another model still works (its workers
    load their model themselves).
    """
    import multiprocessing as mp
    from multiprocessing import forkserver

    os.environ[PACKAGE_ENV] = package_dir
    mp.get_context("forkserver").set_forkserver_preload(["modelloop.batch.warm"])
    forkserver.ensure_running()


def score_chunks(executor: str, package_dir: str, todo: list, layout: dict,
                 finished: Callable[[object], None], *, workers: int,
                 address: str | None = None) -> None:
    """Score the ``(index, chunk)`` pairs of ``todo`` on ``workers`` workers of ``executor``."""
    name = executors.canonical(executor)
    workers = max(1, min(workers, len(todo) or 1))
    if name == "processes" and workers == 1:
        name = "local"  # one worker: no pool to start, no model to load in another process
    if name == "processes":
        warm_up(package_dir)
        layout = {**layout, "reader_threads": workers < (os.cpu_count() or 1)}
    elif name in ("local", "threads"):
        load_model(package_dir)  # once, before threads race to load it
    calls = ((package_dir, index, chunk, layout) for index, chunk in todo)
    # a chunk lost with its Ray worker is scored again (its record is written once, here)
    with executors.create(name, workers, address=address, max_retries=2) as pool:
        executors.map_bounded(pool, score_chunk, calls, finished)
