"""Pipelines: DAGs of steps with caching by content, retries, resume and pluggable executors.

    from modelloop.pipelines import step, pipeline, when, otherwise, fail, approval

The authoring API (``dsl``) is light; the runner, executors and run records load on first use.
"""

from modelloop.pipelines.dsl import (
    DatasetInput,
    Pipeline,
    Step,
    StepOptions,
    after,
    approval,
    callback,
    dataset,
    fail,
    otherwise,
    pipeline,
    step,
    when,
)

__all__ = [
    "DatasetInput",
    "Pipeline",
    "Step",
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
