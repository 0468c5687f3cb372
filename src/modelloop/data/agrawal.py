"""Loan applications arriving day by day, with real concept drift (River's ``synth.Agrawal``).

Agrawal et al. (1993) describe ten classification functions over the same nine applicant
attributes (salary, commission, age, education level, car, zip code, house value, years owned,
loan). River's generator draws applicants and labels them with one function; switching the
function from ``drift_day`` on changes what "approved" means while the applicants look the same:
the kind of drift only retraining on fresh labels repairs. Nothing is downloaded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 1, 1, tzinfo=UTC)


def daily_applications(
    day: int,
    rows: int,
    *,
    seed: int = 42,
    function: int = 0,
    perturbation: float = 0.05,
    inflation: float = 1.0,
):
    """A DataFrame of ``rows`` applications for day ``day`` (0-based), labelled by ``function``.

    ``inflation`` multiplies the money columns (salary, commission, house value, loan) after
    labelling: applicants who look different (covariate shift), which a drift monitor sees,
    whereas a new ``function`` alone changes only what their labels mean."""
    import numpy as np
    import pandas as pd
    from river.datasets import synth

    generator = synth.Agrawal(
        classification_function=function, seed=seed + day, perturbation=perturbation
    )
    records = [{**x, "approved": int(y)} for x, y in generator.take(rows)]
    frame = pd.DataFrame.from_records(records)
    date = START + timedelta(days=day)
    rng = np.random.default_rng(seed + 10_000 + day)
    offsets = np.sort(rng.uniform(0, 86_400, rows))
    frame.insert(0, "applied_at", [date + timedelta(seconds=float(s)) for s in offsets])
    frame.insert(0, "application_id", [f"{date:%Y%m%d}-{i:06d}" for i in range(rows)])
    for column in ("salary", "commission", "hvalue", "loan"):
        frame[column] = (frame[column] * inflation).round(2)
    return frame


def write_days(
    folder: str | Path,
    days: int,
    rows_per_day: int,
    *,
    drift_day: int | None = None,
    before: int = 0,
    after: int = 2,
    seed: int = 42,
) -> list[Path]:
    """One CSV per day in ``folder``; labels follow function ``before``, then ``after`` from
    ``drift_day`` (0-based). Files are written under a temporary name and renamed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for day in range(days):
        function = after if drift_day is not None and day >= drift_day else before
        path = folder / f"loans-{START + timedelta(days=day):%Y-%m-%d}.csv"
        if not path.exists():
            frame = daily_applications(day, rows_per_day, seed=seed, function=function)
            tmp = path.with_suffix(".csv.tmp")
            frame.to_csv(tmp, index=False)
            tmp.replace(path)
        files.append(path)
    return files
