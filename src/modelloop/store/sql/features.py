"""SQL of feature set definitions."""

from __future__ import annotations

import json

import sqlalchemy as sa

from modelloop.store.interfaces.features import FeatureSetStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.tables.features import feature_sets


def _out(row) -> dict:
    out = row_dict(row)
    out.pop("id", None)
    out["spec"] = json.loads(out["spec"])
    return out


class SqlFeatureSets(SqlBase, FeatureSetStore):
    def put_feature_set(self, name: str, *, source: str, spec: dict, hash: str) -> dict:
        now = utcnow()
        text = json.dumps(spec, sort_keys=True)
        with self._write() as conn:
            t = feature_sets
            changed = conn.execute(
                t.update().where(t.c.name == name, t.c.hash != hash).values(
                    version=t.c.version + 1, source=source, spec=text, hash=hash, updated_at=now))
            if not changed.rowcount:
                exists = conn.execute(sa.select(t.c.id).where(t.c.name == name)).first()
                if exists is None:
                    conn.execute(t.insert().values(name=name, version=1, source=source, spec=text,
                                                   hash=hash, created_at=now, updated_at=now))
        return self.get_feature_set(name)

    def get_feature_set(self, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(feature_sets).where(feature_sets.c.name == name)).first()
        return _out(row) if row is not None else None

    def list_feature_sets(self) -> list[dict]:
        with self._read() as conn:
            rows = conn.execute(sa.select(feature_sets).order_by(feature_sets.c.name))
            return [_out(r) for r in rows]

    def delete_feature_set(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(
                feature_sets.delete().where(feature_sets.c.name == name)).rowcount > 0
