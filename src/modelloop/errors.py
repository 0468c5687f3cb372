"""Errors a person can act on.

Every mistake a user can make is raised as a :class:`ModelloopError` subclass whose message names
what is wrong and whose ``hint`` says how to fix it. Faces turn them into one line on stderr and a
non-zero exit (CLI) or a 4xx JSON body (HTTP); anything else is a bug in modelloop.
"""

from __future__ import annotations


class ModelloopError(Exception):
    """Base class for errors caused by input, configuration or state the user controls."""

    #: HTTP status a face should answer with.
    status = 400
    #: Process exit code a CLI should use.
    exit_code = 1
    #: Further problems found at the same time (e.g. every mistake in a loop spec), one a line.
    details: list[str] | tuple = ()

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = list(details or [])

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict:
        out = {"error": type(self).__name__, "message": self.message, "hint": self.hint}
        if self.details:
            out["details"] = self.details
        return out


class InvalidInput(ModelloopError):
    """A value given by the user is malformed (a name, a reference, an option)."""


class NotFound(ModelloopError):
    """A named thing (workspace, dataset, version, file, job, model) does not exist."""

    status = 404


class AlreadyExists(ModelloopError):
    status = 409


class Conflict(ModelloopError):
    """A write lost a race: what it was based on changed while it ran; running it again resolves it."""

    status = 409


class SchemaMismatch(ModelloopError):
    """Incoming data does not fit the schema already recorded for a dataset."""

    status = 422


class IntegrityError(ModelloopError):
    """Stored content no longer matches the hash it was recorded with (tampering or corruption)."""

    status = 500


class StoreVersionError(ModelloopError):
    """The metadata store was written by a newer modelloop than this one."""

    status = 500


class ConfigError(ModelloopError):
    """The workspace configuration is missing or wrong."""


class NotApproved(InvalidInput):
    """A model version that is not approved was asked to serve or batch-score (409)."""

    status = 409


class BiasSpecError(InvalidInput):
    """A bias analysis names a facet, label or group that the data cannot give: an unknown column,
    a value that never occurs, a label that is not binary where a metric needs one. ``field`` says
    which part (``facet``, ``label``, ``group``, ``predicted``) and ``column`` the column (422)."""

    status = 422

    def __init__(self, message: str, *, field: str, column: str | None = None,
                 hint: str | None = None):  # fmt: skip
        super().__init__(message, hint=hint)
        self.field = field
        self.column = column


class UntrustedCode(ModelloopError):
    """A model holds code (a pickle, a function reference, an MLflow loader) that nobody trusted.

    Loading such a model runs whatever its author wrote; it needs the user's explicit trust
    (``--trust-pickle`` with ``--reason``), recorded in the model's history (403)."""

    status = 403


class Unauthenticated(ModelloopError):
    """A request carried no credentials, or ones that are malformed, unknown, expired or revoked
    (401). A wrong or unknown token is not told apart from a malformed one (that would help
    someone guessing); expired and revoked are said only to who presents the real secret."""

    status = 401


