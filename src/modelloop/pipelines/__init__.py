"""Pipelines: DAGs of steps with caching by content, retries, resume and pluggable executors.

    from modelloop.pipelines import step, pipeline, when, otherwise, fail, approval

The authoring API (``dsl``, ``graph``) is light; the runner and run records load on first use.
"""

from modelloop.pipelines.context import StepContext
from modelloop.pipelines.dsl import (
    after,
    approval,
    callback,
    dataset,
    fail,
    otherwise,
    pipeline,
    when,
)
from modelloop.pipelines.graph import DatasetInput, Pipeline, Step, StepOptions, step

__all__ = [
    "DatasetInput",
    "Pipeline",
    "Step",
    "StepContext",
    "StepOptions",
    "after",
    "approval",
    "callback",
    "dataset",
    "fail",
    "otherwise",
    "pipeline",
    "step",
    "when",
]
