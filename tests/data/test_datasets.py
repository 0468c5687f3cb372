"""Datasets through the SDK, on SQLite + local folder and on PostgreSQL + S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from modelloop.data.samples import loan_applications
from modelloop.errors import InvalidInput, NotFound, SchemaMismatch


def _csv(tmp_path, name, frame):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.all_backends
def test_ingest_versions_are_cumulative_and_read_back(workspace, tmp_path):
    day1 = loan_applications(500, seed=1)
    day2 = loan_applications(300, seed=2, start=datetime(2026, 1, 2, tzinfo=UTC))
    r1 = workspace.datasets.ingest(
        "loans", [_csv(tmp_path, "d1.csv", day1)], event_time_column="applied_at"
    )
    r2 = workspace.datasets.ingest("loans", [_csv(tmp_path, "d2.csv", day2)])
    assert (r1.version.ref, r2.version.ref) == ("loans@1", "loans@2")
    assert (r2.version.row_count, r2.version.added_rows) == (800, 300)

    back = workspace.datasets.to_pandas("loans@1")
    assert len(back) == 500
    assert back["salary"].tolist() == day1["salary"].tolist()
    assert back["car"].tolist() == day1["car"].tolist()
    assert len(workspace.datasets.to_pandas("loans")) == 800  # latest
    assert len(workspace.datasets.to_pandas("loans@latest")) == 800

    # the event-time range spans both days, and the column was remembered from the first ingest
    v = workspace.datasets.get("loans@2")
    assert v.event_time_min.date().isoformat() == "2026-01-01"
    assert v.event_time_max.date().isoformat() == "2026-01-02"

    # streaming reads see the same rows, in bounded batches
    batches = list(workspace.datasets.iter_batches("loans@2", batch_size=128, columns=["age"]))
    assert max(b.num_rows for b in batches) <= 128
    assert sum(b.num_rows for b in batches) == 800
    assert workspace.datasets.head("loans", 5).num_rows == 5

    # lineage of files
    sources = workspace.datasets.sources("loans@2")
    assert [s["version"] for s in sources] == [1, 2]
    assert sources[0]["path"].endswith("d1.csv") and sources[0]["rows"] == 500

    stats = {s["column"]: s for s in workspace.datasets.stats("loans@1")}
    assert stats["age"]["min"] == day1["age"].min() and stats["age"]["max"] == day1["age"].max()
    assert stats["salary"]["mean"] == pytest.approx(day1["salary"].mean())
    assert stats["car"]["distinct"] == day1["car"].nunique()

    events = workspace.events(kind="dataset.version_created")
    assert [e["subject"] for e in events] == ["loans@1", "loans@2"]


def test_same_file_twice_is_skipped(workspace, tmp_path):
    path = _csv(tmp_path, "d1.csv", loan_applications(100, seed=3))
    workspace.datasets.ingest("loans", [path])
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(path.read_bytes())
    report = workspace.datasets.ingest("loans", [copy])
    assert report.version is None and len(report.skipped) == 1
    assert workspace.datasets.get("loans").version == 1


def test_formats_folders_and_globs(workspace, tmp_path):
    frame = loan_applications(200, seed=4)
    folder = tmp_path / "in"
    folder.mkdir()
    frame.iloc[:50].to_csv(folder / "a.csv", index=False)
    frame.iloc[50:120].to_parquet(folder / "b.parquet", index=False)
    frame.iloc[120:].to_json(folder / "c.jsonl", orient="records", lines=True, date_format="iso")
    r = workspace.datasets.ingest("mixed", [folder / "a.csv"])
    r = workspace.datasets.ingest("mixed", [str(folder / "*.parquet"), folder / "c.jsonl"])
    assert r.version.row_count == 200
    back = workspace.datasets.to_pandas("mixed")
    assert sorted(back["application_id"]) == sorted(frame["application_id"])


def test_schema_clash_names_the_column_and_evolution_is_explicit(workspace, tmp_path):
    frame = loan_applications(100, seed=5)
    workspace.datasets.ingest("loans", [_csv(tmp_path, "a.csv", frame)])
    clash = frame.copy()
    clash["age"] = "young"
    with pytest.raises(SchemaMismatch, match="age"):
        workspace.datasets.ingest("loans", [_csv(tmp_path, "clash.csv", clash)])
    missing = frame.drop(columns=["loan"])
    with pytest.raises(SchemaMismatch, match="loan"):
        workspace.datasets.ingest("loans", [_csv(tmp_path, "missing.csv", missing)])
    extra = frame.assign(region="north")
    with pytest.raises(SchemaMismatch, match="region"):
        workspace.datasets.ingest("loans", [_csv(tmp_path, "extra.csv", extra)])
    assert workspace.datasets.get("loans").version == 1  # nothing was half-written
    r = workspace.datasets.ingest("loans", [tmp_path / "extra.csv"], allow_schema_evolution=True)
    assert "region" in r.version.schema.names and r.version.schema_changes
    assert len(workspace.datasets.to_pandas("loans@2")) == 200


def test_unparseable_rows_are_quarantined_and_counted(workspace, tmp_path):
    frame = loan_applications(300, seed=6)
    workspace.datasets.ingest("loans", [_csv(tmp_path, "a.csv", frame)])
    text = _csv(tmp_path, "b.csv", loan_applications(300, seed=7)).read_text().splitlines()
    text[10] = text[10].replace(text[10].split(",")[4], "not-a-number", 1)
    text[20] = "only,three,fields"
    (tmp_path / "b.csv").write_text("\n".join(text) + "\n")
    v = workspace.datasets.ingest("loans", [tmp_path / "b.csv"]).version
    assert v.quarantined_rows == 2 and v.added_rows == 298
    bad = workspace.datasets.quarantined("loans").to_pandas()
    assert len(bad) == 2
    assert (
        bad.astype(str)
        .apply(lambda r: " ".join(r), axis=1)
        .str.contains("age|field", case=False)
        .all()
    )
    # the bounded JSON form (the console's page): records, in order, as far as the page
    rows = workspace.datasets.quarantine_rows("loans")
    assert rows == bad.to_dict("records") and set(rows[0]) == {"source", "row", "record", "reason"}
    assert workspace.datasets.quarantine_rows("loans", limit=1, offset=1) == rows[1:]
    assert workspace.datasets.quarantine_rows("loans@1") == []


def test_windows_select_parts_by_ingest_time(workspace, tmp_path):
    workspace.datasets.ingest("loans", [_csv(tmp_path, "a.csv", loan_applications(50, seed=8))])
    assert len(workspace.datasets.to_pandas("loans", since="7d")) == 50
    future = datetime.now(UTC) + timedelta(hours=1)
    assert len(workspace.datasets.to_pandas("loans", since=future)) == 0


def test_bad_references(workspace):
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        workspace.datasets.get("nope")
    with pytest.raises(InvalidInput, match="invalid dataset name"):
        workspace.datasets.get("../x")
    with pytest.raises(InvalidInput, match="invalid version"):
        workspace.datasets.get("loans@two")


def test_unknown_version_names_the_range(local_workspace, tmp_path):
    local_workspace.datasets.ingest("loans", [_csv(tmp_path, "a.csv", loan_applications(10))])
    with pytest.raises(NotFound, match="no version 7.*1 to 1"):
        local_workspace.datasets.get("loans@7")


def test_large_ingest_streams_in_parts(local_workspace, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200_000, 10)), columns=[f"f{i}" for i in range(10)])
    path = tmp_path / "big.csv"  # Arrow writes it in a tenth of pandas' time, the same numbers
    pacsv.write_csv(pa.Table.from_pandas(frame), path)
    v = local_workspace.datasets.ingest("big", [path]).version
    assert v.row_count == 200_000
    total = sum(b.num_rows for b in local_workspace.datasets.iter_batches("big", batch_size=50_000))
    assert total == 200_000


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ("loans@²", "invalid version"),
        ("loans@٣", "invalid version"),
        ("loans@99999999999999999999999", "too large"),
        ("loans@0", "does not exist"),
        ("loans@-1", "negative"),
        ("@3", "invalid dataset name"),
        ("", "invalid dataset name"),
        ("loans@", "invalid version"),
        ("loans@2..2", "names no rows"),
        ("loans@3..1", "names no rows"),
        ("loans@..2", "must start with a version"),
        ("loans@1..²", "invalid range"),
        ("loans@1..99999999999", "too large"),
        ("x" * 5000, "characters long"),
    ],
)
def test_malformed_references_are_typed_errors(local_workspace, ref, needle):
    with pytest.raises(InvalidInput, match=needle):
        local_workspace.datasets.get(ref)


@pytest.mark.parametrize("value", [5, None, 3.5, ["loans"]])
def test_a_reference_that_is_not_text_is_a_typed_error(local_workspace, value):
    # the façade's argument check names the parameter first ("ref must be str | Ref, not …")
    with pytest.raises(InvalidInput, match=r"ref(erence)? must be (text|str)"):
        local_workspace.datasets.get(value)


def test_huge_durations_are_typed_errors(local_workspace, tmp_path):
    local_workspace.datasets.ingest("loans", [_csv(tmp_path, "a.csv", loan_applications(10))])
    with pytest.raises(InvalidInput, match="before the year 1"):
        local_workspace.datasets.to_pandas("loans", since="99999999999d")


def test_a_range_names_only_the_rows_its_versions_added(workspace, tmp_path):
    days = [loan_applications(n, seed=s) for n, s in ((100, 1), (60, 2), (40, 3))]
    for i, day in enumerate(days):
        workspace.datasets.ingest("loans", [_csv(tmp_path, f"d{i}.csv", day)])
    ds = workspace.datasets
    new = ds.get("loans@1..3")
    assert (new.ref, new.row_count, new.version) == ("loans@1..3", 100, 3)
    assert new.content_hash != ds.get("loans@3").content_hash
    assert ds.to_pandas("loans@1..3")["salary"].tolist() == (
        days[1]["salary"].tolist() + days[2]["salary"].tolist())
    assert len(ds.to_pandas("loans@2..3")) == len(ds.to_pandas("loans@2..latest")) == 40
    assert len(ds.to_pandas("loans@2..")) == 40
    assert sum(b.num_rows for b in ds.iter_batches("loans@1..2", batch_size=7)) == 60
    assert ds.head("loans@2..3", 5).column("salary").to_pylist() == days[2]["salary"][:5].tolist()
    assert [s["version"] for s in ds.sources("loans@1..3")] == [2, 3]
    assert {p["version"] for p in ds.parts("loans@1..3")} == {2, 3}
    with pytest.raises(InvalidInput, match="names no rows"):
        ds.get("loans@3..")
    with pytest.raises(NotFound, match="no version 9"):
        ds.get("loans@1..9")


def test_cli_reads_ranges_and_refuses_bad_refs_in_one_line(local_workspace, tmp_path, cli):
    root = local_workspace.root
    for i, n in enumerate((30, 20)):
        cli("-w", root, "data", "ingest", "loans", _csv(tmp_path, f"d{i}.csv", loan_applications(n, seed=i)))
    head = cli("-w", root, "data", "head", "loans@1..2", "-n", "100", "--json").json()
    assert len(head) == 20
    shown = cli("-w", root, "data", "show", "loans@1..2", "--json").json()
    assert (shown["ref"], shown["row_count"], len(shown["sources"])) == ("loans@1..2", 20, 1)
    for bad in ("loans@²", "loans@99999999999999999999999", "loans@0", "@1", "loans@2..1"):
        r = cli("-w", root, "data", "head", bad, check=False)
        assert r.code != 0 and "Traceback" not in r.err and "internal error" not in r.err, r
        assert len(r.err.strip().splitlines()) == 1, r.err
