"""Import a callable named by ``"module:attr"`` or ``"path/to/file.py:attr"``.

Files are imported under a module name derived from the file's resolved path with sha256, the same
in every process (``hash()`` is salted per process, which made names, and so pickles of classes
defined in the file, differ between processes).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from modelloop.common.hashing import sha256_bytes
from modelloop.errors import InvalidInput

_FORMS = "write it as 'module:function' or 'path/to/file.py:function'"


def is_file_spec(target: str) -> bool:
    """Whether the part before ':' names a file rather than a module."""
    return target.endswith(".py") or "/" in target or "\\" in target


def module_name_for(path: str | os.PathLike) -> str:
    """The module name a file is imported under: deterministic across processes."""
    return "modelloop_user_" + sha256_bytes(str(Path(path).resolve()))[:16]


def load_callable(spec: str, *, base_dir: str | os.PathLike | None = None,
                  what: str = "callable", reload: bool = False) -> Callable[..., Any]:
    """The callable ``spec`` names; InvalidInput (naming ``what``) saying what could not be found.

    A relative file path is taken from ``base_dir`` (default: the current folder). ``attr`` may be
    dotted (``module:Class.method``). A file already imported is reused unless ``reload``.
    """
    obj = load_object(spec, base_dir=base_dir, what=what, reload=reload, noun="function")
    if not callable(obj):
        raise InvalidInput(f"{spec!r} is not callable", hint="name a function or class")
    return obj


def load_object(spec: str, *, base_dir: str | os.PathLike | None = None, what: str = "object",
                reload: bool = False, noun: str = "attribute") -> Any:
    """What ``spec`` names, callable or not (e.g. a pipeline); as :func:`load_callable`."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise InvalidInput(f"cannot read the {what} {spec!r}", hint=_FORMS)
    if is_file_spec(target):
        path = Path(target)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        module = load_file(path, what=what, reload=reload)
    else:
        module = import_module(target, what=what)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            close = difflib.get_close_matches(part, dir(obj), n=1)
            raise InvalidInput(
                f"{target} has no {noun} {attr!r}"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                hint="check the name after ':'",
            )
        obj = getattr(obj, part)
    return obj


def import_module(name: str, *, what: str = "callable") -> ModuleType:
    """``importlib.import_module`` with InvalidInput instead of ImportError."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise InvalidInput(
            f"cannot import the {what} module {name!r}: {e}",
            hint="make it importable (on PYTHONPATH), or give a file path "
            "'path/to/file.py:function'",
        ) from None


def module_available(name: str) -> bool:
    """Whether a top-level module (an optional library such as ``lightgbm``) can be imported,
    without importing it."""
    return importlib.util.find_spec(name) is not None


def load_file(path: str | os.PathLike, *, what: str = "callable",
              reload: bool = False) -> ModuleType:
    """Import a Python file as a module (named by :func:`module_name_for`)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{what} file {path} does not exist", hint="check the path")
    name = module_name_for(path)
    if not reload and name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise InvalidInput(
            f"{what} file {path} failed to import: {type(e).__name__}: {e}",
            hint="fix the error in that file",
        ) from e
    return module
