"""Baselines as stored objects: computed once from a dataset version, kept as one JSON blob in the
artifact store, indexed in the metadata store by name and by the dataset version they describe.

A baseline is addressed by its name (``loans-v3`` by default) or by its dataset version
(``loans@3``, ``loans@latest``: the baseline computed from that version). Export and import use
SageMaker Model Monitor's ``statistics.json`` / ``constraints.json`` so baselines travel both ways.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelloop.data.refs import check_name, parse_ref
from modelloop.errors import AlreadyExists, InvalidInput, NotFound

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.data.datasets import Datasets
    from modelloop.store import MetadataStore


def default_name(dataset: str, version: int, after: int | None = None) -> str:
    """``loans-v3`` for ``loans@3``; ``loans-v4-5`` for the rows of ``loans@3..5``."""
    return f"{dataset}-v{version}" if after is None else f"{dataset}-v{after + 1}-{version}"


class Baselines:
    """Create, find, load, export and import baselines."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, datasets: Datasets):
        self.store = store
        self.artifacts = artifacts
        self.datasets = datasets

    # -- creating -----------------------------------------------------------------------------
    def create(
        self,
        dataset_ref: str,
        *,
        name: str | None = None,
        categorical: list[str] | tuple = (),
        target: str | None = None,
        roles: dict[str, str] | None = None,
        force: bool = False,
        progress=None,
    ) -> dict:
        """Profile a dataset version in one streaming pass and store its baseline.

        A baseline of that name describing the same data already (training makes one for every
        version it trains on) is returned as it is, with ``existed`` set; ``force`` recomputes
        it. A name taken by a baseline of other data is an error. Roles: the dataset's event-time
        column is ``time``, ``target`` the label; ``roles`` sets others (see quality.roles).
        """
        from modelloop.quality.baseline import Baseline

        v = self.datasets.get(dataset_ref)
        name = check_name(name or default_name(v.name, v.version, v.after), "baseline")
        version = v.version if v.after is None else None  # a range is found by its name only
        existing = self.store.get_baseline(name)
        if existing is not None:
            same = existing["dataset"] == v.name and existing["dataset_version"] == version
            if not same:
                raise AlreadyExists(
                    f"a baseline named {name!r} already exists "
                    f"(of {self._public(existing)['ref'] or existing['source']})",
                    hint="pass --name for another one, or use the existing baseline",
                )
            if not force:
                return self._public(existing) | {"existed": True}
        columns = [f.name for f in v.schema]
        unknown = sorted(set(categorical) - set(columns))
        if unknown:
            raise InvalidInput(
                f"--categorical names columns not in {v.ref}: {', '.join(unknown)}",
                hint=f"its columns are: {', '.join(columns)}",
            )
        given = dict(roles or {})
        event_time = (self.store.get_dataset(v.name) or {}).get("event_time_column")
        if event_time in columns:
            given.setdefault(event_time, "time")
        batches = self.datasets.iter_batches(v.ref)
        if progress is not None:
            batches = progress(batches, v.row_count)
        baseline = Baseline.from_batches(batches, categorical=categorical, target=target,
                                         roles=given)  # fmt: skip
        if existing is not None:  # --force: the new one replaces it
            self.store.delete_baseline(name)
        return self._save(name, baseline, source="dataset", dataset=v.name, version=version)

    def ensure(self, dataset_ref: str, *, target: str | None = None) -> dict:
        """The baseline of a dataset version, created if it has none yet (idempotent; what the
        training service calls for every training dataset version, with its target)."""
        v = self.datasets.get(dataset_ref)
        if target not in v.schema.names:
            target = None  # training reports a wrong target itself
        found = (
            self.store.find_baseline(v.name, v.version)
            if v.after is None
            else self.store.get_baseline(default_name(v.name, v.version, v.after))
        )
        if found is not None:
            return self._public(found)
        try:
            return self.create(v.ref, target=target)
        except AlreadyExists:  # another process made it meanwhile
            found = self.store.find_baseline(v.name, v.version) if v.after is None else None
            if found is None:
                raise
            return self._public(found)

    def import_(self, name: str, path: str | os.PathLike) -> dict:
        """Store a baseline read from a SageMaker folder (statistics.json [+ constraints.json]),
        a statistics.json file, or a modelloop baseline JSON file."""
        check_name(name, "baseline")
        baseline, source = read_baseline_files(path)
        return self._save(name, baseline, source=source)

    def _save(
        self, name: str, baseline, *, source: str, dataset: str | None = None, version=None
    ) -> dict:
        # the blob first, the row last: a crash leaves at most an unreferenced blob
        blob = self.artifacts.put_bytes(json.dumps(baseline.to_dict()).encode())
        self.store.add_baseline(
            name=name,
            dataset=dataset,
            dataset_version=version,
            source=source,
            digest=blob.digest,
            n_rows=baseline.n_rows,
            schema=baseline.schema,
        )
        return self._public(self.store.get_baseline(name))

    # -- finding ------------------------------------------------------------------------------
    def get(self, ref: str) -> dict:
        """The record of a baseline by name, or by the dataset version it was computed from."""
        found = self.store.get_baseline(ref)
        if found is None and "@" in ref:
            r = parse_ref(ref)
            v = self.datasets.get(r)
            found = self.store.find_baseline(v.name, v.version)
            if found is None:
                raise NotFound(
                    f"dataset version {v.ref} has no baseline",
                    hint=f"create one with 'modelloop baseline create {v.ref}'",
                )
        if found is None:
            known = [b["name"] for b in self.store.list_baselines()]
            raise NotFound(
                f"no baseline named {ref!r}",
                hint=f"known baselines: {', '.join(known[:10])}"
                if known
                else "create one with 'modelloop baseline create DATASET@VERSION'",
            )
        return self._public(found)

    def document(self, ref: str) -> dict:
        """The stored baseline itself as JSON (what :meth:`load` reads; what a remote client
        makes a :class:`~modelloop.quality.baseline.Baseline` again)."""
        return json.loads(self.artifacts.read_bytes(self.get(ref)["digest"]))

    def load(self, ref: str):
        """The :class:`~modelloop.quality.baseline.Baseline` itself; ``ref`` may also be a path
        to baseline files (a SageMaker folder, statistics.json or a modelloop baseline JSON)."""
        from modelloop.quality.baseline import Baseline

        if os.path.exists(ref) and (os.path.isdir(ref) or ref.endswith(".json")):
            return read_baseline_files(ref)[0]
        return Baseline.from_dict(self.document(ref))

    def list(self) -> list[dict]:
        return [self._public(b) for b in self.store.list_baselines()]

    def delete(self, ref: str) -> None:
        self.store.delete_baseline(self.get(ref)["name"])

    # -- exporting ----------------------------------------------------------------------------
    def export(self, ref: str, dest: str | os.PathLike) -> list[Path]:
        """Write ``statistics.json`` and ``constraints.json`` (SageMaker layout) into ``dest``."""
        statistics, constraints = self.load(ref).to_sagemaker()
        folder = Path(dest)
        folder.mkdir(parents=True, exist_ok=True)
        return [
            _write_json(folder / "statistics.json", statistics),
            _write_json(folder / "constraints.json", constraints),
        ]

    @staticmethod
    def _public(record: dict) -> dict:
        out = dict(record)
        out["ref"] = (
            f"{out['dataset']}@{out['dataset_version']}"
            if out.get("dataset") and out.get("dataset_version") is not None
            else out.get("dataset")
        )
        out["n_columns"] = len(out.get("schema") or {})
        return out


def read_baseline_files(path: str | os.PathLike) -> tuple[Any, str]:
    """(Baseline, source) from a SageMaker folder, a statistics.json, or a modelloop JSON file."""
    from modelloop.quality.baseline import FORMAT, Baseline

    p = Path(path)
    if p.is_dir():
        stats_path, cons_path = p / "statistics.json", p / "constraints.json"
        if not stats_path.exists():
            raise NotFound(
                f"{p} has no statistics.json",
                hint="point at a folder with SageMaker's statistics.json (and constraints.json)",
            )
    elif p.is_file():
        stats_path, cons_path = p, p.with_name("constraints.json")
    else:
        raise NotFound(f"no such file or folder: {p}")
    doc = _read_json(stats_path)
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        return Baseline.from_dict(doc), "file"
    constraints = _read_json(cons_path) if cons_path.exists() else None
    return Baseline.from_sagemaker(doc, constraints), "sagemaker"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None


def _write_json(path: Path, doc: dict) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)  # readers never see half a file
    return path
