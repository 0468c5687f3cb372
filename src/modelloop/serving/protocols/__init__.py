"""Serving protocols: each module here is one protocol's routes, decoding and encoding, mounted
by ``serving.app.create_app`` on the one data plane.

To add a protocol, write ``serving/protocols/<name>.py`` with a :class:`Protocol` subclass and
register it (built-in protocols below; any other module calls :func:`register_protocol` before
the app is created).
"""

from modelloop.serving.protocols.base import (
    Protocol,
    ServerContext,
    register_protocol,
    registered,
)
from modelloop.serving.protocols.explain import Explain
from modelloop.serving.protocols.feedback import Feedback
from modelloop.serving.protocols.mlflow import MLflow
from modelloop.serving.protocols.online import Events
from modelloop.serving.protocols.prometheus import Prometheus
from modelloop.serving.protocols.rows import Rows
from modelloop.serving.protocols.sagemaker import SageMaker
from modelloop.serving.protocols.status import Status
from modelloop.serving.protocols.v2 import V2

for _protocol in (SageMaker(), MLflow(), V2(), Feedback(), Events(), Explain(), Prometheus(),
                  Status(), Rows()):
    register_protocol(_protocol)

__all__ = ["Protocol", "ServerContext", "register_protocol", "registered"]
