"""The learner: an online variant's model learning its endpoint's labelled events, in seq order.

Each event is predicted, scored, then learned (prequential evaluation, exactly as River's
``evaluate.progressive_val_score``), and scored by the frozen champion too. Every ``window``
events the window's metrics become metric series points (``online.<metric>`` and
``online.champion.<metric>``, dimensions endpoint and variant) and the guard checks them.

Exactly once: the model, its metrics and guard state are saved with the last applied seq in one
row (:meth:`OnlineStore.save_online_model`), which is also what serving loads. A restarted
learner loads that row and goes on from the event after it: no event is learned twice, and none
is lost, since intake made them durable before acknowledging them. Saves happen every
``publish_interval`` seconds while events arrive (so serving sees an update within a second) and
whenever the guard reverts.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable

from modelloop import _faults
from modelloop.errors import InvalidInput
from modelloop.online import scoring
from modelloop.online.guard import GuardConfig, arming, below, pick_snapshot
from modelloop.online.models import SklearnOnline, build_model
from modelloop.online.publish import current_revision, dumps, load_published, loads
from modelloop.online.scoring import is_classifier, make_metric, predictor
from modelloop.online.sources import IntakeSource
from modelloop.store.interfaces.online import EventBatch

__all__ = ["Learner", "current_revision", "load_published"]

#: Most events one step reads and learns.
MAX_STEP = 10_000
#: Guard and drift records kept in the learner's info.
HISTORY = 20
#: What a classifier's ``predict_proba_one`` returns when it has seen no class yet (skipped, as
#: River's progressive validation skips it); built once, not per event.
EMPTY: dict = {}


def _extend(ranges: list, seq: int, most: int = 100) -> None:
    """Add ``seq`` to the ranges of events the model learned from (its lineage)."""
    if ranges and ranges[-1][1] == seq - 1:
        ranges[-1][1] = seq
    else:
        ranges.append([seq, seq])
        if len(ranges) > most:  # many reverts: the oldest two become one span
            ranges[:2] = [[ranges[0][0], ranges[1][1]]]


def _extend_run(ranges: list, seqs: list, start: int, end: int) -> None:
    """:func:`_extend` with each of ``seqs[start:end]``; a run of consecutive seqs (intake's
    always are) at once."""
    first, last = seqs[start], seqs[end - 1]
    if last - first != end - start - 1:  # gaps (the event stream's ids): one by one
        for seq in seqs[start:end]:
            _extend(ranges, seq)
        return
    _extend(ranges, first)
    ranges[-1][1] = last


class Learner:
    """One online variant's learner. ``champion`` is the frozen model to beat (an object with
    ``predict_one``/``predict_proba_one``, or a callable ``(feature dicts, proba=False)`` returning
    their labels, or with ``proba`` their ``{class: probability}`` dicts), ``series`` a telemetry ``MetricSeries`` and ``alarms`` its
    ``Alarms`` (both optional), ``source`` where events come from (``sources.IntakeSource``, the
    default, or ``sources.StreamSource`` on the event stream). Not thread-safe: one learner per
    variant (serving holds a lease)."""

    def __init__(self, store, endpoint: str, variant: str, *, spec: str,
                 categorical: Iterable[str] = (), metric: str | None = None,
                 guard: GuardConfig | None = None, champion=None, series=None, alarms=None,
                 publish_interval: float = 0.2, batch: int = 1000, registry=None,
                 snapshot_model: str | None = None, snapshot_every: int | None = None,
                 schema=None, source=None, term: int | None = None):  # fmt: skip
        if not 1 <= batch <= MAX_STEP or not 0 <= publish_interval <= 3600:
            raise InvalidInput(f"a learner reads 1 to {MAX_STEP} events a step and publishes "
                               "at most every hour")  # fmt: skip
        self.store, self.endpoint, self.variant = store, endpoint, variant
        self.spec, self.categorical = spec, sorted(categorical)
        self.guard = guard or GuardConfig()
        self.champion, self.series, self.alarms = champion, series, alarms
        self.publish_interval, self.batch = publish_interval, batch
        self.alarm_name = f"online-guard-{endpoint}-{variant}"[:128]
        self.dims = {"endpoint": endpoint, "variant": variant}
        self._metric_name = metric
        self.source = source or IntakeSource(store)
        # Every ``snapshot_every`` events a checkpoint becomes a version of ``snapshot_model``.
        self.registry, self.snapshot_model, self.schema = registry, snapshot_model, schema
        self.snapshot_every = snapshot_every if registry and snapshot_model else None
        # The lease term this learner holds (a fencing token): its saves are refused (Conflict)
        # once a learner of a higher term has saved, so a learner that lost its lease without
        # noticing cannot overwrite its successor's checkpoint.
        self.term = term
        self.state = self._load()
        self._blank = scoring.Blank(self.state["metric"])  # fresh window metrics
        self._dirty = False
        self._last_save = time.monotonic()

    # -- state -------------------------------------------------------------------------------
    def _fresh_model(self):
        return build_model(self.spec, categorical=self.categorical)

    def _fresh_state(self) -> dict:
        model = self._fresh_model()
        name = self._metric_name or ("Accuracy" if is_classifier(model) else "MAE")
        metric = make_metric(name)
        if not metric.works_with(model) and not isinstance(model, SklearnOnline):
            raise InvalidInput(f"metric {name} does not fit the model {self.spec!r}")
        return {"spec": self.spec, "model": model, "metric": metric, "champion": metric.clone(),
                "window": metric.clone(), "window_champion": metric.clone(), "recent": [],
                "win_n": 0, "win_champion_n": 0,
                "snapshots": [], "breaches": 0, "detector": self._detector(), "applied_seq": 0,
                "events": 0, "bad": 0, "last_error": None, "history": [], "reverts": 0,
                "drifts": 0, "ranges": [], "armed": self.guard.warmup == 0,
                "fresh_at": 0}  # fmt: skip

    def _detector(self):
        if self.guard.drift is None:
            return None
        from river import drift

        return drift.ADWIN()

    def _load(self) -> dict:
        row = self.store.get_online_model(self.endpoint, self.variant, state=True)
        if row is not None and row.get("state"):
            # Written by this learner's own code into the metadata store (see publish.py).
            state = loads(row["state"])
            if state.get("spec") == self.spec:
                state.setdefault("armed", True)  # saved before warm-ups: the guard was armed
                return state
        return self._fresh_state()

    @property
    def model(self):
        return self.state["model"]

    @property
    def applied_seq(self) -> int:
        return self.state["applied_seq"]

    def metrics(self) -> dict:
        """Cumulative prequential metrics: ``{"events", "metric", "value", "champion"}``."""
        s = self.state
        return {"events": s["events"], "metric": type(s["metric"]).__name__,
                "value": s["metric"].get(), "champion": s["champion"].get() if self.champion
                is not None else None, "bad": s["bad"], "applied_seq": s["applied_seq"]}  # fmt: skip

    def info(self) -> dict:
        return {**self.metrics(), "spec": self.spec, "ranges": self.state["ranges"],
                "warm": self.state.get("warm", []), "reverts": self.state["reverts"],
                "guard": None if self.champion is None else
                ("armed" if self.state["armed"] else "warming up"),
                "drifts": self.state["drifts"], "last_error": self.state["last_error"],
                "history": self.state["history"]}  # fmt: skip

    def save(self) -> int:
        """Checkpoint and publish: model, metrics and guard state with the last applied seq."""
        s = self.state
        revision = self.store.save_online_model(
            self.endpoint, self.variant, applied_seq=s["applied_seq"], model=dumps(s["model"]),
            state=dumps(s), info=self.info(), term=self.term)  # fmt: skip
        self._dirty = False
        self._last_save = time.monotonic()
        self.source.saved(s["applied_seq"])
        if self.snapshot_every and s["events"] - s.get("registered_at", 0) >= self.snapshot_every:
            self.register_snapshot()
        return revision

    def register_snapshot(self, description: str | None = None) -> dict | None:
        """Register the last checkpoint as a version of ``snapshot_model`` (a failure is
        recorded in ``last_error``, never raised: learning goes on)."""
        from modelloop.online.snapshots import register_snapshot

        try:
            version = register_snapshot(self.registry, self.store, self.endpoint, self.variant,
                                        self.snapshot_model, schema=self.schema,
                                        description=description)  # fmt: skip
        except Exception as exc:
            self.state["last_error"] = f"snapshot: {type(exc).__name__}: {exc}"[:300]
            return None
        self.state["registered_at"] = self.state["events"]
        self._record({"kind": "snapshot", "seq": self.applied_seq, "version": version.get("ref")})
        return version

    # -- learning ----------------------------------------------------------------------------
    def _champion_predictions(self, xs: list[dict], proba: bool) -> list:
        champion = self.champion
        if champion is None:
            return [None] * len(xs)
        if hasattr(champion, "predict_one"):
            one = champion.predict_proba_one if proba else champion.predict_one
            return [one(x) for x in xs]
        return list(champion(xs, proba=proba))  # a callable takes ``proba`` as River's do

    def step(self, max_events: int | None = None) -> int:
        """Learn the events after the last applied one (at most ``max_events``); how many."""
        limit = min(max_events or self.batch, MAX_STEP)
        events = self.source.read(self.endpoint, self.applied_seq, limit)
        if events:
            self.learn(events)
            _faults.checkpoint("online.learned")  # learned, not yet saved
        if self._dirty and time.monotonic() - self._last_save >= self.publish_interval:
            self.save()
        return len(events)

    def learn(self, events: EventBatch) -> None:
        """Predict, score, learn each event (they must follow the last applied seq)."""
        if self.champion is None and self.state["detector"] is None and self.guard.drift is None:
            self._learn_lean(events)
        else:
            self._learn_each(events)
        self._dirty = True

    def _learn_lean(self, events: EventBatch) -> None:
        """:meth:`_learn_each` without a champion or a drift detector, which is all that needs
        each event's bookkeeping: the counters, the applied seq and the lineage are brought up
        to date once per run of events up to a window's end (where the window is closed, as
        the per-event loop would), not per event. The same predictions, metrics and model."""
        s, size, start, bad = self.state, self.guard.window, 0, 0
        seqs = events.seqs
        while start < len(seqs):
            model, metric, window = s["model"], s["metric"], s["window"]
            predict, learn_one = predictor(model, metric), type(model).learn_one
            # The window's metric: its own update per event, or the cumulative one's growth
            # over this run of events, added once at its end (scoring.py; the same numbers).
            since = scoring.mark(metric.cm) if scoring.by_difference(metric) else None
            update, update_window = metric.update, window.update if since is None else None
            end = min(len(seqs), start + max(1, size - s["win_n"]))
            learned = end - start
            features = events.features[start:end]
            for x, y in zip(features, events.labels[start:end], strict=True):
                try:
                    y_pred = predict(model, x)
                    if y_pred is not None and y_pred != EMPTY:
                        update(y, y_pred)
                        if update_window is not None:
                            update_window(y, y_pred)
                    learn_one(model, x, y)
                except Exception as exc:  # counted, as in _learn_each
                    bad, learned = bad + 1, learned - 1
                    seq = seqs[start + next(i for i, f in enumerate(features) if f is x)]
                    s["last_error"] = f"seq {seq}: {type(exc).__name__}: {exc}"[:300]
            if since is not None:
                scoring.add_since(window.cm, metric.cm, since)
            s["events"] += learned
            s["win_n"] += learned
            s["applied_seq"] = seqs[end - 1]
            _extend_run(s["ranges"], seqs, start, end)
            if s["win_n"] >= size:
                self._close_window(s["applied_seq"])
            start = end
        if bad:
            s["bad"] += bad
            self.store.count_online_rejected(self.endpoint, bad)

    def _learn_each(self, events: EventBatch) -> None:
        s = self.state
        model, metric, window = s["model"], s["metric"], s["window"]
        predict = predictor(model, metric)
        champ = self._champion_predictions(events.features, proba=not metric.requires_labels)
        keep_recent = self.champion is not None or self.guard.drift == "reseed"
        bad = 0
        for seq, x, y, y_champ in zip(events.seqs, events.features, events.labels, champ,
                                      strict=True):  # fmt: skip
            try:
                y_pred = predict(model, x)
                if y_pred is not None and y_pred != {}:
                    metric.update(y, y_pred)
                    window.update(y, y_pred)
                model.learn_one(x, y)
            except Exception as exc:  # a user's event must never stop the learner: counted
                bad += 1
                s["last_error"] = f"seq {seq}: {type(exc).__name__}: {exc}"[:300]
                s["applied_seq"] = seq
                _extend(s["ranges"], seq)
                continue
            if y_champ is not None and y_champ != {}:
                s["champion"].update(y, y_champ)
                s["window_champion"].update(y, y_champ)
                s["win_champion_n"] += 1
            if keep_recent:
                s["recent"].append((x, y))
            if s["detector"] is not None and y_pred is not None and y_pred != {}:
                model = self._watch_drift(x, y, y_pred) or model
            s["events"] += 1
            s["win_n"] += 1
            s["applied_seq"] = seq
            _extend(s["ranges"], seq)
            if s["win_n"] >= self.guard.window:
                self._close_window(seq)
                model, window = s["model"], s["window"]
                predict = predictor(model, metric)
        if bad:
            s["bad"] += bad
            self.store.count_online_rejected(self.endpoint, bad)

    def _watch_drift(self, x, y, y_pred):
        s = self.state
        if isinstance(y_pred, dict):
            y_pred = max(y_pred, key=y_pred.get)
        error = float(y_pred != y) if is_classifier(s["model"]) else abs(float(y_pred) - float(y))
        s["detector"].update(error)
        if not s["detector"].drift_detected:
            return None
        model = self._fresh_model()
        s["ranges"] = []
        if self.guard.drift == "reseed" and s["recent"]:
            for rx, ry in s["recent"]:
                model.learn_one(rx, ry)
            s["ranges"] = [[s["applied_seq"] - len(s["recent"]) + 1, s["applied_seq"]]]
        s["model"] = model
        self._started_over()
        s["drifts"] += 1
        self._record({"kind": "drift", "seq": s["applied_seq"], "action": self.guard.drift,
                      "reason": "ADWIN detected a change in the error stream"})  # fmt: skip
        return model

    def _started_over(self) -> None:
        """The model is a fresh one: the guard warms up again (guard.py)."""
        self.state["armed"], self.state["fresh_at"] = self.guard.warmup == 0, self.state["events"]

    def _record(self, entry: dict) -> None:
        entry["time"] = time.time()
        self.state["history"] = [*self.state["history"], entry][-HISTORY:]

    def _close_window(self, seq: int) -> None:
        s = self.state
        name = type(s["metric"]).__name__
        online, champion = s["window"].get(), s["window_champion"].get()
        has_champion = s["win_champion_n"] > 0
        fired = False
        bad = has_champion and below(online, champion, self.guard.margin,
                                     s["metric"].bigger_is_better)  # fmt: skip
        if has_champion and not s["armed"]:  # warming up: arms when it caught up, or at last
            why = arming(self.guard, bad, s["events"] - s.get("fresh_at", 0))
            if why is not None:
                s["armed"] = True
                self._record({"kind": "armed", "seq": seq, "reason": why})
        if bad and s["armed"]:
            s["breaches"] += 1
            fired = s["breaches"] >= self.guard.breaches
        else:
            s["breaches"] = 0
        points = [(f"online.{name}", online)]
        if has_champion:
            points += [(f"online.champion.{name}", champion), ("online.guard.breach", float(fired)),
                       ("online.guard.armed", float(s["armed"]))]
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        if self.series is not None:
            self.series.put_many([(metric, self.dims, now, value) for metric, value in points])
        if fired:
            self._revert(seq, online, champion, at=now)
        elif has_champion:  # snapshots are what a revert picks from; no champion, no revert
            snaps = s["snapshots"]
            snaps.append((seq, copy.deepcopy(s["model"]), [list(r) for r in s["ranges"]]))
            del snaps[: -self.guard.keep]
        s["window"], s["window_champion"] = self._blank(), self._blank()
        s["recent"], s["win_n"], s["win_champion_n"] = [], 0, 0

    def _revert(self, seq: int, online: float, champion: float, *, at=None) -> None:
        s = self.state
        metric = s["metric"]
        index, tried = pick_snapshot(s["snapshots"], s["recent"], champion, metric,
                                     self.guard.margin, predictor(s["model"], metric))  # fmt: skip
        if index is None:
            s["model"], s["ranges"] = self._fresh_model(), []
            self._started_over()
            to = "a fresh model (no kept snapshot was above the champion on this window)"
        else:
            snap_seq, snap, ranges = s["snapshots"][index]
            s["model"], s["ranges"] = copy.deepcopy(snap), [list(r) for r in ranges]
            del s["snapshots"][index + 1 :]
            to = f"the snapshot after seq {snap_seq}"
        name = type(metric).__name__
        reason = (f"online {name} {online:.4f} below the champion's {champion:.4f} by more than "
                  f"{self.guard.margin} over events up to seq {seq}: reverted to {to}")  # fmt: skip
        s["reverts"] += 1
        s["breaches"] = 0
        self._record({"kind": "revert", "seq": seq, "online": online, "champion": champion,
                      "tried": tried, "reason": reason})  # fmt: skip
        self._alarm(reason, at=at)
        self._dirty = True
        self.save()

    def _alarm(self, reason: str, *, at=None) -> None:
        """Raise the guard's alarm (on ``online.guard.breach``, made on first need), evaluated
        at ``at``, the time of the breach point: choosing a snapshot can take seconds, and an
        evaluation at "now" in the next period would not see the breach."""
        if self.alarms is None:
            return
        try:
            if self.alarms.store.get_alarm(self.alarm_name) is None:
                self.alarms.create(self.alarm_name, "online.guard.breach", threshold=0,
                                   comparison=">", dimensions=self.dims, statistic="max",
                                   period=60)  # fmt: skip
            self.alarms.evaluate(self.alarm_name, at=at)
            self.alarms.store.add_alarm_history(self.alarm_name, "guard", reason[:500],
                                                {"endpoint": self.endpoint,
                                                 "variant": self.variant})  # fmt: skip
        except Exception as exc:  # the alarm failing must not stop learning; it is recorded
            self.state["last_error"] = f"guard alarm: {type(exc).__name__}: {exc}"[:300]

    def restore(self, registry, ref: str) -> dict:
        """Roll the model back to a registered version (a snapshot, or any River version):
        learning goes on from the next event, the bad stretch is not learned again. The
        registry loads it only if it is trusted (a snapshot is, as its learner's)."""
        packaged = registry.load(ref)
        model = getattr(packaged, "model", packaged)
        if not hasattr(model, "learn_one"):
            raise InvalidInput(f"{ref} is not an online model (it has no learn_one)")
        version = registry.get(ref)
        lineage = (version.get("manifest") or {}).get("lineage", {}).get("online", {})
        s = self.state
        s["model"], s["ranges"] = model, [list(r) for r in lineage.get("events", [])]
        s["snapshots"] = []
        self._record({"kind": "restore", "seq": s["applied_seq"], "version": version["ref"]})
        self.save()
        return version

    def warm_start(self, rows: Iterable[tuple[dict, object]], *, source: str) -> int:
        """Learn a training set before the stream (hybrid: a batch model's data first), without
        scoring it (it is training, not prequential evaluation); ``source`` names it in the
        lineage (e.g. ``loans@3``). Saved at once; how many rows were learned."""
        model, n, bad = self.state["model"], 0, 0
        for x, y in rows:
            try:
                model.learn_one(x, y)
                n += 1
            except Exception as exc:  # a bad row is counted, as a bad event is
                bad += 1
                self.state["last_error"] = f"warm start: {type(exc).__name__}: {exc}"[:300]
        self.state.setdefault("warm", []).append({"source": source, "rows": n, "bad": bad})
        self._record({"kind": "warm_start", "seq": self.applied_seq, "source": source,
                      "rows": n, "bad": bad})  # fmt: skip
        self.save()
        return n

    def warm_start_frame(self, frame, target: str, *, source: str) -> int:
        """:meth:`warm_start` from a pandas DataFrame and its target column."""
        if target not in frame.columns:
            raise InvalidInput(f"the warm-start data has no target column {target!r}")
        labels = frame[target].tolist()
        features = frame.drop(columns=[target]).to_dict("records")
        return self.warm_start(zip(features, labels, strict=True), source=source)

    def run(self, stop: threading.Event, idle: float = 0.05,
            holding: Callable[[], bool] | None = None) -> int:  # fmt: skip
        """Learn until ``stop`` is set (or ``holding()`` turns false: the lease was lost),
        waiting ``idle`` s when no event is pending; how many events were learned. A failing
        store (a lost connection, a locked file) is retried with a growing pause, recorded in
        ``last_error``: what was learned but not saved is saved on a later step. A save refused
        because another learner took over (Conflict) ends the run by raising it."""
        pause, learned = idle, 0
        holds = holding or (lambda: True)
        while not stop.is_set() and holds():
            try:
                n = self.step()
                pause = idle
            except (InvalidInput, OSError) + _store_errors() as exc:
                self.state["last_error"] = f"step: {type(exc).__name__}: {exc}"[:300]
                stop.wait(pause)
                pause = min(pause * 2, 5.0)
                continue
            learned += n
            if not n:
                stop.wait(idle)
        if self._dirty and holds():
            self.save()  # a last checkpoint, so a restart replays nothing
        return learned


def _store_errors() -> tuple:
    import sqlalchemy as sa

    return (sa.exc.OperationalError, sa.exc.InterfaceError)
