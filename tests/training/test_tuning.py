"""Tuning: beats untuned, search-space checks, samplers, pruning, stopping rules, warm start, auto."""

from __future__ import annotations

import pytest

from modelloop.errors import InvalidInput
from modelloop.training.space import load_space
from modelloop.training.tracking import MemoryTracker, MemoryTrialTrackers
from modelloop.training.trainers import train
from modelloop.training.tuning import tune

TREE_SPACE = """
max_depth: {type: int, low: 1, high: 8}
min_samples_leaf: {type: int, low: 1, high: 60, log: true}
criterion: [gini, entropy]
"""


def test_tuned_model_beats_the_untuned_one(nonlinear):
    untuned = train(nonlinear, "y", "decision_tree", seed=0)  # default: grows until pure
    tracker, trials = MemoryTracker(), MemoryTrialTrackers()
    tuned = tune(
        nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=8, seed=0,
        tracker=tracker, trials=trials,
    )  # fmt: skip
    assert tuned.final.split == untuned.split  # both scored on the same validation rows
    assert tuned.final.metrics["roc_auc"] > untuned.metrics["roc_auc"] + 0.05
    assert tuned.final.params == tuned.best_params
    assert tuned.metric == "roc_auc" and tuned.direction == "maximize"
    # each trial reported through its own tracker, with one point per fold
    assert len(trials.trials) == 8
    first = trials.trials[0]
    assert [step for _, _, step in first.series] == [0, 1, 2]
    assert tracker.info["best_params"]["algorithm"] == "decision_tree"
    values = [row["value"] for row in tuned.leaderboard]
    assert values == sorted(values, reverse=True)
    assert values[0] == tuned.best_value


def test_same_seed_same_tuning(nonlinear):
    a = tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=3, cv=2, seed=4)
    b = tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=3, cv=2, seed=4)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    assert a.final.metrics == b.final.metrics


def test_lower_is_better_metric_is_minimized(regression):
    result = tune(
        regression, "sales", "decision_tree", {"max_depth": {"type": "int", "low": 1, "high": 6}},
        n_trials=3, cv=2, sampler="random",
    )  # fmt: skip
    assert result.metric == "rmse" and result.direction == "minimize"
    assert result.best_value == min(t["value"] for t in result.trials if t["state"] == "complete")


def test_grid_sampler_covers_the_grid(nonlinear):
    space = {"max_depth": {"type": "int", "low": 2, "high": 4}, "criterion": ["gini", "entropy"]}
    result = tune(nonlinear, "y", "decision_tree", space, sampler="grid", n_trials=None, cv=2)
    seen = {(t["params"]["max_depth"], t["params"]["criterion"]) for t in result.trials}
    assert seen == {(d, c) for d in (2, 3, 4) for c in ("gini", "entropy")}


def test_pruning_stops_bad_trials(nonlinear):
    trials = MemoryTrialTrackers()
    result = tune(
        nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=12, cv=3, pruner="median",
        sampler="random", seed=1, trials=trials,
    )  # fmt: skip
    pruned = [t for t in result.trials if t["state"] == "pruned"]
    # seed 1 prunes 5 of the 7 trials after the median pruner's 5 start-up ones (seeds 1-4: 2-5)
    assert pruned, "a median pruner over 12 random trials prunes some"
    assert all(len(t["folds"]) < 3 for t in pruned)
    assert {trials.states[t["number"]][0] for t in pruned} == {"pruned"}
    hb = tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=5, cv=2, pruner="hyperband")
    assert len(hb.trials) == 5


def test_stopping_rules(nonlinear):
    reached = tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=50, target_value=0.5,
                   cv=2)
    assert len(reached.trials) == 1
    assert reached.stopped_because == "reached the target value 0.5"

    # seed 11: the best is trial 2 (an improvement on trial 0), then 3 trials without one
    patient = tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=60, patience=3, seed=11,
                   cv=2)
    best = max(t["number"] for t in patient.trials if t["value"] == patient.best_value)
    assert patient.stopped_because == "no improvement in 3 trials"
    assert len(patient.trials) < 60
    assert best > 0 and max(t["number"] for t in patient.trials) - best >= 3

    timed = tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=None, timeout=0.5, cv=2)
    assert timed.stopped_because == "time budget of 0.5 s used"


