"""Where chunks are scored: this process, a pool of worker processes, or Ray tasks.

Every executor calls :func:`modelloop.batch.scoring.score_chunk` and hands each result to
``finished`` in *this* process, which alone writes blobs and chunk records. At most two chunks
per worker are in flight, so memory stays bounded whatever the number of chunks.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from modelloop.batch.scoring import PACKAGE_ENV, score_chunk
from modelloop.errors import InvalidInput

Finished = Callable[[object], None]


def get(name: str):
    if name == "ray":
        return run_ray
    if name == "processes":
        return run_processes
    if name == "threads":
        return run_threads
    raise InvalidInput(f"unknown executor {name!r}", hint="use processes, threads or ray")


def run_threads(package_dir: str, todo: list, layout: dict, finished: Finished, *,
                workers: int, address: str | None = None) -> None:
    """Score on ``workers`` threads of this process: no start-up and one copy of the model.

    pyarrow's parser, numpy's BLAS and most scikit-learn predictors release the GIL, so threads
    use the cores for the bulk of the work; models that hold the GIL are better on processes.
    """
    from concurrent.futures import ThreadPoolExecutor

    from modelloop.batch.scoring import load_model

    load_model(package_dir)  # once, before the threads race to load it
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        _drain(pool, package_dir, todo, layout, finished, workers)


def warm_up(package_dir: str) -> None:
    """Start the fork server of the process pool now, so it loads the model while we plan.

    The server is a fresh interpreter that imports the model's libraries and loads the model
    once (:mod:`modelloop.batch.warm`); workers forked from it start ready, sharing those pages.
    Calling it again is a no-op; a server started for another model still works (its workers
    load their model themselves).
    """
    import multiprocessing as mp

    os.environ[PACKAGE_ENV] = package_dir
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["modelloop.batch.warm"])
    from multiprocessing import forkserver

    forkserver.ensure_running()


def run_processes(package_dir: str, todo: list, layout: dict, finished: Finished, *,
                  workers: int, address: str | None = None) -> None:
    """Score in this process (one worker) or in a pool of ``workers`` forked processes."""
    workers = max(1, min(workers, len(todo)))
    if workers == 1:
        for index, chunk in todo:
            finished(score_chunk(package_dir, index, chunk, layout))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # forkserver, not fork: this process runs the store's connections and pyarrow's threads,
    # which a fork would copy mid-use; not spawn: each spawned worker would import the model's
    # libraries and load it again (seconds each), where a fork of the warm server costs nothing
    warm_up(package_dir)
    layout = {**layout, "reader_threads": workers < (os.cpu_count() or 1)}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("forkserver"),
                               initializer=_watch_parent, initargs=(os.getpid(),))
    with pool:
        _drain(pool, package_dir, todo, layout, finished, workers)


def _drain(pool, package_dir: str, todo: list, layout: dict, finished: Finished,
           workers: int) -> None:
    """Keep at most two chunks per worker in flight on ``pool``; hand each result to
    ``finished`` as it comes; on any error cancel what has not started."""
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = iter(todo)
    running: set = set()
    try:
        while True:
            while len(running) < 2 * workers:
                item = next(pending, None)
                if item is None:
                    break
                running.add(pool.submit(score_chunk, package_dir, item[0], item[1], layout))
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                finished(fut.result())
    except BaseException:
        for fut in running:
            fut.cancel()
        raise


def _watch_parent(job_pid: int) -> None:
    """End this worker when the job's process is gone (e.g. SIGKILLed), not leave it orphaned.

    A pool worker waits on its task queue forever when its job dies without closing the pool;
    the standard library has no parent-death option for pools, so a daemon thread polls.
    """
    import threading
    import time

    server = os.getppid()  # the fork server, which exits when the job does

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(job_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            if os.getppid() != server:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-job").start()


def run_ray(package_dir: str, todo: list, layout: dict, finished: Finished, *,
            workers: int, address: str | None = None) -> None:
    """Score as Ray tasks: on the cluster at ``address`` ($RAY_ADDRESS), else a local Ray."""
    try:
        import ray
    except ImportError:
        raise InvalidInput("the ray executor needs Ray",
                           hint="pip install 'modelloop[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(score_chunk)
        layout_ref = ray.put(layout)
        pending = iter(todo)
        running: list = []
        while True:
            while len(running) < 2 * workers:
                item = next(pending, None)
                if item is None:
                    break
                running.append(task.remote(package_dir, item[0], item[1], layout_ref))
            if not running:
                return
            done, running = ray.wait(running, num_returns=1)
            for ref in done:
                try:
                    finished(ray.get(ref))
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
    finally:
        if started_here:
            ray.shutdown()
