"""SQL of tracked work: jobs, their metric points and artifacts."""

from __future__ import annotations

import json

import sqlalchemy as sa

from modelloop.common.status import JobStatus
from modelloop.store.interfaces.jobs import JobStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.tables.jobs import job_artifacts, job_metrics, jobs

_JOB_JSON = ("spec", "params", "metrics", "inputs", "outputs", "info")


def _job(row) -> dict:
    out = row_dict(row)
    for key in _JOB_JSON:
        out[key] = json.loads(out[key]) if out.get(key) else ({} if key != "inputs" else [])
    return out


class SqlJobs(SqlBase, JobStore):
    def create_job(
        self, *, kind, name, spec, params, inputs=None, parent_id=None, status=JobStatus.QUEUED
    ) -> int:
        with self._write() as conn:
            return conn.execute(
                jobs.insert().values(
                    kind=kind,
                    name=name,
                    status=status,
                    parent_id=parent_id,
                    spec=json.dumps(spec, default=str),
                    params=json.dumps(params, default=str),
                    metrics="{}",
                    inputs=json.dumps(inputs or [], default=str),
                    outputs="{}",
                    info="{}",
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]

    def update_job(self, job_id, *, only_if_status=None, **fields) -> bool:
        values = {
            k: (json.dumps(v, default=str) if k in _JOB_JSON else v) for k, v in fields.items()
        }
        q = jobs.update().where(jobs.c.id == job_id).values(**values)
        if only_if_status:
            q = q.where(jobs.c.status.in_(only_if_status))
        with self._write() as conn:
            return conn.execute(q).rowcount > 0

    def get_job(self, job_id):
        with self._read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
            return _job(row) if row else None

    def list_jobs(self, *, kind=None, status=None, parent_id=None, limit=None, offset=0):
        q = sa.select(jobs).order_by(jobs.c.id.desc())
        if kind:
            q = q.where(jobs.c.kind == kind)
        if status:
            q = q.where(jobs.c.status == status)
        if parent_id is not None:
            q = q.where(jobs.c.parent_id == parent_id)
        if limit:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self._read() as conn:
            return [_job(r) for r in conn.execute(q)]

    def log_job_metrics(self, job_id, rows):
        if not rows:
            return
        now = utcnow()
        with self._write() as conn:
            conn.execute(
                job_metrics.insert(),
                [
                    {"job_id": job_id, "key": k, "value": float(v), "step": step, "time": now}
                    for k, v, step in rows
                ],
            )

    def job_metric_series(self, job_id):
        q = sa.select(job_metrics).where(job_metrics.c.job_id == job_id).order_by(job_metrics.c.id)
        with self._read() as conn:
            return [row_dict(r) for r in conn.execute(q)]

    def add_job_artifact(self, job_id, name, digest, size):
        with self._write() as conn:
            conn.execute(
                job_artifacts.delete().where(
                    job_artifacts.c.job_id == job_id, job_artifacts.c.name == name
                )
            )
            conn.execute(
                job_artifacts.insert().values(job_id=job_id, name=name, digest=digest, size=size)
            )

    def job_artifacts(self, job_id):
        q = (
            sa.select(job_artifacts)
            .where(job_artifacts.c.job_id == job_id)
            .order_by(job_artifacts.c.name)
        )
        with self._read() as conn:
            return [row_dict(r) for r in conn.execute(q)]
