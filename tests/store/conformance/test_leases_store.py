"""Conformance: LeaseStore (store/interfaces/leases.py)."""

from __future__ import annotations

import threading
import time


def test_one_holder_at_a_time_renewed_by_its_holder(store):
    first = store.acquire_lease("controller", "a", 30)
    assert first["holder"] == "a" and first["term"] == 1
    assert first["expires_at"] > first["acquired_at"] and first["expires_at"].tzinfo is not None
    assert store.acquire_lease("controller", "b", 30) is None  # held by a
    again = store.acquire_lease("controller", "a", 30)
    assert again["term"] == 1 and again["renewed_at"] >= first["renewed_at"]
    assert again["expires_at"] >= first["expires_at"]
    assert store.get_lease("controller") | {"expired": None} == again | {"expired": None}
    assert store.get_lease("controller")["expired"] is False
    assert store.get_lease("other") is None
    assert store.acquire_lease("other", "b", 30)["holder"] == "b"  # leases are independent


def test_an_expired_lease_is_taken_with_a_new_term(store):
    assert store.acquire_lease("controller", "a", 0.2)["term"] == 1
    deadline = time.monotonic() + 60
    while not store.get_lease("controller")["expired"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    taken = store.acquire_lease("controller", "b", 30)
    assert (taken["holder"], taken["term"]) == ("b", 2)
    assert store.acquire_lease("controller", "a", 30) is None  # a's renewal is refused


def test_the_old_holder_taking_it_back_after_expiry_is_a_new_term(store):
    store.acquire_lease("controller", "a", 0.2)
    deadline = time.monotonic() + 60
    while not store.get_lease("controller")["expired"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert store.acquire_lease("controller", "a", 30)["term"] == 2


def test_release_lets_another_take_it_at_once(store):
    store.acquire_lease("controller", "a", 300)
    assert store.release_lease("controller", "b") is False  # not b's to release
    assert store.release_lease("controller", "a") is True
    assert store.get_lease("controller")["expired"] is True
    assert store.release_lease("controller", "a") is False  # already let go
    assert store.acquire_lease("controller", "b", 30)["term"] == 2


def test_concurrent_takers_of_a_free_lease_one_wins(store):
    """Threads race for a lease never held (the insert) and then for an expired one (the
    conditional update, after the winner let it go): exactly one wins each race."""
    for _ in range(2):
        barrier, won = threading.Barrier(6), [None] * 6

        def take(i, barrier=barrier, won=won):
            barrier.wait()
            won[i] = store.acquire_lease("race", f"w{i}", 30)

        threads = [threading.Thread(target=take, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [w for w in won if w is not None]
        assert len(winners) == 1, won
        store.release_lease("race", winners[0]["holder"])
