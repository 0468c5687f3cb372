"""The feature sets service (``ws.features``): definitions, point-in-time joins, the online store.

Definitions are stored in the metadata store, versioned by their hash. The offline store is the
source dataset itself: ``get_historical`` reads its Parquet parts (only the columns the definition
uses) and joins point-in-time correctly. The online store (``online.py``) is kept up to date
incrementally from the dataset's new versions (``update``) or from rows pushed as they arrive
(``push``), and answers ``get_online`` by entity key.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from modelloop.common.hashing import sha256_bytes
from modelloop.errors import InvalidInput, NotFound
from modelloop.features.offline import historical
from modelloop.features.spec import FeatureSet, check_against_schema, parse_feature_set


def _read_definition(definition) -> dict:
    if isinstance(definition, dict):
        return definition
    path = Path(definition)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no feature definition file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {str(path)!r}: {exc}") from None
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{str(path)!r} is not valid YAML: {exc}") from None
    return raw


class FeatureSets:
    """Feature set definitions and their offline and online values."""

    def __init__(self, store, datasets, online_url: str | None = None, state_dir=None):
        self.store = store
        self.datasets = datasets
        self._online_url = online_url
        self._state_dir = state_dir
        self._online = None
        self._recent: dict = {}  # name -> (monotonic time read, row): the serving path's cache
        self._parsed: dict = {}  # hash -> FeatureSet
        self._online_meta: dict = {}  # name -> (monotonic time read, hash the online store holds)

    # -- definitions --------------------------------------------------------------------------
    def apply(self, definition: str | os.PathLike | dict) -> dict:
        """Store a definition (a ``features.yaml`` path, or the same as a dict); checked first,
        and against its source dataset's columns when that dataset exists. A changed definition
        gets the next version; the same one changes nothing (``changed`` False)."""
        fs = parse_feature_set(_read_definition(definition))
        if self.store.get_dataset(fs.source) is not None:
            check_against_schema(fs, self.datasets.get(fs.source).schema)
        spec = fs.to_dict()
        before = self.store.get_feature_set(fs.name)
        self._recent.pop(fs.name, None)
        row = self.store.put_feature_set(fs.name, source=fs.source, spec=spec,
                                         hash=sha256_bytes(json.dumps(spec, sort_keys=True)))  # fmt: skip
        return {**row, "changed": before is None or before["hash"] != row["hash"]}

    def list(self) -> list[dict]:
        return self.store.list_feature_sets()

    def show(self, name: str) -> dict:
        row = self.store.get_feature_set(name)
        if row is None:
            known = [r["name"] for r in self.store.list_feature_sets()]
            raise NotFound(f"no feature set named {name!r}",
                           hint=f"known: {', '.join(known)}" if known
                           else "define one with 'modelloop features apply features.yaml'")
        return row

    def definition(self, name: str) -> FeatureSet:
        return parse_feature_set(self.show(name)["spec"])

    def delete(self, name: str) -> bool:
        self.show(name)
        self._recent.pop(name, None)
        return self.store.delete_feature_set(name)

    # -- offline ------------------------------------------------------------------------------
    def source_table(self, fs: FeatureSet, ref: str | None = None):
        """The source rows (only the columns the definition reads), checked against it."""
        v = self.datasets.get(ref or fs.source)
        check_against_schema(fs, v.schema)
        return self.datasets.to_arrow(v.ref, columns=fs.columns())

    def get_historical(self, name: str, entity_frame: pd.DataFrame | list[dict[str, Any]], *,
                       timestamp: str | None = None, source: str | None = None) -> pd.DataFrame:  # fmt: skip
        """``entity_frame`` (an entity key and a time per row; ``timestamp`` names the time
        column, the definition's event-time column by default) with each feature as it was
        known at that row's time, from the source (``source``: a ref such as ``tx@3``). The
        frame may be given as its rows (dicts), as the API receives it."""
        fs = self.definition(name)
        if not isinstance(entity_frame, pd.DataFrame):
            entity_frame = pd.DataFrame.from_records(list(entity_frame))
        return historical(fs, self.source_table(fs, source), entity_frame, timestamp)

    def training_data(self, name: str, labels: str, *, into: str | None = None,
                      timestamp: str | None = None) -> dict:  # fmt: skip
        """The point-in-time join of dataset ``labels`` (an entity key, a time, the target and
        any request-time fields per row) with feature set ``name``, appended to dataset ``into``
        (default ``<labels>_<name>``) without the key and the time (what a model reads is the
        features and the request-time fields). Only the labels' versions not joined before are
        joined (each appended file is named for the versions it holds), so calling it again after
        new labels adds just their rows. Returns the version's ref and the definition to train
        with (``ws.training.train(ref, target, features=...)``), which the model's package
        records, so that serving looks the same features up by key."""
        import tempfile

        row = self.show(name)
        fs = parse_feature_set(row["spec"])
        lv = self.datasets.get(labels)
        into = into or f"{lv.name}_{name}"
        done = 0
        if self.store.get_dataset(into) is not None:
            for src in self.store.dataset_sources(into, self.datasets.get(into).version):
                tail = Path(src["path"]).stem.rpartition("@")[2].rpartition(".")[2]
                if Path(src["path"]).stem.startswith(f"{lv.name}@") and tail.isdigit():
                    done = max(done, int(tail))
        if done >= lv.version:
            v = self.datasets.get(into)
            return {"dataset": v.ref, "rows": 0, "features": self.recorded(name)}
        ref = f"{lv.name}@{done}..{lv.version}" if done else f"{lv.name}@{lv.version}"
        frame = self.datasets.to_pandas(ref)
        joined = historical(fs, self.source_table(fs), frame, timestamp)
        joined = joined.drop(columns=[fs.entity, timestamp or fs.event_time])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{ref}.parquet"
            joined.to_parquet(path, index=False)
            report = self.datasets.ingest(into, path)
        out = report.version.ref if report.version is not None else self.datasets.get(into).ref
        return {"dataset": out, "rows": len(joined), "features": self.recorded(name)}

    def _current(self, name: str) -> dict | None:
        """The stored definition, read at most once a second per name on the serving path: a
        changed definition is refused within a second, and a lookup costs no metadata query."""
        now = time.monotonic()
        hit = self._recent.get(name)
        if hit is None or now - hit[0] > 1.0:
            hit = self._recent[name] = (now, self.store.get_feature_set(name))
        return hit[1]

    def recorded(self, name: str) -> dict:
        """What a model trained from ``name`` records: its name, version, hash and definition."""
        row = self.show(name)
        return {k: row[k] for k in ("name", "version", "hash", "spec")}

    def serve(self, recorded: dict, keys: list, at=None) -> list[dict]:
        """The online values a model trained from ``recorded`` is served with; refused when the
        feature set's definition is no longer the one the model was trained with."""
        current = self._current(recorded["name"])
        if current is None or current["hash"] != recorded["hash"]:
            now = "deleted" if current is None else f"now v{current['version']}"
            raise InvalidInput(
                f"the model was trained with feature set {recorded['name']!r} "
                f"v{recorded['version']}, which is {now}: serving it would skew its features",
                hint="retrain the model on the current definition, or apply the old one again")
        self._check_online(recorded["name"], recorded["hash"], recorded["version"])
        fs = self._parsed.get(recorded["hash"])
        if fs is None:
            fs = self._parsed[recorded["hash"]] = parse_feature_set(recorded["spec"])
        from modelloop.features.online import lookup

        at_ns = (pd.Timestamp.now(tz="UTC") if at is None else _timestamp(at)).as_unit("ns").value
        return lookup(fs, self.online_store, list(keys), at_ns)

    # -- online -------------------------------------------------------------------------------
    @property
    def online_store(self):
        if self._online is None:
            from modelloop.features.online_store import open_online_store

            self._online = open_online_store(self._online_url or "", self._state_dir)
        return self._online

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
            self._online = None

    def backfill(self, name: str) -> dict:
        """Compute the online store of ``name`` afresh from its source's whole history, in one
        pass (rows are history here: none is too late); later versions are applied by
        :meth:`update`."""
        from modelloop.features.online import apply_rows

        row = self.show(name)
        fs = parse_feature_set(row["spec"])
        v = self.datasets.get(fs.source)
        self.online_store.clear(fs.name)
        self._online_meta.pop(fs.name, None)
        report = apply_rows(fs, self.online_store, self.source_table(fs, v.ref),
                            checkpoint=v.version, expect_checkpoint=None, honour_lateness=False,
                            meta_extra={"hash": row["hash"]})  # fmt: skip
        return {"feature_set": name, "version": v.version, **report}

    def update(self, name: str) -> dict:
        """Apply the source's versions the online store has not seen, one micro-batch per
        version, each exactly once (the version applied is recorded in the same transaction as
        the values). A store never filled, or filled by another definition, is backfilled."""
        from modelloop.features.online import apply_rows

        row = self.show(name)
        fs = parse_feature_set(row["spec"])
        meta = self.online_store.meta(fs.name)
        if meta.get("hash") != row["hash"] or meta.get("checkpoint") is None:
            return {**self.backfill(name), "backfilled": True}
        latest = self.datasets.get(fs.source).version
        applied, too_late, rejected = 0, 0, []
        for version in range(meta["checkpoint"] + 1, latest + 1):
            ref = f"{fs.source}@{version - 1}..{version}"
            report = apply_rows(fs, self.online_store, self.source_table(fs, ref),
                                checkpoint=version, expect_checkpoint=version - 1)  # fmt: skip
            applied, too_late = applied + report["applied"], too_late + report["too_late"]
            rejected += [{**r, "version": version} for r in report["rejected"]]
        return {"feature_set": name, "version": latest, "applied": applied,
                "too_late": too_late, "rejected": rejected, "backfilled": False}

    def push(self, name: str, rows) -> dict:
        """Apply rows as they arrive (a DataFrame, an Arrow table or a list of dicts) to the
        online store of ``name``: a row without its key or a readable time is rejected with the
        reason, one older than the allowed lateness is counted too late."""
        from modelloop.features.online import apply_rows

        row = self.show(name)
        self._check_online(name, row["hash"], row["version"], cache=False)
        return apply_rows(parse_feature_set(row["spec"]), self.online_store, rows,
                          meta_extra={"hash": row["hash"]})  # fmt: skip

    def _check_online(self, name: str, hash: str, version: int, *, cache: bool = True) -> None:
        """The online store holds values of this definition (or none yet): values and state of
        another version would be served under this one's names."""
        now = time.monotonic()
        hit = self._online_meta.get(name)
        if not cache or hit is None or now - hit[0] > 1.0:
            hit = self._online_meta[name] = (now, self.online_store.meta(name).get("hash"))
        if hit[1] is not None and hit[1] != hash:
            from modelloop.errors import Conflict

            raise Conflict(f"the online store of {name!r} holds another definition than v{version}",
                           hint=f"run 'modelloop features backfill {name}' "
                                f"(ws.features.backfill) to compute it for this one")

    def get_online(self, name: str, keys: list[str | int], *,
                   at: str | datetime | None = None) -> list[dict]:  # fmt: skip
        """The features of each entity key as of ``at`` (a time; default now) from the online
        store, in the order of ``keys``."""
        from modelloop.features.online import lookup

        row = self.show(name)
        self._check_online(name, row["hash"], row["version"], cache=False)
        fs = parse_feature_set(row["spec"])
        at_ns = (pd.Timestamp.now(tz="UTC") if at is None else _timestamp(at)).as_unit("ns").value
        return [{fs.entity: k, **v} for k, v in
                zip(keys, lookup(fs, self.online_store, list(keys), at_ns), strict=True)]


def _timestamp(value) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InvalidInput(f"cannot read {value!r} as a time",
                           hint="use an ISO 8601 time such as 2026-05-03T12:00:00Z") from None
    if t is pd.NaT:
        raise InvalidInput(f"cannot read {value!r} as a time")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
