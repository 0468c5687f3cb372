"""Conformance: ModelRegistryStore (store/interfaces/registry.py)."""

from __future__ import annotations

import pytest
from records import digest, register

from modelloop.errors import AlreadyExists, InvalidInput, NotFound


def _actions(store, name):
    return [(h["action"], h["version"], h["alias"]) for h in store.model_history(name)]


def test_registering_numbers_versions_and_records_them(store):
    files = [{"path": "b/model.bin", "digest": digest("m"), "size": 7},
             {"path": "a/conda.yaml", "digest": digest("c"), "size": 2}]  # fmt: skip
    v1 = register(store, "churn", files=files, description="first")
    v2 = register(store, "churn")
    assert (v1["name"], v1["version"], v1["status"], v1["created_by"]) == (
        "churn",
        1,
        "pending",
        "ann",
    )
    assert v1["manifest"] == {"flavor": "sklearn", "metrics": {"auc": 0.9}}
    assert (v1["flavor"], v1["task"], v1["description"]) == ("sklearn", "classification", "first")
    assert v1["holds_code"] is False and v1["trusted_by"] is None
    assert v2["version"] == 2
    assert store.get_model_version("churn") == v2
    assert store.get_model_version("churn", 1) == v1
    assert [v["version"] for v in store.list_model_versions("churn")] == [1, 2]
    assert [v["version"] for v in store.list_model_versions("churn", limit=1, offset=1)] == [2]
    assert [v["version"] for v in store.list_model_versions("churn", newest_first=True)] == [2, 1]
    newest = store.model_history("churn", limit=1, newest_first=True)
    assert newest == store.model_history("churn")[-1:]
    assert [f["path"] for f in store.model_files("churn", 1)] == ["a/conda.yaml", "b/model.bin"]
    assert store.model_files("churn", 1)[1] == {
        "path": "b/model.bin",
        "digest": digest("m"),
        "size": 7,
    }
    assert _actions(store, "churn") == [("registered", 1, None), ("registered", 2, None)]
    assert [e["subject"] for e in store.list_events(kind="model.registered")] == [
        "churn@1",
        "churn@2",
    ]


def test_unknown_models_and_versions(store):
    register(store, "churn")
    assert store.get_model("nope") is None
    assert store.get_model_version("nope") is None
    assert store.get_model_version("churn", 5) is None
    assert store.list_model_versions("nope") == []
    assert store.model_aliases("nope") == {}
    assert store.model_files("churn", 5) == []
    assert store.model_history("nope") == []
    with pytest.raises(NotFound):
        store.set_model_status("churn", 5, "approved", actor="a", reason=None,
                               allowed_from=("pending",))  # fmt: skip
    with pytest.raises(NotFound):
        store.move_alias("nope", "champion", 1, actor="a", reason=None)


def test_list_models_with_latest_version_and_aliases(store):
    register(store, "zeta")
    register(store, "churn")
    register(store, "churn")
    store.move_alias("churn", "champion", 1, actor="a", reason=None)
    listed = store.list_models()
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("churn", 2, {"champion": 1}),
        ("zeta", 1, {}),
    ]
    # a page: its models' versions and aliases only
    assert store.list_models(limit=1) == listed[:1]
    assert store.list_models(limit=5, offset=1) == listed[1:]
    assert store.list_models(offset=2) == []
    assert store.get_model("churn")["name"] == "churn"


def test_a_failing_registration_leaves_nothing(store):
    with pytest.raises(KeyError):
        register(store, "churn", files=[{"path": "m.bin"}])  # no digest: fails mid-transaction
    assert store.get_model("churn") is None and store.list_events() == []


def test_trust_at_registration_or_later_once(store):
    v1 = register(store, "churn", holds_code=True, trust={"actor": "bob", "reason": "our job"})
    assert (v1["holds_code"], v1["trusted_by"], v1["trusted_reason"]) == (True, "bob", "our job")
    register(store, "churn", holds_code=True)
    v2 = store.trust_model_version("churn", 2, actor="eve", reason="reviewed")
    assert (v2["trusted_by"], v2["trusted_reason"]) == ("eve", "reviewed")
    assert v2["trusted_at"].tzinfo is not None
    with pytest.raises(InvalidInput, match="already trusted"):
        store.trust_model_version("churn", 2, actor="x", reason="again")
    assert [a for a, _, _ in _actions(store, "churn")].count("trusted") == 2
    assert len(store.list_events(kind="model.trusted")) == 2


