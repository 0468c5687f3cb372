"""Which variant answers a request: a named target variant, a routing key kept on one variant
(weighted rendezvous hashing), or a weighted random choice among the primaries."""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right

from modelloop.errors import InvalidInput, NotFound
from modelloop.serving.dataplane.payload import MAX_REQUEST_ROWS
from modelloop.serving.dataplane.variant import VariantRuntime


class EndpointRuntime:
    """An endpoint at one revision: its variants and how to route among them."""

    def __init__(self, record: dict, variants: dict[str, VariantRuntime]):
        self.name = record["name"]
        self.revision = record["revision"]
        self.spec = record["spec"]
        self.options = self.spec["options"]
        self.capture = self.spec["capture"]
        self.variants = variants
        self.primaries = [v for v in variants.values() if v.role == "primary" and v.weight > 0]
        self.shadows = [v for v in variants.values() if v.role == "shadow"]
        # an online endpoint: feedback on its requests becomes labelled events
        self.learns = any(v.get("online") for v in self.spec["variants"])
        total = sum(v.weight for v in self.primaries)
        acc, self.cumulative = 0.0, []
        for v in self.primaries:
            acc += v.weight / total
            self.cumulative.append(acc)
        self.max_payload = int(self.options["max_payload_mb"] * 1024 * 1024)
        self.max_rows = int(self.options.get("max_request_rows", MAX_REQUEST_ROWS))
        self.timeout = float(self.options["timeout_seconds"])

    def choose(self, target: str | None = None, routing_key: str | None = None) -> VariantRuntime:
        if target:
            v = self.variants.get(target)
            if v is None or v.role != "primary":
                names = [p.name for p in self.variants.values() if p.role == "primary"]
                raise InvalidInput(
                    f"endpoint {self.name!r} has no variant {target!r}",
                    hint=f"its variants: {', '.join(names)}",
                )
            return v
        if not self.primaries:
            raise NotFound(f"endpoint {self.name!r} has no variant taking traffic",
                           hint="give a primary variant a positive weight")
        if len(self.primaries) == 1:
            return self.primaries[0]
        if routing_key:
            return _rendezvous(self.primaries, routing_key)
        i = bisect_right(self.cumulative, random.random())
        return self.primaries[min(i, len(self.primaries) - 1)]


def _rendezvous(variants: list[VariantRuntime], key: str) -> VariantRuntime:
    """Weighted rendezvous (highest random weight) hashing: a key keeps its variant as long as
    that variant stays, and moves only as much as weights change. Hand-written: it is five lines,
    and the hashing libraries on PyPI implement unweighted rings."""
    best, best_score = variants[0], -math.inf
    for v in variants:
        h = int.from_bytes(hashlib.blake2b(f"{v.name}\0{key}".encode(), digest_size=8).digest())
        u = (h + 0.5) / 2**64
        score = -v.weight / math.log(u)
        if score > best_score:
            best, best_score = v, score
    return best
