"""How a block of labelled events is stored: one row's bytes, decoded straight into the dicts a
River model reads.

Two layouts, told apart by the first byte:

- ``F`` (the common case: every event of the block has the same feature names in the same
  order, every value a float, no time or inference id): a header (JSON) with the names once and
  the labels, then the values packed as little-endian float64, event after event. Decoding is
  one ``array`` conversion and a ``dict(zip(names, ...))`` per event: no number is parsed.
- ``J`` (anything else: integers, categories, missing values, times, inference ids): a JSON
  array of ``[features, label, inference_id, time or null]``.

Both are lossless for what intake accepts: a float stays a float (never an int, which a
categorical encoder would name differently), and the names keep their order, which is the
order River sums the features in (a different order could change the last digit).
"""

from __future__ import annotations

import struct
import sys
from array import array
from datetime import datetime
from itertools import chain, repeat

import orjson

from modelloop.errors import InvalidInput
from modelloop.store.interfaces.online import AlikeEvents, EventBatch

_HEADER = struct.Struct("<I")
_BIG_ENDIAN = sys.byteorder == "big"


def _packed(names: tuple, values: list, labels: list) -> bytes:
    """The ``F`` layout: ``values`` are floats, ``len(names)`` per event."""
    packed = array("d", values)
    if _BIG_ENDIAN:  # pragma: no cover - every machine we run on is little-endian
        packed.byteswap()
    header = orjson.dumps({"names": names, "labels": labels}, option=orjson.OPT_SERIALIZE_NUMPY)
    return b"F" + _HEADER.pack(len(header)) + header + packed.tobytes()


def encode_alike(events: AlikeEvents, start: int, end: int) -> bytes:
    """Events ``start`` to ``end`` of :class:`AlikeEvents` as stored."""
    width = len(events.names)
    return _packed(events.names, events.values[start * width : end * width],
                   events.labels[start:end])  # fmt: skip


def encode(block: list[dict]) -> bytes:
    """A block of events (``{"features", "label", "inference_id"?, "time"?}``) as stored."""
    features = [e["features"] for e in block]
    names = set(map(tuple, features))
    if len(names) == 1 and not any(e.get("inference_id") or e.get("time") for e in block):
        values = list(chain.from_iterable(map(dict.values, features)))
        if not values or set(map(type, values)) == {float}:
            return _packed(names.pop(), values, [e["label"] for e in block])
    return b"J" + orjson.dumps(
        [[e["features"], e["label"], e.get("inference_id"),
          e["time"].isoformat() if e.get("time") else None] for e in block],
        option=orjson.OPT_SERIALIZE_NUMPY,
    )  # fmt: skip


def decode(body: bytes, first_seq: int, after_seq: int, limit: int, block_time: datetime,
           out: EventBatch) -> None:  # fmt: skip
    """Append to ``out`` the block's events with seq > ``after_seq`` while ``out`` holds fewer
    than ``limit``."""
    body = bytes(body)  # a driver may hand back a memoryview
    skip = max(0, after_seq + 1 - first_seq)
    if body[:1] == b"F":
        (size,) = _HEADER.unpack_from(body, 1)
        header = orjson.loads(body[5 : 5 + size])
        # Interned: a model's own dicts are keyed by the names it saw first, and a lookup with
        # the very same string object skips comparing characters (measured: the learner was
        # 15% slower than River with a new string object per name and block).
        names, labels = tuple(map(sys.intern, header["names"])), header["labels"]
        take = min(len(labels) - skip, limit - len(out))
        if take <= 0:
            return
        width = len(names)
        values = array("d")
        start = 5 + size + skip * width * 8
        values.frombytes(body[start : start + take * width * 8])
        if _BIG_ENDIAN:  # pragma: no cover
            values.byteswap()
        it = iter(values.tolist())
        # zip takes a name first and stops when they run out: one event's values per dict
        # (maps, not a generator: no Python frame per event)
        out.features.extend(map(dict, map(zip, repeat(names, take), repeat(it, take))))
        out.seqs.extend(range(first_seq + skip, first_seq + skip + take))
        out.labels.extend(labels[skip : skip + take])
        out.inference_ids.extend([None] * take)
        out.times.extend([block_time] * take)
        return
    if body[:1] != b"J":
        raise InvalidInput(f"an online event block of an unknown layout {body[:1]!r}")
    rows = orjson.loads(body[1:])
    for offset in range(skip, len(rows)):
        if len(out) >= limit:
            return
        features, label, inference_id, at = rows[offset]
        out.append(first_seq + offset, features, label, inference_id,
                   datetime.fromisoformat(at) if at else block_time)  # fmt: skip
