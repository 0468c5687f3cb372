"""Batch transform through the SDK: output equals an in-memory predict, options, errors, lineage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transform_helpers import FEATURES, make_frame, read, register_classifier, write

from modelloop.errors import InvalidInput, NotFound


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_output_equals_predict_on_the_whole_frame(workspace, classifier, tmp_path, fmt):
    source = write(make_frame(3000), tmp_path / f"in.{fmt}", fmt)
    out = tmp_path / "out" / f"scores.{fmt}"
    out.parent.mkdir()
    # small chunks: the input is cut in several pieces scored by two worker processes
    result = workspace.transforms.run(
        "clf@1", str(source), str(out), proba=True, workers=2, chunk_mb=0.05, chunk_rows=1000
    )
    assert result.status == "completed" and result.rows == 3000 and result.error_rows == 0
    assert result.chunks > 2
    whole = read(source, fmt)  # the whole frame in memory, the way a user would score it
    expected = classifier.predict(whole[FEATURES])
    probs = classifier.predict_proba(whole[FEATURES])
    got = read(out, fmt)
    assert list(got.columns) == ["prediction", "proba_no", "proba_yes"]
    assert got["prediction"].tolist() == expected.tolist()
    # BLAS picks its kernel by matrix size, so a row's probability may differ in the last bit
    # between a batch of 477 rows and one of 3000: equal to rounding, not bit for bit
    np.testing.assert_allclose(got[["proba_no", "proba_yes"]].to_numpy(), probs, rtol=1e-13)


def test_default_output_format_is_the_inputs(workspace, classifier, tmp_path):
    source = write(make_frame(200), tmp_path / "in.jsonl", "jsonl")
    result = workspace.transforms.run("clf", str(source), str(tmp_path) + "/", workers=1)
    assert result.output == str(tmp_path / "predictions.jsonl")
    assert len(read(result.output, "jsonl")) == 200
    other = workspace.transforms.run(
        "clf", str(source), str(tmp_path / "x.bin"), output_format="parquet", workers=1
    )
    assert pd.read_parquet(other.output)["prediction"].tolist() == read(
        result.output, "jsonl"
    )["prediction"].tolist()


def test_join_source_id_column_and_filters(workspace, classifier, tmp_path):
    frame = make_frame(500)
    source = write(frame, tmp_path / "in.csv", "csv")
    joined = workspace.transforms.run(
        "clf@1", str(source), str(tmp_path / "joined.csv"), join_source="input", workers=1
    )
    got = read(joined.output, "csv")
    assert list(got.columns) == [*frame.columns, "prediction"]
    pd.testing.assert_frame_equal(got[frame.columns], read(source, "csv"))

    with_id = workspace.transforms.run(
        "clf@1", str(source), str(tmp_path / "ids.csv"), id_column="id", proba=True,
        output_filter=["id", "proba_yes"], workers=1,
    )
    got = read(with_id.output, "csv")
    assert list(got.columns) == ["id", "proba_yes"]
    assert got["id"].tolist() == frame["id"].tolist()
    np.testing.assert_allclose(
        got["proba_yes"].to_numpy(),
        classifier.predict_proba(read(source, "csv")[FEATURES])[:, 1],
        rtol=1e-13,
    )

    # input filter: name the fed columns, or leave some out with '-'
    fed = workspace.transforms.run(
        "clf@1", str(source), str(tmp_path / "fed.csv"),
        input_filter=["-id", "-note"], workers=2, executor="threads", chunk_mb=0.01,
    )
    assert read(fed.output, "csv")["prediction"].tolist() == read(joined.output, "csv")[
        "prediction"
    ].tolist()
    with pytest.raises(InvalidInput, match="'note', which the model does not take"):
        workspace.transforms.run(
            "clf@1", str(source), str(tmp_path / "bad.csv"), input_filter=[*FEATURES, "note"]
        )
    with pytest.raises(InvalidInput, match="output filter names column 'f0'"):
        workspace.transforms.run(
            "clf@1", str(source), str(tmp_path / "bad.csv"), output_filter=["f0"]
        )


def test_rows_that_fail_scoring_go_to_the_error_file(workspace, classifier, tmp_path):
    frame = make_frame(400).astype({"f1": object})
    frame.loc[17, "f1"] = "not a number"
    frame.loc[250, "f3"] = np.nan  # a logistic regression cannot score a missing value
    source = write(frame, tmp_path / "in.csv", "csv")
    result = workspace.transforms.run(
        "clf@1", str(source), str(tmp_path / "out.csv"), id_column="id", workers=1, chunk_mb=0.01
    )
    assert result.status == "completed_with_errors"
    assert (result.rows, result.error_rows) == (398, 2)
    assert result.job["status"] == "succeeded"
    assert result.job["outputs"]["status"] == "completed_with_errors"
    assert result.job["outputs"]["error_rows"] == 2
    # beside the output, its suffix replaced, as the README and --help say
    assert Path(result.errors_file) == tmp_path / "out.errors.jsonl"
    errors = [json.loads(line) for line in Path(result.errors_file).read_text().splitlines()]
    assert [e["record"]["id"] for e in errors] == [1017, 1250]
    assert "f1" in errors[0]["reason"] and "not a number" in errors[0]["reason"]
    assert "NaN" in errors[1]["reason"]
    got = read(result.output, "csv")
    good = frame.drop(index=[17, 250])
    assert got["id"].tolist() == good["id"].tolist()
    assert got["prediction"].tolist() == classifier.predict(
        good[FEATURES].astype(float)
    ).tolist()


def test_too_many_failing_rows_fail_the_transform(workspace, classifier, tmp_path):
    from modelloop.training.jobs import JobFailed

    frame = make_frame(300)
    frame["f2"] = np.nan
    source = write(frame, tmp_path / "in.csv", "csv")
    with pytest.raises(JobFailed, match="more than 10 rows that fail scoring"):
        workspace.transforms.run(
            "clf@1", str(source), str(tmp_path / "out.csv"), workers=1, max_errors_per_chunk=10
        )
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.all_backends
def test_dataset_version_input_and_lineage(workspace, classifier, tmp_path):
    frame = make_frame(900)
    version = workspace.datasets.ingest("scoring", [write(frame, tmp_path / "d.csv", "csv")]).version
    result = workspace.transforms.run(
        "clf@1", f"dataset:{version.ref}",
        str(tmp_path / "out.parquet"), id_column="id", workers=1,
    )
    got = pd.read_parquet(result.output)
    whole = workspace.datasets.to_pandas(version.ref)
    assert got["id"].tolist() == whole["id"].tolist()
    assert got["prediction"].tolist() == classifier.predict(whole[FEATURES]).tolist()
    job = workspace.jobs.get(result.job_id)
    assert job["kind"] == "transform"
    kinds = {i["kind"]: i for i in job["inputs"]}
    assert kinds["model"]["ref"] == "clf@1"
    assert kinds["dataset"]["ref"] == version.ref
    assert job["outputs"]["output"] == result.output


@pytest.mark.all_backends
def test_s3_input_and_output(workspace, classifier, tmp_path):
    if not workspace.config.artifacts_url.startswith("s3://"):
        pytest.skip("needs the S3-compatible backend")
    from modelloop.tabular.locations import filesystem

    bucket = workspace.config.artifacts_url.rsplit("/", 1)[0]
    fs = filesystem(bucket)
    frame = make_frame(600)
    for i, part in enumerate([frame.iloc[:300], frame.iloc[300:]]):
        local = write(part, tmp_path / f"p{i}.csv", "csv")
        fs.put_file(str(local), f"{bucket.split('://')[1]}/input/p{i}.csv")
    result = workspace.transforms.run(
        "clf@1", f"{bucket}/input/", f"{bucket}/output/scores.csv", id_column="id", workers=1
    )
    with fs.open(f"{bucket.split('://')[1]}/output/scores.csv", "rb") as fh:
        got = pd.read_csv(fh)
    assert got["id"].tolist() == frame["id"].tolist()
    assert got["prediction"].tolist() == classifier.predict(frame[FEATURES]).tolist()
    assert result.rows == 600


def test_bad_input_through_the_sdk(workspace, classifier, tmp_path):
    source = write(make_frame(50).drop(columns=["f2", "f4"]), tmp_path / "in.csv", "csv")
    with pytest.raises(InvalidInput, match="the model requires: f2, f4"):
        workspace.transforms.run("clf@1", str(source), str(tmp_path / "o.csv"))
    with pytest.raises(NotFound, match="no model named 'nope'"):
        workspace.transforms.run("nope@1", str(source), str(tmp_path / "o.csv"))
    with pytest.raises(NotFound, match="has no version 7"):
        workspace.transforms.run("clf@7", str(source), str(tmp_path / "o.csv"))
    whole = write(make_frame(50), tmp_path / "whole.csv", "csv")
    with pytest.raises(InvalidInput, match="would overwrite the input"):
        workspace.transforms.run("clf@1", str(whole), str(whole))


def test_a_transform_is_a_pipeline_step(local_workspace, tmp_path):
    from modelloop.batch.step import transform_step
    from modelloop.pipelines import pipeline, step

    ws = local_workspace
    register_classifier(ws)
    source = write(make_frame(100), tmp_path / "in.csv", "csv")

    @step
    def score(model: str, path: str) -> dict:
        return transform_step(ws, model, path, str(tmp_path / "scores.csv"), workers=1)

    @pipeline
    def nightly(model: str = "clf@1"):
        score(model, str(source))

    run = nightly.run(ws, {})
    assert run.status == "succeeded", run
    assert read(tmp_path / "scores.csv", "csv").shape == (100, 1)


@pytest.mark.parametrize("name", ["in.tsv", "in.csv.gz", "in.tsv.gz", "in.jsonl.gz"])
def test_tsv_and_gzipped_inputs(workspace, classifier, tmp_path, name):
    """The tabular module reads what ingest reads: TSV (cut into byte ranges) and gzipped text
    (one stream, read in blocks)."""
    frame = make_frame(1500)
    path = tmp_path / name
    if ".jsonl" in name:
        frame.to_json(path, orient="records", lines=True, double_precision=15)
    else:
        frame.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    (tmp_path / "out").mkdir()
    result = workspace.transforms.run("clf@1", str(path), str(tmp_path / "out") + "/",
                                      join_source="input", workers=2, chunk_mb=0.02)
    fmt = "jsonl" if ".jsonl" in name else "tsv" if ".tsv" in name else "csv"
    assert result.output == str(tmp_path / "out" / f"predictions.{fmt}")
    assert result.status == "completed" and result.rows == 1500
    assert (result.chunks == 1) == name.endswith(".gz")
    if fmt == "jsonl":
        got = read(result.output, "jsonl")
    else:
        got = pd.read_csv(result.output, sep="\t" if fmt == "tsv" else ",", engine="pyarrow")
    assert got["id"].tolist() == frame["id"].tolist()
    assert got["prediction"].tolist() == classifier.predict(frame[FEATURES]).tolist()


def test_whole_numbers_in_a_double_feature_score_as_floats_and_pass_through_as_written(
        local_workspace, tmp_path):
    """The model's double features are parsed as float64 up front (no type inference); a column
    that is also written keeps the input's text, and a block with a value that is no number
    falls back to inference so the row reaches the error file."""
    classifier = register_classifier(local_workspace)
    frame = make_frame(300)
    frame["f2"] = frame["f2"].round().astype("int64")  # the CSV holds "1", "-2", …
    source = write(frame, tmp_path / "in.csv", "csv")
    scored = local_workspace.transforms.run("clf@1", str(source), str(tmp_path / "a.csv"),
                                            workers=1)
    want = classifier.predict(frame[FEATURES].astype(float))
    assert read(scored.output, "csv")["prediction"].tolist() == want.tolist()
    assert scored.job["spec"]["layout"]["double_columns"] == FEATURES
    joined = local_workspace.transforms.run("clf@1", str(source), str(tmp_path / "b.csv"),
                                            workers=1, join_source="input")
    out = read(joined.output, "csv")
    assert joined.job["spec"]["layout"]["double_columns"] == []  # all written as given
    assert out["f2"].dtype == "int64" and out["f2"].tolist() == frame["f2"].tolist()
    assert out["prediction"].tolist() == want.tolist()
    frame = frame.astype({"f2": object})
    frame.loc[7, "f2"] = "n/a?"
    source = write(frame, tmp_path / "bad.csv", "csv")
    result = local_workspace.transforms.run("clf@1", str(source), str(tmp_path / "c.csv"),
                                            workers=1, id_column="id")
    assert (result.rows, result.error_rows) == (299, 1)
    assert "f2" in Path(result.errors_file).read_text()


def test_numeric_batches_score_as_arrays_with_the_same_output(local_workspace, tmp_path,
                                                              monkeypatch):
    """A bare scikit-learn model fed only double columns scores each batch as one float64 array
    straight from Arrow (no DataFrame): the output is byte for byte the DataFrame path's, and a
    batch the array path cannot take (a missing value, a column read as text) goes the DataFrame
    way, so its bad rows still reach the error file."""
    from modelloop.batch import scoring

    register_classifier(local_workspace)
    frame = make_frame(1200)
    frame.loc[640, "f3"] = np.nan
    source = write(frame, tmp_path / "in.csv", "csv")
    calls = {"arrays": 0, "frames": 0}
    real_arrays, real_frame = scoring._score_arrays, scoring._score_frame

    def arrays(*args):
        out = real_arrays(*args)
        calls["arrays"] += out is not None
        return out

    def frames(*args):
        calls["frames"] += 1
        return real_frame(*args)

    monkeypatch.setattr(scoring, "_score_arrays", arrays)
    monkeypatch.setattr(scoring, "_score_frame", frames)
    outputs = {}
    for direct in (True, False):
        scoring._DIRECT.clear()
        monkeypatch.setattr(scoring, "accepts_arrays", lambda m, d=direct: d, raising=False)
        result = local_workspace.transforms.run(
            "clf@1", str(source), str(tmp_path / f"out-{direct}.csv"), id_column="id",
            proba=True, workers=1, batch_rows=300)
        assert (result.rows, result.error_rows) == (1199, 1)
        outputs[direct] = (Path(result.output).read_bytes(),
                           json.loads(Path(result.errors_file).read_text())["record"]["id"])
        if direct:  # 4 batches: 3 as arrays, the one with the missing value as a frame
            assert calls == {"arrays": 3, "frames": 1}
    assert outputs[True] == outputs[False] and outputs[True][1] == 1640
