"""The nodes of a skops file, one class per kind of skops node (protocol 2), for
:mod:`modelloop.registry.skops_reader`.

Each node checks its type when it is read, with the trust skops' node of that kind has (the
reader collects what is not trusted before building anything), and builds its object as skops'
node builds it, once, when asked (an object that contains itself is refused, not recursed into).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelloop.registry.skops_reader import _Reader, _Trust

_TREE_MODULE = "sklearn.tree._tree"  # skops builds every TreeNode as this module's Tree
_MAX_POOL = 64  # words of a SeedSequence's pool (numpy's default is 4)


def _type_name(reader: _Reader, state: dict, key: str) -> str:
    """A module name (dotted identifiers) or a class name (one identifier), as the file says."""
    value = state.get(key)
    if (key, value) in reader.names:  # a file names a few types thousands of times
        return value
    parts = value.split(".") if isinstance(value, str) else ()
    ok = parts and all(p.isidentifier() for p in parts) and (key == "__module__" or len(parts) == 1)
    if not ok:
        raise reader.refuse(f"a node's {key} is {value!r}")
    reader.names.add((key, value))
    return value


class Node:
    """One object of the file: its type checked when read, built once when asked."""

    kind = ""

    def __init__(self, reader: _Reader, state: dict, trust: _Trust, depth: int):
        self.reader = reader
        self.module = _type_name(reader, state, "__module__")
        self.cls = _type_name(reader, state, "__class__")
        self.untrusted: tuple[str, ...] = ()
        self._built: Any = _UNBUILT
        saved_id = state.get("__id__")
        if saved_id:
            reader.memo[saved_id] = self
        self.check(trust)
        self.read(state, trust, depth)

    @property
    def type_name(self) -> str:
        return f"{self.module}.{self.cls}"

    def check(self, trust: _Trust) -> None:
        if not trust.allows(self.kind, self.type_name):
            self.untrusted = (self.type_name,)

    def content(self, state: dict, key: str = "content"):
        if key not in state:
            raise self.reader.refuse(f"a {self.kind} has no {key}")
        return state[key]

    def read(self, state: dict, trust: _Trust, depth: int) -> None:
        pass

    def build(self) -> Any:
        if self._built is _BUILDING:
            raise self.reader.refuse("an object contains itself")
        if self._built is _UNBUILT:
            self._built = _BUILDING
            self._built = self.make()
        return self._built

    def make(self) -> Any:
        raise NotImplementedError

    def type(self) -> Any:
        return self.reader.resolve(self.module, self.cls)


_UNBUILT, _BUILDING = object(), object()


class _Json(Node):
    kind = "JsonNode"

    def check(self, trust):  # skops: a JsonNode is always safe (it holds JSON values only)
        pass

    def read(self, state, trust, depth):
        self.text = self.content(state)
        if not isinstance(self.text, str):
            raise self.reader.refuse("a JsonNode's content is not text")

    def make(self):
        known = self.reader.values.get(self.text, _UNBUILT)
        if known is not _UNBUILT:
            return known
        value = json.loads(self.text)
        if value is None or isinstance(value, (int, float)):  # immutable, and no identity
            self.reader.values[self.text] = value
        return value


class _Sequence(Node):
    def read(self, state, trust, depth):
        items = self.content(state)
        if not isinstance(items, list):
            raise self.reader.refuse(f"a {self.kind}'s content is not a list")
        self.items = [self.reader.node(item, trust, depth) for item in items]


class _List(_Sequence):
    kind = "ListNode"

    def make(self):
        return self.type()([item.build() for item in self.items])


class _Set(_List):
    kind = "SetNode"


class _Tuple(_Sequence):
    kind = "TupleNode"

    def make(self):
        cls = self.type()
        content = tuple(item.build() for item in self.items)
        fields = getattr(cls, "_fields", None)  # a namedtuple is built from its fields, as skops
        if (cls.__bases__ == (tuple,) and isinstance(fields, tuple)
                and all(isinstance(f, str) for f in fields)):  # fmt: skip
            return cls(*content)
        return content


class _Dict(Node):
    kind = "DictNode"

    def read(self, state, trust, depth):
        content = self.content(state)
        if not isinstance(content, dict):
            raise self.reader.refuse("a DictNode's content is not an object")
        self.key_types = self.reader.node(self.content(state, "key_types"), trust, depth)
        self.items = {k: self.reader.node(v, trust, depth) for k, v in content.items()}

    def make(self):
        out = self.type()()
        key_types = self.key_types.build()
        if len(key_types) != len(self.items):
            raise self.reader.refuse(f"a DictNode has {len(key_types)} key types for "
                                     f"{len(self.items)} keys")
        for key_type, (key, value) in zip(key_types, self.items.items(), strict=True):
            out[key_type(key)] = value.build()
        return out


class _Type(Node):
    kind = "TypeNode"

    def make(self):
        return self.type()


class _Function(_Type):
    kind = "FunctionNode"


class _Slice(Node):
    kind = "SliceNode"

    def check(self, trust):  # skops: a slice of JSON values is always safe
        pass

    def read(self, state, trust, depth):
        content = self.content(state)
        if not isinstance(content, dict):
            raise self.reader.refuse("a SliceNode's content is not an object")
        self.bounds = (content.get("start"), content.get("stop"), content.get("step"))

    def make(self):
        return slice(*self.bounds)


class _Object(Node):
    kind = "ObjectNode"

    def read(self, state, trust, depth):
        content = state.get("content")
        self.attrs = None if content is None else self.reader.node(content, trust, depth)

    def make(self):
        cls = self.type()
        instance = cls.__new__(cls)  # no __init__: skops' way, the attributes follow
        if self.attrs is None:
            return instance
        attrs = self.attrs.build()
        if attrs is not None:
            if hasattr(instance, "__setstate__"):
                instance.__setstate__(attrs)
            else:
                instance.__dict__.update(attrs)
        return instance


class _Array(Node):
    kind = "NdArrayNode"

    def read(self, state, trust, depth):
        self.form = state.get("type")
        if self.form == "numpy":
            self.info = self.reader.member(state)
        elif self.form == "json":
            items = self.content(state)
            if not isinstance(items, list):
                raise self.reader.refuse("an object array's content is not a list")
            self.items = [self.reader.node(item, trust, depth) for item in items]
            self.shape = self.reader.node(self.content(state, "shape"), trust, depth)
        else:
            raise self.reader.refuse(f"an array of the unknown type {self.form!r}")

    def make(self):
        import numpy as np

        if self.form == "numpy":
            array = self.reader.array(self.info)
            if self.type_name != "numpy.ndarray":  # a numpy scalar: its type from the 0-d array
                return self.type()(array)
            return array
        shape = self.shape.build()
        items = [item.build() for item in self.items]
        if len(shape) == 1:
            out = np.ndarray(shape=len(items), dtype="O")
            for i, value in enumerate(items):
                out[i] = value
            return out
        return np.array(items, dtype="O")


class _DType(Node):
    kind = "DTypeNode"

    def read(self, state, trust, depth):
        self.array = self.reader.node(self.content(state), trust, depth)

    def make(self):
        return self.array.build().dtype


class _Reduce(Node):
    """An object skops rebuilds by calling its constructor with arguments, then its state."""

    def constructor(self, state) -> tuple[str, str]:
        raise NotImplementedError

    def read(self, state, trust, depth):
        reduce = self.content(state, "__reduce__")
        if not isinstance(reduce, dict) or "args" not in reduce:
            raise self.reader.refuse(f"a {self.kind} has no constructor arguments")
        trust = self.trust_below(trust)
        self.attrs = self.reader.node(self.content(state), trust, depth)
        self.args = self.reader.node(reduce["args"], trust, depth)
        module, cls = self.constructor(state)
        self.ctor = _Type(self.reader, {"__module__": module, "__class__": cls}, trust, depth)
        self.reader.nodes.append(self.ctor)  # checked as skops checks it: a TypeNode

    def trust_below(self, trust: _Trust) -> _Trust:
        return trust

    def make(self):
        args = self.args.build()
        instance = self.ctor.build()(*args)
        attrs = self.attrs.build()
        if not attrs:
            return instance
        if hasattr(instance, "__setstate__"):
            instance.__setstate__(attrs)
        elif isinstance(attrs, dict) and not isinstance(args, tuple):
            instance.__dict__.update(attrs)
        else:
            raise TypeError(f"objects of type {self.type_name} cannot take their state")
        return instance


class _Tree(_Reduce):
    kind = "TreeNode"

    def constructor(self, state):
        return _TREE_MODULE, "Tree"

    def make(self):
        # Tree(n_features, n_classes, n_outputs) allocates per output before its state is
        # checked: n_outputs must be the length of n_classes (an array the file had to hold)
        args = self.args.build()
        if (isinstance(args, tuple) and len(args) == 3 and hasattr(args[1], "shape")
                and args[2] != len(args[1])):  # fmt: skip
            raise self.reader.refuse(f"a tree has {args[2]!r} outputs and {len(args[1])} classes")
        return super().make()


class _Loss(_Reduce):
    kind = "LossNode"

    def trust_below(self, trust):  # skops' LossNode trusts its losses below it too
        return trust.adding(trust.by_kind["LossNode"])

    def constructor(self, state):
        return self.module, self.cls


class _Generator(Node):
    kind = "RandomGeneratorNode"

    def read(self, state, trust, depth):
        content = self.content(state)
        if not isinstance(content, dict) or not {"bit_generator", "seed_seq"} <= content.keys():
            raise self.reader.refuse("a random generator's state is incomplete")
        self.bits = self.reader.node(content["bit_generator"], trust, depth)
        self.seed = self.reader.node(content["seed_seq"], trust, depth)
        # the bit generator's class is named by a string in its state: checked as a type, as skops
        try:
            self.bit_name = json.loads(content["bit_generator"]["content"]["bit_generator"]["content"])
        except (KeyError, TypeError, ValueError):
            self.bit_name = None
        if not isinstance(self.bit_name, str):
            raise self.reader.refuse("a random generator does not name its bit generator")
        full = f"numpy.random.{self.bit_name}"
        if full not in trust.bit_generators and full not in trust.user:
            self.untrusted = (*self.untrusted, full)

    def make(self):
        import numpy as np

        seed_state = self.seed.build()
        pool = seed_state.get("pool_size", 4)  # numpy allocates the pool it is told
        if not isinstance(pool, int) or pool > _MAX_POOL:
            raise self.reader.refuse("a random generator's seed pool is out of bounds")
        seed = np.random.SeedSequence(**seed_state)
        state = self.bits.build()
        name = state["bit_generator"]
        cls = getattr(np.random, name, None) if name == self.bit_name else None
        if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
            raise self.reader.refuse(f"{name!r} is not a numpy bit generator")
        bits = cls(seed)
        bits.state = state
        return self.type()(bit_generator=bits)


KINDS: dict[str, type[Node]] = {k.kind: k for k in (
    _Json, _List, _Set, _Tuple, _Dict, _Type, _Function, _Slice, _Object, _Array, _DType, _Tree,
    _Loss, _Generator)}
