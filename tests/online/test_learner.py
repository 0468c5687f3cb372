"""The learner: prequential metrics equal River's own, checkpoints resume exactly, bad events
are counted, the guard reverts a poisoned model and raises its alarm."""

from __future__ import annotations

import itertools

import pytest
from river import datasets, evaluate, metrics

from modelloop.online import Intake, load_published
from modelloop.online.guard import GuardConfig
from modelloop.online.learner import Learner
from modelloop.online.models import build_model
from modelloop.online.scoring import predictor
from modelloop.store import open_store
from modelloop.telemetry.alarms import Alarms
from modelloop.telemetry.series import MetricSeries

SPEC = "preprocessing.StandardScaler|linear_model.LogisticRegression"


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/meta.db")
    yield store
    store.close()


def _append(store, endpoint, rows):
    intake = Intake(store)
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        got = intake.append(endpoint, [{"features": x, "label": y} for x, y in chunk])
        assert not got["rejected"]


class _LateAlarms(Alarms):
    """Alarms whose clock has moved on a whole period by the time an evaluation asks for "now":
    a revert that picks among its snapshots can take seconds, and a breach written just before a
    period boundary was then evaluated in the next period, where it is missing (the alarm stayed
    INSUFFICIENT_DATA on a loaded machine)."""

    def evaluate(self, name=None, *, at=None):
        from datetime import UTC, datetime, timedelta

        return super().evaluate(name, at=at or datetime.now(UTC) + timedelta(seconds=60))


def _drain(learner):
    while learner.step():
        pass


@pytest.mark.parametrize(
    ("spec", "metric"),
    [
        (SPEC, "Accuracy"),
        (SPEC, "LogLoss"),
        ("tree.HoeffdingAdaptiveTreeClassifier(seed=7)", "F1"),
    ],
)
def test_prequential_metrics_equal_rivers_progressive_val_score(store, spec, metric):
    rows = list(datasets.Phishing())
    _append(store, "phish", rows)
    expected = evaluate.progressive_val_score(rows, build_model(spec), getattr(metrics, metric)())
    # The window metrics (series points) are those of River's metric over each window's events.
    model, windows, window = build_model(spec), [], getattr(metrics, metric)()
    predict = predictor(model, window)
    for n, (x, y) in enumerate(rows, 1):
        y_pred = predict(model, x)
        if y_pred is not None and y_pred != {}:
            window.update(y, y_pred)
        model.learn_one(x, y)
        if n % 97 == 0:
            windows.append(window.get())
            window = window.clone()
    points = []
    series = type("Series", (), {"put_many": lambda self, batch: points.extend(batch)})()
    kwargs = dict(spec=spec, metric=metric, batch=300, guard=GuardConfig(window=97),
                  series=series)  # fmt: skip
    # A learner stopped and restarted from its checkpoint halfway gives the same figure.
    first = Learner(store, "phish", "online", **kwargs)
    first.step(617)
    first.save()
    second = Learner(store, "phish", "online", **kwargs)
    assert second.applied_seq == 617
    _drain(second)
    second.save()
    got = second.metrics()
    assert got["events"] == len(rows) == second.applied_seq
    assert got["value"] == expected.get()  # to the last digit
    assert [value for _, _, _, value in points] == windows  # (Accuracy's kept by difference)
    revision, model = load_published(store, None, "phish", "online")
    x = rows[0][0]
    assert model.predict_proba_one(x) == second.model.predict_proba_one(x)


def test_bad_events_are_counted_and_never_stop_the_learner(store):
    Intake(store).append(
        "fraud",
        [
            {"features": {"a": 1.0}, "label": True},
            {"features": {"a": 2.0}, "label": "not a bool"},  # the model cannot learn this label
            {"features": {"a": 3.0}, "label": False},
        ],
    )
    learner = Learner(store, "fraud", "online", spec=SPEC)
    assert learner.step() == 3
    assert learner.applied_seq == 3 and learner.metrics()["bad"] == 1
    assert "seq 2" in learner.info()["last_error"]
    assert store.online_stream("fraud")["rejected"] == 1


def _stream(n, seed, flip=False):
    from river.datasets import synth

    gen = synth.Agrawal(classification_function=0, seed=seed)
    return [(x, (not y) if flip else y) for x, y in itertools.islice(gen, n)]


def test_the_guard_reverts_a_model_fed_flipped_labels_and_raises_its_alarm(store):
    spec = "preprocessing.StandardScaler|linear_model.LogisticRegression"
    champion = build_model(spec)
    for x, y in _stream(3000, seed=1):
        champion.learn_one(x, y)
    series = MetricSeries(store)
    alarms = _LateAlarms(store, series)
    learner = Learner(
        store,
        "fraud",
        "online",
        spec=spec,
        champion=champion,
        series=series,
        alarms=alarms,
        guard=GuardConfig(window=250, margin=0.05, keep=16),
    )
    clean, poisoned, after = _stream(2000, 2), _stream(1500, 3, flip=True), _stream(1000, 4)
    _append(store, "fraud", clean)
    _drain(learner)
    assert learner.info()["reverts"] == 0
    good = learner.metrics()
    _append(store, "fraud", poisoned + after)
    _drain(learner)
    info = learner.info()
    assert info["reverts"] >= 1
    revert = next(h for h in info["history"] if h["kind"] == "revert")
    assert revert["seq"] > len(clean) + len(poisoned)  # fired once clean labels came back
    assert "reverted to the snapshot after seq" in revert["reason"]
    snap_seq = int(revert["reason"].rsplit("seq ", 1)[1].split(":")[0].split()[0])
    # A snapshot from before most of the poisoned stretch, not below the champion on clean data.
    assert snap_seq < len(clean) + len(poisoned) / 2, info["history"]
    assert revert["tried"][-1] >= revert["champion"] - 0.05 > revert["online"]
    assert alarms.get(learner.alarm_name)["state"] == "ALARM"
    history = alarms.history(learner.alarm_name)
    assert any("below the champion" in h["reason"] for h in history)
    assert good["value"] > 0.6
    assert series.points("online.guard.breach", learner.dims)


