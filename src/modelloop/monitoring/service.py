"""The monitoring service behind ``ws.monitoring``: baselines, checks, monitors and their runs,
late labels, metric series, alarms, and the scheduler that runs due monitors.

Every monitor run is a tracked Job (kind ``monitor``, body :func:`run_monitor_job`) whose report
is a job artifact and a ``monitor_runs`` row. Alarms are evaluated by the caller after a run (and
on every scheduler tick), not inside the job: their rollback action needs the endpoints, which the
workspace hands to the alarms (:mod:`modelloop.telemetry.alarms`) and not to a job.

After-ingest monitors run after each ingest made through the workspace (which calls
:meth:`Monitoring.after_ingest`), on only the rows that ingest added (``loans@4..5``); ingests the
workspace did not see (another process, an older client) are found in the event log by the
scheduler. A claim on the monitor's last seen event makes each version run once either way.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelloop.common.status import MonitorRunStatus
from modelloop.data.refs import check_name
from modelloop.errors import InvalidInput, NotFound, parse_id
from modelloop.monitoring import monitors as M
from modelloop.monitoring.baselines import Baselines
from modelloop.telemetry.alarms import Alarms
from modelloop.telemetry.labels import Labels
from modelloop.telemetry.series import MetricSeries
from modelloop.training.job_kinds import register_job_kind

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.data.datasets import Datasets
    from modelloop.quality.checks import CheckReport
    from modelloop.store import MetadataStore
    from modelloop.training.jobs import Jobs


#: The fields a monitor is created (and updated) with.
_MONITOR_FIELDS = ("baseline", "dataset", "endpoint", "variant", "schedule", "after_ingest",
                   "window", "model", "config")


class Monitoring:
    """What faces call (``ws.monitoring``). The metric series, alarms and labels are the
    workspace's shared telemetry objects, the same ones serving writes to."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, datasets: Datasets,
                 jobs: Jobs, *, series: MetricSeries, alarms: Alarms, labels: Labels):
        self.store = store
        self.artifacts = artifacts
        self.datasets = datasets
        self.jobs = jobs
        self.series = series
        self.alarms = alarms
        self.labels = labels
        self.baselines = Baselines(store, artifacts, datasets)

    def ensure_baseline(self, dataset_ref: str, *, target: str | None = None) -> dict:
        """The baseline of a dataset version, created on first call (for the training service,
        which names its ``target``)."""
        return self.baselines.ensure(dataset_ref, target=target)

    def check(self, data: str | None, baseline: str, config: dict | None = None, *, since=None,
              until=None, endpoint: str | None = None, variant: str | None = None,
              exclude=()) -> CheckReport:  # fmt: skip
        """Check a dataset version, a data file, or an endpoint's captured traffic in a window
        against a baseline; returns a :class:`~modelloop.quality.checks.CheckReport`.

        Traffic is compared on the served model's input signature; ``exclude`` names baseline
        columns not to check."""
        from modelloop.quality.checks import check

        b = M.exclude_columns(self.baselines.load(baseline), exclude)
        if endpoint:
            from modelloop.data.refs import parse_time
            from modelloop.monitoring import captures

            frame = captures.capture_frame(
                self.store, self.artifacts, endpoint, variant=variant,
                since=parse_time(since) if since else None,
                until=parse_time(until) if until else None,
            )  # fmt: skip
            data_frame, b = M.traffic(self.store, b, frame)
            return check(data_frame, b, config)
        if not isinstance(data, str) or not data:
            raise InvalidInput(f"cannot check {data!r}",
                               hint="give a dataset version (loans@3), a data file, or an endpoint")
        return check(_read_data(self.datasets, data), b, config)

    def compare(self, ref: str, against: str) -> dict:
        """Dataset version ``ref`` against version ``against`` (the reference): the drift table
        of a check of ``ref`` against a profile of ``against`` (made here, not stored as a
        baseline) and both versions' distributions per column on shared bins (the console's
        comparison). Reads each version twice; writes nothing."""
        from modelloop.quality.baseline import Baseline
        from modelloop.quality.checks import check

        a, b = self.datasets.get(ref), self.datasets.get(against)
        reference = Baseline.from_batches(self.datasets.iter_batches(b.ref))
        result = check(self.datasets.iter_batches(a.ref), reference)
        current = Baseline.from_batches(self.datasets.iter_batches(a.ref), categorical=[
            k for k, p in reference.columns.items() if p.kind == "categorical"])  # fmt: skip
        return {"ref": a.ref, "against": b.ref, "check": result.to_dict(),
                "histograms": M.histograms(reference, current)}  # fmt: skip

    # -- metric series (alarms: ``self.alarms``) ---------------------------------------------
    def put_metric(self, name: str, value: float, dimensions: dict | None = None,
                   time: datetime | None = None) -> None:  # fmt: skip
        self.series.put(name, value, dimensions, time)

    def put_metrics(self, points: list[tuple[str, dict, datetime, float]]) -> None:
        """Several points (name, dimensions, time, value) in one write."""
        self.series.put_many(points)

    def metric(self, name: str, dimensions: dict | None = None, *, since=None, until=None):
        return self.series.points(name, dimensions, since=since, until=until)

    def metric_series(self, prefix: str = "") -> list[dict]:
        return self.series.list(prefix)

    # -- monitors -----------------------------------------------------------------------------
    def create_monitor(
        self,
        name: str,
        *,
        baseline: str,
        dataset: str | None = None,
        endpoint: str | None = None,
        variant: str | None = None,
        schedule: str | None = None,
        after_ingest: bool = False,
        window: str | None = None,
        model: str | None = None,
        config: dict | None = None,
    ) -> dict:
        check_name(name, "monitor")
        self._check_monitor(baseline=baseline, dataset=dataset, endpoint=endpoint,
                            schedule=schedule, after_ingest=after_ingest, window=window,
                            model=model, config=config)
        config = dict(config or {})
        # an after-ingest monitor starts after the newest ingest: read that one event only
        last_event = self.store.list_events(kind="dataset.version_created", newest_first=True,
                                            limit=1)  # fmt: skip
        self.store.add_monitor(
            name=name, dataset=dataset, endpoint=endpoint, variant=variant, baseline=baseline,
            model=model, schedule=schedule, after_ingest=after_ingest,
            window=window or (None if dataset else "1h"), config=config,
            last_event_id=last_event[0]["id"] if last_event else 0,
            last_scheduled_at=datetime.now(UTC) if schedule else None,
        )  # fmt: skip
        return self.monitor(name)

    def _check_monitor(self, *, baseline, dataset, endpoint, schedule, after_ingest, window,
                       model, config, variant=None) -> None:
        """What :meth:`create_monitor` and :meth:`update_monitor` refuse."""
        config = config or {}
        if bool(dataset) == bool(endpoint):
            raise InvalidInput(
                "a monitor watches either a dataset or an endpoint",
                hint="pass exactly one of --dataset DS or --endpoint EP",
            )
        if after_ingest and not dataset:
            raise InvalidInput("--after-ingest applies to dataset monitors",
                               hint="schedule endpoint monitors with --schedule CRON")
        if schedule:
            from croniter import croniter

            if not croniter.is_valid(schedule):
                raise InvalidInput(f"invalid cron schedule {schedule!r}",
                                   hint="use five fields, e.g. '0 * * * *' for every hour")
        if window:
            M.parse_window(window)
        if dataset:
            self.datasets.get(dataset)  # it must exist
        M.exclude_columns(self.baselines.load(baseline), config.get("exclude"))  # they must exist
        if "check" in config:
            from modelloop.quality.checks import CheckConfig

            CheckConfig.from_dict(config["check"])
        if model:
            M._model_facts(self.store, model)
        if config.get("bias"):
            from modelloop.monitoring.bias_drift import check_config

            if not endpoint:
                raise InvalidInput("bias drift watches an endpoint's labelled traffic",
                                   hint="give --endpoint EP (labels: monitor labels)")  # fmt: skip
            check_config(config["bias"])
        if config.get("attribution"):
            from modelloop.monitoring.attribution_drift import check_config as check_attribution

            if not endpoint or not model:
                raise InvalidInput("attribution drift explains an endpoint's traffic with its model",
                                   hint="give --endpoint EP and --model M@V")  # fmt: skip
            check_attribution(config["attribution"])

    def monitor(self, name: str) -> dict:
        found = self.store.get_monitor(name)
        if found is None:
            known = [m["name"] for m in self.store.list_monitors()]
            raise NotFound(f"no monitor named {name!r}",
                           hint=f"known monitors: {', '.join(known)}" if known else
                           "create one with 'modelloop monitor create NAME ...'")  # fmt: skip
        return found

    def monitors(self) -> list[dict]:
        return self.store.list_monitors()

    def update_monitor(self, name: str, **fields) -> dict:
        """Change a monitor's fields (those of :meth:`create_monitor`), checked as there, in
        place: its runs, schedule slot and event-log position are kept (``modelloop loop
        apply`` updates the monitors a loop declares this way)."""
        current = self.monitor(name)
        unknown = set(fields) - set(_MONITOR_FIELDS)
        if unknown:
            raise InvalidInput(f"a monitor has no field(s) {', '.join(sorted(unknown))}")
        merged = {k: current.get(k) for k in _MONITOR_FIELDS} | fields
        self._check_monitor(**merged)
        merged["config"] = dict(merged["config"] or {})
        if merged["schedule"] and not current.get("schedule"):
            merged["last_scheduled_at"] = datetime.now(UTC)
        self.store.update_monitor(name, **merged)
        return self.monitor(name)

    def delete_monitor(self, name: str) -> None:
        self.monitor(name)
        self.store.delete_monitor(name)

    def run(self, name: str, *, dataset_ref: str | None = None, window_start=None,
            window_end=None, evaluate_alarms: bool = True) -> dict:  # fmt: skip
        """Run a monitor now as a tracked job; returns the run record (with its alarms)."""
        from modelloop.data.refs import parse_time

        mon = self.monitor(name)
        spec = {
            "monitor": name,
            "dataset_ref": dataset_ref,
            "window_start": parse_time(window_start).isoformat() if window_start else None,
            "window_end": parse_time(window_end).isoformat() if window_end else None,
        }
        inputs = [{"dataset": dataset_ref or f"{mon['dataset']}@latest"}] if mon["dataset"] else \
            [{"endpoint": mon["endpoint"], "variant": mon.get("variant")}]  # fmt: skip
        job = self.jobs.run("monitor", spec, name=name, inputs=inputs)
        run = self.run_record(job["outputs"]["monitor_run"])
        if evaluate_alarms:
            # at the time its points carry (the window's end: the job's start when not given),
            # not after the job: a run across a period boundary would find its points missing
            at = M._time(run["window_end"]) if window_end is None else None
            run["alarms"] = self.alarms.evaluate(at=at)
        return run

    def runs(self, monitor: str | None = None, limit: int | None = 50) -> list[dict]:
        if monitor:
            self.monitor(monitor)
        return self.store.list_monitor_runs(monitor, limit)

    def run_record(self, run_id: int | str) -> dict:
        rid = parse_id(str(run_id).lstrip("#"), "monitor run")
        found = self.store.get_monitor_run(rid)
        if found is None:
            raise NotFound(f"no monitor run {rid}", hint="see 'modelloop monitor show NAME'")
        return found

    def run_report(self, run_id: int | str) -> dict:
        run = self.run_record(run_id)
        report = json.loads(self.artifacts.read_bytes(run["report_digest"]))
        history = self.store.list_monitor_runs(run["monitor"], 200)
        report["history"] = [
            {"id": r["id"], "time": r["window_end"] or r["created_at"], "n_rows": r["n_rows"],
             "n_violations": r["n_violations"], "status": r["status"],
             "quality": (r["summary"] or {}).get("quality", {})}
            for r in reversed(history) if r["id"] <= run["id"]
        ]  # fmt: skip
        report["run"] = run
        return report

    def write_report(self, run_id: int | str, path) -> str:
        from pathlib import Path

        from modelloop.monitoring.report import render_html

        report = self.run_report(run_id)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(render_html(report))
        tmp.replace(path)
        return str(path)

    # -- labels -------------------------------------------------------------------------------
    def add_labels(self, endpoint: str, path, *, id_column: str = "inference_id",
                   label_column: str = "label") -> dict:  # fmt: skip
        """Store ground truth for an endpoint's predictions from a CSV or JSON Lines file; counts
        labels whose inference id matches no captured prediction (they are kept: the capture may
        still be flushing)."""
        return self.labels.add_file(endpoint, path, id_column=id_column, label_column=label_column)

    def add_label_records(self, endpoint: str, records: list[dict], *,
                          id_column: str = "inference_id", label_column: str = "label") -> dict:
        """The same as :meth:`add_labels`, for labels already parsed (the endpoint server's
        ``POST /endpoints/NAME/feedback``)."""
        return self.labels.add_records(endpoint, records, id_column=id_column,
                                       label_column=label_column)

    # -- the scheduler ------------------------------------------------------------------------
    def due(self, now: datetime | None = None, *, ingested: str | None = None
            ) -> list[tuple[str, dict]]:  # fmt: skip
        """(monitor, run arguments) for every run due now: cron slots passed since the last one
        (one run per monitor for however many were missed), and new versions of watched
        datasets found in the event log (each run on the rows its version added). Each is claimed
        with a conditional update, so two schedulers (or a scheduler and an ingest) never start
        the same run. ``ingested``: only the after-ingest monitors of this dataset."""
        from croniter import croniter

        now = now or datetime.now(UTC)
        out = []
        for mon in self.store.list_monitors():
            if not mon["enabled"] or (ingested and mon["dataset"] != ingested):
                continue
            if mon["schedule"] and not ingested:
                last = mon["last_scheduled_at"] or mon["created_at"]
                slot = None
                it = croniter(mon["schedule"], last)
                while (nxt := it.get_next(datetime)) <= now:
                    slot = nxt
                if slot is not None and self.store.update_monitor(
                    mon["name"], only_if={"last_scheduled_at": mon["last_scheduled_at"]},
                    last_scheduled_at=slot,
                ):  # fmt: skip
                    out.append((mon["name"], {"window_end": slot.isoformat()}))
            if mon["after_ingest"]:
                events = self.store.list_events(
                    after_id=mon["last_event_id"], kind="dataset.version_created"
                )
                new = [e for e in events if e["payload"].get("dataset") == mon["dataset"]]
                if events and self.store.update_monitor(
                    mon["name"], only_if={"last_event_id": mon["last_event_id"]},
                    last_event_id=events[-1]["id"],
                ):  # fmt: skip
                    for e in new:
                        out.append((mon["name"], {"dataset_ref": added_rows_ref(e)}))
        return out

    def tick(self, now: datetime | None = None, on_run=None, *, ingested: str | None = None
             ) -> dict:  # fmt: skip
        """One scheduler pass: run what is due, then evaluate every alarm. ``on_run`` is called
        with each run's outcome: its run record, or ``{"monitor", "status": "failed", "error",
        "job_id"}`` for a run that failed (never an earlier run in its place)."""
        runs, failures = [], []
        for name, kwargs in self.due(now, ingested=ingested):
            try:
                outcome = self.run(name, evaluate_alarms=False, **kwargs)
                runs.append(outcome)
            except Exception as exc:  # one broken monitor must not stop the others
                job = getattr(exc, "job", None) or {}
                outcome = {"monitor": name, "status": MonitorRunStatus.FAILED, "error": str(exc),
                           "job_id": job.get("id"), **kwargs}  # fmt: skip
                failures.append(outcome)
            if on_run:
                on_run(outcome)
        alarms = self.alarms.evaluate(at=now) if runs or failures or not ingested else []
        return {"runs": runs, "failures": failures, "alarms": alarms}

    def after_ingest(self, dataset: str) -> dict:
        """Run the after-ingest monitors of ``dataset`` on the versions not yet checked (the
        one just ingested), then evaluate alarms; what the workspace calls after each ingest."""
        return self.tick(ingested=dataset)

    def scheduler(self, *, interval: float = 30.0, max_ticks: int | None = None, on_tick=None):
        """Tick every ``interval`` seconds (forever, or ``max_ticks`` times)."""
        ticks = 0
        while max_ticks is None or ticks < max_ticks:
            result = self.tick()
            ticks += 1
            if on_tick:
                on_tick(result)
            if max_ticks is None or ticks < max_ticks:
                time.sleep(interval)