def test_a_time_budget_without_a_trial_count_is_used(nonlinear):
    """Under a time budget and no trial count, trials run until the budget is (nearly) used,
    not until a default count: the trials' own durations add up to most of the budget."""
    budget = 5.0
    tracker = MemoryTracker()
    result = tune(nonlinear.head(300), "y", "logistic_regression", timeout=budget, cv=2,
                  tracker=tracker)  # fmt: skip
    assert tracker.params["n_trials"] is None  # no default count cut the search short
    assert result.stopped_because == f"time budget of {budget:g} s used"
    assert sum(t["seconds"] for t in result.trials) >= 0.7 * budget
    # one progress line per trial, with the best so far
    lines = [t for t in tracker.texts if t.startswith("trial ")]
    assert len(lines) == len(result.trials)
    assert lines[-1].endswith("s") and f"best {result.best_value:.6g}" in lines[-1]
    # a trial count still stops first when given
    counted = tune(nonlinear.head(300), "y", "logistic_regression", timeout=3600, n_trials=3)
    assert counted.stopped_because == "ran 3 trials"


def test_warm_start_from_an_earlier_tuning(nonlinear):
    first = tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=3, cv=2, seed=0)
    tracker = MemoryTracker()
    second = tune(
        nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=2, cv=2, seed=1,
        warm_start=first.trials, tracker=tracker,
    )  # fmt: skip
    assert tracker.params["warm_start_trials"] == 3
    assert len(second.study.trials) == 5
    assert len(second.trials) == 2  # the new trials only
    assert second.best_value >= first.best_value  # the earlier best is known to the study


def test_parallel_trials(nonlinear):
    result = tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=4, cv=2, n_jobs=2)
    assert len(result.trials) == 4
    assert all(t["state"] in ("complete", "pruned") for t in result.trials)


def test_auto_searches_every_builtin_and_ranks_them(binary):
    from modelloop.training.study import spaces_for

    expected = set(spaces_for("auto", None, "binary", binary, "y"))
    assert {"logistic_regression", "random_forest", "hist_gradient_boosting"} <= expected
    # one holdout (cv=1): a random forest's and extra trees' fits are most of this test's time
    result = tune(binary, "y", "auto", n_trials=len(expected), cv=1, pruner=None)
    board = result.leaderboard
    assert {row["algorithm"] for row in board} == expected  # each got its first trial
    values = [row["value"] for row in board]
    assert values == sorted(values, reverse=True)
    assert result.final.algorithm == board[0]["algorithm"]


def test_train_auto_returns_the_winner_with_its_leaderboard(binary):
    tracker = MemoryTracker()
    result = train(binary, "y", "auto", time_budget=1.5, tracker=tracker)
    assert tracker.params["n_trials"] is None  # the budget, not a default count, stops it
    assert result.extra["leaderboard"][0]["algorithm"] == result.algorithm
    assert result.metrics["roc_auc"] > 0.8


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"max_depth": {"type": "integer", "low": 1, "high": 3}}, "'max_depth' has type 'integer'"),
        ({"max_depth": {"type": "int", "low": 5, "high": 3}}, "'max_depth' has low 5 above high 3"),
        (
            {"C": {"type": "float", "low": 0, "high": 1, "log": True}},
            "'C' is log-scaled but low is 0",
        ),
        ({"criterion": {"type": "categorical", "choices": []}}, "'criterion' has no choices"),
        ({"max_depth": {"type": "int", "low": 1, "high": 3, "hi": 4}}, "unknown key 'hi'"),
        ("max_depth: {type: int, low: 1", "not valid YAML"),
        ("- 1\n- 2", "must be a mapping"),
    ],
)
def test_invalid_search_space_names_the_parameter(space, message):
    with pytest.raises(InvalidInput, match=message):
        load_space(space)


def test_space_parameter_unknown_to_the_algorithm(nonlinear):
    with pytest.raises(InvalidInput, match="decision_tree has no parameter 'depth'"):
        tune(nonlinear, "y", "decision_tree", {"depth": [1, 2]}, n_trials=2)


def test_grid_needs_steps_for_floats(nonlinear):
    space = {"ccp_alpha": {"type": "float", "low": 0.0, "high": 0.1}}
    with pytest.raises(InvalidInput, match="'ccp_alpha' is a continuous float"):
        tune(nonlinear, "y", "decision_tree", space, sampler="grid")


def test_bad_tuning_options(nonlinear):
    with pytest.raises(InvalidInput, match="unknown sampler 'bayes'"):
        tune(nonlinear, "y", "decision_tree", TREE_SPACE, sampler="bayes")
    with pytest.raises(InvalidInput, match="metric 'rmse' is not computed for binary"):
        tune(nonlinear, "y", "decision_tree", TREE_SPACE, metric="rmse")
    with pytest.raises(InvalidInput, match="no stopping rule"):
        tune(nonlinear, "y", "decision_tree", TREE_SPACE, n_trials=None)
    with pytest.raises(InvalidInput, match="nothing to search"):
        tune(nonlinear.assign(y=nonlinear["f0"]), "y", "linear_regression", n_trials=2)
