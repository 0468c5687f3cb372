"""skops without its import-time scan: the cached trusted-type lists are skops' own, nothing
beyond them is trusted, a cache file others could have written is ignored, and a model loads
without importing skops' loaders at all (modelloop's reader, by the same lists)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SAVE = """
import json, sys
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from modelloop.registry.package import save_package
from modelloop.registry.signature import Signature
from modelloop.registry.skops_files import _MODULE
import pandas as pd

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
y = (X["a"] > 0).astype(int)
model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0))
model.fit(X, y)
save_package(model, sys.argv[1], signature=Signature.from_frame(X))
real = sys.modules[_MODULE]
lists = {k: v for k, v in vars(real).items() if k.isupper() and isinstance(v, list)
         and all(isinstance(t, str) for t in v)}
print(json.dumps({"predictions": model.predict_proba(X).tolist(), "lists": lists,
                  "file": getattr(real, "__file__", None)}))
"""

LOAD = """
import json, sys
import numpy as np
import pandas as pd
from modelloop.errors import IntegrityError
from modelloop.registry.package import load_package
from modelloop.registry.skops_files import _MODULE, skops_load

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
model = load_package(sys.argv[1])
imported = "skops.io" in sys.modules
try:  # the random forest's trees are a type beyond skops' defaults: not trusted unless recorded
    skops_load(__import__("pathlib").Path(sys.argv[1]) / "model.skops", [])
    refused = False
except IntegrityError:
    refused = True
from modelloop.registry.skops_files import skops_io
skops_io()  # what a process that writes models imports: skops, given the kept lists
stub = sys.modules[_MODULE]
lists = {k: v for k, v in vars(stub).items() if k.isupper() and isinstance(v, list)
         and all(isinstance(t, str) for t in v)}
print(json.dumps({"predictions": model.predict_proba(X).tolist(), "lists": lists,
                  "refused": refused, "file": getattr(stub, "__file__", None),
                  "scanned": "sklearn.utils._testing" in sys.modules,
                  "skops_imported_to_load": imported}))
"""


def _run(code: str, package, cache) -> dict:
    env = {**os.environ, "MODELLOOP_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(package)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One process that saves a model with skops' scan, as the first one in a new environment
    does (a fresh cache): its output, the cache it kept and the package, copied by each test."""
    made = tmp_path_factory.mktemp("skops-saved")
    return _run(SAVE, made / "model", made / "cache"), made


def _copy(saved_dir, tmp_path):
    import shutil

    cache, package = tmp_path / "cache", tmp_path / "model"
    shutil.copytree(saved_dir / "cache", cache)  # modes kept (copy2)
    shutil.copytree(saved_dir / "model", package)
    return cache, package


def test_skops_reads_its_own_lists_from_the_cache_and_trusts_nothing_more(saved, tmp_path):
    saved, made = saved  # the first process scanned, as skops does, and kept it
    cache, package = _copy(made, tmp_path)
    assert saved["file"] and saved["file"].endswith("_trusted_types.py")
    (kept,) = cache.iterdir()
    assert kept.stat().st_mode & 0o077 == 0
    kept_lists = json.loads(kept.read_text())
    assert kept_lists.pop("ALLOWED_LOSS_TYPE_NAMES")  # what skops' LossNode trusts, for the reader
    assert kept_lists == saved["lists"]
    assert len(saved["lists"]["SKLEARN_ESTIMATOR_TYPE_NAMES"]) > 100

    loaded = _run(LOAD, package, cache)  # a later one: skops' very lists, without the scan
    assert loaded["file"] is None and not loaded["scanned"]
    assert not loaded["skops_imported_to_load"]
    assert loaded["lists"] == saved["lists"]
    assert loaded["predictions"] == saved["predictions"]
    assert loaded["refused"], "a type the file's record does not trust is still refused"


@pytest.mark.parametrize("problem", ["writable by others", "not JSON lists"])
def test_a_cache_file_others_could_write_or_skops_cannot_use_is_ignored(saved, tmp_path, problem):
    saved, made = saved
    cache, package = _copy(made, tmp_path)
    (kept,) = cache.iterdir()
    if problem == "writable by others":
        kept.chmod(0o666)
    else:
        kept.write_text(json.dumps({"SKLEARN_ESTIMATOR_TYPE_NAMES": "builtins.eval"}))
    loaded = _run(LOAD, package, cache)
    assert loaded["file"] and loaded["scanned"]  # skops as it is: its own scan
    assert loaded["lists"] == saved["lists"] and loaded["refused"]
