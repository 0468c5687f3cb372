"""The model package: an immutable folder with a manifest, the model's files and their hashes.

Layout::

    model.json        the manifest: flavor, task, signatures, classes, metrics, params, lineage,
                      Python and library versions, and the sha256 of every other file
    model.skops …     the flavor's files (see flavors.py)
    extra/…           files the caller asked to keep with the model

``package_hash`` is the sha256 of the manifest's canonical JSON, which holds every file's sha256:
two packages with the same hash have the same bytes, so it serves as a model version's content
hash. A folder is verified against its manifest before anything in it is loaded; a changed,
missing or unexpected file fails with an IntegrityError naming that file.

The hash check says the files are the ones the manifest lists, not who wrote them. So a folder
must also stay inside itself — every path in the manifest is relative and never climbs out, and
no symbolic link (which could pull in any file of the machine) is accepted anywhere in it — and
files that hold code (pickles; see ``Flavor.code_in``) load only with ``trust_pickle=True``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import stat
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelloop.common.hashing import sha256_bytes, sha256_file
from modelloop.common.jsonable import to_jsonable
from modelloop.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound, UntrustedCode
from modelloop.registry.signature import ColumnSpec, Signature
from modelloop.registry.versions import library_versions, warn_on_version_drift

MANIFEST = "model.json"
FORMAT_VERSION = 1
TASKS = ("binary", "multiclass", "regression")
#: Flavors whose models are scikit-learn pipelines, which may get a fast-path plan.
PLANNED_FLAVORS = ("sklearn", "lightgbm", "xgboost")


@dataclass
class Manifest:
    """What a package holds and how to read it back; stored as ``model.json``."""

    flavor: str
    signature: dict
    files: dict[str, str]
    flavor_info: dict = field(default_factory=dict)
    task: str | None = None
    output_signature: dict | None = None
    classes: list | None = None
    metrics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)
    python: str = ""
    libraries: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def package_hash(self) -> str:
        body = json.dumps(self._body(), sort_keys=True, separators=(",", ":"), default=str)
        return sha256_bytes(body)

    def _body(self) -> dict:
        return asdict(self)

    def to_dict(self) -> dict:
        return {**self._body(), "package_hash": self.package_hash}

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        data = dict(data)
        data.pop("package_hash", None)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise IntegrityError(
                f"{MANIFEST} has unknown field {unknown[0]!r}",
                hint="it was written by a newer modelloop, or edited by hand",
            )
        for name, kind in _FIELD_TYPES.items():
            if name in data and data[name] is not None and not isinstance(data[name], kind):
                raise IntegrityError(
                    f"{MANIFEST} field {name!r} is a {type(data[name]).__name__}, not a "
                    f"{kind[0].__name__ if isinstance(kind, tuple) else kind.__name__}",
                    hint="the manifest was edited by hand; re-package the model",
                )
        missing = [f for f in ("flavor", "signature", "files") if f not in data]
        if missing:
            raise IntegrityError(f"{MANIFEST} has no {missing[0]!r} field",
                                 hint="re-package the model")
        return cls(**data)

    @property
    def input_signature(self) -> Signature:
        return Signature.from_dict(self.signature)


_FIELD_TYPES = {
    "flavor": str, "signature": dict, "files": dict, "flavor_info": dict, "task": str,
    "output_signature": dict, "classes": list, "metrics": dict, "params": dict, "lineage": dict,
    "python": str, "libraries": dict, "created_at": str, "format_version": int,
}


def check_relative(path: Any, where: str) -> str:
    """``path`` if it is a plain relative path inside its folder; InvalidInput naming it if not.

    Refuses absolute paths, ``..`` anywhere, empty or ``.`` parts and backslashes, so a manifest
    or MLmodel file can never point at a file outside its own folder."""
    text = path if isinstance(path, str) else None
    parts = (text or "").split("/")
    if (not text or text.startswith("/") or "\\" in text or "\x00" in text
            or any(p in ("", ".", "..") for p in parts) or Path(text).is_absolute()):
        raise InvalidInput(
            f"{where} names {path!r}, which is not a path inside the model folder",
            hint="paths in a model folder are relative, without '..'; refusing the folder",
        )
    return text


def check_folder(root: str | os.PathLike) -> list[str]:
    """The relative paths of the regular files under ``root``; refuses symbolic links.

    A link (to a file or a folder) would bring whatever it points at into the registry — a
    secret outside the folder — so a model folder holds plain files and folders only."""
    root = Path(root)
    out = []
    for here, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(here) / name
            mode = os.lstat(path).st_mode
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(mode):
                raise InvalidInput(
                    f"{rel!r} in {root} is a symbolic link; model folders must hold plain files",
                    hint="copy the file it points at into the folder, if it belongs to the model",
                )
            if name in files:
                if not stat.S_ISREG(mode):
                    raise InvalidInput(f"{rel!r} in {root} is not a regular file",
                                       hint="a model folder holds plain files only")
                out.append(rel)
    return sorted(out)


def _listing(root: Path) -> list[str]:
    return check_folder(root)


# -- writing -------------------------------------------------------------------------------------
def save_package(
    model: Any,
    path: str | os.PathLike,
    *,
    signature: Signature | dict,
    output_signature: Signature | dict | None = None,
    task: str | None = None,
    metrics: dict | None = None,
    params: dict | None = None,
    lineage: dict | None = None,
    extra_files: dict | None = None,
    flavor: str | None = None,
    probe=None,
    fast_path: bool = True,
) -> Manifest:
    """Write ``model`` as a package folder at ``path`` (which must not exist yet).

    The folder is written under a temporary sibling name and renamed into place, so ``path``
    either holds a complete package or nothing. ``extra_files`` maps a name under ``extra/`` to
    a source file path or to bytes. A scikit-learn pipeline also gets its fast-path plan,
    checked on ``probe`` (a sample of the rows it was fitted on, optional) and on synthetic rows
    (:mod:`modelloop.registry.fastpath`); ``fast_path=False`` leaves it out (the reason says so).
    """
    from modelloop.registry.flavors import get_flavor, infer_flavor, infer_task

    target = Path(path)
    if target.exists():
        raise AlreadyExists(
            f"{target} already exists",
            hint="packages are immutable: write the new one to another folder",
        )
    if task is not None and task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}", hint=f"use one of {', '.join(TASKS)}")
    signature = signature if isinstance(signature, Signature) else Signature.from_dict(signature)
    if isinstance(output_signature, dict):
        output_signature = Signature.from_dict(output_signature)
    kind = get_flavor(flavor) if flavor else infer_flavor(model)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        info = kind.save(model, staging)
        if kind.name in PLANNED_FLAVORS and fast_path:
            from modelloop.registry.fastpath import compile_into

            info["fast_path"] = compile_into(model, staging, signature, probe)
        elif kind.name in PLANNED_FLAVORS:
            info["fast_path"] = {"path": "plain", "reason": "packaged with fast_path=False"}
        for name, source in (extra_files or {}).items():
            dest = staging / "extra" / name
            if ".." in Path(name).parts or Path(name).is_absolute():
                raise InvalidInput(
                    f"extra file name {name!r} leaves the package folder",
                    hint="use a relative name such as 'report.html'",
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, bytes | bytearray):
                dest.write_bytes(source)
            else:
                shutil.copyfile(source, dest)
        classes = info.get("classes") if "classes" in info else kind.classes(model)
        if task is None:
            task = infer_task(model, classes)
        if output_signature is None:
            output_signature = _default_output(task, classes)
        manifest = Manifest(
            flavor=kind.name,
            signature=signature.to_dict(),
            files={rel: sha256_file(staging / rel) for rel in _listing(staging)},
            flavor_info=info,
            task=task,
            output_signature=None if output_signature is None else output_signature.to_dict(),
            classes=classes,
            metrics=to_jsonable(metrics or {}, nonfinite="keep"),
            params=to_jsonable(params or {}, nonfinite="keep"),
            lineage=to_jsonable(lineage or {}, nonfinite="keep"),
            python=platform.python_version(),
            libraries=library_versions(kind.libraries),
            created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        )
        (staging / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, default=str))
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _default_output(task: str | None, classes: list | None) -> Signature | None:
    from modelloop.registry.signature import dtype_to_type

    if task == "regression":
        return Signature((ColumnSpec("prediction", "double"),))
    if classes:
        import numpy as np

        return Signature((ColumnSpec("prediction", dtype_to_type(np.asarray(classes).dtype)),))
    return None


# -- verifying -----------------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike) -> Manifest:
    """The manifest of a package folder, without checking the files."""
    root = Path(path)
    file = root / MANIFEST
    if not file.is_file():
        if not root.is_dir():
            raise NotFound(f"no model package at {root}")
        raise IntegrityError(
            f"{root} has no {MANIFEST}: not a model package, or it lost its manifest",
            hint="re-package the model",
        )
    if file.is_symlink():
        raise InvalidInput(f"{MANIFEST} in {root} is a symbolic link",
                           hint="a model folder holds plain files only")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        manifest = Manifest.from_dict(data)
    except (ValueError, TypeError) as e:
        raise IntegrityError(
            f"{MANIFEST} in {root} is unreadable: {e}",
            hint="the manifest was edited or truncated; re-package the model",
        ) from None
    if data.get("package_hash") and data["package_hash"] != manifest.package_hash:
        raise IntegrityError(
            f"{MANIFEST} in {root} was changed after packaging",
            hint="its content no longer matches the package hash it records",
        )
    _check_paths(manifest, root)
    return manifest


def _check_paths(manifest: Manifest, root: Path) -> None:
    """Every path the manifest names stays in the package, and every file it loads is listed."""
    from modelloop.registry.flavors import get_flavor

    for rel, digest in manifest.files.items():
        check_relative(rel, f"{MANIFEST} in {root} (files)")
        if not isinstance(digest, str):
            raise IntegrityError(f"{MANIFEST} in {root}: the sha256 of {rel!r} is not text")
    for key in get_flavor(manifest.flavor).path_fields:
        value = manifest.flavor_info.get(key)
        if value is None:
            continue
        rel = check_relative(value, f"{MANIFEST} in {root} (flavor_info.{key})")
        if rel not in manifest.files and not any(f.startswith(rel + "/") for f in manifest.files):
            raise IntegrityError(
                f"{MANIFEST} in {root}: flavor_info.{key} names {rel!r}, which the package "
                "does not list", hint="re-package the model")


def verify_package(path: str | os.PathLike, expected_hash: str | None = None, *,
                   manifest: Manifest | None = None) -> Manifest:
    """Check every file against the manifest; return the manifest or raise IntegrityError.

    Fails on the first changed, missing or unexpected file, naming it. ``expected_hash`` (the
    package hash recorded elsewhere, e.g. in the registry) also guards the manifest itself.
    ``manifest``: the folder's manifest as :func:`read_manifest` just read it (not read again).
    """
    root = Path(path)
    manifest = read_manifest(root) if manifest is None else manifest
    if expected_hash is not None and manifest.package_hash != expected_hash:
        raise IntegrityError(
            f"package at {root} has hash {manifest.package_hash[:12]}…, expected "
            f"{expected_hash[:12]}…",
            hint="the package is not the one recorded",
        )
    on_disk = set(_listing(root)) - {MANIFEST}
    for rel in sorted(manifest.files):
        if rel not in on_disk:
            raise IntegrityError(
                f"model package file {rel!r} is missing from {root}",
                hint="re-fetch or re-package the model",
            )
        if sha256_file(root / rel) != manifest.files[rel]:
            raise IntegrityError(
                f"model package file {rel!r} in {root} does not match its "
                "recorded sha256 (tampered or corrupted)",
                hint="refusing to load it; re-fetch or re-package the model",
            )
    extra = sorted(on_disk - set(manifest.files))
    if extra:
        raise IntegrityError(
            f"model package at {root} has unexpected file {extra[0]!r}",
            hint="packages are immutable; remove the file or re-package the model",
        )
    return manifest


# -- loading -------------------------------------------------------------------------------------
def load_package(path: str | os.PathLike, verify: bool = True, *,
                 trust_pickle: bool = False) -> PackagedModel:
    """Load a package folder, ready to ``predict``.

    A package whose files hold code (a pickle, see ``Flavor.code_in``) is refused with
    UntrustedCode unless ``trust_pickle``: only say so for a package whose author you trust.
    Such a package is always verified first, whatever ``verify`` says.
    """
    from modelloop.registry.flavors import get_flavor

    root = Path(path)
    manifest = read_manifest(root)
    kind = get_flavor(manifest.flavor)
    code = kind.code_in(manifest.flavor_info)
    if code and not trust_pickle:
        raise UntrustedCode(
            f"the model package at {root} holds code that runs when it loads ({code})",
            hint="load it only if you trust who made it: load_package(..., trust_pickle=True)",
        )
    if verify or code:
        verify_package(root, manifest=manifest)
    try:
        model = kind.load(root, manifest.flavor_info)
    finally:  # after loading: the libraries it needed are imported, and their versions known
        warn_on_version_drift(manifest.libraries)
    return PackagedModel(model, manifest, root)


_UNREAD = object()


class PackagedModel:
    """A loaded package: the model plus its manifest, validating inputs against the signature."""

    def __init__(self, model: Any, manifest: Manifest, path: Path | None = None):
        from modelloop.registry.flavors import get_flavor

        self.model = model
        self.manifest = manifest
        self.path = path
        self.signature = manifest.input_signature
        self.output_signature = (
            Signature.from_dict(manifest.output_signature) if manifest.output_signature else None
        )
        self._flavor = get_flavor(manifest.flavor)
        self._plan: Any = _UNREAD

    @property
    def plan(self):
        """The fast path's plan (serving and batch transform use it), or None: the plain path.
        Read when first asked for, so a load that only predicts never reads or imports it; the
        plan's file is checked against the manifest's sha256 as it is read."""
        if self._plan is _UNREAD:
            self._plan = None
            if self.path is not None and self.manifest.flavor in PLANNED_FLAVORS:
                from modelloop.registry.fastpath import load_plan

                self._plan = load_plan(self.path, self.manifest, self.model)
        return self._plan

    @plan.setter
    def plan(self, value) -> None:
        self._plan = value

    @property
    def fast_path(self) -> dict:
        """Which path this version is served by, and why when it is the plain one."""
        from modelloop.registry.fastpath import describe

        return describe(self.manifest.flavor_info, self.flavor)

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def task(self) -> str | None:
        return self.manifest.task

    @property
    def classes_(self):
        import numpy as np

        classes = self._flavor.classes(self.model)
        if classes is None:
            classes = self.manifest.classes
        return None if classes is None else np.asarray(classes)

    @property
    def has_proba(self) -> bool:
        return self._flavor.has_proba(self.model)

    def prepare(self, X, *, validate: bool = True):
        """Validate ``X`` and shape it as the model wants it (a frame with the column names)."""
        if validate:
            X = self.signature.validate(X)
        if self._flavor.wants_frame and not hasattr(X, "columns"):
            import pandas as pd

            X = pd.DataFrame(X, columns=self.signature.names, copy=False)
        return X

    def predict(self, X, *, validate: bool = True):
        return self._flavor.predict(self.model, self.prepare(X, validate=validate))

    def predict_proba(self, X, *, validate: bool = True):
        return self._flavor.predict_proba(self.model, self.prepare(X, validate=validate))

    def __repr__(self) -> str:
        return (
            f"PackagedModel(flavor={self.flavor!r}, task={self.task!r}, "
            f"hash={self.manifest.package_hash[:12]})"
        )
