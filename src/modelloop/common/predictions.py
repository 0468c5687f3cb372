"""A model's labels and probabilities in one pass of its preprocessing.

A scikit-learn ``Pipeline``'s ``predict`` and ``predict_proba`` each run every step's transform
on the rows and then call the final estimator: asked for both (an evaluation, the fast path's
check), the transforms, most of the time on a small frame, would run twice for the same matrix.
"""

from __future__ import annotations


def labels_and_proba(model, X, proba: bool = True):
    """``(model.predict(X), model.predict_proba(X))``; the second None when ``proba`` is false
    or the model has no ``predict_proba``. For a plain scikit-learn ``Pipeline`` the steps
    transform ``X`` once and its final estimator predicts both from that matrix, which is what
    each of its own calls does: the same numbers. Any other model (a subclass may predict its
    own way) is asked twice."""
    from sklearn.pipeline import Pipeline

    if not (proba and hasattr(model, "predict_proba")):
        return model.predict(X), None
    if type(model) is Pipeline and len(model.steps) > 1:
        Xt, estimator = model[:-1].transform(X), model.steps[-1][1]
        return estimator.predict(Xt), estimator.predict_proba(Xt)
    return model.predict(X), model.predict_proba(X)
