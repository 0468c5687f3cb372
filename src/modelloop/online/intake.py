"""Labelled events in: validated, then durable in the metadata store before anyone says "ok".

Serving's ``POST /endpoints/NAME/events`` and ``/feedback`` hand their events to
:meth:`Intake.append`; the learner reads them back in seq order (:meth:`Intake.read`). An event
that does not fit the endpoint's schema is refused with its index and error and counted on the
endpoint's stream (``rejected``); the others are stored in one transaction.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from modelloop.errors import InvalidInput
from modelloop.store.interfaces.online import AlikeEvents

#: Most events one append takes (an HTTP request's list or JSON Lines body).
MAX_EVENTS_PER_APPEND = 10_000
#: Most events one read returns.
MAX_READ = 10_000
#: Most features one event carries; longest feature name and string value.
MAX_FEATURES = 1_000
MAX_NAME_CHARS = 256
MAX_VALUE_CHARS = 1_000
FEATURE_KINDS = ("number", "category")
LABEL_KINDS = ("class", "number")


@dataclass(frozen=True)
class EventSchema:
    """What an endpoint's labelled events carry: each feature's kind ("number" or "category")
    and the label's ("class": a string, integer or boolean; "number": a finite number)."""

    features: Mapping[str, str]
    label: str = "class"
    #: Features an event may leave out (missing: the model sees no value, as River does).
    optional: frozenset = field(default_factory=frozenset)

    def __post_init__(self):
        bad = {k: v for k, v in self.features.items() if v not in FEATURE_KINDS}
        if bad or self.label not in LABEL_KINDS:
            raise InvalidInput(f"an event schema has feature kinds {FEATURE_KINDS} and label "
                               f"kinds {LABEL_KINDS}, not {bad or self.label!r}")  # fmt: skip

    @property
    def categorical(self) -> list[str]:
        return sorted(k for k, v in self.features.items() if v == "category")


def _scalar_error(name: str, value, kind: str | None) -> str | None:
    if kind == "number" or (kind is None and not isinstance(value, str)):
        # numbers.Real: NumPy's scalars too (a feedback row joined from a captured request)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"feature {name!r} is a number, not {type(value).__name__}"
        if not isinstance(value, int) and not math.isfinite(value):
            return f"feature {name!r} is not a finite number"
        if isinstance(value, int) and abs(value) >= 2**63:
            return f"feature {name!r} does not fit in 64 bits"
        return None
    if isinstance(value, str):
        return (
            f"feature {name!r} is longer than {MAX_VALUE_CHARS}"
            if len(value) > MAX_VALUE_CHARS
            else None
        )
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**63):
        return None
    return (
        f"feature {name!r} is a category (a string, integer or boolean), not {type(value).__name__}"
    )


def check_label(label, kind: str) -> str | None:
    if label is None:
        return "the label is missing"
    if kind == "number":
        if (
            isinstance(label, bool)
            or not isinstance(label, (int, float))
            or not math.isfinite(label)
        ):
            return f"the label is a finite number, not {label!r}"[:200]
        return None
    if isinstance(label, str):
        return None if 0 < len(label) <= MAX_VALUE_CHARS else "the label is 1 to 1000 characters"
    if isinstance(label, bool) or (isinstance(label, int) and abs(label) < 2**63):
        return None
    return f"the label is a class (a string, integer or boolean), not {type(label).__name__}"


def check_event(event, schema: EventSchema | None) -> tuple[dict | None, str | None]:
    """The event as it is stored, or the reason it is refused."""
    if not isinstance(event, dict):
        return (
            None,
            f"an event is a JSON object with features and label, not {type(event).__name__}",
        )
    unknown = set(event) - {"features", "label", "time", "inference_id"}
    if unknown:
        return (
            None,
            f"an event has only features, label, time and inference_id, not {sorted(unknown)}",
        )
    features = event.get("features")
    if not isinstance(features, dict) or len(features) > MAX_FEATURES:
        return None, f"an event's features are a JSON object of at most {MAX_FEATURES} names"
    if schema is not None:
        keys = features.keys()
        if keys != schema.features.keys():
            missing = sorted(set(schema.features) - set(keys) - schema.optional)
            extra = sorted(set(keys) - set(schema.features))
            if missing or extra:
                return None, "; ".join(
                    ([f"missing features {missing}"] if missing else [])
                    + ([f"unknown features {extra}"] if extra else [])
                )
        kinds = schema.features
    else:
        for name in features:
            if type(name) is not str or not 0 < len(name) <= MAX_NAME_CHARS:
                return None, f"a feature name is 1 to {MAX_NAME_CHARS} characters"
        kinds = {}
    isfinite = math.isfinite
    for name, value in features.items():
        # The common case first, without a call: a finite float where a number is expected.
        if type(value) is float and isfinite(value) and kinds.get(name, "number") == "number":
            continue
        if value is None:
            if schema is not None and name in schema.optional:
                continue
            return None, f"feature {name!r} is null"
        problem = _scalar_error(name, value, kinds.get(name))
        if problem:
            return None, problem
    problem = check_label(event.get("label"), schema.label if schema else "class" if not
                          isinstance(event.get("label"), float) else "number")  # fmt: skip
    if problem:
        return None, problem
    inference_id = event.get("inference_id")
    if inference_id is not None and (
        not isinstance(inference_id, str) or not 0 < len(inference_id) <= 64
    ):
        return None, "an inference_id is a string of 1 to 64 characters"
    time = event.get("time")
    if time is not None:
        try:
            time = datetime.fromisoformat(time) if isinstance(time, str) else None
        except ValueError:
            time = None
        if time is None or time.tzinfo is None:
            return None, "an event's time is an ISO 8601 string with a time zone"
    return {"features": features, "label": event["label"], "time": time,
            "inference_id": inference_id}, None  # fmt: skip


