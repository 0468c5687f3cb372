"""Tables of the pipeline engine: runs, their step runs, and the blobs step outputs live in.

A run's ``spec`` keeps the DAG it ran (steps, edges, kinds) and where its code came from, so that
``runs show`` can draw it and ``runs resume`` can load it again in another process. A step run's
``recipe`` is the dict its cache key was hashed from, kept so ``runs explain`` can diff recipes.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pipeline", sa.String(256), nullable=False, index=True),
    # pending | running | waiting | succeeded | failed | interrupted
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("params", sa.Text, nullable=False),  # JSON
    sa.Column("spec", sa.Text, nullable=False),  # JSON: steps, edges, source of the code
    sa.Column("executor", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("host", sa.String(256)),
    sa.Column("pid", sa.Integer),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),  # 1 + number of resumes
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    # what started the run: {"firing", "trigger", "cause"} for a trigger's firing (JSON)
    sa.Column("started_by", sa.Text),
    sa.Column("firing_id", sa.Integer, unique=True),  # one run per firing, also after a crash
)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("pipeline_runs.id"), nullable=False, index=True),
    sa.Column("pipeline", sa.String(256), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # step | fail | approval | callback
    # pending | running | succeeded | failed | cached | skipped | waiting
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("cache_key", sa.String(64), index=True),
    sa.Column("recipe", sa.Text),  # JSON: what the cache key was hashed from
    sa.Column("cached_from", sa.Integer),  # the step run whose outputs a cache hit reused
    sa.Column("inputs", sa.Text, nullable=False),  # JSON: argument -> what was passed
    sa.Column("info", sa.Text, nullable=False),  # JSON: attempts' errors, decisions, reasons
    sa.Column("error", sa.Text),
    sa.Column("log", sa.Text),
    sa.Column("token", sa.String(64), unique=True),  # callback steps: what the reporter quotes
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("duration", sa.Float),
    sa.UniqueConstraint("run_id", "name", name="uq_step_runs_run_name"),
    sa.Index("ix_step_runs_pipeline_name_status", "pipeline", "name", "status"),
)

# One row per output of a step run, pointing at its blob in the artifact store.
step_outputs = sa.Table(
    "step_outputs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("step_run_id", sa.Integer, sa.ForeignKey("step_runs.id"), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, index=True),
    sa.Column("format", sa.String(32), nullable=False),  # json | parquet | npy | pickle | ...
    sa.Column("type", sa.String(256), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_COLUMNS = [(step_outputs, "digest")]
