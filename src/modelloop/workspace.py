"""The Python SDK: one :class:`Workspace` object gives access to everything in a workspace.

    >>> import modelloop
    >>> ws = modelloop.Workspace.init("/tmp/ws")              # doctest: +SKIP
    >>> ws.datasets.ingest("loans", ["day1.csv"]).version.ref  # doctest: +SKIP
    'loans@1'

Every face (CLI, HTTP, UI) goes through this object; it owns no logic beyond wiring the stores
to the domain services.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from modelloop import config as _config
from modelloop.common.status import MonitorRunStatus
from modelloop.errors import check_arguments

#: Modules that are faces: their calls into the façade carry user input and are checked.
_FACES = ("modelloop.cli", "modelloop.api", "modelloop.ui")


def _service(build):
    """A cached service property whose public methods check their arguments (see :func:`_checked`)."""

    @functools.wraps(build)
    def get(self):
        return _checked(build.__name__, build(self))

    return cached_property(get)


def _checked(name: str, service):
    """``service`` with each public method checking its arguments when called from user code or a
    face, so a wrong type is an :class:`~modelloop.errors.InvalidInput` naming it, not an
    AttributeError deep inside. Services calling each other through the workspace are trusted
    (their arguments were checked where they came in), which keeps the check off hot paths."""
    for attr in dir(type(service)):
        if attr.startswith("_") or not inspect.isfunction(inspect.getattr_static(service, attr)):
            continue
        method = getattr(service, attr)
        strict = check_arguments(method, f"ws.{name}.{attr}")

        def call(*args, _method=method, _strict=strict, **kwargs):
            caller = _module_name(sys._getframe(1).f_globals)
            if caller.startswith("modelloop.") and not caller.startswith(_FACES):
                _strict.bind(*args, **kwargs)  # keyword arguments a method passed on (**kwargs)
                return _method(*args, **kwargs)
            return _strict(*args, **kwargs)

        functools.update_wrapper(call, method)
        setattr(service, attr, call)
    return service


def _module_name(namespace: dict) -> str:
    """The name of the module whose globals are ``namespace``; a module run with ``python -m``
    (the job worker) by its own name, not ``__main__`` (a user's script stays ``__main__``)."""
    name = namespace.get("__name__", "")
    if name == "__main__":
        name = getattr(namespace.get("__spec__"), "name", None) or name
    return name


class StepContexts:
    """Opens the :class:`~modelloop.pipelines.context.StepContext` of a workspace for a pipeline
    run. In the workspace's process it hands out the workspace's own services; pickled to a
    worker process (process pool, Ray) it carries only the root, and opens a workspace there that
    it closes after the step."""

    def __init__(self, ws: Workspace):
        self.root = str(ws.root)
        self._ws: Workspace | None = ws

    def __getstate__(self) -> dict:
        return {"root": self.root, "_ws": None}

    @contextlib.contextmanager
    def __call__(self) -> Iterator:
        from modelloop.pipelines.context import StepContext

        ws = self._ws or Workspace(self.root)
        try:
            try:
                endpoints = ws.endpoints
            except ImportError:  # an installation without serving's dependencies
                endpoints = None
            yield StepContext(datasets=ws.datasets, jobs=ws.jobs, training=ws.training,
                              models=ws.models, endpoints=endpoints, features=ws.features)
        finally:
            if ws is not self._ws:
                ws.close()


class RemoteJobs:
    """Opens this workspace's jobs in another process, possibly on another machine (a Ray
    worker running a job). Pickled with the resolved configuration, not the root: the root is a
    folder on the caller's machine, while the store URL and the artifacts location (with its
    options) reach a PostgreSQL + S3 workspace from anywhere. Where the root is not on this
    machine, a temporary folder stands for it (scratch space, caches). A worker keeps the last
    workspaces it opened for its next jobs."""

    _opened: dict[tuple, Workspace] = {}

    def __init__(self, config: _config.Config):
        self.config = config

    def __call__(self):
        import dataclasses
        import tempfile

        config = self.config
        key = (config.store_url, config.artifacts_url, str(config.root))
        ws = self._opened.pop(key, None)
        if ws is None:
            root = config.root
            if not (root / _config.CONFIG_FILE).is_file():
                from modelloop.common.hashing import sha256_bytes

                root = Path(tempfile.gettempdir()) / f"modelloop-{sha256_bytes(str(key))[:16]}"
            ws = Workspace.__new__(Workspace)
            ws.root = root
            ws.config = dataclasses.replace(config, root=root, job_runner="inline",
                                            job_executor="local")
        self._opened[key] = ws  # the most recent last
        while len(self._opened) > 4:
            self._opened.pop(next(iter(self._opened))).close()
        return ws.jobs


#: The built-in job kinds, by the package that registers them.
_TRAINING_KINDS = ("train", "tune", "evaluate")
_BATCH_KINDS, _MONITORING_KINDS = ("transform",), ("monitor",)


def _load_job_kinds(kind: str | None = None) -> None:
    """Import the modules that register job kinds: each package registers its own (see
    :mod:`modelloop.training.job_kinds`). Done when a job is run, not when jobs are listed; for
    a built-in ``kind``, only its own package (a train job's worker need not import batch
    transform's pydantic models), for any other kind all of them (they name the known kinds)."""
    known = kind in (*_TRAINING_KINDS, *_BATCH_KINDS, *_MONITORING_KINDS)
    if not known or kind in _TRAINING_KINDS:
        import modelloop.training.service  # noqa: F401 - train, tune, evaluate
    if not known or kind in _BATCH_KINDS:
        import modelloop.batch.transform  # noqa: F401 - transform
    if not known or kind in _MONITORING_KINDS:
        import modelloop.monitoring.service  # noqa: F401 - monitor


class Workspace:
    """A workspace: its configuration, metadata store, artifact store and services."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.root = _config.find_root(path)
        self.config = _config.Config.load(self.root)

    @classmethod
    def init(
        cls,
        path: str | os.PathLike = ".",
        *,
        store_url: str | None = None,
        artifacts_url: str | None = None,
    ) -> Workspace:
        """Create a workspace in ``path`` (a config file and, by default, a ``.modelloop/`` folder)."""
        root = Path(path).expanduser().resolve()
        _config.write_default(root, store_url=store_url, artifacts_url=artifacts_url)
        ws = cls(root)
        ws.config.state_dir.mkdir(parents=True, exist_ok=True)
        ws.store  # noqa: B018 - create and migrate the database now, not on first use
        ws.artifacts  # noqa: B018
        return ws

    @staticmethod
    def connect(url: str, token: str | None = None, *, timeout: float = 300.0):
        """The workspace behind a modelloop API server (``modelloop api serve``) at ``url``,
        acting with API token ``token``: a :class:`~modelloop.remote.workspace.RemoteWorkspace`
        whose services have these same methods, each an HTTP call (files stream both ways)."""
        from modelloop.remote.workspace import RemoteWorkspace

        return RemoteWorkspace(url, token, timeout=timeout)

    @cached_property
    def store(self):
        from modelloop.store import open_store

        return open_store(self.config.store_url)

    @cached_property
    def artifacts(self):
        from modelloop.artifacts import ArtifactStore

        return ArtifactStore(self.config.artifacts_url, self.config.artifacts_options)

    @_service
    def datasets(self):
        from modelloop.data.datasets import Datasets

        ds = Datasets(self.store, self.artifacts, self.config.state_dir / "tmp")
        ds.recover()
        ds.ingest = self._then_features(self._then_monitor(ds.ingest))
        ds.ingest_micro_batch = self._then_features(self._then_monitor(ds.ingest_micro_batch))
        return ds

    def _then_features(self, ingest):
        """``ingest``, then the online stores of the feature sets fed by that dataset brought up
        to date (``report.feature_updates``); a failure there never fails the committed ingest."""

        @functools.wraps(ingest)
        def ingest_then_features(name, *args, **kwargs):
            report = ingest(name, *args, **kwargs)
            report.feature_updates = []
            if report.version is not None:
                for fs in self.store.list_feature_sets():
                    if fs["source"] == report.dataset:
                        try:
                            report.feature_updates.append(self.features.update(fs["name"]))
                        except Exception as exc:  # noqa: BLE001 - reported, the version stays
                            report.feature_updates.append({"feature_set": fs["name"],
                                                           "error": str(exc)})
            return report

        return ingest_then_features

    def _then_monitor(self, ingest):
        """``ingest``, then the dataset's after-ingest monitors on the rows it added. The data
        layer knows nothing of monitoring; the façade joins them. The runs (or their failures)
        are in ``report.monitor_runs``; a failing monitor never fails the committed ingest."""

        @functools.wraps(ingest)
        def ingest_then_monitor(name, *args, **kwargs):
            report = ingest(name, *args, **kwargs)
            report.monitor_runs = []
            if report.version is not None:
                try:
                    tick = self.monitoring.after_ingest(report.dataset)
                    report.monitor_runs = tick["runs"] + tick["failures"]
                except Exception as exc:  # noqa: BLE001 - reported, the version stays committed
                    report.monitor_runs = [{"status": MonitorRunStatus.FAILED, "error": str(exc)}]
            return report

        return ingest_then_monitor

    @_service
    def features(self):
        """Feature sets: definitions, point-in-time joins, the online store
        (:class:`modelloop.features.service.FeatureSets`)."""
        from modelloop.features.service import FeatureSets

        return FeatureSets(self.store, self.datasets, online_url=self.config.features_online_url,
                           state_dir=self.config.state_dir)

    @_service
    def jobs(self):
        """Tracked jobs (:class:`modelloop.training.jobs.Jobs`), run as ``[jobs] runner`` says."""
        from modelloop.training.jobs import Jobs

        return Jobs(self.store, self.artifacts, self.root, self.config.state_dir,
                    runner=self.config.job_runner, services=self._job_services,
                    load_kinds=_load_job_kinds, executor=self.config.job_executor,
                    open_remote=RemoteJobs(self.config))  # fmt: skip

    def _job_services(self):
        """What a job's code may use besides the store and artifacts, without importing the
        layers above it; built in the process that runs the job."""
        from modelloop.training.job_context import JobServices

        return JobServices(
            datasets=self.datasets,
            services={"ensure_baseline": lambda ref, **kw: self.monitoring.ensure_baseline(ref, **kw),
                      "load_model": lambda ref: self.models.load(ref)},
        )

    @_service
    def models(self):
        """The model registry (:class:`modelloop.registry.registry.Registry`)."""
        from modelloop.registry.registry import Registry

        return Registry(
            self.store,
            self.artifacts,
            self.config.state_dir / "cache" / "models",
            datasets=self.datasets,
            deployments=lambda ref: self.endpoints.serving(ref),
            gated_aliases=self.config.gated_aliases,
            four_eyes=self.config.four_eyes,
        )

    @_service
    def training(self):
        """Train, tune and evaluate as tracked jobs (:class:`modelloop.training.service.Training`)."""
        from modelloop.training.service import Training

        return Training(self.jobs, self.datasets, self.models)

    @_service
    def runs(self):
        """Pipeline run records (:class:`modelloop.pipelines.runs.Runs`)."""
        from modelloop.pipelines.runs import Runs

        return Runs(self.store, self.artifacts, StepContexts(self))

    @_service
    def loops(self):
        """Declarative retraining loops: run a spec, or apply it and run it by name
        (:class:`modelloop.automation.apply.DeclaredLoops`)."""
        from modelloop.automation.apply import DeclaredLoops

        return DeclaredLoops(self.datasets, self.models, self.runs, store=self.store,
                             monitoring=self.monitoring, endpoints=self._endpoints_if_installed,
                             triggers=lambda: self.triggers)

    def _endpoints_if_installed(self):
        try:
            return self.endpoints
        except ImportError:  # an installation without serving's dependencies
            return None

    @_service
    def triggers(self):
        """Triggers: causes that start actions, each cause once
        (:class:`modelloop.automation.triggers.Triggers`)."""
        from modelloop.automation.actions import Services
        from modelloop.automation.triggers import Triggers

        return Triggers(self.store, Services(
            datasets=lambda: self.datasets, loops=lambda: self.loops, runs=lambda: self.runs,
            endpoints=lambda: self.endpoints, alarms=lambda: self.alarms,
            transforms=lambda: self.transforms,
            storage_options=lambda: {} if self.artifacts.is_local else dict(self.artifacts.options),
        ))

    @_service
    def explain(self):
        """Bias metrics as SageMaker Clarify computes them (:class:`modelloop.explain.service.Explain`)."""
        from modelloop.explain.service import Explain

        return Explain(self.datasets, self.models)

    @_service
    def endpoints(self):
        """Real-time endpoints (:class:`modelloop.serving.endpoints.Endpoints`)."""
        from modelloop.serving.endpoints import Endpoints

        return Endpoints(self.store, self.artifacts, self.models, alarms=self.alarms,
                         series=self.metric_series, labels=self.labels,
                         features=lambda *a: self.features.serve(*a),
                         append_rows=lambda name, rows: self.datasets.append_rows(name, rows))

    @_service
    def streams(self):
        """Stream consumers feeding datasets in micro-batches, each batch checked as it commits
        (:class:`modelloop.streams.service.Streams`)."""
        from modelloop.streams.service import Streams

        return Streams(self.store, self.datasets, self.config.state_dir / "tmp",
                       put_metrics=self.metric_series.put_many,
                       evaluate_alarms=lambda at=None: self.alarms.evaluate(at=at))

    @_service
    def transforms(self):
        """Batch transforms (:class:`modelloop.batch.transform.Transforms`)."""
        from modelloop.batch.transform import Transforms

        return Transforms(store=self.store, artifacts=self.artifacts, jobs=self.jobs,
                          models=self.models, datasets=self.datasets)

    @_service
    def monitoring(self):
        """Baselines, monitors, labels, metrics and alarms
        (:class:`modelloop.monitoring.service.Monitoring`)."""
        from modelloop.monitoring.service import Monitoring

        return Monitoring(self.store, self.artifacts, self.datasets, self.jobs,
                          series=self.metric_series, alarms=self.alarms, labels=self.labels)

    @_service
    def tokens(self):
        """API tokens with roles (:class:`modelloop.access.tokens.Tokens`): one per workspace
        object, so a token is argon2-verified once per process, then cached."""
        from modelloop.access.tokens import Tokens

        return Tokens(self.store)

    @_service
    def audit(self):
        """The append-only audit log of mutating calls (:class:`modelloop.access.audit.Audit`)."""
        from modelloop.access.audit import Audit

        return Audit(self.store)

    def controller(self, *, lease_seconds: float = 10.0, holder: str | None = None,
                   on_change=None):  # fmt: skip
        """The controller (:class:`modelloop.automation.controller.Controller`) of this
        workspace: it leads while it holds the ``controller`` lease (``lease_seconds`` long,
        renewed four times per lease), and fires triggers, runs monitors and evaluates alarms
        through this workspace's services. ``on_change`` hears "leading", "standby",
        "released"."""
        from modelloop.automation.controller import Controller
        from modelloop.automation.leader import Leader

        leader = Leader(self.store, ttl=lease_seconds, holder=holder, on_change=on_change)
        return Controller(leader=leader, monitoring=self.monitoring, jobs=self.jobs,
                          triggers=self.triggers,
                          stream=self.events_stream)  # fmt: skip

    def controller_status(self) -> dict:
        """Who leads the controllers of this workspace (the ``controller`` lease: holder, term,
        until when; None if no controller ever ran) and the event group they consume
        (position and unacknowledged deliveries per member)."""
        from modelloop.automation.leader import LEASE

        return {"lease": self.store.get_lease(LEASE),
                "events": self.events_stream.group_info("controller")}

    # -- telemetry: one of each, shared by serving (writes) and monitoring (reads, evaluates)
    @cached_property
    def metric_series(self):
        """Metric series (:class:`modelloop.telemetry.series.MetricSeries`)."""
        from modelloop.telemetry.series import MetricSeries

        return MetricSeries(self.store)

    @cached_property
    def alarms(self):
        """Alarms on metric series (:class:`modelloop.telemetry.alarms.Alarms`); their
        ``rollback:ENDPOINT`` action rolls back through :attr:`endpoints`."""
        from modelloop.telemetry.alarms import Alarms

        return Alarms(self.store, self.metric_series,
                      rollback=lambda ep, reason: self.endpoints.rollback(ep, reason=reason))

    @cached_property
    def labels(self):
        """Late labels of served predictions (:class:`modelloop.telemetry.labels.Labels`)."""
        from modelloop.telemetry.labels import Labels

        return Labels(self.store, self.artifacts)

    def events(
        self, *, after_id: int = 0, kind: str | None = None, limit: int = 1000,
        newest_first: bool = False,
    ) -> list[dict]:  # fmt: skip
        """The workspace event log (dataset versions created, models registered, …), oldest
        first; ``newest_first``: the latest ``limit`` events, newest first (the console's)."""
        return self.store.list_events(after_id=after_id, kind=kind, limit=limit,
                                      newest_first=newest_first)  # fmt: skip

    events = check_arguments(events, "ws.events")

    @cached_property
    def events_stream(self):
        """The event log as a stream with consumer groups
        (:class:`modelloop.events.EventStream`), on the backend ``[events] url`` names."""
        from modelloop.events import open_stream

        return open_stream(self.config, self.store)

    def prepare_job(self, kind: str, *, executor: str | None = None) -> None:
        """A job of ``kind`` is about to be run from this thread: where jobs run cold (``[jobs]
        runner = "process"``, locally) its worker starts now, so that its start-up overlaps the
        request's checks (``train``, ``tune``, ``evaluate`` call this first); one no job was
        given ends with :meth:`close`."""
        if self.config.job_runner != "process" or (executor or self.config.job_executor) != "local":
            return
        from modelloop.training.worker_start import prestart

        prestart(self.root, self.config.state_dir / "logs", kind)
        self._prepared = True

    def close(self) -> None:
        if getattr(self, "_prepared", False):
            from modelloop.training.worker_start import discard_early

            discard_early(self.root)
        if "features" in self.__dict__:
            self.features.close()
        if "events_stream" in self.__dict__:
            self.events_stream.close()
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"