def alike_events(events: list, schema: EventSchema | None) -> AlikeEvents | None:
    """``events`` as :class:`AlikeEvents` when all are valid and alike, else None (check each).

    The common request: every event ``{"features", "label"}`` with the same feature names, all
    finite floats, labels of one type. Checking the first event as :func:`check_event` does and
    the rest by whole-list operations (one C loop each, no Python call per value) accepts exactly
    what checking each would, several times faster; the value list checked is the one stored."""
    if not events or type(events[0]) is not dict:
        return None
    first, problem = check_event(events[0], schema)
    if problem or first["time"] is not None or first["inference_id"] is not None:
        return None
    try:
        if set(map(type, events)) != {dict} or set(map(len, events)) != {2}:
            return None
        features = [e["features"] for e in events]  # with len 2: exactly features and label
        labels = [e["label"] for e in events]
    except KeyError:
        return None
    if set(map(type, features)) != {dict}:
        return None
    names = set(map(tuple, features))
    if len(names) != 1:
        return None  # not all the first event's names, in its order
    names = names.pop()
    if schema is not None and any(schema.features[name] != "number" for name in names):
        return None
    values = list(chain.from_iterable(map(dict.values, features)))
    if values and (set(map(type, values)) != {float} or not math.isfinite(sum(values))):
        return None  # (a sum overflowing to inf only sends finite values the slow way)
    if len(set(map(type, labels))) != 1:
        return None  # True and 1 are one set member: one type, so each kind is checked
    kind = schema.label if schema else "number" if type(labels[0]) is float else "class"
    try:
        distinct = set(labels)
    except TypeError:
        return None
    if any(check_label(label, kind) for label in distinct):
        return None
    return AlikeEvents(names, values, labels)


class Intake:
    """Durable labelled events per endpoint.

    ``schemas(endpoint)`` gives the endpoint's :class:`EventSchema` (None: any features, checked
    for shape only); serving hands it the endpoint spec's schema."""

    def __init__(self, store, schemas: Callable[[str], EventSchema | None] | None = None):
        self.store = store
        self.schemas = schemas or (lambda endpoint: None)

    def append(self, endpoint: str, events: list[dict]) -> dict:
        """Validate ``events`` and store the valid ones durably, in order, in one transaction
        (before the caller acknowledges them); refused ones are counted on the endpoint.
        ``{"accepted": n, "seqs": [first, last] or None, "rejected": [{"index", "error"}]}``."""
        if not isinstance(events, list):
            raise InvalidInput("labelled events come as a list of objects")
        if len(events) > MAX_EVENTS_PER_APPEND:
            raise InvalidInput(f"at most {MAX_EVENTS_PER_APPEND} events per request, not {len(events)}",
                               hint="send them in several requests")  # fmt: skip
        schema = self.schemas(endpoint)
        good, rejected = alike_events(events, schema), []
        if good is None:
            good = []
            for index, event in enumerate(events):
                row, error = check_event(event, schema)
                if error:
                    rejected.append({"index": index, "error": error})
                else:
                    good.append(row)
        seqs = self.store.append_online_events(endpoint, good, rejected=len(rejected))
        return {"accepted": len(good), "seqs": [seqs[0], seqs[-1]] if seqs else None,
                "rejected": rejected}  # fmt: skip

    def read(self, endpoint: str, after_seq: int, limit: int) -> list[dict]:
        """Up to ``limit`` (at most :data:`MAX_READ`) events after ``after_seq``, in seq order:
        ``{"seq", "features", "label", "time", "inference_id"}``."""
        if not 0 < limit <= MAX_READ or after_seq < 0:
            raise InvalidInput(f"read takes 1 to {MAX_READ} events after a seq >= 0")
        return self.store.read_online_events(endpoint, after_seq, limit)

    def stats(self, endpoint: str) -> dict:
        """``{"endpoint", "last_seq", "rejected"}``."""
        return self.store.online_stream(endpoint)
