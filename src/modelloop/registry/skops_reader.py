"""Reading skops files without importing skops, by skops' own rules.

Why not skops itself: ``import skops.io`` registers its loaders for every library it supports and
so imports ``sklearn.cluster``, ``sklearn.manifold``, ``sklearn.tree`` and more that a model
rarely needs (0.1-0.25 s a process), and its load walks the file through generic node objects
(10-20 ms for a small pipeline), where ``pickle.load`` of the same pipeline plus its sha256 check
takes well under a millisecond. That made loading a registered model slower than loading a
pickle. This module reads the part of skops' format (protocol 2) that scikit-learn models use,
importing only the modules of the types the file names:

* trust is skops': each kind of node trusts what skops' node of that kind trusts by default (the
  lists skops itself computed, kept by :mod:`modelloop.registry.skops_files`), plus the types the
  package recorded when it was written. Every type in the file is checked before anything is
  imported or built; a file naming any other type is refused (IntegrityError naming the types);
* objects are built as skops builds them (``cls.__new__`` then ``__setstate__`` or
  ``__dict__``; trees and losses from their constructor), so the model is the one skops returns;
* nothing is unpickled: arrays come from their ``.npy`` members, whose header is read with
  numpy's parser, object dtypes refused, and the shape checked against the member's size before
  anything is allocated;
* the archive is checked first: plain member names only (no folders, no ``..``), no duplicates,
  no member unpacking to more than ``MAX_RATIO`` times its packed size; nesting is bounded.

The nodes (one class per kind of skops node) are in :mod:`modelloop.registry.skops_nodes`.
A file in a part of the format this reader does not implement (another protocol, a loader such
as ``MethodNode``) raises :class:`Unsupported`, and the caller hands it to skops.
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import re
import struct
import zipfile
from typing import Any

from modelloop.common import loading
from modelloop.errors import IntegrityError, InvalidInput
from modelloop.registry.skops_nodes import KINDS, Node

#: The skops protocol whose nodes this module implements (skops 0.16).
PROTOCOL = 2
#: Deepest nesting of nodes read (a scikit-learn pipeline nests about 15 deep).
MAX_DEPTH = 100
#: Most a compressed member may unpack to, per byte packed (deflate's best is about 1032).
MAX_RATIO = 1100
#: The lists (names as skops' ``_trusted_types`` module calls them) this reader needs.
LISTS = ("PRIMITIVE_TYPE_NAMES", "CONTAINER_TYPE_NAMES", "SKLEARN_ESTIMATOR_TYPE_NAMES",
         "SKLEARN_INTERNAL_TYPE_NAMES", "NUMPY_UFUNC_TYPE_NAMES", "SCIPY_UFUNC_TYPE_NAMES",
         "NUMPY_DTYPE_TYPE_NAMES", "NUMPY_RANDOM_BIT_GENERATOR_TYPE_NAMES",
         "ALLOWED_LOSS_TYPE_NAMES")
_HINT = "the file was changed after packaging, or was not written by skops; re-package the model"


class Unsupported(Exception):
    """The file uses a part of skops' format this reader does not implement: skops reads it."""


class _Trust:
    """Per kind of node, the types skops trusts by default; plus the types the package trusts."""

    def __init__(self, user: frozenset[str], by_kind: dict[str, frozenset[str]],
                 bit_generators: frozenset[str]):
        self.user, self.by_kind, self.bit_generators = user, by_kind, bit_generators

    @classmethod
    def from_lists(cls, lists: dict[str, list[str]], user: frozenset[str]) -> _Trust:
        import numpy as np

        def names(*keys: str) -> frozenset[str]:
            return frozenset(t for key in keys for t in lists[key])

        dtypes = names("NUMPY_DTYPE_TYPE_NAMES")
        by_kind = {  # as each of skops' nodes calls ``_get_trusted(trusted, default=...)``
            "DictNode": frozenset({"builtins.dict", "collections.OrderedDict"}),
            "ListNode": frozenset({"builtins.list"}),
            "SetNode": frozenset({"builtins.set"}),
            "TupleNode": frozenset({"builtins.tuple"}),
            "FunctionNode": names("SCIPY_UFUNC_TYPE_NAMES", "NUMPY_UFUNC_TYPE_NAMES"),
            "TypeNode": names("PRIMITIVE_TYPE_NAMES", "CONTAINER_TYPE_NAMES") | dtypes,
            "ObjectNode": names("SKLEARN_ESTIMATOR_TYPE_NAMES", "SKLEARN_INTERNAL_TYPE_NAMES"),
            "NdArrayNode": frozenset({"numpy.ndarray"}) | dtypes,
            "DTypeNode": frozenset(),
            "TreeNode": frozenset(),
            "LossNode": names("ALLOWED_LOSS_TYPE_NAMES"),
            "RandomGeneratorNode": frozenset({_path(np.random.Generator)}),
        }
        return cls(user, by_kind, names("NUMPY_RANDOM_BIT_GENERATOR_TYPE_NAMES"))

    def allows(self, kind: str, name: str) -> bool:
        return name in self.user or name in self.by_kind[kind]

    def adding(self, names: frozenset[str]) -> _Trust:
        """The same trust with ``names`` trusted everywhere (what skops' LossNode passes down)."""
        return _Trust(self.user | names, self.by_kind, self.bit_generators)


