"""Records of the pipeline engine: runs, their step runs, step outputs and the step cache."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable


class PipelineStore(ABC):
    """A run's ``params`` and ``spec`` and a step run's ``inputs``, ``info`` and ``recipe`` are
    JSON values and read back decoded. The runner's hot path is two small transactions per
    executed step, so these methods must stay cheap."""

    # -- runs ---------------------------------------------------------------------------------
    @abstractmethod
    def create_pipeline_run(
        self, *, pipeline: str, params: dict, spec: dict, executor: str, steps: list[dict],
        host: str, pid: int, started_by: dict | None = None,
    ) -> tuple[int, dict[str, int]]:  # fmt: skip
        """A ``running`` run (attempt 1) and its ``pending`` step runs (``steps``: ``{"name",
        "kind"}``), in one transaction; returns the run id and step name -> step run id.
        ``started_by`` (read back as the run's ``started_by``) says what started it; with a
        ``"firing"`` id, a second run of one firing is refused (``AlreadyExists``)."""

    @abstractmethod
    def get_pipeline_run(self, run_id: int) -> dict | None:
        """The run, or None."""

    @abstractmethod
    def pipeline_run_of_firing(self, firing_id: int) -> dict | None:
        """The run whose ``started_by`` names this trigger firing, or None."""

    @abstractmethod
    def list_pipeline_runs(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict]:
        """Runs matching every filter given, newest first, at most ``limit``."""

    @abstractmethod
    def update_pipeline_run(
        self, run_id: int, *, only_if_status: Iterable[str] | None = None, **fields
    ) -> bool:
        """Set fields; with ``only_if_status``, only in one of those states. Whether it changed."""

    @abstractmethod
    def interrupt_pipeline_run(self, run_id: int, pid: int | None, error: str) -> bool:
        """If the run is still pending or running under ``pid``: mark it ``interrupted`` and its
        running steps ``failed`` with ``error``, in one transaction. Whether it did."""

    @abstractmethod
    def resume_pipeline_run(
        self, run_id: int, *, reset: list[str], host: str, pid: int, executor: str,
        allowed_from: Iterable[str],
    ) -> bool:  # fmt: skip
        """Take over a run in one of ``allowed_from``: ``running`` again under this process
        (attempt + 1, error cleared), the ``reset`` steps back to ``pending`` without outputs.
        False (and nothing changed) if the run is in another state."""

    # -- steps --------------------------------------------------------------------------------
    @abstractmethod
    def pipeline_step_runs(self, run_id: int) -> list[dict]:
        """The run's step runs in creation order, each with its ``outputs`` list."""

    @abstractmethod
    def update_step_runs(self, updates: list[dict], *, run: dict | None = None) -> None:
        """Apply several step-run changes (and optionally a run change) in one transaction.

        Each update is ``{"id": …, <column>: value, …, "outputs": [{name, digest, format, type,
        size}, …], "only_if_status": (…)}``; ``outputs``, when present, replaces the step run's
        outputs; with ``only_if_status`` a step run in another state is left alone (outputs
        too). ``run`` is ``{"id": …, <column>: value, …}`` with an optional ``only_if_status``.
        """

    @abstractmethod
    def get_step_run(self, step_run_id: int) -> dict | None:
        """The step run (without outputs), or None."""

    @abstractmethod
    def step_run_by_token(self, token: str) -> dict | None:
        """The step run holding this callback token, or None."""

    # -- cache --------------------------------------------------------------------------------
    @abstractmethod
    def cache_candidates(self, pipeline: str, names: list[str]) -> dict[str, dict]:
        """cache_key -> the newest ``succeeded`` step run with that key among this pipeline's
        steps of these names: ``{"id", "run_id", "ended_at", "outputs": [...]}``, in one query."""

    @abstractmethod
    def step_run_history(
        self, pipeline: str, name: str, *, before_id: int, limit: int = 20
    ) -> list[dict]:
        """Earlier finished (succeeded or cached) runs of one step that kept their recipe,
        newest first: for explaining a cache miss."""

    @abstractmethod
    def now(self):
        """The store's clock (UTC, timezone-aware): what step times are compared against."""
