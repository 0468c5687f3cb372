"""Reading and writing skops files without paying for skops' trusted-type scan in every process.

``import skops.io`` computes its default trusted types when it is imported
(``skops.io._trusted_types``): it imports every scikit-learn module to list the estimator classes
(``sklearn.utils.all_estimators``, which also imports pytest through ``sklearn.utils._testing``)
and lists numpy's and scipy's ufuncs. That is about a second on two cores, in every process that
reads or writes a model, for lists that depend only on the installed skops, scikit-learn, scipy
and numpy. skops offers no way to defer it, so :func:`skops_io` does this instead:

* the first process imports skops as it is, and keeps skops' lists in a cache file named by the
  versions of those four libraries and the sha256 of skops' own ``_trusted_types.py``;
* a later process gives skops a module holding exactly those lists before importing it, and
  skops then imports in a few tens of milliseconds;
* reading a model needs no skops at all: :func:`skops_load` reads the file with
  :mod:`modelloop.registry.skops_reader` by skops' rules and those very lists (plus the losses
  skops' tree of loaders trusts, kept alongside), and hands skops only a file in a part of the
  format that reader does not implement.

Nothing is trusted that skops would not trust: skops reads the very lists it computed, and
checks every type of a file against them and the types the package recorded, as before. The
cache is trusted as the Python environment itself is: it lives in the user's cache folder
(``$MODELLOOP_CACHE_DIR``, else ``$XDG_CACHE_HOME/modelloop``, else ``~/.cache/modelloop``) and
is used only if it is a regular file owned by the user and writable by nobody else (whoever can
write there can already change what Python imports). Anything unexpected (no cache, a cache
skops cannot use) falls back to the plain import.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import types
import zipfile
from pathlib import Path
from typing import Any

from modelloop.common.hashing import sha256_file
from modelloop.errors import IntegrityError
from modelloop.registry.skops_reader import LISTS, Unsupported, read_skops

_MODULE = "skops.io._trusted_types"
#: Kept next to skops' own lists: the losses its ``LossNode`` trusts (``skops.io._sklearn``).
_LOSSES = "ALLOWED_LOSS_TYPE_NAMES"
_lock = threading.Lock()
_kept: dict[Path, dict[str, list[str]]] = {}


def cache_dir() -> Path:
    base = os.environ.get("MODELLOOP_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root if os.environ.get("MODELLOOP_CACHE_DIR") else root / "modelloop"


def _cache_file() -> Path | None:
    """Where skops' lists for the installed libraries are kept; None if that cannot be told."""
    # the libraries whose versions decide skops' lists; imported to read a model anyway, so
    # their __version__ costs nothing (looking installed distributions up costs ~10 ms each)
    try:
        import numpy
        import scipy
        import sklearn
        import skops

        versions = "-".join(f"{m.__name__}{m.__version__}" for m in (skops, sklearn, scipy, numpy))
        spec = skops.__spec__
    except (ImportError, AttributeError):
        return None
    if spec is None or not spec.origin:
        return None
    source = Path(spec.origin).parent / "io" / "_trusted_types.py"
    if not source.is_file():
        return None
    key = f"py{sys.version_info[0]}.{sys.version_info[1]}-{versions}-{sha256_file(source)[:16]}"
    return cache_dir() / f"skops-trusted-types-v2-{key}.json"


def _read_cache(path: Path) -> dict[str, list[str]] | None:
    try:
        info = os.lstat(path)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
                or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            return None  # not plainly ours: ignore it (and compute the lists again)
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data or not all(
        isinstance(v, list) and all(isinstance(t, str) for t in v) for v in data.values()
    ):
        return None
    return data


def _lists_from_skops() -> dict[str, list[str]]:
    """The lists of the skops just imported: its trusted types, and the losses it trusts."""
    lists = {name: list(value) for name, value in vars(sys.modules[_MODULE]).items()
             if name.isupper() and isinstance(value, list)
             and all(isinstance(t, str) for t in value)}  # fmt: skip
    losses = getattr(sys.modules.get("skops.io._sklearn"), "ALLOWED_LOSSES", None)
    if losses is not None:
        lists[_LOSSES] = sorted(f"{t.__module__}.{t.__name__}" for t in losses)
    return lists


def _write_cache(path: Path, lists: dict[str, list[str]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(lists, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: every process computes the lists, as skops alone does


def skops_io() -> types.ModuleType:
    """``skops.io``, imported from the cached trusted-type lists when there are some."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    with _lock:
        if "skops.io" in sys.modules:
            return sys.modules["skops.io"]
        path = _cache_file()
        lists = _read_cache(path) if path is not None else None
        if lists is not None:
            module = types.ModuleType(_MODULE, "skops' default trusted types (cached)")
            module.__dict__.update({k: v for k, v in lists.items() if k != _LOSSES})
            sys.modules[_MODULE] = module
            try:
                import skops.io

                return skops.io
            except ImportError:  # a skops that needs more than the lists: import it as it is
                for name in [m for m in sys.modules if m == "skops.io" or
                             m.startswith("skops.io.")]:  # fmt: skip
                    del sys.modules[name]
        import skops.io

        if path is not None and lists is None:
            _write_cache(path, _lists_from_skops())
        return skops.io


def kept_lists() -> dict[str, list[str]] | None:
    """skops' default trusted types for the installed libraries, from the cache, without
    importing ``skops.io``; None when none are kept (yet) or they lack one the reader needs."""
    path = _cache_file()
    if path is None:
        return None
    if path not in _kept:
        lists = _read_cache(path)
        if lists is None or any(key not in lists for key in LISTS):
            return None
        _kept[path] = lists
    return _kept[path]


def skops_dump(obj: Any, path: Path) -> list[str]:
    """Write ``obj`` with skops; return the types skops does not trust by default."""
    sio = skops_io()
    sio.dump(obj, path)
    return sorted(sio.get_untrusted_types(file=path))


def skops_load(path: Path, trusted: list[str]) -> Any:
    """Read a skops file trusting skops' defaults and exactly the types recorded when it was
    written: by :func:`~modelloop.registry.skops_reader.read_skops` (skops' rules, no import of
    skops), or by skops itself for a part of the format that reader does not implement."""
    lists = kept_lists()
    if lists is None:  # the first process: skops computes its lists (and they are kept)
        skops_io()
        lists = _lists_from_skops()
    try:
        return read_skops(path, list(trusted), lists)
    except Unsupported:
        pass
    sio = skops_io()
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(path, trusted=list(trusted))
    except UntrustedTypesFoundException as e:
        raise IntegrityError(
            f"{path.name} contains types that were not recorded when it was saved: {e}",
            hint="the file was changed after packaging; re-package the model",
        ) from None
    except (ValueError, TypeError, KeyError, zipfile.BadZipFile) as e:
        raise IntegrityError(f"{path.name} is not a skops file skops can read: {e}",
                             hint="re-package the model") from None
