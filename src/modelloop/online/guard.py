"""The guardrail: the online model against a frozen champion, window by window.

Both are scored on the same events (the champion predicts, never learns). When the online
model's window metric falls below the champion's by more than ``margin`` (for ``breaches``
windows in a row) the guard fires: the learner reverts to the newest kept snapshot that is not
below the champion on the window that fired, raises its alarm and records why. Choosing by the
window that fired, not by the snapshot's own past score, matters for a poisoned stretch: a model
learning flipped labels looks fine while the labels stay flipped, and only the events after the
stretch tell which snapshots are still sound.

A fresh model (a new endpoint's, or one the guard or drift detection started over) warms up
first: the guard arms only once it has been within ``margin`` of the champion on a window, or
once it has learned ``warmup`` events, whichever comes first. Until then its windows are scored
and kept as series, but a window below the champion is no breach: reverting a model that has
not yet had the chance to catch up would only start it over, at every window, and it would never
learn past one. A revert to a snapshot keeps the guard armed (the snapshot is within the margin
on the window that fired); a revert to a fresh model warms up again. ``warmup=0`` arms at once.

Optionally a River drift detector (ADWIN) watches the online model's error stream and, on a
change, ``reset``s the model (a fresh one from its spec) or ``reseed``s it (a fresh one that
first learns the current window's events).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelloop.errors import InvalidInput

DRIFT_ACTIONS = (None, "reset", "reseed")


@dataclass(frozen=True)
class GuardConfig:
    #: Events per window (metric series points and guard checks are per window).
    window: int = 500
    #: How far below the champion's window metric the online model may fall.
    margin: float = 0.05
    #: Breaching windows in a row that fire the guard.
    breaches: int = 1
    #: Window-end snapshots kept to revert to (each is a copy of the model).
    keep: int = 8
    #: Events a fresh model may learn before the guard arms even if it has not yet come within
    #: ``margin`` of the champion on a window (it arms at the first window that does); 0: armed
    #: from the start. A model that never catches up is then reverted and alarmed.
    warmup: int = 10_000
    #: What a change detected by ADWIN on the error stream does: None, "reset" or "reseed".
    drift: str | None = None

    def __post_init__(self):
        if not 1 <= self.window <= 1_000_000 or not 1 <= self.keep <= 64 or self.breaches < 1:
            raise InvalidInput("a guard has 1 to 1,000,000 events per window, keeps 1 to 64 "
                               "snapshots and fires after at least 1 breach")  # fmt: skip
        if not 0 <= self.warmup <= 1_000_000_000:
            raise InvalidInput(f"a guard's warm-up is 0 to 1,000,000,000 events, not {self.warmup!r}")
        if not 0 <= self.margin < 1e9:
            raise InvalidInput(f"a guard's margin is >= 0, not {self.margin!r}")
        if self.drift not in DRIFT_ACTIONS:
            raise InvalidInput(f"drift action is one of {DRIFT_ACTIONS}, not {self.drift!r}")


def below(online: float, champion: float, margin: float, bigger_is_better: bool) -> bool:
    """Whether ``online`` is worse than ``champion`` by more than ``margin``."""
    return online < champion - margin if bigger_is_better else online > champion + margin


def arming(config: GuardConfig, below_champion: bool, learned: int) -> str | None:
    """Why a warming-up guard arms at the end of a window, or None while it keeps warming up
    (``learned``: events the model learned since it was fresh)."""
    if not below_champion:
        return f"within {config.margin} of the champion on a window after {learned} events"
    if learned >= config.warmup:
        return (f"warm-up of {config.warmup} events over, never within {config.margin} of the "
                "champion on a window")  # fmt: skip
    return None


def pick_snapshot(
    snapshots: list,
    window: list[tuple[dict, object]],
    champion_value: float,
    metric,
    margin: float,
    predict,
) -> tuple[int | None, list[float]]:
    """Index of the newest snapshot (``[(seq, model, ranges), …]`` oldest first) that is not below the
    champion on ``window``'s events ``(x, y)``, and every tried snapshot's value (newest first);
    None when none is."""
    tried = []
    for index in range(len(snapshots) - 1, -1, -1):
        m = metric.clone()
        model = snapshots[index][1]  # (seq, model, ranges)
        for x, y in window:
            y_pred = predict(model, x)
            if y_pred is not None and y_pred != {}:
                m.update(y, y_pred)
        value = m.get()
        tried.append(value)
        if not below(value, champion_value, margin, metric.bigger_is_better):
            return index, tried
    return None, tried