class RateLimited(ModelloopError):
    """A caller made more requests than its rate limit allows (429); ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after: float = 1.0, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class Forbidden(ModelloopError):
    """The caller is known but may not do this: its role is below the one the operation needs,
    or a rule such as four-eyes approval refuses it (403)."""

    status = 403


#: Integers are stored in 64-bit columns; anything larger is a mistake, not a count or an id.
_INT_LIMIT = 2**63


def check_arguments(fn, where: str):
    """``fn`` with its arguments checked against its annotations before it runs.

    A wrong type, a missing or unknown argument, a NaN or infinite float, or an integer beyond 64
    bits raises :class:`InvalidInput` naming ``where`` and the parameter — instead of an
    ``AttributeError`` or ``TypeError`` from deep inside. Values pass through unchanged, except a
    scalar read from text (``"4"`` for an ``int``) which is given to ``fn`` converted. pydantic does
    the type checking; an annotation it cannot read is not checked.
    """
    import functools
    import inspect

    sig = inspect.signature(fn)
    checkers: dict | None = None

    def build() -> dict:
        from pydantic import ConfigDict, TypeAdapter

        namespace = getattr(getattr(fn, "__func__", fn), "__globals__", {})
        config = ConfigDict(arbitrary_types_allowed=True, allow_inf_nan=False)
        out = {}
        for p in sig.parameters.values():
            if p.annotation is p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            try:
                hint = eval(p.annotation, namespace) if isinstance(p.annotation, str) else p.annotation  # noqa: S307 - our own annotations
                out[p.name] = TypeAdapter(hint, config=config)
            except Exception:  # noqa: BLE001 - an annotation pydantic cannot read stays unchecked
                continue
        return out

    def bind(*args, **kwargs):
        try:
            return sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"{where}(): {exc}", hint=f"its parameters: {sig}") from None

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        nonlocal checkers
        bound = bind(*args, **kwargs)
        for name, value in list(bound.arguments.items()):
            p = sig.parameters[name]
            if (p.annotation is p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                    or _plainly_valid(value, p.annotation)):
                continue  # unchecked, or what pydantic would pass unchanged (CLI start-up)
            if checkers is None:
                checkers = build()
            adapter = checkers.get(name)
            if adapter is not None:
                bound.arguments[name] = _checked_value(where, name, value, adapter, sig)
        return fn(*bound.args, **bound.kwargs)

    checked.bind = bind  # only the argument list: unknown or missing arguments
    return checked


#: Annotations :func:`_plainly_valid` reads: plain types, alone or in a union (``"str | None"``).
_PLAIN_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict, "list": list,
                "None": type(None)}


def _plainly_valid(value, annotation) -> bool:
    """Whether ``value`` is exactly of a plain type its annotation names (a finite float, an int
    in 64 bits), which pydantic would accept unchanged: such arguments (nearly all of those a
    face passes) are not handed to pydantic, whose import costs a command ~0.1 s. Anything else
    (a subclass, a conversion, a parametrised type) goes to pydantic as before."""
    import math

    if isinstance(annotation, str):
        names = [part.strip() for part in annotation.split("|")]
    else:
        names = [getattr(annotation, "__name__", None)]
    if not all(n in _PLAIN_TYPES for n in names):
        return False
    kind = type(value)
    if kind not in {_PLAIN_TYPES[n] for n in names}:
        return False
    if kind is int:
        return -_INT_LIMIT <= value < _INT_LIMIT
    if kind is float:
        return math.isfinite(value)
    return True


def _checked_value(where: str, name: str, value, adapter, sig):
    from pydantic import ValidationError

    try:
        result = adapter.validate_python(value)
    except ValidationError as exc:
        if _has_paths(value):  # a Path where a str is expected is fine (alone or in a list)
            try:
                adapter.validate_python(_as_text(value))
                return value
            except ValidationError:
                pass
        kinds = {e["type"] for e in exc.errors()}
        wanted = sig.parameters[name].annotation
        what = "a finite number" if "finite_number" in kinds else (
            wanted if isinstance(wanted, str) else getattr(wanted, "__name__", str(wanted)))
        raise InvalidInput(
            f"{where}(): {name} must be {what}, not {type(value).__name__} {_short(value)}"
        ) from None
    for v in (result, *(result if isinstance(result, list | tuple) else ())):
        if isinstance(v, int) and not isinstance(v, bool) and not -_INT_LIMIT <= v < _INT_LIMIT:
            raise InvalidInput(f"{where}(): {name} = {_short(v)} is out of range",
                               hint="integers must fit in 64 bits")
    if isinstance(value, str | int | float) and type(result) is not type(value):
        return result
    return value


def _has_paths(value) -> bool:
    import os

    return isinstance(value, os.PathLike) or (
        isinstance(value, list | tuple) and any(isinstance(v, os.PathLike) for v in value)
    )


def _as_text(value):
    import os

    if isinstance(value, list | tuple):
        return type(value)(os.fspath(v) if isinstance(v, os.PathLike) else v for v in value)
    return os.fspath(value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def parse_id(value, what: str, prefix: str = "") -> int:
    """A record id from ``12``, ``"12"`` or ``"{prefix}12"``: ASCII digits only (``int`` also reads
    '٣' and '³'-like digits of other scripts), and small enough for a 64-bit column."""
    text = str(value).strip().removeprefix(prefix)
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(f"{value!r} is not a {what} id", hint=f"{what} ids are numbers, e.g. 12")
    number = int(text)
    if number >= _INT_LIMIT:
        raise NotFound(f"no {what} {text[:20]}{'…' if len(text) > 20 else ''}")
    return number
