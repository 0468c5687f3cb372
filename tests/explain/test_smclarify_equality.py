"""Every bias metric equals smclarify's (SageMaker Clarify's own library) to 1e-9.

smclarify cannot live in the test environment (it fails with pandas 3), so it runs in a venv of
its own (``scripts/smclarify_anchor.py``, made by ``scripts/test.sh`` or on first use here) on the
same Parquet file, facet, label, predictions and group; both sides' analysis JSON are compared
metric by metric: values to 1e-9, infinities as Clarify writes them, and a metric one side
could not compute must be missing on the other too.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelloop.explain.bias import analyse

ANCHOR = Path(__file__).resolve().parents[2] / "scripts" / "smclarify_anchor.py"


def _anchor():
    spec = importlib.util.spec_from_file_location("smclarify_anchor", ANCHOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def smclarify():
    anchor = _anchor()
    try:
        python = anchor.ensure_python()  # made once (under a lock), then only checked
    except (subprocess.CalledProcessError, OSError) as exc:  # no package index reachable
        pytest.skip(f"cannot make the smclarify venv ({exc}); scripts/test.sh makes it")
    return lambda spec: anchor.call(spec, python)


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.4, 0.6])
    race = rng.choice(["a", "b", "c", "d"], n, p=[0.1, 0.2, 0.3, 0.4])
    age = rng.normal(45, 12, n).round(1)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.integers(0, 4, n)
    p = 0.25 + 0.2 * (sex == "male") + 0.1 * (x1 > 0) - 0.05 * (race == "a")
    approved = (rng.random(n) < p).astype(int)
    score = (x1 + 0.5 * (sex == "male") + rng.normal(0, 0.5, n)).round(3)
    pred = (score > 0.3).astype(int)
    return pd.DataFrame({"sex": sex, "race": race, "age": age, "x1": x1, "x2": x2,
                         "region": region, "approved": approved, "income": score * 10 + 50,
                         "pred": pred, "pred_income": (score * 10 + 50 + x2).round(2)})  # fmt: skip


#: (case id, our facet, smclarify's facet values, our label, smclarify's label values, label
#: column, predicted column, group)
CASES = [
    ("binary facet", "sex=female", ["female"], "approved=1", [1], "approved", "pred", "region"),
    ("one vs rest", "race", None, "approved=1", [1], "approved", "pred", "region"),
    ("several values", "race=a,b", ["a", "b"], "approved=1", [1], "approved", "pred", None),
    ("numeric facet", "age>50", [50], "approved=1", [1], "approved", "pred", "region"),
    ("label threshold", "sex=female", ["female"], "income>52", [52], "income", "pred_income",
     "region"),
]  # fmt: skip


def _compare(ours: dict, theirs: dict, facet: str) -> int:
    compared = 0
    for stage in ("pre_training", "post_training"):
        mine = {g["value_or_threshold"]: g for g in ours[f"{stage}_bias_metrics"]["facets"][facet]}
        assert len(mine) == len(theirs[stage])
        for their_group in theirs[stage]:
            key = their_group["value_or_threshold"]
            assert key in mine, (stage, key, list(mine))
            my_metrics = {x["name"]: x for x in mine[key]["metrics"]}
            their_names = [x["name"] for x in their_group["metrics"]]
            assert list(my_metrics) == their_names, (stage, key)
            for theirs_m in their_group["metrics"]:
                name, expected = theirs_m["name"], theirs_m["value"]
                got = my_metrics[name]["value"]
                assert my_metrics[name]["description"] == theirs_m["description"]
                if expected is None or isinstance(expected, str):
                    assert got == expected, (stage, key, name, got, theirs_m)
                else:
                    assert got is not None and math.isclose(got, expected, rel_tol=0, abs_tol=1e-9), \
                        (stage, key, name, got, expected)  # fmt: skip
                compared += 1
    return compared


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_metric_equals_smclarify(smclarify, tmp_path, case):
    _, facet, facet_values, label, label_values, label_col, pred_col, group = case
    df = _frame(1500, seed=len(case[0]))
    # FT needs numeric features: the string columns other than the facet go
    df = df.drop(columns=[c for c in ("sex", "race") if c != facet.split("=")[0]])
    if pred_col == "pred_income":
        df = df.drop(columns=["pred"])
    else:
        df = df.drop(columns=["pred_income"] + (["income"] if label_col != "income" else []))
    path = tmp_path / "data.parquet"
    df.to_parquet(path)
    theirs = smclarify({"parquet": str(path), "facet": facet.split("=")[0].split(">")[0],
                        "facet_values": facet_values, "label": label_col,
                        "label_values": label_values, "predicted": pred_col, "group": group})  # fmt: skip
    ours = analyse(df, facet, label, predicted=pred_col, group=group).to_clarify()
    n = _compare(ours, theirs, facet.split("=")[0].split(">")[0])
    assert n >= 21 * (4 if facet == "race" else 1) - (0 if group else 2)


def test_edge_cases_equal_smclarify(smclarify, tmp_path):
    """Infinite rates (a group with no positive predictions), a label absent from one group (the
    divergences keep only shared outcomes), and FT's one-neighbour rule for a tiny rest."""
    df = pd.DataFrame({
        "g": ["d"] * 6 + ["a"] * 6,
        "x": [0.1, 0.5, 0.9, 1.3, 1.7, 2.1, 0.2, 0.6, 1.0, 1.4, 1.8, 2.2],
        "y": ["yes"] * 6 + ["no", "yes", "no", "yes", "no", "no"],
        "p": ["no"] * 6 + ["yes", "yes", "no", "yes", "no", "yes"],
        "grp": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
    })  # fmt: skip
    path = tmp_path / "edge.parquet"
    df.to_parquet(path)
    # (string labels: on 12 rows smclarify would take integer 0/1 labels for a continuous column)
    theirs = smclarify({"parquet": str(path), "facet": "g", "facet_values": ["d"], "label": "y",
                        "label_values": ["yes"], "predicted": "p", "group": "grp"})  # fmt: skip
    ours = analyse(df, "g=d", "y=yes", predicted="p", group="grp").to_clarify()
    assert _compare(ours, theirs, "g") == 21
    post = {x["name"]: x for x in ours["post_training_bias_metrics"]["facets"]["g"][0]["metrics"]}
    assert post["DI"]["value"] == 0.0 and post["DCA"]["value"] == "-Infinity"
    pre = {x["name"]: x for x in ours["pre_training_bias_metrics"]["facets"]["g"][0]["metrics"]}
    assert pre["KL"]["value"] is not None