def test_status_changes_follow_allowed_from(store):
    register(store, "churn")
    approved = store.set_model_status("churn", 1, "approved", actor="ann", reason="good",
                                      allowed_from=("pending",))  # fmt: skip
    assert (approved["status"], approved["status_by"], approved["status_reason"]) == (
        "approved", "ann", "good")  # fmt: skip
    with pytest.raises(InvalidInput, match="already approved"):
        store.set_model_status("churn", 1, "approved", actor="ann", reason=None,
                               allowed_from=("pending",))  # fmt: skip
    store.set_model_status("churn", 1, "rejected", actor="bob", reason="bias",
                           allowed_from=("pending", "approved"))  # fmt: skip
    with pytest.raises(InvalidInput, match="cannot become approved"):
        store.set_model_status("churn", 1, "approved", actor="ann", reason=None,
                               allowed_from=("pending",))  # fmt: skip
    assert store.get_model_version("churn", 1)["status"] == "rejected"
    assert ("approved", 1, None) in _actions(store, "churn")
    (event,) = store.list_events(kind="model.rejected")
    assert event["payload"]["from_status"] == "approved"


def test_aliases_move_and_record_history(store):
    register(store, "churn")
    register(store, "churn")
    assert store.move_alias("churn", "champion", 1, actor="a", reason=None) is None
    assert store.move_alias("churn", "champion", 2, actor="a", reason="better") == 1
    assert store.move_alias("churn", "champion", 2, actor="a", reason=None) == 2  # no change
    store.move_alias("churn", "shadow", 1, actor="a", reason=None)
    assert store.model_aliases("churn") == {"champion": 2, "shadow": 1}
    history = [h for h in store.model_history("churn") if h["alias"] == "champion"]
    assert [(h["action"], h["version"], h["from_version"]) for h in history] == [
        ("alias_set", 1, None),
        ("alias_set", 2, 1),
    ]
    assert len(store.list_events(kind="model.alias_moved")) == 3
    assert store.move_alias("churn", "shadow", None, actor="a", reason=None) == 1
    assert store.model_aliases("churn") == {"champion": 2}
    with pytest.raises(NotFound):
        store.move_alias("churn", "shadow", None, actor="a", reason=None)
    with pytest.raises(NotFound):
        store.move_alias("churn", "champion", 9, actor="a", reason=None)


def test_alias_compare_and_set_and_status_gate(store):
    register(store, "churn")
    register(store, "churn")
    store.move_alias("churn", "champion", 2, actor="a", reason=None)
    with pytest.raises(AlreadyExists, match="moved meanwhile"):
        store.move_alias("churn", "champion", 1, actor="a", reason=None, action="rolled_back",
                         expected=1)  # fmt: skip
    assert store.move_alias("churn", "champion", 1, actor="a", reason=None, action="rolled_back",
                            expected=2) == 2  # fmt: skip
    assert store.model_history("churn")[-1]["action"] == "rolled_back"
    with pytest.raises(InvalidInput, match="pending"):
        store.move_alias("churn", "champion", 2, actor="a", reason=None,
                         allowed_status=("approved",))  # fmt: skip
    assert store.model_aliases("churn") == {"champion": 1}


def test_deployed_or_aliased_versions_are_kept(store):
    register(store, "churn")
    register(store, "churn")
    register(store, "churn")
    store.mark_model_deployed("churn", 1, actor="a", where="endpoint e")
    first = store.get_model_version("churn", 1)["deployed_at"]
    store.mark_model_deployed("churn", 1, actor="a", where="endpoint f")
    assert first is not None and store.get_model_version("churn", 1)["deployed_at"] == first
    assert [h["reason"] for h in store.model_history("churn") if h["action"] == "deployed"] == [
        "endpoint e",
        "endpoint f",
    ]
    with pytest.raises(InvalidInput, match="deployed"):
        store.delete_model_version("churn", 1, actor="a", reason=None)
    store.move_alias("churn", "champion", 2, actor="a", reason=None)
    with pytest.raises(InvalidInput, match="aliased"):
        store.delete_model_version("churn", 2, actor="a", reason=None)
    store.delete_model_version("churn", 3, actor="a", reason="mistake")
    assert store.get_model_version("churn", 3) is None and store.model_files("churn", 3) == []
    assert [v["version"] for v in store.list_model_versions("churn")] == [1, 2]
    assert store.model_history("churn")[-1]["action"] == "deleted"
    assert store.list_events(kind="model.deleted")[0]["subject"] == "churn@3"
