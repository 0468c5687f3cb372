"""No train/serve skew: the saved model, reloaded in a new process, predicts exactly the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import skops.io

from modelloop.training.trainers import train


def test_reloaded_model_in_a_new_process_predicts_identically(binary, tmp_path):
    result = train(binary, "y", "hist_gradient_boosting", seed=3)
    rows = binary.drop(columns=["y"])
    in_job = result.model.predict_proba(rows)[:, 1]

    path = tmp_path / "model.skops"
    skops.io.dump(result.model, path)
    trusted = skops.io.get_untrusted_types(file=path)
    rows.to_pickle(tmp_path / "rows.pkl")
    script = textwrap.dedent(
        f"""
        import json, pandas as pd, skops.io
        model = skops.io.load({str(path)!r}, trusted={trusted!r})
        rows = pd.read_pickle({str(tmp_path / "rows.pkl")!r})
        print(json.dumps(model.predict_proba(rows)[:, 1].tolist()))
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    served = np.asarray(json.loads(out.stdout))
    assert np.array_equal(served, in_job)  # bit for bit, not approximately
    # the only type beyond scikit-learn's is modelloop's own column caster
    assert "modelloop.training.preprocessing.ColumnCaster" in trusted
