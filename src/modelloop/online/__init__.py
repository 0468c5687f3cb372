"""Online learning: models that learn from every labelled event while they serve.

``intake`` keeps labelled events durable per endpoint; ``learner`` predicts then learns each
(prequential metrics), checkpoints with the last applied seq and publishes the model
(``publish``: serving polls its revision); ``guard`` compares it with a frozen champion and
reverts; ``snapshots`` registers a checkpoint as a model version. Serving imports this floor;
it imports no service.
"""

from modelloop.online.intake import EventSchema, Intake
from modelloop.online.models import build_model
from modelloop.online.publish import current_revision, load_published

__all__ = ["EventSchema", "Intake", "build_model", "current_revision", "load_published"]
