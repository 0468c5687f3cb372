"""The model registry: versioned, immutable model packages with approval, aliases and history.

A version's files are blobs in the artifact store (each named by its sha256), listed in the
metadata store with the package manifest. Loading materialises them in a local cache, verified
twice: each blob against its digest, then the package against its manifest — so a tampered file
fails with an error naming it. Status changes and alias moves are single transactions that also
append to the model's history and to the workspace event log, exactly once per change.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from modelloop.artifacts import ArtifactStore
from modelloop.data.refs import check_name, version_number
from modelloop.errors import InvalidInput, NotFound, parse_id
from modelloop.store import MetadataStore

ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
RESERVED_ALIASES = {"latest"}


def current_actor() -> str:
    """Who is acting: $MODELLOOP_USER, else the login name on this host."""
    user = os.environ.get("MODELLOOP_USER")
    if user:
        return user
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no login name (some containers)
        return f"uid{os.getuid()}@{socket.gethostname()}"


@dataclass(frozen=True)
class ModelRef:
    """``name``, ``name@3``, ``name@latest`` or ``name@champion`` (any alias)."""

    name: str
    selector: int | str = "latest"

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def parse_model_ref(text: str) -> ModelRef:
    text = str(text).removeprefix("models:/")
    name, sep, tail = text.partition("@")
    if not sep and "/" in name:  # MLflow style models:/name/3
        name, _, tail = name.partition("/")
    check_name(name, "model")
    if not tail or tail == "latest":
        return ModelRef(name)
    number = version_number(tail, ref=text)  # ASCII digits in range ('²' is not a version)
    if number is not None:
        return ModelRef(name, number)
    check_alias(tail)
    return ModelRef(name, tail)


def check_alias(alias: str) -> str:
    if not ALIAS_RE.match(alias or "") or alias in RESERVED_ALIASES:
        raise InvalidInput(
            f"invalid alias name {alias!r}",
            hint="an alias starts with a letter and has up to 64 letters, digits, '_' or '-' "
                 "(and is not 'latest' or a number)",
        )
    return alias


class Registry:
    """The registered models of a workspace."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, cache_dir: Path, datasets=None,
                 deployments=None):
        self.store = store
        self.artifacts = artifacts
        self.cache_dir = Path(cache_dir)
        self.datasets = datasets
        # ref -> where it is served now; given by the workspace (serving lives a layer above)
        self.deployments = deployments

    # -- resolving ----------------------------------------------------------------------------
    def resolve(self, ref: str | ModelRef) -> tuple[str, int]:
        """(name, version) for any reference; clear errors for unknown models/versions/aliases."""
        ref = parse_model_ref(ref) if isinstance(ref, str) else ref
        model = self.store.get_model(ref.name)
        if model is None:
            known = [m["name"] for m in self.store.list_models()]
            raise NotFound(f"no model named {ref.name!r}",
                           hint=f"known models: {', '.join(known)}" if known else
                           "register one with 'modelloop models register NAME --job JOB'")
        if ref.selector == "latest":
            return ref.name, self.store.get_model_version(ref.name)["version"]
        if isinstance(ref.selector, int):
            if self.store.get_model_version(ref.name, ref.selector) is None:
                latest = self.store.get_model_version(ref.name)["version"]
                raise NotFound(f"model {ref.name!r} has no version {ref.selector}",
                               hint=f"its versions are 1 to {latest}")
            return ref.name, ref.selector
        aliases = self.store.model_aliases(ref.name)
        if ref.selector not in aliases:
            raise NotFound(f"model {ref.name!r} has no alias {ref.selector!r}",
                           hint=f"its aliases: {', '.join(aliases) or 'none yet'}")
        return ref.name, aliases[ref.selector]

    def get(self, ref: str | ModelRef) -> dict:
        """A version's record, with its aliases and file list."""
        name, version = self.resolve(ref)
        record = self.store.get_model_version(name, version)
        record["ref"] = f"{name}@{version}"
        record["aliases"] = sorted(a for a, v in self.store.model_aliases(name).items() if v == version)
        record["files"] = self.store.model_files(name, version)
        return record

    def list(self) -> list[dict]:
        return self.store.list_models()

    def versions(self, name: str) -> list[dict]:
        self.resolve(name)
        aliases = self.store.model_aliases(name)
        out = []
        for v in self.store.list_model_versions(name):
            v["aliases"] = sorted(a for a, ver in aliases.items() if ver == v["version"])
            out.append(v)
        return out

    def history(self, name: str) -> list[dict]:
        self.resolve(name)
        return self.store.model_history(name)

    # -- registering --------------------------------------------------------------------------
    def register(self, name: str, package_dir: str | os.PathLike, *, job_id: int | None = None,
                 actor: str | None = None, description: str | None = None) -> dict:
        """Register a model package folder as the next version of ``name`` (status pending)."""
        from modelloop.registry.package import verify_package

        check_name(name, "model")
        package_dir = Path(package_dir)
        if not package_dir.is_dir():
            raise NotFound(f"no model package folder at {package_dir}")
        manifest = verify_package(package_dir)
        data = manifest.to_dict()
        files = []
        for rel in sorted(_package_files(package_dir)):
            blob = self.artifacts.put_file(package_dir / rel)
            files.append({"path": rel, "digest": blob.digest, "size": blob.size})
        record = self.store.register_model_version(
            name=name, files=files, manifest=data, package_hash=manifest.package_hash,
            flavor=data.get("flavor", "custom"), task=data.get("task"), job_id=job_id,
            actor=actor or current_actor(), description=description,
        )
        return self.get(f"{name}@{record['version']}")

    def register_from_job(self, name: str, job_id: int | str, *, actor: str | None = None,
                          description: str | None = None) -> dict:
        """Register the model package a (succeeded) training or tuning job produced."""
        job_id = parse_id(job_id, "job", prefix="job-")
        job = self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", hint="list jobs with 'modelloop jobs list'")
        files = [a for a in self.store.job_artifacts(job_id) if a["name"].startswith("model/")]
        if job["status"] != "succeeded" or not files:
            raise InvalidInput(f"job {job_id} ({job['kind']}, {job['status']}) produced no model package",
                               hint="register the model of a succeeded train or tune job")
        staging = self.cache_dir.parent / f"register-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            for f in files:
                self.artifacts.fetch(f["digest"], staging / f["name"].removeprefix("model/"))
            return self.register(name, staging, job_id=job_id, actor=actor, description=description)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def describe(self, ref: str) -> dict:
        """Everything a person asks about a version: record, lineage, where it is deployed."""
        version = self.get(ref)
        deployed = self.deployments(version["ref"]) if self.deployments else []
        return {"version": version, "lineage": self.lineage(version["ref"]),
                "deployments": deployed, "history": self.store.model_history(version["name"])}

    # -- approval -----------------------------------------------------------------------------
    def approve(self, ref: str, *, reason: str | None = None, actor: str | None = None,
                force: bool = False) -> dict:
        name, version = self.resolve(ref)
        allowed = ("pending", "rejected") if force else ("pending",)
        if force and not reason:
            raise InvalidInput("approving a rejected version needs a reason", hint="pass --reason '…'")
        self.store.set_model_status(name, version, "approved", actor=actor or current_actor(),
                                    reason=reason, allowed_from=allowed)
        return self.get(f"{name}@{version}")

    def reject(self, ref: str, *, reason: str | None = None, actor: str | None = None) -> dict:
        name, version = self.resolve(ref)
        self.store.set_model_status(name, version, "rejected", actor=actor or current_actor(),
                                    reason=reason, allowed_from=("pending", "approved"))
        return self.get(f"{name}@{version}")

    # -- aliases ------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version_ref: str | int, *, reason: str | None = None,
                  actor: str | None = None, force: bool = False) -> dict:
        """Point ``alias`` at a version of the same model (given as ``3`` or ``name@3``)."""
        check_name(name, "model")
        check_alias(alias)
        target = parse_model_ref(version_ref if "@" in str(version_ref) else f"{name}@{version_ref}")
        if target.name != name:
            raise InvalidInput(f"{version_ref} is a version of model {target.name!r}, not of {name!r}",
                               hint="an alias can only point at a version of its own model")
        _, version = self.resolve(target)
        record = self.store.get_model_version(name, version)
        if record["status"] == "rejected" and not force:
            raise InvalidInput(f"{name}@{version} is rejected; an alias should not point at it",
                               hint="approve it first, or pass --force")
        self.store.move_alias(name, alias, version, actor=actor or current_actor(), reason=reason)
        return self.get(f"{name}@{version}")

    def remove_alias(self, name: str, alias: str, *, reason: str | None = None, actor: str | None = None) -> None:
        check_alias(alias)
        self.resolve(name)
        self.store.move_alias(name, alias, None, actor=actor or current_actor(), reason=reason)

    def rollback(self, name: str, alias: str = "champion", *, reason: str | None = None,
                 actor: str | None = None) -> dict:
        """Move ``alias`` back to the version it held before its current one.

        The alias's history is read as a stack: each move pushes a version, each rollback pops
        one, so repeated rollbacks keep walking back instead of toggling between two versions.
        """
        check_alias(alias)
        self.resolve(name)
        stack: list[int] = []
        for h in self.store.model_history(name):
            if h["alias"] != alias:
                continue
            if h["action"] == "alias_set":
                stack.append(h["version"])
            elif h["action"] == "rolled_back" and stack:
                stack.pop()
            elif h["action"] == "alias_removed":
                stack.clear()
        current = self.store.model_aliases(name).get(alias)
        if current is None or len(stack) < 2:
            raise InvalidInput(f"{name}@{alias} has no earlier version to roll back to",
                               hint=f"see 'modelloop models history {name}'")
        target = stack[-2]
        self.store.move_alias(name, alias, target, actor=actor or current_actor(),
                              reason=reason or f"rollback from version {current}",
                              action="rolled_back", expected=current)
        return self.get(f"{name}@{target}")

    # -- using ---------------------------------------------------------------------------------
    def package_dir(self, ref: str | ModelRef) -> Path:
        """A verified local copy of the version's package folder (cached by package hash)."""
        from modelloop.registry.package import verify_package

        name, version = self.resolve(ref)
        record = self.store.get_model_version(name, version)
        target = self.cache_dir / record["package_hash"]
        if not target.is_dir():
            staging = self.cache_dir / f".{record['package_hash']}.{os.getpid()}.{uuid.uuid4().hex}"
            for f in self.store.model_files(name, version):
                self.artifacts.fetch(f["digest"], staging / f["path"])
            staging.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(staging, target)
            except OSError:  # another process got there first
                shutil.rmtree(staging, ignore_errors=True)
        verify_package(target)
        return target

    def load(self, ref: str | ModelRef):
        """The model, ready to ``predict``; refuses a package whose files do not match."""
        from modelloop.registry.package import load_package

        return load_package(self.package_dir(ref), verify=True)

    def export(self, ref: str | ModelRef, dest: str | os.PathLike, *, format: str = "mlflow") -> Path:
        """Write a version elsewhere: ``mlflow`` (an MLflow model folder) or ``package`` (ours)."""
        if format == "mlflow":
            from modelloop.registry.mlflow_interop import export_mlflow

            return export_mlflow(self.package_dir(ref), dest)
        if format == "package":
            dest = Path(dest)
            if dest.exists():
                raise InvalidInput(f"{dest} already exists", hint="export to a new folder")
            shutil.copytree(self.package_dir(ref), dest)
            return dest
        raise InvalidInput(f"unknown export format {format!r}", hint="use mlflow or package")

    def import_mlflow(self, name: str, folder: str | os.PathLike, *, task: str | None = None,
                      actor: str | None = None, description: str | None = None) -> dict:
        """Register an MLflow model folder as the next version of ``name``."""
        from modelloop.registry.mlflow_interop import import_mlflow

        check_name(name, "model")
        folder = Path(folder)
        if not (folder / "MLmodel").is_file():
            raise NotFound(f"no MLflow model at {folder} (it has no MLmodel file)",
                           hint="give the folder that holds MLmodel")
        staging = self.cache_dir.parent / f"import-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            import_mlflow(folder, staging, task=task)
            return self.register(name, staging, actor=actor, description=description)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def mark_deployed(self, ref: str, where: str, *, actor: str | None = None) -> None:
        name, version = self.resolve(ref)
        self.store.mark_model_deployed(name, version, actor=actor or current_actor(), where=where)

    def delete(self, ref: str, *, reason: str | None = None, actor: str | None = None) -> None:
        name, version = self.resolve(ref)
        self.store.delete_model_version(name, version, actor=actor or current_actor(), reason=reason)

    def lineage(self, ref: str) -> dict:
        """From the version back to its job, the dataset versions it used and their files."""
        record = self.get(ref)
        lineage = dict(record["manifest"].get("lineage") or {})
        job = self.store.get_job(record["job_id"]) if record.get("job_id") else None
        inputs = (job or {}).get("inputs") or lineage.get("inputs") or []
        datasets = []
        for item in inputs:
            if item.get("kind") == "dataset" and self.datasets is not None:
                try:
                    sources = self.datasets.sources(item["ref"])
                except NotFound:
                    sources = []
                datasets.append({**item, "sources": sources})
        return {"job": job, "datasets": datasets, "split": (job or {}).get("info", {}).get("split")}


def _package_files(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
