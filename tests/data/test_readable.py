"""Data is never made unreadable: what an ingest commits reads back, and bad files get clear errors.

Driven through the CLI as a user would (``modelloop data …``); the ingest engine directly only
where a file must be cut into blocks smaller than the CLI's.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelloop.data.ingest.engine import IngestOptions, ingest_files
from modelloop.data.schema import MAX_NESTING
from modelloop.errors import InvalidInput, SchemaMismatch


def nested(depth: int, leaf=1):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def deep_line(depth: int, **fields) -> str:
    """A JSON object whose 'deep' field is nested ``depth`` levels (built as text: json.dumps
    itself recurses)."""
    head = json.dumps(fields)[:-1]
    return f'{head}, "deep": {"[" * depth}1{"]" * depth}}}'


@pytest.fixture
def ws(tmp_path):
    from modelloop import Workspace

    Workspace.init(tmp_path / "ws").close()
    return tmp_path / "ws"


def dataset_names(root) -> list[str]:
    from modelloop import Workspace

    ws = Workspace(root)
    try:
        return [d["name"] for d in ws.datasets.list()]
    finally:
        ws.close()


def test_a_deeply_nested_json_value_is_quarantined_and_the_dataset_stays_readable(
    ws, tmp_path, cli
):
    path = tmp_path / "deep.jsonl"
    lines = [json.dumps({"id": i, "x": "a", "deep": nested(2)}) for i in range(5)]
    lines[3] = deep_line(200, id=3, x="b")
    path.write_text("\n".join(lines) + "\n")
    r = cli("-w", ws, "data", "ingest", "deep", path, "--json")
    v = r.json()["version"]
    assert (v["added_rows"], v["quarantined_rows"]) == (4, 1)
    shown = cli("-w", ws, "data", "show", "deep", "--json").json()
    assert shown["row_count"] == 4
    assert [row["id"] for row in cli("-w", ws, "data", "head", "deep", "--json").json()] == [
        0,
        1,
        2,
        4,
    ]
    bad = cli("-w", ws, "data", "quarantine", "deep", "--json").json()["rows"]
    assert bad[0]["row"] == 4 and f"nested more than {MAX_NESTING} levels" in bad[0]["reason"]
    assert "'deep'" in bad[0]["reason"]
    # later ingests of the dataset still work
    (tmp_path / "more.jsonl").write_text(json.dumps({"id": 9, "x": "c", "deep": nested(2)}) + "\n")
    assert (
        cli("-w", ws, "data", "ingest", "deep", tmp_path / "more.jsonl", "--json").json()[
            "version"
        ]["row_count"]
        == 5
    )


def test_schema_evolution_with_a_deep_value_never_breaks_an_existing_dataset(ws, tmp_path, cli):
    (tmp_path / "v1.jsonl").write_text(json.dumps({"id": 1, "x": "a"}) + "\n")
    cli("-w", ws, "data", "ingest", "victim", tmp_path / "v1.jsonl")
    (tmp_path / "v2.jsonl").write_text(
        json.dumps({"id": 2, "x": "b"}) + "\n" + deep_line(200, id=3, x="c") + "\n"
    )
    r = cli(
        "-w", ws, "data", "ingest", "victim", tmp_path / "v2.jsonl",
        "--allow-schema-evolution", "--json",
    )  # fmt: skip
    assert r.json()["version"]["quarantined_rows"] == 1
    assert cli("-w", ws, "data", "show", "victim@1", "--json").json()["row_count"] == 1
    assert cli("-w", ws, "data", "show", "victim@2", "--json").json()["row_count"] == 2


def test_json_nested_beyond_the_parsers_recursion_limit_is_quarantined(ws, tmp_path, cli):
    path = tmp_path / "abyss.jsonl"
    path.write_text(json.dumps({"id": 1}) + "\n" + deep_line(5000, id=2) + "\n")
    v = cli("-w", ws, "data", "ingest", "abyss", path, "--json").json()["version"]
    assert (v["added_rows"], v["quarantined_rows"]) == (1, 1)
    # a JSON array file that deep cannot be read at all: a clear error, no version
    (tmp_path / "abyss.json").write_text("[" + deep_line(5000, id=2) + "]")
    r = cli("-w", ws, "data", "ingest", "abyss2", tmp_path / "abyss.json", check=False)
    assert r.code == 1 and "nested" in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_a_parquet_column_nested_too_deep_is_refused_naming_it(ws, tmp_path, cli):
    t = pa.int64()
    for _ in range(MAX_NESTING + 1):
        t = pa.list_(t)
    pq.write_table(
        pa.table({"id": [1], "deep": pa.array([nested(MAX_NESTING + 1)], type=t)}),
        tmp_path / "deep.parquet",
    )
    r = cli("-w", ws, "data", "ingest", "pq", tmp_path / "deep.parquet", check=False)
    assert r.code != 0 and "'deep'" in r.err and "nested" in r.err and "internal" not in r.err
    assert dataset_names(ws) == []


def test_mixed_nested_types_across_blocks_are_kept_as_json_text(tmp_path):
    lines = [json.dumps({"id": i, "v": [i, i]}) for i in range(200)]
    lines += [json.dumps({"id": i, "v": {"k": i}}) for i in range(200, 400)]
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    staging = tmp_path / "s"
    staging.mkdir()
    r = ingest_files([str(tmp_path / "mixed.jsonl")], staging, None, IngestOptions(block_size=2048))
    assert r.schema.field("v").type == pa.string() and r.rows == 400
    values = pa.concat_tables([pq.read_table(p.path) for p in r.parts])["v"].to_pylist()
    assert json.loads(values[0]) == [0, 0] and json.loads(values[-1]) == {"k": 399}


def test_evolution_that_older_versions_could_not_be_read_under_is_refused(ws, tmp_path, cli):
    (tmp_path / "v1.jsonl").write_text(json.dumps({"id": 1, "v": [1, 2]}) + "\n")
    cli("-w", ws, "data", "ingest", "lists", tmp_path / "v1.jsonl")
    (tmp_path / "v2.jsonl").write_text(json.dumps({"id": 2, "v": 7}) + "\n")
    r = cli(
        "-w", ws, "data", "ingest", "lists", tmp_path / "v2.jsonl", "--allow-schema-evolution",
        check=False,
    )  # fmt: skip
    assert r.code != 0 and "'v'" in r.err and "internal" not in r.err
    assert cli("-w", ws, "data", "show", "lists", "--json").json()["version"] == 1
    assert cli("-w", ws, "data", "head", "lists", "--json").json() == [{"id": 1, "v": [1, 2]}]


def test_unusual_parquet_types_read_back_as_committed(ws, tmp_path, cli):
    table = pa.table(
        {
            "id": [1, 2],
            "d": pa.array([1, 2], pa.duration("s")),
            "t": pa.array([1, 2], pa.time32("s")),
            "dec": pa.array([1, 2], pa.decimal128(5, 2)),
            "m": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
            "ll": pa.array([[1], [2, 3]], pa.large_list(pa.int64())),
            "fsl": pa.array([[1, 2], [3, 4]], pa.list_(pa.int64(), 2)),
            "u64": pa.array([1, 2], pa.uint64()),
            "st": pa.array([{"a": 1}, {"a": None}]),
        }
    )
    pq.write_table(table, tmp_path / "types.parquet")
    cli("-w", ws, "data", "ingest", "types", tmp_path / "types.parquet")
    rows = cli("-w", ws, "data", "head", "types", "--json").json()
    assert [r["id"] for r in rows] == [1, 2] and rows[1]["st"] == {"a": None}
    cli("-w", ws, "data", "show", "types")
    cli("-w", ws, "data", "ingest", "types", tmp_path / "types.parquet")  # skipped, not broken


def test_a_huge_string_value_reads_back(ws, tmp_path, cli):
    big = "x" * (24 << 20)  # longer than one 16 MiB block
    (tmp_path / "big.jsonl").write_text(
        json.dumps({"id": 1, "s": "a"}) + "\n" + json.dumps({"id": 2, "s": big}) + "\n"
    )
    cli("-w", ws, "data", "ingest", "big", tmp_path / "big.jsonl")
    rows = cli("-w", ws, "data", "head", "big", "--json", "--columns", "id").json()
    assert rows == [{"id": 1}, {"id": 2}]


# -- files that hold nothing, or nothing nameable ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("header.csv", b"a,b\n", "has no rows"),
        ("header-crlf.csv", b"a,b\r\n", "has no rows"),
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"  \n\n", "is empty"),
        ("blank.jsonl", b"\n \n", "is empty"),
        ("empty-list.json", b"[]", "has no rows"),
        ("dupes.csv", b"a,b,a\n1,2,3\n", "duplicate column names: a"),
        ("unnamed.csv", b"a,\n1,2\n", "empty column name"),
        ("unnamed.jsonl", b'{"a": 1, "": 2}\n', "empty column name"),
    ],
)
def test_files_without_rows_or_column_names_get_one_clear_line(
    ws, tmp_path, cli, name, content, message
):
    (tmp_path / name).write_bytes(content)
    r = cli("-w", ws, "data", "ingest", "x", tmp_path / name, check=False)
    assert r.code == 1, r
    assert message in r.err and name in r.err and len(r.err.strip().splitlines()) == 1
    assert dataset_names(ws) == []


def test_parquet_without_rows_or_with_bad_names_gets_a_clear_error(tmp_path):
    def ingest(table, name):
        pq.write_table(table, tmp_path / name)
        staging = tmp_path / f"s-{name}"
        staging.mkdir()
        return ingest_files([str(tmp_path / name)], staging, None)

    with pytest.raises(InvalidInput, match="zero.parquet' has no rows"):
        ingest(pa.table({"a": pa.array([], pa.int64())}), "zero.parquet")
    with pytest.raises(InvalidInput, match="duplicate column names: a"):
        ingest(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]), "d.parquet")
    with pytest.raises(InvalidInput, match="an empty column name"):
        ingest(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", ""]), "e.parquet")


def test_a_header_only_file_beside_a_file_with_rows_is_recorded_with_zero_rows(tmp_path):
    (tmp_path / "a.csv").write_text("a,b\n1,x\n")
    (tmp_path / "b.csv").write_text("a,b\n")
    staging = tmp_path / "s"
    staging.mkdir()
    r = ingest_files([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")], staging, None)
    assert [s.rows for s in r.sources] == [1, 0] and r.schema.field("a").type == pa.int64()
    # a header-only file still has to match the dataset's columns
    (tmp_path / "c.csv").write_text("a,c\n")
    staging2 = tmp_path / "s2"
    staging2.mkdir()
    with pytest.raises(SchemaMismatch, match="lacks column 'b'"):
        ingest_files([str(tmp_path / "c.csv")], staging2, r.schema)


def test_a_csv_with_a_byte_order_mark_keeps_its_first_column_name(ws, tmp_path, cli):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfa,b\n1,2\n")
    cli("-w", ws, "data", "ingest", "bom", tmp_path / "bom.csv")
    assert cli("-w", ws, "data", "head", "bom", "--json").json() == [{"a": 1, "b": 2}]
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 3, "b": 4}\n')
    cli("-w", ws, "data", "ingest", "bom", tmp_path / "bom.jsonl")
    assert cli("-w", ws, "data", "show", "bom", "--json").json()["row_count"] == 2


# -- wide files ---------------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_a_file_with_ten_thousand_columns_is_ingested_and_read(local_workspace, tmp_path):
    """Checking columns was quadratic (72 s for 20,000 columns); linear, what is left is Arrow's
    and Parquet's own cost per column (some 0.5 ms each to parse, write and read back)."""
    n = 10_000
    names = [f"c{i}" for i in range(n)]
    lines = [",".join(names)] + [",".join(str(r * i) for i in range(n)) for r in range(3)]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n")
    ds = local_workspace.datasets
    assert ds.ingest("wide", [tmp_path / "wide.csv"]).version.row_count == 3
    assert ds.head("wide", 1).num_columns == n
    # a file with the columns in another order conforms to the dataset's order
    (tmp_path / "wide2.csv").write_text(
        ",".join(reversed(names)) + "\n" + ",".join(reversed(lines[2].split(","))) + "\n"
    )
    assert ds.ingest("wide", [tmp_path / "wide2.csv"]).version.row_count == 4
    assert ds.to_arrow("wide@2").column_names == names
    assert ds.to_arrow("wide@2")["c7"].to_pylist() == [0, 7, 14, 7]
