"""Concurrent ingests through the CLI, on SQLite + folder and PostgreSQL + S3.

``MODELLOOP_BARRIER`` holds every process at the point between reading which files the dataset
already has and committing, until all of them got there: the race is then certain, not a matter
of timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modelloop.data.samples import loan_applications

#: Processes racing: the barrier makes the race certain with any number; three (not more) because
#: each is a new interpreter with its imports, run on both backend pairs.
N = 3


def _ingest_at_once(ws, barrier, paths, name="loans"):
    barrier.mkdir()
    env = {**os.environ, "MODELLOOP_BARRIER": f"ingest.staged:{barrier}:{len(paths)}"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelloop",
                "-w",
                str(ws.root),
                "data",
                "ingest",
                name,
                str(p),
                "--json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for p in paths
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    assert len(list(barrier.iterdir())) == len(paths)  # every process did wait at the barrier
    return [json.loads(out) for out, _ in outs]


@pytest.mark.all_backends
def test_concurrent_ingests_of_the_same_file_make_one_version(workspace, tmp_path):
    path = tmp_path / "day1.csv"
    loan_applications(2_000, seed=1).to_csv(path, index=False)
    reports = _ingest_at_once(workspace, tmp_path / "b1", [path] * N)
    made = [r["version"]["ref"] for r in reports if r["version"]]
    assert made == ["loans@1"]
    assert sum(len(r["skipped"]) for r in reports) == N - 1
    assert workspace.datasets.get("loans").row_count == 2_000
    assert len(workspace.datasets.sources("loans")) == 1

    # the same on a dataset that already exists
    path2 = tmp_path / "day2.csv"
    loan_applications(1_000, seed=2).to_csv(path2, index=False)
    reports = _ingest_at_once(workspace, tmp_path / "b2", [path2] * N)
    assert [r["version"]["ref"] for r in reports if r["version"]] == ["loans@2"]
    assert workspace.datasets.get("loans").row_count == 3_000


@pytest.mark.all_backends
def test_concurrent_ingests_of_different_files_all_land_in_one_schema(workspace, tmp_path):
    paths = []
    for i in range(N):
        paths.append(tmp_path / f"part{i}.csv")
        loan_applications(300, seed=10 + i).to_csv(paths[-1], index=False)
    reports = _ingest_at_once(workspace, tmp_path / "b", paths, name="parts")
    assert sorted(r["version"]["version"] for r in reports) == list(range(1, N + 1))
    versions = workspace.datasets.versions("parts")
    assert versions[-1].row_count == 300 * N
    assert len({str(v.schema) for v in versions}) == 1
    assert len(workspace.datasets.to_pandas("parts")) == 300 * N
