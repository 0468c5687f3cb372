"""SQL of applied loops."""

from __future__ import annotations

import json

import sqlalchemy as sa

from modelloop.store.interfaces.loops import LoopStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.tables.loops import loops


def _out(row) -> dict:
    out = row_dict(row)
    out.pop("id", None)
    out["spec"] = json.loads(out["spec"])
    out["resources"] = json.loads(out["resources"])
    return out


class SqlLoops(SqlBase, LoopStore):
    def put_loop(self, name: str, *, spec: dict, base_dir: str, hash: str,
                 resources: dict) -> dict:  # fmt: skip
        values = {"spec": json.dumps(spec, sort_keys=True), "base_dir": base_dir, "hash": hash,
                  "resources": json.dumps(resources, sort_keys=True), "applied_at": utcnow()}
        with self._write() as conn:
            changed = conn.execute(loops.update().where(loops.c.name == name).values(**values))
            if not changed.rowcount:
                conn.execute(loops.insert().values(name=name, **values))
        return self.get_loop(name)

    def get_loop(self, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(loops).where(loops.c.name == name)).first()
        return _out(row) if row is not None else None

    def list_loops(self) -> list[dict]:
        with self._read() as conn:
            return [_out(r) for r in conn.execute(sa.select(loops).order_by(loops.c.name))]

    def delete_loop(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(loops.delete().where(loops.c.name == name)).rowcount > 0
