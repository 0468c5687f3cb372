"""Step outputs as blobs in the content-addressed artifact store, and back.

The format is chosen by the value: JSON for plain data, Parquet for DataFrames and Arrow tables,
``.npy`` for numpy arrays, skops for scikit-learn estimators, a tar of the folder (or the file's
bytes) for paths, and pickle for any other picklable object — safe to load because a blob is
verified against its sha256 on read, so only what this workspace stored comes back.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from modelloop.errors import InvalidInput

_JSON_TYPES = (dict, list, str, int, float, bool, type(None))


class Unstorable(InvalidInput):
    """A step returned a value no format can store."""


def type_name(value: Any) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _json(value: Any) -> bytes | None:
    if not isinstance(value, _JSON_TYPES):
        return None
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    # tuples, non-str keys … would not come back as they went in: store those with pickle
    if not isinstance(value, str | int | float | bool | type(None)) and json.loads(text) != value:
        return None
    return text.encode()


def _tar(path: Path) -> bytes:
    """A reproducible tar of a folder: sorted names, no times or owners (same folder, same hash)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(path.rglob("*")):
            info = tar.gettarinfo(str(p), arcname=str(p.relative_to(path)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if p.is_file():
                with open(p, "rb") as fh:
                    tar.addfile(info, fh)
            elif p.is_dir():
                tar.addfile(info)
    return buf.getvalue()


def dump(value: Any, step: str) -> tuple[bytes, str]:
    """(bytes, format) of a step's output; :class:`Unstorable` names the step and the type."""
    data = _json(value)
    if data is not None:
        return data, "json"
    module = type(value).__module__.split(".")[0]
    if module == "pandas" and type(value).__name__ == "DataFrame":
        buf = io.BytesIO()
        value.to_parquet(buf)
        return buf.getvalue(), "parquet"
    if module == "pyarrow" and type(value).__name__ == "Table":
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(value, buf)
        return buf.getvalue(), "arrow"
    if module == "numpy" and type(value).__name__ == "ndarray" and value.dtype != object:
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return buf.getvalue(), "npy"
    if module == "sklearn" or _is_estimator(value):
        from modelloop.registry.skops_files import skops_io

        return skops_io().dumps(value), "skops"
    if isinstance(value, os.PathLike):
        path = Path(value)
        if path.is_dir():
            return _tar(path), "folder"
        if path.is_file():
            return path.read_bytes(), "file"
        raise Unstorable(
            f"step {step!r} returned the path {str(path)!r}, which does not exist",
            hint="return a path to a file or folder the step wrote",
        )
    try:
        return pickle.dumps(value, protocol=5), "pickle"
    except Exception as exc:
        raise Unstorable(
            f"step {step!r} returned a {type_name(value)}, which cannot be stored ({exc})",
            hint="return plain data (JSON), a DataFrame, a numpy array, a path to a file or "
            "folder, or a picklable object",
        ) from None


def _is_estimator(value: Any) -> bool:
    import sys

    base = getattr(sys.modules.get("sklearn.base"), "BaseEstimator", None)
    return base is not None and isinstance(value, base)


def load(data: bytes, fmt: str) -> Any:
    if fmt == "json":
        return json.loads(data)
    if fmt == "parquet":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))
    if fmt == "arrow":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data))
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt == "skops":
        from modelloop.registry.skops_files import skops_io

        sio = skops_io()
        # the blob was verified against its sha256: it is what this workspace stored
        return sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    if fmt == "folder":
        dest = Path(tempfile.mkdtemp(prefix="modelloop-step-"))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        return dest
    if fmt == "file":
        fd, name = tempfile.mkstemp(prefix="modelloop-step-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return Path(name)
    if fmt == "pickle":
        return pickle.loads(data)
    raise InvalidInput(f"unknown step output format {fmt!r}")


def store(artifacts, value: Any, step: str, name: str = "output") -> dict:
    """Put a value in the artifact store; returns the row describing it."""
    data, fmt = dump(value, step)
    blob = artifacts.put_bytes(data)
    return {
        "name": name,
        "digest": blob.digest,
        "format": fmt,
        "type": type_name(value),
        "size": blob.size,
    }


def fetch(artifacts, output: dict) -> Any:
    return load(artifacts.read_bytes(output["digest"]), output["format"])
