"""Loops: a ``loop.yaml`` compiled to the standard retraining pipeline and run on the engine.

    ingest ─► champion ─► validate ─► train|tune ─► evaluate ─► when promote:
                                                                  register ─► [approve] ─► promote ─► [deploy]

``evaluate`` scores the candidate and the champion on the same holdout rows and applies the gate;
the register/approve/promote/deploy branch runs only when the candidate passed it (and is not
already the champion), so a worse model leaves the champion untouched. With ``register.approval:
manual`` the run stops ``waiting`` at the ``approve`` step until ``modelloop approve RUN approve``.

A compiled pipeline records how to compile it again (``source["loader"]``, see
:mod:`~modelloop.pipelines.loading`), so a waiting or failed run can be continued from another
process (``modelloop runs approve``, ``runs resume``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from modelloop.common.status import StepStatus
from modelloop.pipelines.context import DatasetsService, ModelsService
from modelloop.pipelines.graph import Pipeline
from modelloop.pipelines.runs import Runs

#: Steps of the promote branch, in order (those in the pipeline).
BRANCH = ("register", "approve", "promote", "deploy")


def compile_loop(spec: dict, base_dir: str, **earlier) -> Pipeline:
    """The pipeline for a validated spec (a :class:`~.loop_spec.LoopSpec` dumped to a dict).

    Its steps take the run's :class:`~.context.StepContext` from the runner; ``earlier`` are the
    arguments runs recorded before that (the workspace's root and class), no longer needed.
    """
    from modelloop.pipelines import loop_steps as S
    from modelloop.pipelines.refs import Ref

    pipe = Pipeline(
        f"loop-{spec['name']}",
        {},
        source={"loader": "loop", "args": {"spec": spec, "base_dir": base_dir}},
    )
    model = spec["register"]["model"] or spec["name"]
    alias = spec["register"]["alias"]
    data = pipe.add(S.ingest, args={"data": spec["data"], "base_dir": base_dir})
    champ = pipe.add(S.champion, args={"model": model, "alias": alias})
    checked = pipe.add(
        S.validate, args={"data": data, "champion": champ, "quality": spec["quality"]}
    )
    trainer, section = (S.train, "train") if spec.get("train") else (S.tune, "tune")
    candidate = pipe.add(
        trainer,
        args={"data": data, "target": spec["target"], "split": spec["split"],
              section: spec[section]},
        after=[checked],
    )
    gate = [{k: v for k, v in c.items() if v is not None} for c in spec["evaluate"]["gate"]]
    verdict = pipe.add(
        S.evaluate,
        args={"data": data, "candidate": candidate, "champion": champ,
              "target": spec["target"], "metric": spec["evaluate"]["metric"], "gate": gate,
              "bias": spec["evaluate"].get("bias")},
    )
    promote_if = Ref(verdict.node, ("promote",))
    version = pipe.add(
        S.register,
        args={"model": model, "candidate": candidate, "data": data, "run": pipe.name},
        when=promote_if,
    )
    after = [version]
    if spec["register"]["approval"] == "manual":
        ok = pipe.add(
            kind="approval",
            name="approve",
            after=[version],
            when=promote_if,
            message=f"promote the new {model} version to {alias}?",
        )
        after = [ok]
    promoted = pipe.add(
        S.promote,
        args={"version": version, "alias": alias, "evaluation": verdict},
        after=after,
        when=promote_if,
    )
    if spec.get("deploy"):
        pipe.add(S.deploy, args={"promoted": promoted, "deploy": spec["deploy"]},
                 when=promote_if)
    pipe.order()
    return pipe


@dataclass
class LoopResult:
    """How one run of a loop ended, with what a person asks first."""

    run_id: int
    status: str  # succeeded | failed | waiting
    steps: dict[str, str]
    error: str | None
    data: dict | None = None
    evaluation: dict | None = None
    promoted: dict | None = None
    deployed: dict | None = None
    champion: str | None = None  # the champion after the run
    duration: float = 0.0
    waiting_for: str | None = None  # the approval step, when the run waits
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        return None if self.evaluation is None else bool(self.evaluation.get("passed"))

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "steps": self.steps,
            "error": self.error,
            "data": self.data,
            "evaluation": self.evaluation,
            "promoted": self.promoted,
            "deployed": self.deployed,
            "champion": self.champion,
            "duration": round(self.duration, 3),
            "waiting_for": self.waiting_for,
        }


class Loops:
    """Declarative retraining loops of one workspace (``ws.loops``): checked against its
    ``datasets``, run as pipelines by ``runs``, their champion read from ``models``."""

    def __init__(self, datasets: DatasetsService, models: ModelsService, runs: Runs):
        self.datasets = datasets
        self.models = models
        self.runs = runs

    def validate(self, spec: str | os.PathLike | dict):
        """The checked :class:`~.loop_spec.LoopSpec`; errors name the field and the YAML line."""
        return self._load(spec)[0]

    def _load(self, spec):
        from modelloop.pipelines import loop_spec

        raw, source = loop_spec.read(spec)
        parsed = loop_spec.parse(raw, source)
        loop_spec.check_against(parsed, source, self.datasets)
        return parsed, source

    def compile(self, spec: str | os.PathLike | dict) -> Pipeline:
        parsed, source = self._load(spec)
        return compile_loop(parsed.model_dump(mode="json", by_alias=True), str(source.base_dir))

    def run(
        self,
        spec: str | os.PathLike | dict,
        *,
        executor: str = "threads",
        wait: bool = False,
        wait_timeout: float | None = None,
        on_progress=None,
        started_by: dict | None = None,
        should_stop=None,
    ) -> LoopResult:
        """Compile and run the loop once; returns a :class:`LoopResult`.

        A manual approval leaves the run ``waiting`` unless ``wait`` (then it blocks until a
        decision, up to ``wait_timeout`` seconds). ``on_progress(steps)`` is called from a
        watcher thread with the run's step rows whenever a step changes state. ``started_by``
        is recorded on the run, ``should_stop`` asked between steps (see :meth:`Runs.start`).
        """
        pipe = self.compile(spec)
        started = time.perf_counter()
        watcher = _Watcher(self.runs, pipe.name, on_progress) if on_progress else None
        if watcher:
            watcher.start()
        try:
            run = self.runs.start(pipe, executor=executor, wait=wait, wait_timeout=wait_timeout,
                                  started_by=started_by, should_stop=should_stop)
        finally:
            if watcher:
                watcher.stop()
        return self.result(run.run_id, duration=time.perf_counter() - started)

    def result(self, run_id: int, *, duration: float | None = None) -> LoopResult:
        """A :class:`LoopResult` for a (possibly earlier) run of a loop."""
        runs = self.runs
        run = runs.get(run_id)
        rows = {s["name"]: s for s in runs.steps(run_id)}

        def out(name):
            s = rows.get(name)
            return runs.output(run_id, name) if s and s["outputs"] else None

        evaluation = out("evaluate")
        model = None
        spec = (run["spec"].get("source") or {}).get("args", {}).get("spec") or {}
        if spec:
            model = spec["register"]["model"] or spec["name"]
        champion = None
        if model:
            version = self.models.alias_version(model, spec["register"]["alias"])
            champion = f"{model}@{version}" if version else None
        waiting = [n for n, s in rows.items() if s["status"] == StepStatus.WAITING]
        if duration is None and run.get("ended_at") and run.get("started_at"):
            duration = (run["ended_at"] - run["started_at"]).total_seconds()
        return LoopResult(
            run_id=run["id"],
            status=run["status"],
            steps={n: s["status"] for n, s in rows.items()},
            error=run.get("error"),
            data=out("ingest"),
            evaluation=evaluation,
            promoted=out("promote"),
            deployed=out("deploy"),
            champion=champion,
            duration=duration or 0.0,
            waiting_for=waiting[0] if waiting else None,
        )


class _Watcher:
    """Polls the run's step rows (the store is the one truth, whichever executor runs steps)."""

    def __init__(self, runs: Runs, pipeline: str, callback, interval: float = 0.2):
        self.runs, self.pipeline, self.callback, self.interval = runs, pipeline, callback, interval
        self._stop = threading.Event()
        latest = runs.list(pipeline=pipeline, limit=1)
        self._after = latest[0]["id"] if latest else 0
        self._thread = threading.Thread(target=self._loop, name="modelloop-loop-watch", daemon=True)
        self._seen: Any = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()  # the final state

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def _poll(self) -> None:
        try:
            runs = [r for r in self.runs.list(pipeline=self.pipeline, limit=1)
                    if r["id"] > self._after]
            if not runs:
                return
            steps = self.runs.steps(runs[0]["id"])
        except Exception:  # a progress display must never break the run
            return
        state = [(s["name"], s["status"]) for s in steps]
        if state != self._seen:
            self._seen = state
            self.callback(steps)
