"""Imported once by a transform's fork server, before it forks the scoring workers.

It loads the transform's model (named by ``$MODELLOOP_TRANSFORM_PACKAGE``) and the libraries
every chunk needs, so each worker forked from the server starts with them in memory, shared
copy-on-write: a pool of N workers pays one interpreter start-up and one model load, not N.
The fork server is a fresh, single-purpose interpreter, so forking it is safe where forking the
job's own process (with its store connections and threads) would not be.
"""

from __future__ import annotations

import contextlib
import os

import pandas  # noqa: F401 - warmed for the workers
import pyarrow.csv  # noqa: F401

from modelloop.batch import scoring, sources  # noqa: F401

_package = os.environ.get(scoring.PACKAGE_ENV)
if _package:
    # a model that fails to load here fails again in the worker, with the error on its chunk
    with contextlib.suppress(Exception):
        scoring.load_model(_package)
