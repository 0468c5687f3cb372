"""An operation's HTTP parameters, made from its method's signature: path and query parameters
FastAPI reads and documents, and a pydantic body model that refuses unknown fields, so a wrong
type is a 422 naming the field before the façade is called."""

from __future__ import annotations

import functools
import inspect
import json
import operator
import typing
from datetime import datetime
from typing import Annotated, Any

from fastapi import Body, Path, Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    create_model,
)

from modelloop.errors import InvalidInput
from modelloop.remote.operations import Operation
from modelloop.remote.signatures import (
    Param,
    is_scalar,
    parameters,
    repeated_item,
    union_members,
)

PAGE = ("limit", "offset")


def _scalar_list(hint) -> Any | None:
    """``list[str] | None`` -> ``list[str]``: sent as repeated query parameters."""
    item = repeated_item(hint)
    return None if item is None else list[strict_times(item)]


def _iso_time(value):
    """A time as ISO 8601 text, as the OpenAPI document says; not a number (pydantic would take
    a number for seconds since 1970, accepting what the schema refuses)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a time as ISO 8601 text, e.g. 2026-01-31T12:00:00Z")
    try:
        float(value)
    except ValueError:
        return _TIME.validate_python(value)
    raise ValueError("a time as ISO 8601 text, e.g. 2026-01-31T12:00:00Z")


_TIME = TypeAdapter(datetime)
Time = Annotated[datetime, BeforeValidator(_iso_time)]


def strict_times(hint):
    """``hint`` with every ``datetime`` in it (alone or in a union) read as ISO text only."""
    if hint is datetime:
        return Time
    members = union_members(hint)
    if len(members) > 1 and datetime in members:
        return functools.reduce(operator.or_, [Time if m is datetime else m for m in members])
    return hint


def _json_default(p: Param) -> tuple[bool, Any]:
    """Whether ``p``'s default can be shown and sent as JSON, and that JSON value."""
    if p.required:
        return False, None
    try:
        json.dumps(p.default)
    except (TypeError, ValueError):
        return False, None
    return True, p.default


class Plan:
    """How one operation's endpoint reads its request: the signature FastAPI inspects, and
    :meth:`arguments` turning what FastAPI parsed into the method's keyword arguments."""

    def __init__(self, op: Operation, page_max: int):
        self.op = op
        self.params = parameters(op)
        self.json_query: dict[str, TypeAdapter] = {}
        self.method_limit = any(p.name == "limit" for p in self.params)
        self.method_offset = any(p.name == "offset" for p in self.params)
        self.body_model: type[BaseModel] | None = None
        self.spread: str | None = None
        self.fastapi: list[inspect.Parameter] = []
        body_fields: dict[str, Any] = {}
        kw = inspect.Parameter.KEYWORD_ONLY
        for p in self.params:
            if p.where == "path":
                hint = int if p.hint is int else str
                self.fastapi.append(inspect.Parameter(p.name, kw, annotation=hint, default=Path()))
            elif p.where == "query" and not (op.page and p.name in PAGE):
                self.fastapi.append(self._query(p, kw))
            elif p.where == "body":
                ok, default = _json_default(p)
                hint = strict_times(p.hint if ok or p.required else p.hint | None)
                body_fields[p.name] = (hint, ... if p.required else default)
            elif p.where == "spread":
                self.spread = p.name
                body_fields[p.name] = (dict[str, Any], {})
        if op.page:
            method_default = next((p.default for p in self.params if p.name == "limit"), None)
            default = min(method_default or 100, page_max)
            self.fastapi.append(inspect.Parameter("limit", kw, annotation=int,
                                                  default=Query(default, ge=1, le=page_max)))  # fmt: skip
            self.fastapi.append(inspect.Parameter("offset", kw, annotation=int,
                                                  default=Query(0, ge=0, le=2**31)))  # fmt: skip
        if op.stream == "upload":
            self.fastapi.append(inspect.Parameter("filename", kw, annotation=str | None, default=Query(
                None, description="the uploaded file's name (its suffix names its format)")))  # fmt: skip
        if body_fields:
            self.body_model = create_model(  # its name shows in the OpenAPI document
                op.name.replace(".", "_") + "_body",
                __config__=ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True),
                **body_fields,
            )
            required = any(v[1] is ... for v in body_fields.values())
            self.fastapi.append(inspect.Parameter(
                "payload__", kw, annotation=self.body_model if required else self.body_model | None,
                default=Body(... if required else None)))  # fmt: skip

    def _query(self, p: Param, kw) -> inspect.Parameter:
        ok, default = _json_default(p)
        fallback = ... if p.required else (default if ok else None)
        desc = None if ok or p.required else f"default: {p.default!r}"
        if is_scalar(p.hint):
            hint = p.hint if (ok or p.required) and p.default is not None else p.hint | None
            hint = strict_times(hint)
            if hint is typing.Any:
                hint = str | None
            return inspect.Parameter(p.name, kw, annotation=hint,
                                     default=Query(fallback, description=desc))  # fmt: skip
        listed = _scalar_list(p.hint)
        if listed is not None:
            return inspect.Parameter(
                p.name,
                kw,
                annotation=listed if p.required else listed | None,
                default=Query(... if p.required else None),
            )
        if p.hint is typing.Any:
            return inspect.Parameter(p.name, kw, annotation=str | None,
                                     default=Query(None, description=desc))  # fmt: skip
        self.json_query[p.name] = TypeAdapter(p.hint)
        return inspect.Parameter(p.name, kw, annotation=str if p.required else str | None,
                                 default=Query(... if p.required else None,
                                               description="JSON text"))  # fmt: skip

    def arguments(self, values: dict, actor: str) -> tuple[dict, dict]:
        """The method's keyword arguments from FastAPI's ``values``, and the page (limit, offset)."""
        kwargs: dict = {}
        page = {k: values.pop(k) for k in PAGE if k in values} if self.op.page else {}
        payload = values.pop("payload__", None)
        values.pop("filename", None)
        for p in self.params:
            if p.where == "server":
                kwargs[p.name] = actor
            elif p.where in ("path", "query") and p.name in values:
                value = values[p.name]
                if value is None and not p.required and p.default is not None:
                    continue  # absent: the method's own default
                if p.name in self.json_query and value is not None:
                    value = _parse_json(p.name, value, self.json_query[p.name])
                kwargs[p.name] = value
        if payload is not None:
            kwargs.update(payload.model_dump(exclude_unset=True, mode="python", round_trip=True))
            if self.spread:
                kwargs.update(kwargs.pop(self.spread, {}) or {})
        if page and self.method_offset:  # the method pages itself
            kwargs.update(page)
            page = {}
        elif page and self.method_limit:
            kwargs["limit"] = page["limit"] + page["offset"]
        return kwargs, page


def _parse_json(name: str, text: str, adapter: TypeAdapter):
    try:
        return adapter.validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        exc2 = InvalidInput(f"{name}: {err['msg']} (a JSON value)")
        exc2.field = name
        exc2.status = 422
        raise exc2 from None
