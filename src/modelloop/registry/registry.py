"""The model registry: versioned, immutable model packages with approval, aliases and history.

A version's files are blobs in the artifact store (each named by its sha256), listed in the
metadata store with the package manifest. Loading materialises them in a local cache, verified
twice: each blob against its digest, then the package against the package hash the registry
recorded — so a tampered file fails with an error naming it, and a tampered cache (even with a
manifest rewritten to match) is fetched again. Status changes and alias moves are single
transactions that also append to the model's history and to the workspace event log, exactly
once per change.

Model files can be code (a pickle runs whatever its author wrote). The registry records which
versions hold code, registers them only when a person trusts them (``trust_pickle`` with a
reason, kept in the history with who gave it) and refuses to hand out an untrusted one. Packages
written by this workspace's own training jobs are trusted as such. Aliases in
``gated_aliases`` (``champion`` by default) point only at approved versions unless forced.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import uuid
from pathlib import Path

from modelloop.artifacts import ArtifactStore
from modelloop.common.status import ApprovalStatus, JobStatus
from modelloop.config import acting_for, current_actor
from modelloop.data.refs import check_name
from modelloop.errors import IntegrityError, InvalidInput, NotFound, UntrustedCode, parse_id
from modelloop.registry.refs import ModelRef, check_alias, parse_model_ref
from modelloop.store import MetadataStore

#: Aliases that point only at approved versions unless forced ([registry] in modelloop.toml).
DEFAULT_GATED_ALIASES = ("champion",)
TRUST_HINT = "--trust-pickle --reason '…' (SDK: trust_pickle=True, reason='…')"


def trusting_actor() -> str:
    """Who gives trust to code: the operating-system account (from the uid, not from the
    environment), with the API caller a server acts for, or else $MODELLOOP_USER, beside it."""
    try:
        account = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers)
        account = f"uid{os.getuid()}"
    who = f"{account}@{socket.gethostname()}"
    named = acting_for() or os.environ.get("MODELLOOP_USER")
    return f"{named} (os user {who})" if named and named != account else who


class Registry:
    """The registered models of a workspace."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, cache_dir: Path, datasets=None,
                 deployments=None, gated_aliases=DEFAULT_GATED_ALIASES, four_eyes: bool = False):
        self.gated_aliases = tuple(gated_aliases)
        self.four_eyes = four_eyes
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
            known = [m["name"] for m in self.store.list_models(limit=11)]  # a hint, not a list
            shown = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
            raise NotFound(f"no model named {ref.name!r}",
                           hint=f"known models: {shown}" if known else
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
        # what the manifest says, too: a version registered before trust was recorded
        record["holds_code"] = bool(record["holds_code"] or self._code_in(record))
        record["fast_path"] = _fast_path(record)
        return record

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        """The models by name, each with its latest version and aliases; a page of ``limit``
        after ``offset`` when given (read by the database: a workspace may hold thousands)."""
        return self.store.list_models(limit=limit, offset=offset)

    def aliases(self, name: str) -> dict[str, int]:
        """alias -> version of one model (what its page shows, without listing every model)."""
        self.resolve(name)
        return self.store.model_aliases(name)

    def versions(self, name: str, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        self.resolve(name)
        aliases = self.store.model_aliases(name)
        out = []
        for v in self.store.list_model_versions(name, limit=limit, offset=offset):
            v["aliases"] = sorted(a for a, ver in aliases.items() if ver == v["version"])
            v["holds_code"] = bool(v["holds_code"] or self._code_in(v))
            out.append(v)
        return out

    def history(self, name: str, *, limit: int | None = None, offset: int = 0,
                newest_first: bool = False) -> list[dict]:  # fmt: skip
        self.resolve(name)
        return self.store.model_history(name, limit=limit, offset=offset, newest_first=newest_first)

    # -- registering --------------------------------------------------------------------------
    def register(self, name: str, package_dir: str | os.PathLike, *, job_id: int | None = None,
                 actor: str | None = None, description: str | None = None,
                 trust_pickle: bool = False, reason: str | None = None) -> dict:
        """Register a model package folder as the next version of ``name`` (status pending).

        A package whose files hold code is refused unless ``trust_pickle`` (with a ``reason``);
        the trust is recorded with the version. Nothing in the folder is loaded."""
        from modelloop.registry.flavors import get_flavor
        from modelloop.registry.package import check_folder, verify_package

        check_name(name, "model")
        _check_trust_args(trust_pickle, reason)
        package_dir = Path(package_dir)
        if not package_dir.is_dir():
            raise NotFound(f"no model package folder at {package_dir}")
        check_folder(package_dir)
        manifest = verify_package(package_dir)
        code = get_flavor(manifest.flavor).code_in(manifest.flavor_info)
        if code and not trust_pickle:
            raise UntrustedCode(
                f"the model package at {package_dir} holds code that runs when it loads ({code})",
                hint=f"register it only if you trust who made it: {TRUST_HINT}")
        trust = {"actor": trusting_actor(), "reason": reason} if trust_pickle else None
        return self._register(name, package_dir, manifest, job_id=job_id, actor=actor,
                              description=description, holds_code=bool(code), trust=trust)

    def _register(self, name, package_dir: Path, manifest, *, job_id, actor, description,
                  holds_code: bool, trust: dict | None) -> dict:
        data = manifest.to_dict()
        files = []
        for rel in sorted(_package_files(package_dir)):
            blob = self.artifacts.put_file(package_dir / rel)
            files.append({"path": rel, "digest": blob.digest, "size": blob.size})
        record = self.store.register_model_version(
            name=name, files=files, manifest=data, package_hash=manifest.package_hash,
            flavor=data.get("flavor", "custom"), task=data.get("task"), job_id=job_id,
            actor=actor or current_actor(), description=description, holds_code=holds_code,
            trust=trust,
        )
        return self.get(f"{name}@{record['version']}")

    def trust(self, ref: str, *, reason: str | None = None) -> dict:
        """Trust the code a registered version's files hold (recorded: who, when, why)."""
        _check_trust_args(True, reason)
        name, version = self.resolve(ref)
        record = self.store.get_model_version(name, version)
        if not record["holds_code"] and self._code_in(record) is None:
            raise InvalidInput(f"{name}@{version} holds no code; there is nothing to trust")
        self.store.trust_model_version(name, version, actor=trusting_actor(), reason=reason)
        return self.get(f"{name}@{version}")

    @staticmethod
    def _code_in(record: dict) -> str | None:
        from modelloop.registry.flavors import get_flavor

        m = record["manifest"]
        return get_flavor(m.get("flavor", record["flavor"])).code_in(m.get("flavor_info") or {})

    def register_from_job(self, name: str, job_id: int | str, *, actor: str | None = None,
                          description: str | None = None) -> dict:
        """Register the model package a (succeeded) training or tuning job produced."""
        job_id = parse_id(job_id, "job", prefix="job-")
        job = self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", hint="list jobs with 'modelloop jobs list'")
        files = [a for a in self.store.job_artifacts(job_id) if a["name"].startswith("model/")]
        if job["status"] != JobStatus.SUCCEEDED or not files:
            raise InvalidInput(f"job {job_id} ({job['kind']}, {job['status']}) produced no model package",
                               hint="register the model of a succeeded train or tune job")
        staging = self.cache_dir.parent / f"register-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            from modelloop.registry.flavors import get_flavor
            from modelloop.registry.package import check_relative, verify_package

            for f in files:
                rel = check_relative(f["name"].removeprefix("model/"), f"job {job_id}'s artifacts")
                self.artifacts.fetch(f["digest"], staging / rel)
            manifest = verify_package(staging)
            code = get_flavor(manifest.flavor).code_in(manifest.flavor_info)
            # the workspace's own job wrote these files: it ran the code they hold already
            trust = {"actor": actor or current_actor(),
                     "reason": f"written by job {job_id} of this workspace"} if code else None
            return self._register(name, staging, manifest, job_id=job_id, actor=actor,
                                  description=description, holds_code=bool(code), trust=trust)
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
        allowed = (ApprovalStatus.PENDING, ApprovalStatus.REJECTED) if force else (ApprovalStatus.PENDING,)
        if force and not reason:
            raise InvalidInput("approving a rejected version needs a reason", hint="pass --reason '…'")
        actor = actor or current_actor()
        if self.four_eyes:
            registered_by = (self.store.get_model_version(name, version) or {}).get("created_by")
            if registered_by == actor:
                from modelloop.errors import Forbidden

                raise Forbidden(f"{name}@{version} was registered by {actor!r}, who may not also "
                                "approve it ([registry] four_eyes)",
                                hint="another person or token approves it")  # fmt: skip
        self.store.set_model_status(name, version, ApprovalStatus.APPROVED, actor=actor,
                                    reason=reason, allowed_from=allowed)
        return self.get(f"{name}@{version}")

    def reject(self, ref: str, *, reason: str | None = None, actor: str | None = None) -> dict:
        name, version = self.resolve(ref)
        self.store.set_model_status(name, version, ApprovalStatus.REJECTED, actor=actor or current_actor(),
                                    reason=reason, allowed_from=(ApprovalStatus.PENDING, ApprovalStatus.APPROVED))
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
        allowed = self._allowed_status(alias)
        if force:
            status = self.store.get_model_version(name, version)["status"]
            if status not in allowed:
                if not reason:
                    raise InvalidInput(f"forcing {name}@{alias} onto {status} version {version} "
                                       "needs a reason", hint="pass --reason '…'")
                reason = f"forced while {status}: {reason}"
            allowed = None
        self.store.move_alias(name, alias, version, actor=actor or current_actor(), reason=reason,
                              allowed_status=allowed)
        return self.get(f"{name}@{version}")

    def alias_version(self, name: str, alias: str) -> int | None:
        """The version ``alias`` of model ``name`` points at; None if the model or alias is not
        there (yet)."""
        if self.store.get_model(name) is None:
            return None
        return self.store.model_aliases(name).get(alias)

    def _allowed_status(self, alias: str) -> tuple[str, ...]:
        """The statuses a version needs for ``alias`` to point at it."""
        return (ApprovalStatus.APPROVED,) if alias in self.gated_aliases else (
            ApprovalStatus.PENDING, ApprovalStatus.APPROVED)

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
                              action="rolled_back", expected=current,
                              allowed_status=self._allowed_status(alias))
        return self.get(f"{name}@{target}")

    # -- using ---------------------------------------------------------------------------------
    def package_dir(self, ref: str | ModelRef) -> Path:
        """A verified local copy of the version's package folder (cached by package hash).

        The copy is checked against the package hash the registry recorded, not only against
        its own manifest (which whoever changed the cache could rewrite): a mismatch fetches
        the version again. A version holding code nobody trusted is refused (UntrustedCode)."""
        name, version = self.resolve(ref)
        record = self.store.get_model_version(name, version)
        code = self._code_in(record)
        if (code or record["holds_code"]) and not record["trusted_by"]:
            raise UntrustedCode(
                f"{name}@{version} holds code that runs when it loads "
                f"({code or record['flavor']}) and nobody trusted it",
                hint=f"if you trust who made it: 'modelloop models trust {name}@{version} "
                f"--reason …' (registering with {TRUST_HINT} records the same)")
        return self._cached(name, version, record["package_hash"])

    def _cached(self, name: str, version: int, package_hash: str) -> Path:
        from modelloop.registry.package import verify_package

        target = self.cache_dir / package_hash
        for attempt in (1, 2):
            if not target.is_dir():
                staging = self.cache_dir / f".{package_hash}.{os.getpid()}.{uuid.uuid4().hex}"
                for f in self.store.model_files(name, version):
                    self.artifacts.fetch(f["digest"], staging / f["path"])
                staging.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(staging, target)
                except OSError:  # another process got there first
                    shutil.rmtree(staging, ignore_errors=True)
            try:
                verify_package(target, expected_hash=package_hash)
                return target
            except (IntegrityError, InvalidInput):
                if attempt == 2:
                    raise
                # the cache is not what the registry recorded: set it aside, fetch it again
                aside = self.cache_dir / f".bad-{package_hash}.{uuid.uuid4().hex}"
                with contextlib.suppress(OSError):
                    os.replace(target, aside)
                shutil.rmtree(aside, ignore_errors=True)
        raise AssertionError("unreachable")

    def load(self, ref: str | ModelRef):
        """The model, ready to ``predict``; refuses a package whose files do not match, and one
        holding code that nobody trusted."""
        from modelloop.registry.package import load_package

        # package_dir refused untrusted code, and checked every file against the package hash
        # the registry recorded: what it gives out may be loaded without hashing it again
        return load_package(self.package_dir(ref), verify=False, trust_pickle=True)

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
                      actor: str | None = None, description: str | None = None,
                      trust_pickle: bool = False, reason: str | None = None,
                      tracking_uri: str | None = None) -> dict:
        """Register an MLflow model as the next version of ``name``: a folder, or a URI of a
        tracking store (``runs:/RUN/model``, ``models:/NAME/V``; ``tracking_uri`` or
        ``$MLFLOW_TRACKING_URI``), whose files MLflow copies here first.

        MLflow's sklearn pickles and pyfunc loaders are code: imported only with
        ``trust_pickle`` and a ``reason`` (recorded), and never unpickled before that."""
        from modelloop.registry.mlflow_interop import (
            download_mlflow_model,
            import_mlflow,
            is_mlflow_uri,
        )

        check_name(name, "model")
        _check_trust_args(trust_pickle, reason)
        work = self.cache_dir.parent / f"import-{os.getpid()}-{uuid.uuid4().hex}"
        staging = work / "package"
        work.mkdir(parents=True)
        try:
            if is_mlflow_uri(folder):
                source = str(folder)
                folder = download_mlflow_model(source, work / "mlflow", tracking_uri=tracking_uri)
            else:
                folder, source = Path(folder), None
                if not (folder / "MLmodel").is_file():
                    raise NotFound(f"no MLflow model at {folder} (it has no MLmodel file)",
                                   hint="give the folder that holds MLmodel, or a runs:/ or "
                                        "models:/ URI")
            import_mlflow(folder, staging, task=task, trust_pickle=trust_pickle, source=source)
            return self.register(name, staging, actor=actor, description=description,
                                 trust_pickle=trust_pickle, reason=reason)
        finally:
            shutil.rmtree(work, ignore_errors=True)

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


def _fast_path(record: dict) -> dict:
    """Which path serves the version: its plan, or the plain pipeline and why."""
    from modelloop.registry.fastpath import describe

    m = record["manifest"]
    return describe(m.get("flavor_info"), m.get("flavor", record["flavor"]))


def _package_files(root: Path) -> list[str]:
    from modelloop.registry.package import check_folder

    return check_folder(root)


def _check_trust_args(trust_pickle: bool, reason: str | None) -> None:
    if trust_pickle and not (reason or "").strip():
        raise InvalidInput("trusting a model's code needs a reason (it is kept in the history)",
                           hint="pass --reason '…' with --trust-pickle")
