"""modelloop: keep machine-learning models fresh in production.

The public entry point is :class:`modelloop.Workspace`. Heavy modules (pandas, pyarrow,
SQLAlchemy, scikit-learn) load lazily so that ``import modelloop`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Workspace", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from modelloop.workspace import Workspace


def __getattr__(name: str):
    if name == "Workspace":
        from modelloop.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'modelloop' has no attribute {name!r}")
