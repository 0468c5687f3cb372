"""Bias metrics (SageMaker Clarify's, pre- and post-training) and SHAP explanations.

On the domain floor beside ``registry`` and ``quality``: the metrics work on arrays and frames;
the service (:mod:`modelloop.explain.service`) is handed the datasets and the model registry by
the workspace instead of importing them.
"""