def _path(t: type) -> str:
    return f"{t.__module__}.{t.__name__}"


def read_skops(path: str | os.PathLike, trusted: list[str], lists: dict[str, list[str]]) -> Any:
    """The object in the skops file ``path``, trusting skops' default ``lists`` and ``trusted``.

    IntegrityError when the file names a type neither trusts or breaks the format's rules;
    :class:`Unsupported` when it needs a part of skops' format this reader lacks.
    """
    if any(key not in lists for key in LISTS):
        raise Unsupported("the kept lists lack one this reader needs")
    name = os.path.basename(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise IntegrityError(f"{name} is not a readable skops file: {e}", hint=_HINT) from None
    with archive:
        reader = _Reader(name, archive, _Trust.from_lists(lists, frozenset(trusted)))
        return reader.read()


class _Reader:
    def __init__(self, name: str, archive: zipfile.ZipFile, trust: _Trust):
        self.name = name
        self.archive = archive
        self.trust = trust
        self.members = self._members()
        self.memo: dict[int, Node] = {}
        self.nodes: list[Node] = []
        self.types: dict[tuple[str, str], Any] = {}
        self.dtypes: dict[str, Any] = {}
        self.names: set[tuple[str, str]] = set()  # (key, name) already found well formed
        self.values: dict[str, Any] = {}  # JSON text -> its number (or None), read once

    def refuse(self, why: str) -> IntegrityError:
        return IntegrityError(f"{self.name}: {why}", hint=_HINT)

    def _members(self) -> dict[str, zipfile.ZipInfo]:
        out: dict[str, zipfile.ZipInfo] = {}
        for info in self.archive.infolist():
            member = info.filename
            if (not member or member in (".", "..") or any(c in member for c in "/\\\x00")
                    or os.path.isabs(member)):  # fmt: skip
                raise self.refuse(f"member {member!r} is not a plain file name")
            if member in out:
                raise self.refuse(f"member {member!r} appears twice")
            if info.compress_type == zipfile.ZIP_STORED:
                if info.file_size != info.compress_size:
                    raise self.refuse(f"stored member {member!r} declares two sizes")
            elif info.file_size > MAX_RATIO * info.compress_size + 1024:
                raise self.refuse(f"member {member!r} unpacks to {info.file_size} bytes from "
                                  f"{info.compress_size}")  # fmt: skip
            out[member] = info
        if "schema.json" not in out:
            raise self.refuse("no schema.json")
        return out

    def read(self) -> Any:
        try:
            schema = json.loads(self._bytes("schema.json"))
        except (ValueError, RecursionError) as e:
            raise self.refuse(f"schema.json is not JSON: {str(e)[:200]}") from None
        if not isinstance(schema, dict):
            raise self.refuse("schema.json is not an object")
        protocol = schema.get("protocol")
        if isinstance(protocol, bool) or not isinstance(protocol, int):
            raise self.refuse(f"invalid skops protocol {protocol!r}")
        if protocol != PROTOCOL:
            raise Unsupported(f"skops protocol {protocol}")
        root = self.node(schema, self.trust, 0)
        untrusted = sorted({n for node in self.nodes for n in node.untrusted})
        if untrusted:
            raise IntegrityError(
                f"{self.name} contains types that were not recorded when it was saved: "
                f"{', '.join(untrusted[:10])}" + (" …" if len(untrusted) > 10 else ""),
                hint="the file was changed after packaging; re-package the model")
        try:
            return root.build()
        except RecursionError:
            raise self.refuse("its objects nest too deeply") from None
        except MemoryError:
            raise self.refuse("its objects would not fit in memory") from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
            raise IntegrityError(
                f"{self.name}: its objects cannot be rebuilt: {type(e).__name__}: {str(e)[:200]}",
                hint="load it with the library versions it was packaged with (its manifest lists "
                "them), or re-package the model") from None

    # -- the tree of nodes: built and checked before anything is imported ----------------------
    def node(self, state: Any, trust: _Trust, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.refuse(f"its objects nest deeper than {MAX_DEPTH}")
        if not isinstance(state, dict):
            raise self.refuse("a node is not an object")
        saved_id = state.get("__id__")
        if saved_id is not None and (isinstance(saved_id, bool) or not isinstance(saved_id, int)):
            raise self.refuse(f"a node's __id__ is {saved_id!r}")
        if saved_id in self.memo:  # the same object again: skops returns the node read first
            return self.memo[saved_id]
        loader = state.get("__loader__")
        kind = KINDS.get(loader) if isinstance(loader, str) else None
        if kind is None:
            raise Unsupported(f"loader {loader!r}")
        node = kind(self, state, trust, depth + 1)
        self.nodes.append(node)
        return node

    def member(self, state: dict) -> zipfile.ZipInfo:
        member = state.get("file")
        if not isinstance(member, str) or member not in self.members:
            raise self.refuse(f"a node names the member {member!r}, which is not in the file")
        return self.members[member]

    # -- building: imports the trusted types' modules, reads arrays -------------------------------
    def resolve(self, module: str, name: str) -> Any:
        key = (module, name)
        if key not in self.types:
            try:
                found = loading.import_module(module, what="model type")
            except InvalidInput:
                raise InvalidInput(
                    f"{self.name} holds a {module}.{name}, and {module} cannot be imported",
                    hint="install the libraries the model was packaged with (its manifest lists "
                    "them)") from None
            if not hasattr(found, name):
                raise self.refuse(f"{module} has no {name}")
            self.types[key] = getattr(found, name)
        return self.types[key]

    def _bytes(self, member: str) -> bytes:
        try:
            return self.archive.read(self.members[member])
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as e:
            raise self.refuse(f"member {member!r} cannot be read: {e}") from None

    def array(self, info: zipfile.ZipInfo):
        """A ``.npy`` member as ``np.load(allow_pickle=False)`` reads it, sizes checked first."""
        import numpy as np

        member = info.filename
        try:
            with self.archive.open(info) as f:
                head = f.read(8)
                if len(head) != 8 or head[:6] != b"\x93NUMPY":
                    raise self.refuse(f"member {member!r} is not a .npy array")
                length = _HEADER_LENGTH.get((head[6], head[7]))
                if length is None:
                    raise Unsupported(f".npy format version {head[6]}.{head[7]}")
                size = struct.unpack(length, f.read(struct.calcsize(length)))[0]
                if size > _MAX_HEADER:  # numpy's own limit for files it does not trust
                    raise self.refuse(f"member {member!r} has a {size}-byte array header")
                text = f.read(size)
                offset = 8 + struct.calcsize(length) + len(text)
                shape, fortran, dtype = self.header(head, length, size, text)
                if dtype.hasobject:
                    raise self.refuse(f"member {member!r} holds Python objects (pickle)")
                if any(d < 0 for d in shape):
                    raise self.refuse(f"member {member!r} has the shape {shape}")
                if offset + math.prod(shape) * dtype.itemsize != info.file_size:
                    raise self.refuse(f"member {member!r}: the shape {shape} in its header "
                                      "does not match its size")  # fmt: skip
                array = np.empty(math.prod(shape), dtype=dtype)
                if array.nbytes and (f.readinto(array.view(np.uint8)) != array.nbytes
                                     or f.read(1)):  # fmt: skip
                    raise self.refuse(f"member {member!r} is cut short")
        except (ValueError, TypeError, KeyError, SyntaxError, RecursionError, MemoryError,
                struct.error, zipfile.BadZipFile, OSError, RuntimeError, EOFError,
                NotImplementedError) as e:  # fmt: skip
            raise self.refuse(f"member {member!r} is not a valid array: {e}") from None
        if fortran:  # as numpy.lib.format.read_array does
            array.shape = shape[::-1]
            return array.transpose()
        array.shape = shape
        return array

    def header(self, head: bytes, length: str, size: int, text: bytes):
        """(shape, fortran order, dtype) of a .npy header: the form numpy writes read directly,
        its dtype parsed once per file; any other form by numpy's reader (``ast.literal_eval``,
        a Python compile per array, which was a third of reading a forest)."""
        from numpy.lib import format as npy

        found = _HEADER.match(text.decode("latin1"))
        if found is None:
            stream = io.BytesIO(head + struct.pack(length, size) + text)
            stream.seek(8)
            read = npy.read_array_header_1_0 if head[6] == 1 else npy.read_array_header_2_0
            return read(stream)
        descr, fortran, dims = found.groups()
        if descr not in self.dtypes:
            self.dtypes[descr] = npy.descr_to_dtype(ast.literal_eval(descr))
        shape = tuple(int(d) for d in dims.split(",") if d.strip())
        return shape, fortran == "True", self.dtypes[descr]


#: What numpy writes: {'descr': ..., 'fortran_order': ..., 'shape': (...), } and padding.
_HEADER = re.compile(r"\{'descr': (.{1,9000}), 'fortran_order': (True|False), "
                     r"'shape': \(((?:\d+, )*\d+,?|)\), \} *\n?\Z", re.S)
_HEADER_LENGTH = {(1, 0): "<H", (2, 0): "<I"}
_MAX_HEADER = 10000