def test_a_warm_start_learns_a_training_set_first_and_is_in_the_lineage(store):
    import pandas as pd

    rows = list(datasets.Phishing())
    frame = pd.DataFrame([{**x, "label": y} for x, y in rows[:600]])
    learner = Learner(store, "phish", "online", spec=SPEC)
    assert learner.warm_start_frame(frame, "label", source="phish@1") == 600
    reference = build_model(SPEC)
    for x, y in rows[:600]:
        reference.learn_one(x, y)
    x = rows[700][0]
    assert learner.model.predict_proba_one(x) == reference.predict_proba_one(x)
    assert learner.metrics()["events"] == 0  # training, not prequential evaluation
    info = store.get_online_model("phish", "online")["info"]
    assert info["warm"] == [{"source": "phish@1", "rows": 600, "bad": 0}]


def test_adwin_on_the_error_stream_reseeds_the_model_after_a_concept_switch(store):
    from river.datasets import synth

    def sea(seed, flip):
        return [
            ({f"x{k}": v for k, v in x.items()}, y != flip)
            for x, y in itertools.islice(synth.SEA(variant=0, seed=seed), 3000)
        ]

    before, after = sea(1, False), sea(2, True)
    _append(store, "sea", before + after)
    learner = Learner(
        store, "sea", "online", spec=SPEC, guard=GuardConfig(window=200, drift="reseed")
    )
    _drain(learner)
    info = learner.info()
    assert info["drifts"] >= 1
    drift = next(h for h in info["history"] if h["kind"] == "drift")
    assert drift["seq"] > 3000 and drift["action"] == "reseed"
    assert info["ranges"][0][0] > 3000 - 200  # the model learned only from around the switch on


def test_a_failing_store_is_retried_by_a_running_learner(store, monkeypatch):
    import threading

    import sqlalchemy as sa

    _append(store, "fraud", _stream(300, seed=5))
    learner = Learner(store, "fraud", "online", spec=SPEC, publish_interval=0)
    real, calls = store.read_online_batch, []

    def flaky(*args):
        calls.append(1)
        if len(calls) <= 2:
            raise sa.exc.OperationalError("select", {}, Exception("database is locked"))
        return real(*args)

    monkeypatch.setattr(store, "read_online_batch", flaky)
    stop = threading.Event()
    thread = threading.Thread(target=learner.run, args=(stop, 0.01))
    thread.start()
    try:
        from foreground import wait_for

        wait_for(
            lambda: (
                store.get_online_model("fraud", "online") is not None
                and store.get_online_model("fraud", "online")["applied_seq"] == 300
            )
        )
    finally:
        stop.set()
        thread.join(30)
    assert "database is locked" in learner.info()["last_error"]


def test_a_learner_that_lost_its_lease_cannot_overwrite_its_successors_checkpoint(store):
    import threading

    from modelloop.errors import Conflict

    _append(store, "fraud", _stream(60, seed=3))
    old = Learner(store, "fraud", "online", spec=SPEC, term=1, batch=30)
    old.step()
    old.save()
    new = Learner(store, "fraud", "online", spec=SPEC, term=2)  # took the lease over
    _drain(new)
    new.save()
    old.step()  # paused while its lease ran out, it goes on where it was
    with pytest.raises(Conflict):
        old.save()
    with pytest.raises(Conflict):  # run ends on it too (its caller stands down)
        old.run(threading.Event())
    assert store.get_online_model("fraud", "online")["applied_seq"] == 60
    assert new.save() > 0


def test_a_fresh_model_next_to_a_good_champion_warms_up_before_the_guard_arms(store):
    """The default guard, a tree learning from nothing next to a champion that learned the rule:
    its first windows are well below the champion, yet reverting it then would only start it
    over (at every window: it would never learn past one). It is not reverted while it catches
    up, and the guard arms at the first window within the margin."""
    spec = "tree.HoeffdingTreeClassifier(grace_period=200)"
    champion = build_model(spec)
    for x, y in _stream(2000, seed=1):
        champion.learn_one(x, y)
    learner = Learner(store, "loans", "online", spec=spec, champion=champion,
                      guard=GuardConfig(window=200))  # fmt: skip
    _append(store, "loans", _stream(2400, seed=3))
    learner.step(200)  # one window: far below the champion, warming up
    assert learner.info()["guard"] == "warming up" and learner.info()["reverts"] == 0
    _drain(learner)
    info = learner.info()
    assert info["reverts"] == 0 and info["guard"] == "armed", info["history"]
    armed = next(h for h in info["history"] if h["kind"] == "armed")
    assert "within" in armed["reason"] and 200 < armed["seq"] < 2400
    assert learner.metrics()["value"] > 0.85
    # with no warm-up (0 events) the guard is armed from the first window, and reverts there
    eager = Learner(store, "loans0", "online", spec=spec, champion=champion,
                    guard=GuardConfig(window=200, warmup=0))  # fmt: skip
    _append(store, "loans0", _stream(200, seed=3))
    _drain(eager)
    assert eager.info()["reverts"] == 1 and eager.info()["guard"] == "armed"
