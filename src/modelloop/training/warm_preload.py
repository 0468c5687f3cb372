"""Imported by the warm job server before it forks workers (:mod:`~.warm_server`): the libraries
a training, tuning or evaluation job imports when it runs, beyond its job kind's module.

A fresh server imports these before its first job; what its workers import on top (a boosting
library, a report's plotting) the server learns from them and imports too (``learned.json`` next
to its socket keeps the list for the next server). Everything here is imported lazily by the code
that uses it, so the list only decides *when* it is paid: here, once per server.
"""

from __future__ import annotations

import numpy  # noqa: F401
import optuna  # noqa: F401
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import sklearn.compose  # noqa: F401
import sklearn.ensemble  # noqa: F401
import sklearn.impute  # noqa: F401
import sklearn.linear_model  # noqa: F401
import sklearn.metrics  # noqa: F401
import sklearn.model_selection  # noqa: F401
import sklearn.pipeline  # noqa: F401
import sklearn.preprocessing  # noqa: F401

import modelloop.artifacts  # noqa: F401 - what every worker opens (the server itself opens none)
import modelloop.store.sql.store  # noqa: F401 - SQLAlchemy and the SQL store
from modelloop.registry.skops_files import skops_io

skops_io()  # skops from its kept trusted-type lists: not a scan of all scikit-learn per server
