"""A batch transform as a pipeline step.

A step's body is plain Python, so the step opens its workspace (user code may) and calls
:func:`transform_step`, which returns a small JSON-able summary for the steps after it — the
output location, row counts and the job id that holds the transform's lineage::

    from modelloop import Workspace
    from modelloop.batch.step import transform_step
    from modelloop.pipelines import pipeline, step

    @step(max_attempts=3)
    def score(model: str, day: str) -> dict:
        ws = Workspace("/srv/loop")
        return transform_step(ws, model, f"s3://lake/events/{day}/", f"s3://lake/scores/{day}.parquet",
                              id_column="event_id", proba=True)

A retried step resumes the transform: chunks scored by the failed attempt are not scored again.
"""

from __future__ import annotations


def transform_step(ws, model: str, input, output: str, **options) -> dict:
    """Run a transform in workspace ``ws`` and return its summary (``TransformResult.to_dict``)."""
    return ws.transforms.run(model, input, output, **options).to_dict()
