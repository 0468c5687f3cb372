"""Keeping a server's endpoints in step with the metadata store: an endpoint whose stored revision
changed is rebuilt and swapped in whole (requests already running keep the runtime they started
with); a deleted one is dropped; one that cannot be loaded says why on every request. Loaded
models are shared across revisions by package hash, so changing a weight reloads nothing."""

from __future__ import annotations

import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from modelloop.errors import NotFound
from modelloop.serving.dataplane.online_variant import OnlineVariantRuntime
from modelloop.serving.dataplane.routing import EndpointRuntime
from modelloop.serving.dataplane.variant import VariantRuntime

if TYPE_CHECKING:
    from modelloop.registry.registry import Registry
    from modelloop.store.base import MetadataStore

log = logging.getLogger(__name__)


class EndpointRuntimes:
    """The endpoints a server process serves (``runtimes``: name -> :class:`EndpointRuntime`),
    loaded from the ``store``'s endpoint records with the models of the ``models`` registry."""

    def __init__(self, store: MetadataStore, models: Registry, features=None):
        self.store = store
        self.models = models
        self.features = features  # the feature lookup of models trained from a feature set
        self.runtimes: dict[str, EndpointRuntime] = {}
        self._models: dict[str, object] = {}  # package hash -> PackagedModel
        self._variants: dict[tuple, VariantRuntime] = {}
        self._executors: dict[tuple[str, str], ThreadPoolExecutor] = {}
        self._errors: dict[str, str] = {}  # endpoint -> why it could not be loaded

    def refresh(self) -> None:
        """Load endpoints whose revision changed and swap them in; drop deleted ones."""
        revisions = self.store.endpoint_revisions()
        for name in list(self.runtimes):
            if name not in revisions:
                self.runtimes.pop(name, None)
        for name, rev in revisions.items():
            current = self.runtimes.get(name)
            if current is not None and current.revision == rev:
                continue
            record = self.store.get_endpoint(name)
            if record is None:
                continue
            try:
                runtime = self._build(record)
            except Exception as exc:
                self._errors[name] = str(exc)
                log.warning("cannot load endpoint %s revision %s: %s", name,
                            record["revision"], exc)
                continue
            self._errors.pop(name, None)
            self.runtimes[name] = runtime  # one assignment: the atomic swap

    def _build(self, record: dict) -> EndpointRuntime:
        from modelloop.serving.spec import check_spec

        check_spec(record["spec"])  # a record stored before its values were checked (NaN weight)
        variants = {}
        options = record["spec"]["options"]
        for spec in record["spec"]["variants"]:
            online = spec.get("online")
            packaged = None if online else self._load(spec["model"])
            key = (record["name"], spec["name"], spec["model"], spec["role"], spec["weight"],
                   spec["sample"], spec.get("explain", False), tuple(sorted(options.items())),
                   repr(online))
            v = self._variants.get(key)
            if v is None:
                ex = self._executors.get((record["name"], spec["name"]))
                if ex is None:
                    ex = self._executors[(record["name"], spec["name"])] = ThreadPoolExecutor(
                        1, thread_name_prefix=f"predict-{spec['name']}")
                if online:
                    v = OnlineVariantRuntime(record["name"], spec, options, ex)
                    self._load_published(v)
                else:
                    v = VariantRuntime(spec, packaged, options, ex, self.features)
                self._variants[key] = v
            variants[spec["name"]] = v
        return EndpointRuntime(record, variants)

    def _load_published(self, v: OnlineVariantRuntime) -> None:
        """A new online variant starts on the newest published model (loaded here, off the
        request path), so a spec change never answers 503 in between."""
        from modelloop.online import current_revision, load_published

        if current_revision(self.store, v.endpoint, v.name):
            v.swap(*load_published(self.store, self.models.artifacts, v.endpoint, v.name))

    def online_variants(self) -> list[OnlineVariantRuntime]:
        """The online variants served now (what :class:`OnlineModels` keeps up to date)."""
        return [v for rt in list(self.runtimes.values()) for v in rt.variants.values()
                if isinstance(v, OnlineVariantRuntime)]

    def _load(self, ref: str):
        name, version = self.models.resolve(ref)
        record = self.store.get_model_version(name, version)
        model = self._models.get(record["package_hash"])
        if model is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = self._models[record["package_hash"]] = self.models.load(ref)
        return model

    def runtime(self, name: str) -> EndpointRuntime:
        """The endpoint's runtime; NotFound (404) names why it is not served."""
        rt = self.runtimes.get(name)
        if rt is None:
            if name in self._errors:
                raise NotFound(f"endpoint {name!r} could not be loaded: {self._errors[name]}",
                               hint="fix the endpoint with 'modelloop endpoint update'")
            known = sorted(self.runtimes)
            raise NotFound(f"no endpoint named {name!r}",
                           hint=f"endpoints here: {', '.join(known)}" if known else
                           "create one with 'modelloop endpoint create NAME --model M@V'")
        return rt

    def close(self) -> None:
        for ex in self._executors.values():
            ex.shutdown(wait=False)
