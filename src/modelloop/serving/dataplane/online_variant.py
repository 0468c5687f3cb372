"""An online variant in a server process: it answers with the model its learner published last,
and swaps in each newer one as soon as it sees it.

The learner (``modelloop learn``, :mod:`modelloop.online`) writes each update as a new
*revision* of the (endpoint, variant) in the metadata store. :class:`OnlineModels` asks for the
revisions every ``poll_seconds`` (100 ms by default: one indexed read per online variant), loads a
grown one off the request path and swaps it in with one attribute assignment. A batch reads the
model once at its start, so a request that began on the old model finishes on it and the next
one gets the new one: no request fails, and an update reaches every worker within the poll
interval plus one load (well under a second for River models of a few MB).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from modelloop.errors import ModelloopError
from modelloop.serving.dataplane.batching import Batcher
from modelloop.serving.dataplane.validation import Validator

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.store.base import MetadataStore

log = logging.getLogger(__name__)

#: Signature types of online features (what requests are validated against).
_TYPES = {"number": "double", "category": "string"}


class NothingLearned(ModelloopError):
    """The learner has published no model yet (no labelled event learned, or not running)."""

    status = 503


class OnlineVariantRuntime:
    """A variant served by the newest published model of its learner. Same surface as
    :class:`~modelloop.serving.dataplane.variant.VariantRuntime` for the data plane."""

    def __init__(self, endpoint: str, spec: dict, options: dict, executor: ThreadPoolExecutor):
        from modelloop.registry.signature import ColumnSpec, Signature

        self.endpoint = endpoint
        self.name = spec["name"]
        self.spec_model = spec["model"]
        self.role = spec["role"]
        self.weight = spec["weight"]
        self.sample = spec["sample"]
        self.online = spec["online"]
        self.plan = None
        self.explain = False  # SHAP needs a fixed model and its training rows: not online
        self.signature = Signature(tuple(ColumnSpec(f["name"], _TYPES[f["type"]])
                                         for f in self.online["features"]))
        self.validator = Validator(self.signature, options)
        self.columns = self.validator.columns
        self.classify = self.online["label"] == "class"
        self.has_proba = self.classify
        self.classes: list | None = [] if self.classify else None
        self.label_type = "BYTES" if self.classify else "FP64"
        self.outputs = [{"name": "predict", "datatype": self.label_type, "shape": [-1]}]
        if self.has_proba:
            self.outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]})
        self.revision = 0
        self.model = None  # swapped whole by OnlineModels; read once per batch
        self.batcher = Batcher(self, options, executor)

    @property
    def model_ref(self) -> str:
        """``SPEC@REVISION``: answers and captures name the revision of the learner's model
        that was served (OIP v2's model version is the revision)."""
        return f"{self.spec_model}@{self.revision}"

    def swap(self, revision: int, model) -> None:
        """Serve ``model`` from the next batch on (one assignment each: atomic under the GIL;
        the revision is set last, so a reader seeing it sees the model)."""
        self.model = model
        self.revision = revision

    def prepare(self, payload):
        """The validated rows; a 503 first while the learner has published nothing."""
        if self.model is None:
            raise NothingLearned(
                f"the online variant {self.name!r} of endpoint {self.endpoint!r} has learned "
                "nothing yet",
                hint=f"send labelled events (POST /endpoints/{self.endpoint}/events) and run its "
                     f"learner ('modelloop learn {self.endpoint}')")
        return self.validator.prepare(payload)

    def predict_batch(self, X, want_proba: bool):
        import numpy as np

        model = self.model  # once: a swap during the batch serves the next one
        rows = self._dicts(X)
        preds = [model.predict_one(x) for x in rows]  # River's API (and the partial_fit wrapper's)
        proba = None
        if want_proba and self.has_proba:
            dists = [model.predict_proba_one(x) for x in rows]
            classes = self._grow_classes(k for d in dists for k in d)
            proba = np.array([[d.get(c, 0.0) for c in classes] for d in dists], dtype=float)
        if self.classify:
            out = np.empty(len(preds), dtype=object)
            out[:] = [_plain(p) for p in preds]
        else:
            out = np.asarray([np.nan if p is None else p for p in preds], dtype=float)
        return out, proba

    def _grow_classes(self, seen) -> list:
        """The classes probabilities are given for: those the model knows, in a stable order
        (River classifiers learn new classes as events bring them)."""
        known = list(self.classes or [])
        new = [c for c in dict.fromkeys(_plain(s) for s in seen) if c not in known]
        if new:
            known = sorted([*known, *new], key=lambda c: (type(c).__name__, str(c)))
            self.classes = known
        return known

    def _dicts(self, X) -> list[dict]:
        names = self.columns
        if hasattr(X, "to_dict"):
            return X.to_dict(orient="records")
        return [dict(zip(names, row.tolist(), strict=True)) for row in X]


def _plain(value):
    """numpy scalars as Python values (JSON encodes them; River returns plain ones anyway)."""
    return value.item() if hasattr(value, "item") else value


class OnlineModels:
    """Keeps a server's online variants on their learners' newest revisions (a thread)."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, variants,
                 poll_seconds: float = 0.1):
        """``variants()`` gives the online variants served now."""
        self.store, self.artifacts = store, artifacts
        self.variants = variants
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="online-models", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception as exc:  # keep serving the model we have; say why
                log.warning("online model refresh failed: %s", exc)

    def check(self) -> int:
        """Load and swap in every online variant's newer revision; how many were swapped."""
        variants = self.variants()
        if not variants:
            return 0
        from modelloop.online import current_revision, load_published

        swapped = 0
        for v in variants:
            rev = current_revision(self.store, v.endpoint, v.name)
            if rev and rev > v.revision:
                rev, model = load_published(self.store, self.artifacts, v.endpoint, v.name)
                if rev > v.revision:
                    v.swap(rev, model)
                    swapped += 1
        self.swaps += swapped
        return swapped
