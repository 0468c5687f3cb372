"""Small builders of valid records, shared by the conformance suites."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SCHEMA = '{"fields": [{"name": "x", "type": "int64"}], "arrow": ""}'
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def digest(label: str) -> str:
    """A 64-character stand-in for a sha256, distinct per label."""
    return (label.encode().hex() * 64)[:64]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def commit(store, name: str, rows: int, label: str, *, expected=None, txn="t", schema=SCHEMA,
           quarantine: str | None = None, tmin=None, tmax=None, time_column=None,
           stream: dict | None = None) -> dict:  # fmt: skip
    """Commit one version made of one data part (and optionally a quarantine part) from one
    source file whose hash is ``digest(label)``."""
    parts = [{"kind": "data", "digest": digest(label), "rows": rows, "size": 10 * rows}]
    if quarantine:
        parts.append({"kind": "quarantine", "digest": digest(quarantine), "rows": 1, "size": 5})
    return store.commit_dataset_version(
        name=name,
        txn=txn,
        schema_json=schema,
        added_rows=rows,
        quarantined_rows=1 if quarantine else 0,
        parts=parts,
        sources=[
            {
                "path": f"{label}.csv",
                "sha256": digest("src-" + label),
                "size": 10,
                "format": "csv",
                "rows": rows,
                "quarantined_rows": 1 if quarantine else 0,
            }
        ],  # fmt: skip
        event_time_column=time_column,
        event_time_min=tmin,
        event_time_max=tmax,
        schema_changes=None,
        expected_schema_json=expected,
        **({"stream": stream} if stream is not None else {}),
    )


def register(store, name: str, *, job_id=None, files=None, actor="ann", **kwargs) -> dict:
    return store.register_model_version(
        name=name,
        files=files
        if files is not None
        else [{"path": "model.pkl", "digest": digest(name), "size": 3}],
        manifest={"flavor": "sklearn", "metrics": {"auc": 0.9}},
        package_hash=digest("pkg-" + name),
        flavor="sklearn",
        task="classification",
        job_id=job_id,
        actor=actor,
        **kwargs,
    )
