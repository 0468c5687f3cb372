"""monitoring: baselines, monitors and runs, labels, metric series and alarms

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "baselines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=True),
        sa.Column("dataset_version", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baselines")),
        sa.UniqueConstraint("name", name=op.f("uq_baselines_name")),
    )
    with op.batch_alter_table("baselines") as b:
        b.create_index(b.f("ix_baselines_dataset"), ["dataset"], unique=False)
        b.create_index("ix_baselines_dataset_version", ["dataset", "dataset_version"])

    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=True),
        sa.Column("endpoint", sa.String(128), nullable=True),
        sa.Column("variant", sa.String(128), nullable=True),
        sa.Column("baseline", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("schedule", sa.String(128), nullable=True),
        sa.Column("after_ingest", sa.Boolean(), nullable=False),
        sa.Column("window", sa.String(32), nullable=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_scheduled_at", _TZ, nullable=True),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("name", name=op.f("uq_monitors_name")),
    )

    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("monitor", sa.String(128), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("data", sa.String(256), nullable=True),
        sa.Column("window_start", _TZ, nullable=True),
        sa.Column("window_end", _TZ, nullable=True),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("n_violations", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("report_digest", sa.String(64), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_runs")),
    )
    with op.batch_alter_table("monitor_runs") as b:
        b.create_index(b.f("ix_monitor_runs_monitor"), ["monitor"], unique=False)
        b.create_index(b.f("ix_monitor_runs_job_id"), ["job_id"], unique=False)

    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("inference_id", sa.String(256), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("endpoint", "inference_id", name="uq_labels_endpoint_inference"),
    )

    op.create_table(
        "metric_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("dims", sa.String(1024), nullable=False),
        sa.Column("time", _TZ, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_points")),
    )
    with op.batch_alter_table("metric_points") as b:
        b.create_index("ix_metric_points_series_time", ["name", "dims", "time"])

    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(256), nullable=False),
        sa.Column("dims", sa.String(1024), nullable=False),
        sa.Column("statistic", sa.String(16), nullable=False),
        sa.Column("comparison", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("evaluation_periods", sa.Integer(), nullable=False),
        sa.Column("datapoints_to_alarm", sa.Integer(), nullable=False),
        sa.Column("missing_data", sa.String(16), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_updated_at", _TZ, nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
        sa.UniqueConstraint("name", name=op.f("uq_alarms_name")),
    )

    op.create_table(
        "alarm_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm", sa.String(128), nullable=False),
        sa.Column("time", _TZ, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("old_state", sa.String(32), nullable=True),
        sa.Column("new_state", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_history")),
    )
    with op.batch_alter_table("alarm_history") as b:
        b.create_index(b.f("ix_alarm_history_alarm"), ["alarm"], unique=False)


def downgrade() -> None:
    for table in (
        "alarm_history", "alarms", "metric_points", "labels", "monitor_runs", "monitors",
        "baselines",
    ):  # fmt: skip
        op.drop_table(table)
