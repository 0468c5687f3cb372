"""SQL of the pipeline engine.

The runner's hot path is two small transactions per executed step (mark running, record the end)
and, for a fully cached re-run, one query for every cache candidate plus one write for all hits.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from modelloop.common.status import RunStatus, StepStatus
from modelloop.errors import AlreadyExists
from modelloop.store.interfaces.pipelines import PipelineStore
from modelloop.store.sql.engine import SqlBase, dumps, row_dict, utcnow
from modelloop.store.sql.events import insert_event
from modelloop.store.tables.pipelines import pipeline_runs, step_outputs, step_runs

_RUN_JSON = ("params", "spec")
_STEP_JSON = ("inputs", "info", "recipe")


def _run(row) -> dict:
    out = row_dict(row)
    for key in _RUN_JSON:
        out[key] = json.loads(out[key]) if out.get(key) else {}
    out["started_by"] = json.loads(out["started_by"]) if out.get("started_by") else None
    return out


def _step(row) -> dict:
    out = row_dict(row)
    for key in _STEP_JSON:
        out[key] = json.loads(out[key]) if out.get(key) else ({} if key != "recipe" else None)
    return out


#: A run in one of these has ended: moving into one appends ``run.finished``.
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.INTERRUPTED)


def _set_run(conn, run_id: int, fields: dict, only_if_status=None) -> bool:
    """Update a run on ``conn``; a change into a finished status appends ``run.finished`` in the
    same transaction (what triggers and loop status react to)."""
    finishing = fields.get("status") in FINISHED
    if finishing:
        before = conn.execute(
            sa.select(pipeline_runs.c.status).where(pipeline_runs.c.id == run_id).with_for_update()
        ).scalar()
    values = {k: (dumps(v) if k in _RUN_JSON else v) for k, v in fields.items()}
    q = pipeline_runs.update().where(pipeline_runs.c.id == run_id).values(**values)
    if only_if_status:
        q = q.where(pipeline_runs.c.status.in_(only_if_status))
    changed = conn.execute(q).rowcount > 0
    if changed and finishing and before != fields["status"]:
        _run_finished(conn, run_id)
    return changed


def _run_finished(conn, run_id: int) -> None:
    run = _run(conn.execute(sa.select(pipeline_runs).where(pipeline_runs.c.id == run_id)).one())
    source = run["spec"].get("source") or {}
    loop = (source.get("args") or {}).get("spec", {}).get("name") if source.get(
        "loader") == "loop" else None
    insert_event(conn, "run.finished", f"{run['pipeline']}#{run_id}", {
        "run_id": run_id, "pipeline": run["pipeline"], "loop": loop, "status": run["status"],
        "error": run["error"], "attempt": run["attempt"],
    })


def _step_values(fields: dict) -> dict:
    return {k: (dumps(v) if k in _STEP_JSON else v) for k, v in fields.items()}


class SqlPipelines(SqlBase, PipelineStore):
    """Pipeline runs, step runs and step outputs."""

    # -- runs ---------------------------------------------------------------------------------
    def create_pipeline_run(
        self,
        *,
        pipeline: str,
        params: dict,
        spec: dict,
        executor: str,
        steps: list[dict],
        host: str,
        pid: int,
        started_by: dict | None = None,
    ) -> tuple[int, dict[str, int]]:
        """A running run and its pending step runs, in one transaction; returns ids."""
        now = utcnow()
        firing = (started_by or {}).get("firing")
        with self._write() as conn:
            if firing is not None and conn.execute(
                sa.select(pipeline_runs.c.id).where(pipeline_runs.c.firing_id == firing)
            ).first():
                raise AlreadyExists(f"trigger firing {firing} already started a run")
            run_id = conn.execute(
                pipeline_runs.insert().values(
                    pipeline=pipeline,
                    status=RunStatus.RUNNING,
                    params=dumps(params),
                    spec=dumps(spec),
                    executor=executor,
                    host=host,
                    pid=pid,
                    attempt=1,
                    created_at=now,
                    started_at=now,
                    started_by=dumps(started_by) if started_by else None,
                    firing_id=firing,
                )
            ).inserted_primary_key[0]
            conn.execute(
                step_runs.insert(),
                [
                    {
                        "run_id": run_id,
                        "pipeline": pipeline,
                        "name": s["name"],
                        "kind": s["kind"],
                        "status": StepStatus.PENDING,
                        "attempts": 0,
                        "inputs": "{}",
                        "info": "{}",
                    }
                    for s in steps
                ],
            )
            ids = dict(
                conn.execute(
                    sa.select(step_runs.c.name, step_runs.c.id).where(step_runs.c.run_id == run_id)
                ).all()
            )
        return run_id, ids

    def pipeline_run_of_firing(self, firing_id: int) -> dict | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(pipeline_runs).where(pipeline_runs.c.firing_id == firing_id)
            ).first()
        return _run(row) if row else None

    def get_pipeline_run(self, run_id: int) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(pipeline_runs).where(pipeline_runs.c.id == run_id)).first()
            return _run(row) if row else None

    def list_pipeline_runs(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict]:
        q = sa.select(pipeline_runs).order_by(pipeline_runs.c.id.desc())
        if pipeline:
            q = q.where(pipeline_runs.c.pipeline == pipeline)
        if status:
            q = q.where(pipeline_runs.c.status == status)
        if limit:
            q = q.limit(limit)
        with self._read() as conn:
            return [_run(r) for r in conn.execute(q)]

    def update_pipeline_run(self, run_id: int, *, only_if_status=None, **fields) -> bool:
        with self._write() as conn:
            return _set_run(conn, run_id, fields, only_if_status)

    def interrupt_pipeline_run(self, run_id: int, pid: int | None, error: str) -> bool:
        """Mark a run whose runner died ``interrupted`` and its running steps failed (one txn)."""
        now = utcnow()
        with self._write() as conn:
            changed = conn.execute(
                pipeline_runs.update()
                .where(
                    pipeline_runs.c.id == run_id,
                    pipeline_runs.c.status.in_((RunStatus.PENDING, RunStatus.RUNNING)),
                    pipeline_runs.c.pid == pid,
                )
                .values(status=RunStatus.INTERRUPTED, error=error, ended_at=now)
            ).rowcount
            if changed:
                conn.execute(
                    step_runs.update()
                    .where(step_runs.c.run_id == run_id, step_runs.c.status == StepStatus.RUNNING)
                    .values(status=StepStatus.FAILED, error=error, ended_at=now)
                )
                _run_finished(conn, run_id)
        return changed > 0

    def resume_pipeline_run(
        self, run_id: int, *, reset: list[str], host: str, pid: int, executor: str, allowed_from
    ) -> bool:
        """Take over a run: running again under this process, the named steps back to pending."""
        with self._write() as conn:
            changed = conn.execute(
                pipeline_runs.update()
                .where(pipeline_runs.c.id == run_id, pipeline_runs.c.status.in_(allowed_from))
                .values(
                    status=RunStatus.RUNNING,
                    host=host,
                    pid=pid,
                    executor=executor,
                    error=None,
                    ended_at=None,
                    attempt=pipeline_runs.c.attempt + 1,
                )
            ).rowcount
            if not changed:
                return False
            if reset:
                ids = sa.select(step_runs.c.id).where(
                    step_runs.c.run_id == run_id, step_runs.c.name.in_(reset)
                )
                conn.execute(step_outputs.delete().where(step_outputs.c.step_run_id.in_(ids)))
                conn.execute(
                    step_runs.update()
                    .where(step_runs.c.run_id == run_id, step_runs.c.name.in_(reset))
                    .values(
                        status=StepStatus.PENDING,
                        error=None,
                        cache_key=None,
                        cached_from=None,
                        started_at=None,
                        ended_at=None,
                        duration=None,
                    )
                )
        return True

    # -- steps --------------------------------------------------------------------------------
    def pipeline_step_runs(self, run_id: int) -> list[dict]:
        """The run's step runs (in creation order), each with its ``outputs`` list."""
        with self._read() as conn:
            steps = [
                _step(r)
                for r in conn.execute(
                    sa.select(step_runs)
                    .where(step_runs.c.run_id == run_id)
                    .order_by(step_runs.c.id)
                )
            ]
            outs = conn.execute(
                sa.select(step_outputs)
                .join(step_runs, step_runs.c.id == step_outputs.c.step_run_id)
                .where(step_runs.c.run_id == run_id)
                .order_by(step_outputs.c.id)
            ).all()
        by_step: dict[int, list] = {}
        for o in outs:
            by_step.setdefault(o.step_run_id, []).append(row_dict(o))
        for s in steps:
            s["outputs"] = by_step.get(s["id"], [])
        return steps

    def update_step_runs(self, updates: list[dict], *, run: dict | None = None) -> None:
        """Apply several step-run changes (and optionally a run change) in one transaction.

        Each update is ``{"id": …, <column>: value, …, "outputs": [ {name, digest, format, type,
        size}, … ]}``; ``outputs``, when present, replaces the step run's outputs.
        """
        with self._write() as conn:
            for u in updates:
                fields = dict(u)
                step_id = fields.pop("id")
                outputs = fields.pop("outputs", None)
                only_if = fields.pop("only_if_status", None)
                q = step_runs.update().where(step_runs.c.id == step_id)
                if only_if:
                    q = q.where(step_runs.c.status.in_(only_if))
                if fields and conn.execute(q.values(**_step_values(fields))).rowcount == 0:
                    continue
                if outputs is not None:
                    conn.execute(step_outputs.delete().where(step_outputs.c.step_run_id == step_id))
                    if outputs:
                        conn.execute(
                            step_outputs.insert(),
                            [{**o, "step_run_id": step_id} for o in outputs],
                        )
            if run:
                fields = dict(run)
                run_id = fields.pop("id")
                _set_run(conn, run_id, fields, fields.pop("only_if_status", None))

    def get_step_run(self, step_run_id: int) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(step_runs).where(step_runs.c.id == step_run_id)).first()
            return _step(row) if row else None

    def step_run_by_token(self, token: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(step_runs).where(step_runs.c.token == token)).first()
            return _step(row) if row else None

    # -- cache --------------------------------------------------------------------------------
    def cache_candidates(self, pipeline: str, names: list[str]) -> dict[str, dict]:
        """cache_key -> the newest succeeded step run with that key (with its outputs), one query.

        Only steps of this pipeline with these names are considered, so the answer stays small.
        """
        newest = (
            sa.select(sa.func.max(step_runs.c.id))
            .where(
                step_runs.c.pipeline == pipeline,
                step_runs.c.name.in_(names),
                step_runs.c.status == StepStatus.SUCCEEDED,
                step_runs.c.cache_key.is_not(None),
            )
            .group_by(step_runs.c.cache_key)
        )
        q = (
            sa.select(
                step_runs.c.id,
                step_runs.c.run_id,
                step_runs.c.cache_key,
                step_runs.c.ended_at,
                step_outputs.c.name,
                step_outputs.c.digest,
                step_outputs.c.format,
                step_outputs.c.type,
                step_outputs.c.size,
            )
            .select_from(step_runs)
            .outerjoin(step_outputs, step_outputs.c.step_run_id == step_runs.c.id)
            .where(step_runs.c.id.in_(newest))
        )
        found: dict[str, dict] = {}
        with self._read() as conn:
            for r in conn.execute(q):
                c = found.setdefault(
                    r.cache_key,
                    {
                        "id": r.id,
                        "run_id": r.run_id,
                        "ended_at": row_dict(r)["ended_at"],
                        "outputs": [],
                    },
                )
                if r.digest:
                    c["outputs"].append(
                        {
                            "name": r.name,
                            "digest": r.digest,
                            "format": r.format,
                            "type": r.type,
                            "size": r.size,
                        }
                    )
        return found

    def step_run_history(
        self, pipeline: str, name: str, *, before_id: int, limit: int = 20
    ) -> list[dict]:
        """Earlier runs of one step (newest first) that finished, for explaining a cache miss."""
        q = (
            sa.select(step_runs)
            .where(
                step_runs.c.pipeline == pipeline,
                step_runs.c.name == name,
                step_runs.c.id < before_id,
                step_runs.c.recipe.is_not(None),
                step_runs.c.status.in_((StepStatus.SUCCEEDED, StepStatus.CACHED)),
            )
            .order_by(step_runs.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_step(r) for r in conn.execute(q)]
