"""Conformance: FeatureSetStore (store/interfaces/features.py)."""

from __future__ import annotations


def test_a_feature_set_is_versioned_by_its_hash_listed_and_deleted(store):
    assert store.get_feature_set("cards") is None and store.list_feature_sets() == []
    first = store.put_feature_set("cards", source="tx", spec={"name": "cards", "n": 1}, hash="a" * 64)
    assert first["version"] == 1 and first["spec"] == {"name": "cards", "n": 1}
    assert first["source"] == "tx" and first["created_at"].tzinfo is not None
    same = store.put_feature_set("cards", source="tx", spec={"name": "cards", "n": 1}, hash="a" * 64)
    assert same["version"] == 1 and same["updated_at"] == first["updated_at"]
    second = store.put_feature_set("cards", source="tx2", spec={"n": 2}, hash="b" * 64)
    assert second["version"] == 2 and second["spec"] == {"n": 2} and second["source"] == "tx2"
    assert second["created_at"] == first["created_at"]
    store.put_feature_set("accounts", source="tx", spec={}, hash="c" * 64)
    assert [r["name"] for r in store.list_feature_sets()] == ["accounts", "cards"]
    assert store.delete_feature_set("cards") is True and store.delete_feature_set("cards") is False
    assert store.get_feature_set("cards") is None
