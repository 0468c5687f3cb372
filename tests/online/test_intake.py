"""Intake: labelled events validated, stored durably in order, refused ones counted."""

from __future__ import annotations

import pytest

from modelloop.errors import InvalidInput
from modelloop.online import EventSchema, Intake, build_model, current_revision, load_published
from modelloop.online.publish import dumps
from modelloop.store import open_store


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/meta.db")
    yield store
    store.close()


def test_valid_events_are_stored_and_bad_ones_refused_and_counted(store):
    schema = EventSchema({"amount": "number", "country": "category"}, label="class")
    intake = Intake(store, lambda endpoint: schema)
    got = intake.append(
        "fraud",
        [
            {"features": {"amount": 3.5, "country": "fr"}, "label": True},
            {"features": {"amount": 1.0}, "label": False},  # missing
            {"features": {"amount": 1.0, "country": "de", "x": 1}, "label": 0},  # extra
            {"features": {"amount": "a lot", "country": "de"}, "label": 1},  # wrong type
            {"features": {"amount": 2, "country": "de"}, "label": [1]},  # wrong label type
            {"features": {"amount": 2, "country": "de"}, "label": "no", "inference_id": "r1"},
            "not an event",
        ],
    )
    assert got["accepted"] == 2 and got["seqs"] == [1, 2]
    assert [r["index"] for r in got["rejected"]] == [1, 2, 3, 4, 6]
    assert "missing features ['country']" in got["rejected"][0]["error"]
    assert "unknown features ['x']" in got["rejected"][1]["error"]
    assert intake.stats("fraud")["rejected"] == 5
    events = intake.read("fraud", 0, 10)
    assert [(e["seq"], e["label"], e["inference_id"]) for e in events] == [
        (1, True, None),
        (2, "no", "r1"),
    ]


def test_allocations_are_bounded(store):
    intake = Intake(store)
    with pytest.raises(InvalidInput, match="at most"):
        intake.append("fraud", [{"features": {}, "label": 1}] * 10_001)
    with pytest.raises(InvalidInput):
        intake.read("fraud", 0, 10_000_000)
    with pytest.raises(InvalidInput):
        intake.append("fraud", {"features": {}, "label": 1})


def test_published_model_round_trips(store):
    model = build_model("preprocessing.StandardScaler|linear_model.LogisticRegression")
    assert current_revision(store, "fraud", "online") == 0
    store.save_online_model(
        "fraud", "online", applied_seq=0, model=dumps(model), state=None, info={}
    )
    revision, loaded = load_published(store, None, "fraud", "online")
    assert revision == 1 == current_revision(store, "fraud", "online")
    assert loaded.predict_proba_one({"a": 1.0}) == model.predict_proba_one({"a": 1.0})


@pytest.mark.parametrize(
    "spec",
    [
        "os.system",
        "linear_model.Nope",
        "preprocessing.StandardScaler|",
        "tree.HoeffdingTreeClassifier(grace_period=__import__('os'))",
        "sklearn.svm.SVC",
        "linear_model.LogisticRegression(1)",
        "",
    ],
)
def test_a_spec_that_does_not_resolve_is_invalid_input(spec):
    with pytest.raises(InvalidInput):
        build_model(spec)


def test_specs_build_river_and_sklearn_models():
    assert type(build_model("forest.ARFClassifier(n_models=3, seed=1)")).__name__ == "ARFClassifier"
    pipe = build_model(
        "preprocessing.StandardScaler | linear_model.LogisticRegression", categorical=["country"]
    )
    pipe.learn_one({"amount": 1.0, "country": "fr"}, True)
    assert "country=fr" in pipe["LogisticRegression"].weights
    sk = build_model("sklearn.linear_model.SGDClassifier(loss='log_loss')")
    for i in range(40):
        sk.learn_one({"a": float(i % 2)}, i % 2 == 0)
    assert sk.predict_one({"a": 0.0}) in (True, False)


def test_a_sklearn_model_refuses_an_unknown_class_and_waits_for_two_classes():
    sk = build_model("sklearn.linear_model.SGDClassifier(random_state=1)")
    for i in range(40):  # one class only: nothing fitted yet, nothing lost
        sk.learn_one({"a": float(i)}, True)
    assert sk.predict_one({"a": 1.0}) is None
    for i in range(40):
        sk.learn_one({"a": -float(i)}, False)
    assert sk.predict_one({"a": 5.0}) in (True, False)
    with pytest.raises(InvalidInput, match="not one of the classes"):
        sk.learn_one({"a": 1.0}, "maybe")


def test_numpy_scalars_are_stored_as_plain_values(store):
    import numpy as np

    got = Intake(store).append(
        "fraud",
        [
            {
                "features": {"a": np.float64(1.5), "b": np.int64(3), "c": np.float32(0.25)},
                "label": True,
            },
            {"features": {"a": np.float64("nan")}, "label": True},
        ],
    )
    assert got["accepted"] == 1 and "finite" in got["rejected"][0]["error"]
    assert store.read_online_events("fraud", 0, 10)[0]["features"] == {"a": 1.5, "b": 3, "c": 0.25}


@pytest.mark.parametrize("schema", [None, EventSchema({"a": "number", "b": "number"})])
def test_alike_requests_are_checked_as_each_event_would_be(schema):
    """The whole-list check of a request of alike events accepts exactly what checking each
    event accepts; anything it is unsure of goes the per-event way."""
    from modelloop.online.intake import alike_events, check_event

    def ok(label=True, **features):
        return {"features": {"a": 1.5, "b": -0.5, **features}, "label": label}

    cases = {
        "alike": [ok(), ok(False)],
        "nan": [ok(), ok(a=float("nan"))],
        "inf": [ok(), ok(b=float("-inf"))],
        "overflowing sum": [ok(a=1e308), ok(a=1e308), ok(a=1e308)],
        "an int": [ok(), ok(a=3)],
        "a bool": [ok(), ok(b=True)],
        "other order": [ok(), {"features": {"b": -0.5, "a": 1.5}, "label": True}],
        "extra key": [ok(), {**ok(), "time": "2026-01-01T00:00:00+00:00"}],
        "True and 1": [ok(True), ok(1)],
        "float labels": [ok(0.5), ok(1.5)],
        "no label": [ok(), {"features": {"a": 1.5, "b": -0.5}}],
        "list label": [ok(), ok([1])],
    }
    for name, events in cases.items():
        each = [check_event(e, schema)[1] is None for e in events]
        alike = alike_events(events, schema)
        if alike is not None:
            assert all(each), name  # accepted whole only when every event is valid
            assert alike.labels == [e["label"] for e in events], name
        assert name != "alike" or alike is not None


def test_a_failed_append_takes_no_seq_and_raises_the_stores_error(store, monkeypatch):
    """SQLite's append runs on the driver's connection: a failure mid-transaction rolls back the
    seqs it took and comes out as SQLAlchemy's error, as from any other store call."""
    import sqlalchemy as sa

    from modelloop.store.sql import online

    intake = Intake(store)
    intake.append("fraud", [{"features": {"a": 1.0}, "label": True}])
    monkeypatch.setattr(online, "_SQLITE_INSERT", "INSERT INTO no_such_table VALUES (?, ?)")
    with pytest.raises(sa.exc.OperationalError):
        intake.append("fraud", [{"features": {"a": 2.0}, "label": False}])
    monkeypatch.undo()
    assert intake.append("fraud", [{"features": {"a": 3.0}, "label": True}])["seqs"] == [2, 2]
    assert [e["features"]["a"] for e in intake.read("fraud", 0, 10)] == [1.0, 3.0]
