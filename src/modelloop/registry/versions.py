"""The library versions a package records when it is written, and the warning when it is loaded
with other ones (a model pickled or saved by one scikit-learn may predict differently under
another)."""

from __future__ import annotations

import functools
import sys
import warnings

#: Distributions whose import name differs from their name.
_MODULE_OF = {"scikit-learn": "sklearn"}


def library_versions(names) -> dict[str, str]:
    """The installed versions of modelloop and of the distributions ``names``."""
    out = {}
    for name in ("modelloop", *names):
        found = installed_version(name)
        if found is not None:
            out[name] = found
    return out


@functools.cache
def installed_version(name: str) -> str | None:
    """What ``importlib.metadata.version(name)`` says (None if not installed), read once per
    process from the metadata's headers alone: importlib parses the whole file (a long
    description included) as an e-mail, ~1 ms a library, and jobs record a dozen twice."""
    from importlib.metadata import Distribution, PackageNotFoundError

    try:
        dist = Distribution.from_name(name)
    except PackageNotFoundError:
        return None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line:  # the end of the headers
            break
        if line.startswith("Version:"):
            return line[len("Version:"):].strip()
    return dist.version


def warn_on_version_drift(saved_versions: dict[str, str]) -> None:
    """Warn (at the caller of the caller) for each library whose major.minor version differs
    from the one recorded; modelloop's own version is not compared."""
    for name, saved in saved_versions.items():
        if name == "modelloop":
            continue
        now = _installed_version(name)
        if now is not None and now.split(".")[:2] != saved.split(".")[:2]:
            warnings.warn(
                f"model was packaged with {name} {saved}, loading with {now}", stacklevel=3
            )


def _installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``: the imported module's ``__version__``
    when it has been imported (loading the model imports what it needs), else the installed
    distribution's (a lookup that costs ~10 ms each); None if it is not installed."""
    module = sys.modules.get(_MODULE_OF.get(name, name))
    found = getattr(module, "__version__", None)
    if isinstance(found, str):
        return found
    return installed_version(name)
