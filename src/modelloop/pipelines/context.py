"""What a step may use of its workspace: a :class:`StepContext`, handed in by the runner.

A step asks for it by annotating a parameter with :class:`StepContext`; the runner fills it in
(it is not part of the step's cache recipe). The services are typed by the Protocols below, the
methods steps call, so this package names what it needs without importing its sibling services.

The composition root (the workspace) gives the runner a :data:`ContextFactory`: a picklable
callable returning a context manager that opens a context and closes it. The runner opens one per
run for steps in its own process; a step in another process (process pool, Ray) opens its own
from the same factory around its attempt. Nothing is cached between runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class DatasetsService(Protocol):
    def ingest(self, name: str, paths: list, **options) -> Any: ...
    def get(self, ref: str) -> Any: ...
    def to_arrow(self, ref: str, **options) -> Any: ...
    def to_pandas(self, ref: str, **options) -> Any: ...
    def parts(self, ref: str, **options) -> list[dict]: ...


class JobsService(Protocol):
    def get(self, job_id: int | str) -> dict: ...
    def download(self, job_id: int | str, dest: Any, name: str | None = None) -> list: ...


class TrainingService(Protocol):
    def train(self, dataset: str, target: str, algorithm: str, params: dict | None = None,
              **options) -> dict: ...
    def tune(self, dataset: str, target: str, algorithm: str, space: Any = None,
             **options) -> dict: ...
    def training_rows(self, model: str | dict) -> Any: ...


class ModelsService(Protocol):
    def get(self, ref: str) -> dict: ...
    def load(self, ref: str) -> Any: ...
    def alias_version(self, name: str, alias: str) -> int | None: ...
    def register_from_job(self, name: str, job_id: int | str, **options) -> dict: ...
    def approve(self, ref: str, **options) -> dict: ...
    def set_alias(self, name: str, alias: str, version_ref: str | int, **options) -> dict: ...


class FeaturesService(Protocol):
    def training_data(self, name: str, labels: str, **options) -> dict: ...


class EndpointsService(Protocol):
    def deploy(self, name: str, ref: str, **options) -> Any: ...


@dataclass(frozen=True)
class StepContext:
    """The services of one workspace that steps use. ``endpoints`` is None where serving is
    not available."""

    datasets: DatasetsService
    jobs: JobsService
    training: TrainingService
    models: ModelsService
    endpoints: EndpointsService | None = None
    features: FeaturesService | None = None


#: Opens a :class:`StepContext` (``with factory() as ctx:``); picklable, to reach other processes.
ContextFactory = Callable[[], contextlib.AbstractContextManager[StepContext]]


def context_parameter(hints: dict[str, Any]) -> str | None:
    """The name of the parameter a step takes its :class:`StepContext` in, if any."""
    for name, hint in hints.items():
        if name != "return" and hint is StepContext:
            return name
    return None