def added_rows_ref(event: dict) -> str:
    """``NAME@A..B`` for the rows the version of a ``dataset.version_created`` event added."""
    payload = event.get("payload") or {}
    name, version = payload.get("dataset"), payload.get("version")
    if not name or not isinstance(version, int):
        return event["subject"]
    return f"{name}@{version}" if version <= 1 else f"{name}@{version - 1}..{version}"


def _read_data(datasets, data: str):
    """A dataset version's batches, or a data file (CSV, Parquet, JSON Lines) as a frame."""
    import os

    if os.path.exists(data):
        import pandas as pd

        lower = data.lower()
        try:
            if lower.endswith((".parquet", ".pq")):
                return pd.read_parquet(data)
            if lower.endswith((".jsonl", ".ndjson")):
                return pd.read_json(data, lines=True)
            return pd.read_csv(data)
        except (ValueError, OSError) as exc:
            raise InvalidInput(f"cannot read {data}: {exc}") from None
    return datasets.iter_batches(datasets.get(data).ref)


@register_job_kind("monitor")
def run_monitor_job(ctx, spec: dict) -> None:
    """The ``monitor`` job kind: one run, its report stored as an artifact and a run row."""

    store = ctx.store
    mon = store.get_monitor(spec["monitor"])
    if mon is None:
        raise NotFound(f"no monitor named {spec['monitor']!r}")
    report = M.execute(store, ctx.artifacts, ctx.datasets, mon, spec,
                       log=lambda s: ctx.recorder.log_text(s),
                       load_model=ctx.services.get("load_model"))  # fmt: skip
    points = report.pop("points")
    report["metric_points"] = M.points_json(points)
    report["job_id"] = ctx.job_id
    blob = ctx.artifacts.put_bytes(M.dumps(report))
    store.put_metric_points(points)
    summary = dict(report["summary"])
    if "quality" in report:
        summary["quality"] = report["quality"]["metrics"]
    run_id = store.add_monitor_run(
        monitor=mon["name"], job_id=ctx.job_id, status=report["status"], data=report["data"],
        window_start=M._time(report["window_start"]), window_end=M._time(report["window_end"]),
        n_rows=report["n_rows"], n_violations=summary.get("n_violations", 0), summary=summary,
        report_digest=blob.digest,
    )  # fmt: skip
    ctx.store.add_job_artifact(ctx.job_id, "report.json", blob.digest, blob.size)
    ctx.recorder.set_output("monitor_run", run_id)
    ctx.recorder.set_output("report", "report.json")
    ctx.recorder.log_metrics({
        k: float(v) for k, v in summary.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    })  # fmt: skip
