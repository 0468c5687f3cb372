"""Generated sample data: daily batches of loan applications (no downloads needed).

The columns follow the Agrawal et al. (1993) loan-application generator (also River's
``synth.Agrawal``): salary, commission, age, education level, car make, zip code, house value,
years owned, loan amount, and whether the applicant belongs to group A. The label uses Agrawal's
classification function 1 (age and salary bands), so a model can learn it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

COLUMNS = [
    "application_id",
    "applied_at",
    "salary",
    "commission",
    "age",
    "elevel",
    "car",
    "zipcode",
    "hvalue",
    "hyears",
    "loan",
    "approved",
]


def loan_applications(n: int, *, seed: int = 0, start: datetime | None = None):
    """A DataFrame of ``n`` applications, spread over one day from ``start``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    salary = rng.uniform(20_000, 150_000, n).round(2)
    commission = np.where(salary >= 75_000, 0.0, rng.uniform(10_000, 75_000, n).round(2))
    age = rng.integers(20, 81, n)
    elevel = rng.integers(0, 5, n)
    car = rng.choice(["sedan", "suv", "coupe", "van", "truck", "hatchback"], n)
    zipcode = rng.integers(0, 9, n)
    hvalue = ((9 - zipcode) * 100_000 * rng.uniform(0.5, 1.5, n)).round(2)
    hyears = rng.integers(1, 31, n)
    loan = rng.uniform(0, 500_000, n).round(2)
    approved = (
        ((age < 40) & (salary >= 50_000) & (salary <= 100_000))
        | ((age >= 40) & (age < 60) & (salary >= 75_000) & (salary <= 125_000))
        | ((age >= 60) & (salary >= 25_000) & (salary <= 75_000))
    ).astype(int)
    offsets = np.sort(rng.uniform(0, 86_400, n))
    return pd.DataFrame(
        {
            "application_id": [f"{start:%Y%m%d}-{i:06d}" for i in range(n)],
            "applied_at": pd.to_datetime([start + timedelta(seconds=float(s)) for s in offsets]),
            "salary": salary,
            "commission": commission,
            "age": age,
            "elevel": elevel,
            "car": car,
            "zipcode": zipcode,
            "hvalue": hvalue,
            "hyears": hyears,
            "loan": loan,
            "approved": approved,
        }
    )


def write_daily_batches(
    folder: str | Path,
    *,
    days: int = 3,
    rows_per_day: int = 5_000,
    seed: int = 7,
    bad_rows_on_last_day: int = 3,
) -> list[Path]:
    """Write one CSV per day; the last day carries a few malformed rows to show quarantine."""
    folder = Path(folder)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        _write_day(folder / f"loans-{start + timedelta(days=day):%Y-%m-%d}.csv", day,
                   rows_per_day=rows_per_day, seed=seed,
                   bad_rows=bad_rows_on_last_day if day == days - 1 else 0)
        for day in range(days)
    ]


def write_quickstart_files(folder: str | Path, *, rows_per_day: int = 5_000) -> list[Path]:
    """The files the README's quickstart ingests: ``day1.csv``, and ``incoming/`` holding the next
    two days (the last with a few malformed rows). Files already there are kept as they are."""
    folder = Path(folder)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    files = [_write_day(folder / "day1.csv", 0, rows_per_day=rows_per_day)]
    for day in (1, 2):
        path = folder / "incoming" / f"loans-{start + timedelta(days=day):%Y-%m-%d}.csv"
        files.append(_write_day(path, day, rows_per_day=rows_per_day, bad_rows=3 * (day == 2)))
    return files


def _write_day(path: Path, day: int, *, rows_per_day: int, seed: int = 7, bad_rows: int = 0) -> Path:
    """Day ``day`` (0-based from 2026-01-01) of applications as a CSV at ``path``, unless present;
    ``bad_rows`` of them get an age that is not a number."""
    if path.exists():
        return path
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
    text = loan_applications(rows_per_day, seed=seed + day, start=start).to_csv(index=False)
    if bad_rows:
        lines = text.splitlines()
        for k in range(bad_rows):
            i = 1 + (k + 1) * len(lines) // (bad_rows + 2)
            fields = lines[i].split(",")
            fields[4] = "unknown"  # age: not a number
            lines[i] = ",".join(fields)
        text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
