"""Snapshots as versions: a checkpoint registered with its lineage, trusted as the learner's."""

from __future__ import annotations

from river import datasets

from modelloop.online import EventSchema, Intake
from modelloop.online.learner import Learner

SPEC = "preprocessing.StandardScaler|linear_model.LogisticRegression"


def test_a_checkpoint_registers_as_a_version_with_its_event_range(local_workspace):
    ws = local_workspace
    rows = list(datasets.Phishing())[:400]
    schema = EventSchema({name: "number" for name in rows[0][0]})
    Intake(ws.store, lambda endpoint: schema).append(
        "phish", [{"features": x, "label": y} for x, y in rows]
    )
    learner = Learner(
        ws.store,
        "phish",
        "online",
        spec=SPEC,
        registry=ws.models,
        snapshot_model="phish-online",
        snapshot_every=300,
        schema=schema,
        publish_interval=0,
    )
    while learner.step(100):  # saved after each step; registered once 300 events were learned
        pass
    first = ws.models.get("phish-online@latest")
    assert "'applied_seq': 300" in str(ws.models.describe(first["ref"]))
    learner.register_snapshot()
    version = ws.models.get("phish-online@latest")
    manifest = ws.models.describe(version["ref"])
    text = str(manifest)
    assert "'applied_seq': 400" in text and "[[1, 400]]" in text, text[:3000]
    assert "written by modelloop's online learner of phish/online" in text
    model = ws.models.load(version["ref"])
    x = rows[0][0]
    inner = getattr(model, "model", model)
    assert inner.predict_proba_one(x) == learner.model.predict_proba_one(x)


def test_a_learner_rolls_back_to_a_registered_snapshot(local_workspace):
    ws = local_workspace
    rows = list(datasets.Phishing())
    intake = Intake(ws.store)
    intake.append("phish", [{"features": x, "label": y} for x, y in rows[:300]])
    learner = Learner(
        ws.store, "phish", "online", spec=SPEC, registry=ws.models, snapshot_model="phish-online"
    )
    while learner.step():
        pass
    learner.save()
    good = learner.register_snapshot()
    x = rows[0][0]
    expected = learner.model.predict_proba_one(x)
    intake.append("phish", [{"features": x, "label": not y} for x, y in rows[300:600]])
    while learner.step():
        pass
    assert learner.model.predict_proba_one(x) != expected
    learner.restore(ws.models, good["ref"])
    assert learner.model.predict_proba_one(x) == expected
    assert learner.applied_seq == 600 and learner.info()["ranges"] == [[1, 300]]
    restarted = Learner(ws.store, "phish", "online", spec=SPEC)  # the rollback was saved
    assert restarted.model.predict_proba_one(x) == expected
