"""The shared ground helpers: hashing, JSON conversion, callable loading."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from modelloop.common.hashing import sha256_bytes, sha256_file
from modelloop.common.jsonable import to_jsonable
from modelloop.common.loading import load_callable, module_name_for
from modelloop.errors import InvalidInput


def test_sha256_file_matches_hashlib(tmp_path):
    data = b"x" * (9 << 20)  # over one read chunk
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert sha256_bytes("é") == hashlib.sha256("é".encode()).hexdigest()


def test_to_jsonable_numpy_pandas_and_nonfinite():
    value = {
        "i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "s": np.str_("a"),
        "arr": np.array([1.0, np.nan, np.inf]), "t": (1, 2), "set": {3, 1},
        "ts": pd.Timestamp("2024-01-02T03:04:05"), "dt": datetime(2024, 1, 2, tzinfo=UTC),
        "nat": pd.NaT, "dt64": np.datetime64("2024-01-02"), np.int64(7): "key",
        "series": pd.Series([1, 2]), "obj": object,
    }
    out = to_jsonable(value)
    json.dumps(out, allow_nan=False)
    assert out["i"] == 3 and type(out["i"]) is int
    assert out["f"] == 0.5 and out["b"] is True and out["s"] == "a"
    assert out["arr"] == [1.0, None, None]
    assert out["t"] == [1, 2] and out["set"] == [1, 3]
    assert out["ts"] == "2024-01-02T03:04:05" and out["dt"] == "2024-01-02T00:00:00+00:00"
    assert out["nat"] is None and out["dt64"] == "2024-01-02T00:00:00"
    assert out["7"] == "key" and out["series"] == [1, 2] and out["obj"] == str(object)
    kept = to_jsonable([np.float64("nan")], nonfinite="keep")
    assert np.isnan(kept[0])


def test_load_callable_module_and_file(tmp_path):
    assert load_callable("json:dumps") is json.dumps
    assert load_callable("os.path:join.__call__")
    (tmp_path / "trainer.py").write_text("def train(x):\n    return x + 1\n")
    fn = load_callable("trainer.py:train", base_dir=tmp_path)
    assert fn(1) == 2
    assert fn.__module__ == module_name_for(tmp_path / "trainer.py")


def test_file_module_name_is_the_same_in_every_process(tmp_path):
    code = "from modelloop.common.loading import module_name_for; print(module_name_for('x.py'))"
    names = {subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=True).stdout for _ in range(2)}
    assert len(names) == 1


@pytest.mark.parametrize("spec, match", [
    ("nocolon", "cannot read the trainer"),
    ("no_such_module_xyz:f", "cannot import the trainer module"),
    ("json:dumsp", "has no function 'dumsp'; did you mean"),
    ("missing.py:f", "trainer file missing.py does not exist"),
    ("json:__doc__", "is not callable"),
])
def test_load_callable_errors(spec, match, tmp_path):
    with pytest.raises(InvalidInput, match=match):
        load_callable(spec, what="trainer")


def test_load_callable_file_that_fails(tmp_path):
    (tmp_path / "bad.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(InvalidInput, match="failed to import: RuntimeError: boom"):
        load_callable(str(tmp_path / "bad.py") + ":f")
    assert module_name_for(tmp_path / "bad.py") not in sys.modules
