"""One OpenMP thread for small fits and predictions.

scikit-learn's HistGradientBoosting (and other OpenMP code) splits every tree level and every
tree's prediction across all cores, ending each piece at a barrier. On a few thousand rows the
work per barrier is microseconds, so on a machine busy with anything else each barrier waits for
a descheduled thread's next time slice instead: measured on 2 busy cores, the README demo's
2,250-row fit took 0.5-6.3 s on two threads against 0.1-0.4 s on one, and scoring two models on
its 750-row holdout 7.8 s against 0.4 s, with bit-identical metrics (each row and each feature's
histogram is computed by one thread either way). Large inputs keep every core.

LightGBM and XGBoost set their own thread count from ``n_jobs`` on every call, past OpenMP's
limit, and their default (``None``) means every core: :func:`one_thread_for_small_fits` sets
``n_jobs=1`` on such an estimator for a small fit (unless the user chose a thread count). On 2
cores shared with three busy processes the README's 3-trial LightGBM tune on 15,000 rows took
351 s with LightGBM's default, against 3 s uncontended.

threadpoolctl sets the limit for the calling thread only (OpenMP's
per-thread ``nthreads`` setting) and restores it on exit, so concurrent steps and inline jobs do
not see each other's limits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

#: At or below this many rows, OpenMP work runs on one thread.
SMALL_ROWS = 20_000


@contextlib.contextmanager
def small_work_threads(rows: int) -> Iterator[None]:
    """Run the block on one OpenMP thread when it handles at most :data:`SMALL_ROWS` rows."""
    if rows > SMALL_ROWS:
        yield
        return
    with _controller().limit(limits=1, user_api="openmp"):
        yield


_found: list = []  # [len(sys.modules), ThreadpoolController] when last looked


def _controller():
    """threadpoolctl's view of the thread pools loaded in this process, found again only when
    modules were imported since (a library's OpenMP runtime arrives with an import): finding
    them walks every loaded shared object, 2-10 ms a call, several calls a job."""
    import sys

    from threadpoolctl import ThreadpoolController  # with scikit-learn (a core dependency)

    if not _found or _found[0] != len(sys.modules):
        _found[:] = [len(sys.modules), ThreadpoolController()]
    return _found[1]


#: Libraries whose estimators take every core when ``n_jobs`` is None.
EVERY_CORE_BY_DEFAULT = frozenset({"lightgbm", "xgboost"})

#: Parameters by which a user chooses an estimator's thread count (LightGBM's and XGBoost's aliases).
THREAD_PARAMS = frozenset({"n_jobs", "num_threads", "nthread", "num_thread", "nthreads"})


def one_thread_for_small_fits(estimator, rows: int, params: dict) -> None:
    """Give a LightGBM or XGBoost ``estimator`` ``n_jobs=1`` for a fit of at most
    :data:`SMALL_ROWS` rows when its ``n_jobs`` is the default ``None`` ("every core") and
    ``params`` (what the user asked for) names no thread count."""
    if rows > SMALL_ROWS or THREAD_PARAMS & set(params):
        return
    if type(estimator).__module__.partition(".")[0] not in EVERY_CORE_BY_DEFAULT:
        return  # scikit-learn's n_jobs=None is one job already (and deprecated on some models)
    if estimator.get_params(deep=False).get("n_jobs", 0) is None:
        estimator.set_params(n_jobs=1)
