"""Batch transform refuses what would break or slow it where it is given: non-finite or
out-of-range numbers, versions that are not approved; a killed assembly leaves no temporary."""

from __future__ import annotations

import pytest
from transform_helpers import make_frame, register_classifier, write

from modelloop.errors import InvalidInput, NotApproved


@pytest.fixture
def ws(local_workspace):
    register_classifier(local_workspace)
    return local_workspace


@pytest.mark.parametrize("options, field", [
    ({"chunk_mb": 0}, "chunk_mb"),
    ({"chunk_mb": float("nan")}, "chunk_mb"),
    ({"chunk_mb": float("inf")}, "chunk_mb"),
    ({"chunk_rows": 0}, "chunk_rows"),
    ({"batch_rows": -5}, "batch_rows"),
    ({"max_errors_per_chunk": -1}, "max_errors_per_chunk"),
    ({"workers": 0}, "workers"),
    ({"workers": "x"}, "workers"),
    ({"workers": 2.5}, "workers"),
    ({"chunk_size": 3}, "chunk_size"),
])
def test_sdk_refuses_bad_numbers_before_a_job_starts(ws, tmp_path, options, field):
    source = write(make_frame(50), tmp_path / "in.csv", "csv")
    with pytest.raises(InvalidInput, match=field):
        ws.transforms.run("clf@1", str(source), str(tmp_path / "out.csv"), **options)
    assert ws.jobs.list(kind="transform") == []


def test_cli_refuses_chunk_mb_zero_in_one_line(ws, tmp_path, cli):
    source = write(make_frame(50), tmp_path / "in.csv", "csv")
    r = cli("-w", ws.root, "transform", "--model", "clf@1", "--input", source, "--output",
            tmp_path / "out.csv", "--chunk-mb", "0", check=False)
    assert r.code != 0 and "chunk_mb" in r.err and len(r.err.strip().splitlines()) == 1, r


def test_unapproved_versions_are_refused_unless_forced(local_workspace, tmp_path, cli):
    ws = local_workspace
    register_classifier(ws, approve=False)
    source = write(make_frame(50), tmp_path / "in.csv", "csv")
    with pytest.raises(NotApproved, match="pending"):
        ws.transforms.run("clf@1", str(source), str(tmp_path / "out.csv"), workers=1)
    r = cli("-w", ws.root, "transform", "--model", "clf", "--input", source, "--output",
            tmp_path / "out.csv", check=False)
    assert r.code != 0 and "not approved" in r.err and "--force" in r.err, r
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "out.csv").exists()
    r = cli("-w", ws.root, "transform", "--model", "clf", "--input", source, "--output",
            tmp_path / "out.csv", "--force", "--reason", "backfill before review", "--json",
            "--workers", "1")
    assert "warning:" in r.err and "pending" in r.err
    job = ws.jobs.get(r.json()["job_id"])
    assert job["spec"]["approval_override"]["reason"] == "backfill before review"
    assert job["spec"]["approval_override"]["status"] == "pending"
    assert (tmp_path / "out.csv").exists()


@pytest.mark.cli_subprocess  # MODELLOOP_FAULT kills the process running the command
def test_a_killed_assembly_leaves_no_temporary_after_the_rerun(ws, tmp_path, cli):
    source = write(make_frame(500), tmp_path / "in.csv", "csv")
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    args = ["-w", ws.root, "transform", "--model", "clf@1", "--input", source, "--output", out,
            "--workers", "1"]
    killed = cli(*args, env={"MODELLOOP_FAULT": "transform.assembling"}, check=False)
    assert killed.code != 0
    assert [p.name for p in out.parent.iterdir()] != []  # the 0-byte temporary it left
    assert not out.exists()
    cli(*args)
    assert [p.name for p in out.parent.iterdir()] == ["scores.csv"]
