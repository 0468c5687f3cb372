"""The ingest engine on its own: files in, conformed Parquet parts and a quarantine out."""

from __future__ import annotations

import gzip
import hashlib
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelloop.data.ingest.engine import IngestOptions, ingest_files
from modelloop.errors import InvalidInput, NotFound, SchemaMismatch


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "at": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC"),
            "amount": rng.normal(100, 10, n).round(3),
            "city": rng.choice(["oslo", "lima", "pune"], n),
            "ok": rng.random(n) < 0.5,
        }
    )


def run(tmp_path, paths, schema=None, **options):
    staging = tmp_path / f"staging-{len(list(tmp_path.glob('staging-*')))}"
    staging.mkdir()
    return ingest_files([str(p) for p in paths], staging, schema, IngestOptions(**options))


def read(result) -> pd.DataFrame:
    tables = [pq.read_table(p.path) for p in result.parts]
    for t in tables:
        assert t.schema == result.schema  # every part shares exactly the resulting schema
    return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame()


def test_csv_round_trip_records_sources_and_types(tmp_path):
    df = frame(500)
    path = tmp_path / "a.csv"
    df.to_csv(path, index=False)
    seen = []
    staging = tmp_path / "s"
    staging.mkdir()
    r = ingest_files(
        [str(path)], staging, None, IngestOptions(), progress=lambda d, t: seen.append((d, t))
    )
    assert r.schema.names == ["id", "at", "amount", "city", "ok"]
    assert [str(t) for t in r.schema.types] == [
        "int64",
        "timestamp[us, tz=UTC]",
        "double",
        "string",
        "bool",
    ]
    back = read(r)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    (src,) = r.sources
    assert src.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (src.size, src.rows, src.quarantined_rows, src.format) == (
        path.stat().st_size,
        500,
        0,
        "csv",
    )
    assert (r.rows, r.quarantined_rows, r.quarantine, r.skipped) == (500, 0, None, [])
    assert seen[-1] == (src.size, src.size)


def test_parquet_and_json_lines_conform_to_the_dataset_schema(tmp_path):
    df = frame(300, seed=1)
    df.iloc[:100].to_csv(tmp_path / "a.csv", index=False)
    first = run(tmp_path, [tmp_path / "a.csv"])
    # Parquet with narrower ints and nanosecond times; JSON Lines with times as ISO text
    df.iloc[100:200].astype({"id": "int32"}).to_parquet(tmp_path / "b.parquet", index=False)
    df.iloc[200:].to_json(tmp_path / "c.jsonl", orient="records", lines=True, date_format="iso")
    r = run(tmp_path, [tmp_path / "b.parquet", tmp_path / "c.jsonl"], first.schema)
    assert r.schema == first.schema and r.quarantined_rows == 0
    back = read(r)
    assert back["id"].tolist() == list(range(100, 300))
    assert back["at"].tolist() == df["at"].iloc[100:].tolist()
    assert [s.format for s in r.sources] == ["parquet", "jsonl"]


