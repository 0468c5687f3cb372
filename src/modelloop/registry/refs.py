"""Model references (``name``, ``name@3``, ``name@latest``, ``name@champion``) and alias
names: parsed and checked without a registry, so whatever names a model (serving, batch, the
API) can check a reference before it reaches one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelloop.data.refs import check_name, version_number
from modelloop.errors import InvalidInput

__all__ = ["ALIAS_RE", "RESERVED_ALIASES", "ModelRef", "check_alias", "parse_model_ref"]

ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
RESERVED_ALIASES = {"latest"}


@dataclass(frozen=True)
class ModelRef:
    """``name``, ``name@3``, ``name@latest`` or ``name@champion`` (any alias)."""

    name: str
    selector: int | str = "latest"

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def parse_model_ref(text: str) -> ModelRef:
    text = str(text).removeprefix("models:/")
    name, sep, tail = text.partition("@")
    if not sep and "/" in name:  # MLflow style models:/name/3
        name, _, tail = name.partition("/")
    check_name(name, "model")
    if not tail or tail == "latest":
        return ModelRef(name)
    number = version_number(tail, ref=text)  # ASCII digits in range ('²' is not a version)
    if number is not None:
        return ModelRef(name, number)
    check_alias(tail)
    return ModelRef(name, tail)


def check_alias(alias: str) -> str:
    if not ALIAS_RE.match(alias or "") or alias in RESERVED_ALIASES:
        raise InvalidInput(
            f"invalid alias name {alias!r}",
            hint="an alias starts with a letter and has up to 64 letters, digits, '_' or '-' "
                 "(and is not 'latest' or a number)",
        )
    return alias
