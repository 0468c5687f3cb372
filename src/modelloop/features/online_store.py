"""Where the online values live: embedded SQLite (the default, a file in the workspace) or Redis
(``[features] online_store = "redis://…"``), one interface.

Per feature set and entity key, one record: the values as of ``as_of`` (ns), the time until
which they stay true without new rows (``valid_until``), and the entity's retained rows (the
state the values are computed from, JSON). Per feature set, one meta record: the watermark and
the checkpoint of what has been applied. A write of records and meta is one transaction, and
conditional on the meta's ``checkpoint`` being what the writer read, so a micro-batch is applied
exactly once even with two maintainers racing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from pathlib import Path

from modelloop.errors import ConfigError, Conflict


class OnlineStore(ABC):
    @abstractmethod
    def meta(self, fs: str) -> dict:
        """``{"watermark", "checkpoint", "hash", ...}`` or ``{}``."""

    @abstractmethod
    def values(self, fs: str, keys: list[str]) -> dict[str, tuple[str, int, int]]:
        """``key -> (values JSON, as_of, valid_until)`` for the keys that have a record."""

    @abstractmethod
    def states(self, fs: str, keys: list[str]) -> dict[str, str]:
        """``key -> state JSON`` for the keys that have a record."""

    @abstractmethod
    def write(self, fs: str, records: list[tuple[str, str, int, int, str]], meta: dict,
              expect_checkpoint) -> None:  # fmt: skip
        """Upsert ``(key, values, as_of, valid_until, state)`` records and replace the meta, if
        the stored checkpoint is still ``expect_checkpoint``; else :class:`Conflict`."""

    @abstractmethod
    def clear(self, fs: str) -> None:
        """Forget every record and the meta of ``fs``."""

    def close(self) -> None:  # noqa: B027 - optional
        pass


class SqliteOnlineStore(OnlineStore):
    """One SQLite file (WAL), its own from the metadata store: lookups never wait on metadata
    writes. A connection shared by the process's threads under a lock."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                     timeout=30)  # fmt: skip
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS online_values (fs TEXT, key TEXT, vals TEXT, "
                "as_of INTEGER, valid_until INTEGER, state TEXT, PRIMARY KEY (fs, key)) "
                "WITHOUT ROWID")
            self._conn.execute("CREATE TABLE IF NOT EXISTS online_meta (fs TEXT PRIMARY KEY, "
                               "meta TEXT)")

    def meta(self, fs: str) -> dict:
        with self._lock:
            row = self._conn.execute("SELECT meta FROM online_meta WHERE fs = ?", (fs,)).fetchone()
        return json.loads(row[0]) if row else {}

    def _select(self, columns: str, fs: str, keys: list[str]) -> list[tuple]:
        out = []
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                out += self._conn.execute(
                    f"SELECT key, {columns} FROM online_values WHERE fs = ? AND key IN "
                    f"({','.join('?' * len(chunk))})", (fs, *chunk)).fetchall()
        return out

    def values(self, fs, keys):
        return {k: (v, a, u) for k, v, a, u in self._select("vals, as_of, valid_until", fs, keys)}

    def states(self, fs, keys):
        return dict(self._select("state", fs, keys))

    def write(self, fs, records, meta, expect_checkpoint):
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                row = c.execute("SELECT meta FROM online_meta WHERE fs = ?", (fs,)).fetchone()
                if (json.loads(row[0]) if row else {}).get("checkpoint") != expect_checkpoint:
                    raise Conflict(f"the online store of {fs!r} moved on while this batch ran",
                                   hint="apply the batch again")
                c.executemany("INSERT OR REPLACE INTO online_values VALUES (?, ?, ?, ?, ?, ?)",
                              [(fs, *r) for r in records])
                c.execute("INSERT OR REPLACE INTO online_meta VALUES (?, ?)",
                          (fs, json.dumps(meta)))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def clear(self, fs):
        with self._lock:
            self._conn.execute("DELETE FROM online_values WHERE fs = ?", (fs,))
            self._conn.execute("DELETE FROM online_meta WHERE fs = ?", (fs,))

    def close(self):
        with self._lock:
            self._conn.close()


class RedisOnlineStore(OnlineStore):
    """Two hashes per feature set (values; states) and a meta string, written in one
    MULTI/EXEC under WATCH of the meta (the checkpoint compare-and-set)."""

    def __init__(self, url: str, prefix: str = "modelloop:features"):
        import redis

        self._r = redis.Redis.from_url(url)
        self._prefix = prefix

    def _k(self, fs: str, what: str) -> str:
        return f"{self._prefix}:{fs}:{what}"

    def meta(self, fs):
        raw = self._r.get(self._k(fs, "meta"))
        return json.loads(raw) if raw else {}

    def values(self, fs, keys):
        if not keys:
            return {}
        out = {}
        for k, raw in zip(keys, self._r.hmget(self._k(fs, "values"), keys), strict=True):
            if raw is not None:
                vals, as_of, until = raw.decode().split("\x1f")
                out[k] = (vals, int(as_of), int(until))
        return out

    def states(self, fs, keys):
        if not keys:
            return {}
        got = self._r.hmget(self._k(fs, "states"), keys)
        return {k: raw.decode() for k, raw in zip(keys, got, strict=True) if raw is not None}

    def write(self, fs, records, meta, expect_checkpoint):
        import redis

        meta_key = self._k(fs, "meta")
        with self._r.pipeline(transaction=True) as p:
            try:
                p.watch(meta_key)
                raw = p.get(meta_key)
                if (json.loads(raw) if raw else {}).get("checkpoint") != expect_checkpoint:
                    raise Conflict(f"the online store of {fs!r} moved on while this batch ran",
                                   hint="apply the batch again")
                p.multi()
                for i in range(0, len(records), 10_000):
                    chunk = records[i:i + 10_000]
                    p.hset(self._k(fs, "values"), mapping={
                        k: f"{v}\x1f{a}\x1f{u}" for k, v, a, u, _ in chunk})
                    p.hset(self._k(fs, "states"), mapping={k: s for k, _, _, _, s in chunk})
                p.set(meta_key, json.dumps(meta))
                p.execute()
            except redis.WatchError:
                raise Conflict(f"the online store of {fs!r} moved on while this batch ran",
                               hint="apply the batch again") from None

    def clear(self, fs):
        self._r.delete(self._k(fs, "values"), self._k(fs, "states"), self._k(fs, "meta"))

    def close(self):
        self._r.close()


def open_online_store(url: str, state_dir: Path | None) -> OnlineStore:
    """``""``: SQLite under the workspace's state folder; ``sqlite:///path``; ``redis://…``."""
    if not url:
        return SqliteOnlineStore(Path(state_dir) / "features" / "online.db")
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        return SqliteOnlineStore(url.split("sqlite:///", 1)[-1])
    if scheme in ("redis", "rediss", "unix"):
        return RedisOnlineStore(url)
    raise ConfigError(f"unknown online store {url!r}", hint="sqlite:///PATH or redis://HOST:PORT/DB")
