"""A custom trainer file is loaded under one name in every process, and its model's classes travel
with the package: a model trained in a job's worker loads in a server that never saw the file."""

from __future__ import annotations

import os
import subprocess
import sys

from modelloop.registry.package import save_package
from modelloop.registry.signature import Signature
from modelloop.training.trainers import train

TRAINER = """
from sklearn.linear_model import LogisticRegression


class Numeric:
    def fit(self, frame, target):
        self.columns = list(frame.drop(columns=[target]).select_dtypes("number").columns)
        self.model = LogisticRegression().fit(self._x(frame), frame[target])
        self.classes_ = self.model.classes_
        return self

    def _x(self, frame):
        return frame[self.columns].astype("float64").fillna(0).to_numpy()

    def predict(self, frame):
        return self.model.predict(self._x(frame))


def fit(frame, target, params):
    return Numeric().fit(frame, target)
"""


def python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (its own hash seed) and return what it printed."""
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_a_trainer_file_has_the_same_module_name_in_every_process(tmp_path):
    path = tmp_path / "my_trainer.py"
    path.write_text(TRAINER)
    code = (
        "from modelloop.training.algorithms import resolve_trainer\n"
        f"print(resolve_trainer({f'{path}:fit'!r}).__module__)"
    )
    assert python(code) == python(code)


def test_a_model_of_a_class_in_the_trainer_file_loads_where_the_file_was_never_read(
    binary, tmp_path
):
    path = tmp_path / "my_trainer.py"
    path.write_text(TRAINER)
    result = train(binary, "y", f"{path}:fit")
    features = binary.drop(columns=["y"])
    save_package(result.model, tmp_path / "pkg", signature=Signature.from_frame(features))
    features.to_parquet(tmp_path / "x.parquet")
    path.unlink()  # the server has the package, not the trainer
    out = python(
        "import pandas as pd\n"
        "from modelloop.registry.package import load_package\n"
        f"model = load_package({str(tmp_path / 'pkg')!r}, trust_pickle=True)\n"
        f"print(list(model.predict(pd.read_parquet({str(tmp_path / 'x.parquet')!r}))))"
    )
    assert out == str(list(result.model.predict(features)))