def test_folders_and_globs_expand_in_order_and_missing_paths_are_not_found(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    df = frame(90, seed=2)
    df.iloc[:30].to_csv(folder / "b.csv", index=False)
    df.iloc[30:60].to_csv(folder / "a.csv", index=False)
    df.iloc[60:].to_csv(folder / "sub" / "c.csv", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / "notes.txt").write_text("not data")
    r = run(tmp_path, [folder])
    assert [os.path.basename(s.path) for s in r.sources] == ["a.csv", "b.csv", "c.csv"]
    assert read(r)["id"].tolist() == list(range(30, 60)) + list(range(30)) + list(range(60, 90))
    r = run(tmp_path, [folder / "*.csv"])
    assert r.rows == 60
    with pytest.raises(NotFound, match="nope.csv"):
        run(tmp_path, [tmp_path / "nope.csv"])
    with pytest.raises(NotFound, match=r"no files match .*\*\.parquet"):
        run(tmp_path, [folder / "*.parquet"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NotFound, match="no CSV, Parquet or JSON Lines files in folder"):
        run(tmp_path, [empty])
    with pytest.raises(InvalidInput, match="unknown format.*notes.txt") as e:
        run(tmp_path, [folder / "notes.txt"])
    assert ".parquet" in e.value.hint


def test_a_type_clash_names_the_column_expected_type_and_values(tmp_path):
    df = frame(200, seed=3)
    df.to_csv(tmp_path / "a.csv", index=False)
    schema = run(tmp_path, [tmp_path / "a.csv"]).schema
    df.assign(amount="lots").to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(SchemaMismatch, match=r"column 'amount'.*double.*'lots'"):
        run(tmp_path, [tmp_path / "b.csv"], schema)
    # a typed column that does not fit is a clash too
    df.assign(id=df["id"] + 0.5).to_parquet(tmp_path / "c.parquet", index=False)
    with pytest.raises(SchemaMismatch, match=r"column 'id'.*double.*int64"):
        run(tmp_path, [tmp_path / "c.parquet"], schema)
    # widening an int column into a float one is fine
    schema_f = schema.set(0, pa.field("id", pa.float64()))
    r = run(tmp_path, [tmp_path / "a.csv"], schema_f)
    assert r.schema.field("id").type == pa.float64() and r.rows == 200


def test_missing_and_extra_columns_need_evolution_which_is_recorded(tmp_path):
    df = frame(50, seed=4)
    df.to_csv(tmp_path / "a.csv", index=False)
    schema = run(tmp_path, [tmp_path / "a.csv"]).schema
    df.drop(columns=["city"]).assign(region="north").to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(SchemaMismatch, match=r"lacks column 'city'.*has column 'region'"):
        run(tmp_path, [tmp_path / "b.csv"], schema)
    r = run(tmp_path, [tmp_path / "b.csv"], schema, allow_schema_evolution=True)
    assert r.schema.names == ["id", "at", "amount", "city", "ok", "region"]
    assert any("added column 'region'" in c for c in r.schema_changes)
    assert any("'city' missing" in c for c in r.schema_changes)
    back = read(r)
    assert back["city"].isna().all() and (back["region"] == "north").all()


def test_evolution_widens_a_clashing_column_and_rewrites_earlier_parts(tmp_path):
    df = frame(100, seed=5)
    df.to_csv(tmp_path / "a.csv", index=False)
    schema = run(tmp_path, [tmp_path / "a.csv"]).schema
    df.iloc[:50].to_csv(tmp_path / "b.csv", index=False)
    df.iloc[50:].assign(id="x").to_csv(tmp_path / "c.csv", index=False)
    r = run(tmp_path, [tmp_path / "b.csv", tmp_path / "c.csv"], schema, allow_schema_evolution=True)
    assert r.schema.field("id").type == pa.string()
    assert r.schema_changes == [
        f"column 'id' widened from int64 to string by '{tmp_path / 'c.csv'}'"
    ]
    assert read(r)["id"].tolist() == [str(i) for i in range(50)] + ["x"] * 50


def test_bad_values_in_a_later_block_are_quarantined_and_the_rest_kept_in_order(tmp_path):
    df = frame(2000, seed=6)
    df.iloc[:10].to_csv(tmp_path / "a.csv", index=False)
    schema = run(tmp_path, [tmp_path / "a.csv"]).schema
    lines = df.to_csv(index=False).splitlines()
    lines[1500] = lines[1500].replace(lines[1500].split(",")[2], "n/a?", 1)  # line 1501
    lines[1800] = "1,2"  # wrong number of fields, line 1801
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    r = run(tmp_path, [tmp_path / "b.csv"], schema, block_size=16_384)
    assert (r.rows, r.quarantined_rows) == (1998, 2)
    assert r.sources[0].quarantined_rows == 2
    kept = read(r)["id"].tolist()
    assert kept == [i for i in range(2000) if i not in (1499, 1799)]
    bad = pq.read_table(r.quarantine).to_pandas().sort_values("row")
    assert bad["row"].tolist() == [1501, 1801]
    assert bad["source"].iloc[0] == str(tmp_path / "b.csv")
    assert "column 'amount'" in bad["reason"].iloc[0] and "'n/a?'" in bad["reason"].iloc[0]
    assert json.loads(bad["record"].iloc[0])["amount"] == "n/a?"
    assert bad["reason"].iloc[1] == "expected 5 fields, got 2" and bad["record"].iloc[1] == "1,2"


def test_a_new_dataset_widens_types_over_the_whole_file_instead_of_quarantining(tmp_path):
    n = 3000
    ids = [str(i) for i in range(n)]
    ids[2500] = "2500.5"  # a float far past the first block
    codes = [str(i % 7) for i in range(n)]
    codes[2900] = "seven"
    pd.DataFrame({"id": ids, "code": codes}).to_csv(tmp_path / "a.csv", index=False)
    r = run(tmp_path, [tmp_path / "a.csv"], block_size=8_192)
    assert r.schema.field("id").type == pa.float64()
    assert r.schema.field("code").type == pa.string()
    assert r.quarantined_rows == 0 and r.rows == n and len(r.parts) >= 1
    back = read(r)
    assert back["id"].iloc[2500] == 2500.5 and back["code"].iloc[2900] == "seven"
    assert back["code"].iloc[10] == "3"


def test_same_content_is_skipped_by_hash(tmp_path):
    frame(20).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "copy.csv").write_bytes((tmp_path / "a.csv").read_bytes())
    r = run(tmp_path, [tmp_path / "a.csv", tmp_path / "copy.csv"])
    assert r.rows == 20 and r.skipped == [str(tmp_path / "copy.csv")]
    again = run(tmp_path, [tmp_path / "copy.csv"], r.schema, skip_hashes={r.sources[0].sha256})
    assert again.sources == [] and again.parts == [] and len(again.skipped) == 1


def test_event_time_range_and_its_errors(tmp_path):
    df = frame(100, seed=7)
    df.to_csv(tmp_path / "a.csv", index=False)
    r = run(tmp_path, [tmp_path / "a.csv"], event_time_column="at")
    assert r.event_time_min == df["at"].min().to_pydatetime()
    assert r.event_time_max == df["at"].max().to_pydatetime()
    with pytest.raises(InvalidInput, match="event-time column 'when'"):
        run(tmp_path, [tmp_path / "a.csv"], event_time_column="when")
    with pytest.raises(SchemaMismatch, match="event-time column 'id' holds int64"):
        run(tmp_path, [tmp_path / "a.csv"], event_time_column="id")
    df.assign(at="soon").to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(SchemaMismatch, match="'at'.*not parseable as time"):
        run(tmp_path, [tmp_path / "b.csv"], event_time_column="at")


def test_gzip_csv_tsv_and_parts_of_bounded_size(tmp_path):
    df = frame(1000, seed=8)
    with gzip.open(tmp_path / "a.csv.gz", "wt") as fh:
        df.to_csv(fh, index=False)
    df.to_csv(tmp_path / "b.tsv", index=False, sep="\t")
    r = run(tmp_path, [tmp_path / "a.csv.gz", tmp_path / "b.tsv"], part_rows=300)
    assert [p.rows for p in r.parts] == [300, 300, 300, 300, 300, 300, 200]
    assert [pq.read_metadata(p.path).num_rows for p in r.parts] == [p.rows for p in r.parts]
    assert read(r)["id"].tolist() == list(range(1000)) * 2


def test_json_lines_that_are_not_json_are_quarantined(tmp_path):
    rows = [json.dumps({"id": i, "city": "oslo"}) for i in range(10)]
    rows[3] = "{broken"
    rows[6] = "[1, 2]"
    (tmp_path / "a.jsonl").write_text("\n".join(rows) + "\n")
    r = run(tmp_path, [tmp_path / "a.jsonl"])
    assert (r.rows, r.quarantined_rows) == (8, 2)
    bad = pq.read_table(r.quarantine).to_pandas()
    assert bad["row"].tolist() == [4, 7]
    assert bad["reason"].str.startswith("not JSON").iloc[0] and bad["record"].iloc[0] == "{broken"
    # a JSON array of objects in a .json file works too
    (tmp_path / "b.json").write_text(json.dumps([{"id": 1, "city": "lima"}]))
    assert run(tmp_path, [tmp_path / "b.json"], r.schema).rows == 1


def test_unreadable_files_are_invalid_input_naming_the_file(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 but not really")
    with pytest.raises(InvalidInput, match=r"cannot read '.*bad.parquet' as parquet: "):
        run(tmp_path, [tmp_path / "bad.parquet"])
    (tmp_path / "junk.csv").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(InvalidInput, match="junk.csv"):
        run(tmp_path, [tmp_path / "junk.csv"])
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty.csv' is empty"):
        run(tmp_path, [tmp_path / "empty.csv"])
    with pytest.raises(InvalidInput, match="unknown format 'xml'"):
        run(tmp_path, [tmp_path / "empty.csv"], format="xml")
    (tmp_path / "mess.csv").write_text("a,b\n1\n2\n3\n4,5\n")
    with pytest.raises(InvalidInput, match="3 of 4 rows have the wrong number of fields"):
        run(tmp_path, [tmp_path / "mess.csv"])


def test_a_file_that_cannot_be_read_is_invalid_input_naming_it(tmp_path, monkeypatch):
    """Runs as root too (CI does): an I/O error is made with a link to memory no one can read,
    and a refused permission by the opener itself (root reads files whatever their mode)."""
    path = tmp_path / "broken.csv"
    path.symlink_to("/proc/self/mem")  # reading it fails with EIO, whoever you are
    with pytest.raises(InvalidInput, match=r"cannot read '.*broken.csv'.*Input/output error"):
        run(tmp_path, [path])
    secret = tmp_path / "secret.csv"
    frame(5).to_csv(secret, index=False)
    from modelloop.data.ingest import engine

    def refuse(path, options=None):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(engine, "open_input", refuse)
    with pytest.raises(InvalidInput, match="cannot read '.*secret.csv'.*Permission denied"):
        run(tmp_path, [secret])


def test_ingest_from_an_s3_prefix(tmp_path, s3_bucket):
    """Objects under a prefix, in every format (gzipped text too), read like local files."""
    from modelloop.tabular.locations import filesystem

    df = frame(300)
    fs = filesystem(s3_bucket)
    prefix = s3_bucket.split("://", 1)[1] + "/in"
    local = tmp_path / "local"
    local.mkdir()
    df.iloc[:100].to_csv(local / "a.csv", index=False)
    df.iloc[100:200].to_csv(local / "b.tsv.gz", index=False, sep="\t")
    df.iloc[200:].to_parquet(local / "c.parquet", index=False)
    (local / "_SUCCESS").write_text("")
    for f in local.iterdir():
        fs.put_file(str(f), f"{prefix}/{f.name}")
    r = run(tmp_path, [f"s3://{prefix}/"])
    assert [s.path for s in r.sources] == [f"s3://{prefix}/{n}" for n in
                                           ("a.csv", "b.tsv.gz", "c.parquet")]
    assert [s.format for s in r.sources] == ["csv", "tsv", "parquet"]
    assert r.sources[0].sha256 == hashlib.sha256((local / "a.csv").read_bytes()).hexdigest()
    got = read(r).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["id", "city", "ok"]], df[["id", "city", "ok"]])
    assert got["amount"].tolist() == df["amount"].tolist()
    glob = run(tmp_path, [f"s3://{prefix}/*.csv"], r.schema)
    assert glob.rows == 100
