"""Statuses of the records modelloop keeps, one ``StrEnum`` per kind of record.

A member equals its string (``JobStatus.RUNNING == "running"``), so rows, JSON and the CLI's
output are what they were; code writes and compares members, so a misspelt status is an
``AttributeError`` where it is written instead of a comparison that is silently never true.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job (train, tune, trial, evaluate, transform, monitor …)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"  # a tuning trial stopped early by its pruner


class RunStatus(StrEnum):
    """A pipeline run."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"  # on an approval or a callback step
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its runner died


class StepStatus(StrEnum):
    """A step run of a pipeline run."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CACHED = "cached"
    SKIPPED = "skipped"


class ApprovalStatus(StrEnum):
    """A model version's approval."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class EndpointStatus(StrEnum):
    IN_SERVICE = "in_service"
    UPDATING = "updating"


class RolloutStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class MonitorRunStatus(StrEnum):
    COMPLETED = "completed"
    INSUFFICIENT_DATA = "insufficient_data"
    FAILED = "failed"  # the outcome of a run that raised (no run record)


class TransformStatus(StrEnum):
    """A finished batch transform (its job's ``outputs.status``)."""

    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
