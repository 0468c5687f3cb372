"""``ws.explain``: bias reports of a dataset version, and of a model's predictions on it.

The workspace hands this service the datasets and the model registry (the objects, not their
modules: ``explain`` sits beside ``registry`` on the domain floor and imports neither).
"""

from __future__ import annotations

from modelloop.errors import BiasSpecError, InvalidInput
from modelloop.explain.bias import BiasReport, analyse
from modelloop.explain.groups import Selector


class Explain:
    def __init__(self, datasets, models):
        self.datasets = datasets
        self.models = models

    def bias(
        self,
        dataset: str,
        facet: str,
        label: str,
        *,
        model: str | None = None,
        predicted: str | None = None,
        group: str | None = None,
        methods: list[str] | None = None,
        ft_columns: list[str] | None = None,
    ) -> BiasReport:
        """Clarify's bias metrics of ``dataset`` (``NAME@V``) for ``facet`` (``sex=female``,
        ``age>40``, or ``race`` for one vs rest) and ``label`` (``approved=1``, ``score>0.5``, or a
        binary column): pre-training always, post-training on ``model``'s predictions (``M@V``)
        or on a column of predictions already in the data (``predicted``). ``group`` is the
        column CDDL and CDDPL condition on; ``methods`` picks metrics (default: all)."""
        if model is not None and predicted is not None:
            raise BiasSpecError("give a model or a column of predictions, not both",
                                field="predicted")  # fmt: skip
        frame = self.datasets.to_pandas(dataset)
        preds, model_ref = predicted, None
        if model is not None:
            model_ref = "{}@{}".format(*self.models.resolve(model))
            preds = self._predict(model_ref, frame, Selector.parse(label, field="label"))
        return analyse(frame, facet, label, predicted=preds, group=group, methods=methods,
                       ft_columns=ft_columns, dataset=str(dataset), model=model_ref)  # fmt: skip

    def attributions(
        self,
        model: str,
        dataset: str,
        *,
        rows: int | None = 1000,
        method: str = "auto",
        nsamples: int = 200,
        background: str | None = None,
        centroids: int = 20,
    ):
        """SHAP attributions of ``model`` (``M@V``) on the first ``rows`` rows of ``dataset``
        (:func:`modelloop.explain.attributions.explain`): TreeSHAP for tree models, else Kernel
        SHAP with ``centroids`` k-means centroids of ``background`` (a dataset ref; default:
        ``dataset``) and ``nsamples`` model evaluations per row."""
        from modelloop.explain.attributions import explain

        if rows is not None and rows < 1 or nsamples < 1 or centroids < 1:
            raise InvalidInput("rows, nsamples and centroids must be at least 1")
        ref = "{}@{}".format(*self.models.resolve(model))
        loaded = self.models.load(ref)
        frame = self.datasets.to_pandas(dataset)
        bg = None if background is None else self.datasets.to_pandas(background)
        result = explain(loaded, frame, background=bg, rows=rows, method=method,
                         nsamples=nsamples, centroids=centroids)  # fmt: skip
        result.cost.update({"model": ref, "dataset": str(dataset)})
        return result

    def _predict(self, ref: str, frame, label: Selector):
        """The model's predicted labels on ``frame``'s feature columns (its signature's); a label
        given by threshold is compared with the positive class's probability when the model has
        one, else with its prediction."""
        loaded = self.models.load(ref)
        names = loaded.signature.names
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise BiasSpecError(f"model {ref} needs columns the dataset lacks: {', '.join(missing)}",
                                field="predicted")  # fmt: skip
        X = frame[names]
        if label.threshold is not None and loaded.has_proba and loaded.classes_ is not None \
                and len(loaded.classes_) == 2:  # fmt: skip
            return loaded.predict_proba(X)[:, 1]
        return loaded.predict(X)
