"""Tables of monitoring: stored baselines, monitors and their runs, late labels, metric series and
alarms with their state history.

A baseline's statistics live in the artifact store (one JSON blob); its row here makes it
addressable by name and by the dataset version it was computed from. A metric point's
``dimensions`` are kept as canonical JSON (sorted keys) in ``dims``, so that one series is one
``(name, dims)`` pair and can be read through one index.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

baselines = sa.Table(
    "baselines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("dataset", sa.String(128), index=True),  # None for imported / file baselines
    sa.Column("dataset_version", sa.Integer),
    sa.Column("source", sa.String(32), nullable=False),  # dataset | file | sagemaker | merge
    sa.Column("digest", sa.String(64), nullable=False),  # the baseline JSON blob
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.Text, nullable=False),  # JSON: column -> numeric | categorical
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_baselines_dataset_version", "dataset", "dataset_version"),
)

monitors = sa.Table(
    "monitors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("dataset", sa.String(128)),  # a data monitor watches a dataset's new versions …
    sa.Column("endpoint", sa.String(128)),  # … an endpoint monitor watches captured traffic
    sa.Column("variant", sa.String(128)),
    sa.Column("baseline", sa.String(256), nullable=False),
    sa.Column("model", sa.String(256)),  # for model quality: the version's training metrics
    sa.Column("schedule", sa.String(128)),  # cron expression
    sa.Column("after_ingest", sa.Boolean, nullable=False, default=False),
    sa.Column("window", sa.String(32)),  # endpoint monitors: how far back a run looks ("1h")
    sa.Column("config", sa.Text, nullable=False),  # JSON: CheckConfig, quality options
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("last_scheduled_at", sa.DateTime(timezone=True)),  # last cron slot started
    sa.Column("last_event_id", sa.Integer, nullable=False, default=0),  # event log position
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

monitor_runs = sa.Table(
    "monitor_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("monitor", sa.String(128), nullable=False, index=True),
    sa.Column("job_id", sa.Integer, index=True),
    sa.Column("status", sa.String(32), nullable=False),  # completed | insufficient_data
    sa.Column("data", sa.String(256)),  # what was checked: loans@3, or endpoint/variant
    sa.Column("window_start", sa.DateTime(timezone=True)),
    sa.Column("window_end", sa.DateTime(timezone=True)),
    sa.Column("n_rows", sa.BigInteger, nullable=False, default=0),
    sa.Column("n_violations", sa.Integer, nullable=False, default=0),
    sa.Column("summary", sa.Text, nullable=False),  # JSON: verdict, drifted columns, quality
    sa.Column("report_digest", sa.String(64)),  # the full report JSON blob
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Ground truth that arrives after the prediction, keyed by the inference id the endpoint returned.
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("inference_id", sa.String(256), nullable=False),
    sa.Column("label", sa.Text, nullable=False),  # JSON scalar
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("endpoint", "inference_id", name="uq_labels_endpoint_inference"),
)

metric_points = sa.Table(
    "metric_points",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("dims", sa.String(1024), nullable=False),  # canonical JSON of the dimensions
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Index("ix_metric_points_series_time", "name", "dims", "time"),
)

alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("metric", sa.String(256), nullable=False),
    sa.Column("dims", sa.String(1024), nullable=False),
    sa.Column("statistic", sa.String(16), nullable=False),  # average | max | min | sum | count
    sa.Column("comparison", sa.String(32), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("period", sa.Integer, nullable=False),  # seconds per datapoint
    sa.Column("evaluation_periods", sa.Integer, nullable=False),  # N
    sa.Column("datapoints_to_alarm", sa.Integer, nullable=False),  # M
    sa.Column("missing_data", sa.String(16), nullable=False),
    sa.Column("actions", sa.Text, nullable=False),  # JSON list
    sa.Column("state", sa.String(32), nullable=False),  # OK | ALARM | INSUFFICIENT_DATA
    sa.Column("state_reason", sa.Text),
    sa.Column("state_updated_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

alarm_history = sa.Table(
    "alarm_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("alarm", sa.String(128), nullable=False, index=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # state | action
    sa.Column("old_state", sa.String(32)),
    sa.Column("new_state", sa.String(32)),
    sa.Column("reason", sa.Text),
    sa.Column("data", sa.Text, nullable=False),  # JSON: datapoints, action outcome
)

#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_COLUMNS = [(baselines, "digest"), (monitor_runs, "report_digest")]
