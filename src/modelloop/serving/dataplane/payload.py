"""What goes into the data plane and what comes out: the decoded request (:class:`Payload`), the
answer (:class:`Result`), and the errors the plane answers with (each with its HTTP status)."""

from __future__ import annotations

from modelloop.errors import ModelloopError

#: Most rows one request may carry unless the endpoint's ``max_request_rows`` option says
#: otherwise; checked before anything is allocated per row.
MAX_REQUEST_ROWS = 100_000


class Payload:
    """Decoded input: ``columns`` (None means signature order) and ``rows``.

    ``header`` is for CSV only: "present", "absent" or None (decided against the signature by
    the data plane: a first row equal to the model's column names is a header); other formats
    have no header row. ``params`` are
    the request's options (MLflow's ``params``, e.g. ``predict_method``)."""

    __slots__ = ("columns", "rows", "header", "params")

    def __init__(self, columns, rows, header="absent", params=None):
        self.columns = columns
        self.rows = rows
        self.header = header
        self.params = params or {}


class RowLimit(ModelloopError):
    """More rows in one request than the endpoint takes (HTTP 413)."""

    status = 413

    def __init__(self, rows: int, limit: int):
        super().__init__(f"the request has {rows} rows, over the limit of {limit} rows per request",
                         hint="send fewer rows per request, or raise the endpoint's "
                              "max_request_rows option")


class ModelFailed(ModelloopError):
    """The model raised while predicting (SageMaker's ModelError, HTTP 424)."""

    status = 424


class TimedOut(ModelloopError):
    status = 424


class PayloadTooLarge(ModelloopError):
    status = 413


class Result:
    __slots__ = ("variant", "model", "predictions", "probabilities", "classes", "model_ms",
                 "inference_id")

    def __init__(self, variant, model, predictions, probabilities, classes, model_ms,
                 inference_id):
        self.variant = variant
        self.model = model
        self.predictions = predictions
        self.probabilities = probabilities
        self.classes = classes
        self.model_ms = model_ms
        self.inference_id = inference_id

    def body(self) -> dict:
        out = {"predictions": self.predictions}
        if self.probabilities is not None:
            out["probabilities"] = self.probabilities
            out["classes"] = self.classes
        return out
