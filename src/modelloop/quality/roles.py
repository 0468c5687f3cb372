"""Column roles: what a column is for, so that checks compare only what a model depends on.

========== ==================================================================================
role       checked
========== ==================================================================================
feature    everything: schema, constraints, drift
target     constraints and drift (label shift) where the data has it; traffic has no labels,
           so a missing target is never a violation
identifier nothing: every value is new by design (an application id), so its "drift" is total
           on any two samples and means nothing
time       nothing: new data is newer by design
ignored    nothing (columns a user excluded, or of a type we do not profile)
========== ==================================================================================

The identifier rule is shared with training's preprocessing (which drops such columns), so the
columns a model never sees are the columns monitoring does not alarm on.
"""

from __future__ import annotations

ROLES = ("feature", "target", "identifier", "time", "ignored")
#: Roles whose columns are compared (constraints and drift).
CHECKED = frozenset({"feature", "target"})
#: A text column whose values are all distinct over at least this many rows is an identifier.
MIN_ROWS_FOR_ID = 50


def is_identifier(distinct: int, present: int) -> bool:
    """Whether a text column with ``distinct`` values among ``present`` non-missing ones is an
    identifier: every value distinct, over enough rows that this is not chance."""
    return present >= MIN_ROWS_FOR_ID and distinct == present
