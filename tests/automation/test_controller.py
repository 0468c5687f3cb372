"""The controller's leadership (a lease row in the store) and its tick, on SQLite and
PostgreSQL; the ``modelloop controller`` command's graceful stop."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest
from tests.automation.processes import Command
from tests.foreground import wait_for

from modelloop.automation import leader as leader_module
from modelloop.automation.leader import Leader


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(leader_module.time, "monotonic", fake)
    return fake


@pytest.mark.all_backends
def test_one_leader_at_a_time_and_a_release_hands_over(workspace):
    changes = []
    a = Leader(workspace.store, holder="a", ttl=30, on_change=changes.append)
    b = Leader(workspace.store, holder="b", ttl=30)
    assert a.try_lead() and a.leading and a.term == 1
    assert not b.try_lead() and not b.leading
    assert a.try_lead() and a.term == 1  # renewed, same term
    assert a.current()["holder"] == "a"
    a.release()
    assert not a.leading and changes == ["leading", "released"]
    assert b.try_lead() and b.term == 2 and b.current()["holder"] == "b"
    assert not a.try_lead()


@pytest.mark.all_backends
def test_a_dead_leaders_lease_is_taken_over_once_it_runs_out(workspace):
    a = Leader(workspace.store, holder="a", ttl=0.5)
    b = Leader(workspace.store, holder="b", ttl=30)
    assert a.try_lead()  # and then a "dies": it never renews
    wait_for(b.try_lead, 60)
    assert b.term == 2 and not a.try_lead()


def test_a_leader_that_cannot_renew_stops_acting_before_its_lease_runs_out(local_workspace,
                                                                           clock):
    class Unreachable:
        def __init__(self, store):
            self.store, self.down = store, False

        def acquire_lease(self, *args):
            if self.down:
                raise ConnectionError("the store is unreachable")
            return self.store.acquire_lease(*args)

    store = Unreachable(local_workspace.store)
    leader = Leader(store, holder="a", ttl=10)
    assert leader.try_lead()
    lease = local_workspace.store.get_lease("controller")
    assert lease["expires_at"] - lease["renewed_at"] == timedelta(seconds=10)
    store.down = True
    clock.now += 7.9
    assert leader.try_lead() and leader.error.startswith("ConnectionError")  # still in time
    clock.now += 0.1  # 8 s after the renewal was sent: 2 s (the margin) before the lease ends
    assert not leader.leading and not leader.try_lead()
    store.down = False
    assert leader.try_lead() and leader.leading  # back, once the store answers again


def test_bad_lease_length_is_refused(local_workspace):
    from modelloop.errors import InvalidInput

    with pytest.raises(InvalidInput, match="lease"):
        local_workspace.controller(lease_seconds=0)


def test_a_tick_evaluates_alarms_and_a_standby_does_nothing(local_workspace):
    ws = local_workspace
    ws.alarms.create("slow", "latency", threshold=1.0, period=60)
    ws.monitoring.put_metric("latency", 5.0, time=datetime.now(UTC))
    standby = ws.controller(holder="standby")
    leader = ws.controller(holder="leader")
    leader.leader.try_lead()
    standby.leader.try_lead()
    idle = standby.tick()
    assert not idle.leading and not idle.busy and idle.alarms == []
    tick = leader.tick()
    assert tick.leading and tick.errors == []
    assert [(a["alarm"], a["state"]) for a in tick.alarms] == [("slow", "ALARM")]
    assert leader.tick().alarms == []  # only changes are reported
    assert ws.alarms.get("slow")["state"] == "ALARM"


def test_a_failing_phase_is_recorded_and_the_next_runs(local_workspace):
    ctl = local_workspace.controller()

    class Broken:
        def due(self, now):
            raise RuntimeError("cron table on fire")

        def run_pending(self, now):
            return [{"trigger": "t", "status": "running"}]

    ctl.triggers = Broken()
    ctl.leader.try_lead()
    tick = ctl.tick()
    assert tick.errors == ["triggers.due: RuntimeError: cron table on fire"]
    assert tick.actions == [{"trigger": "t", "status": "running"}]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_command_stops_gracefully_and_lets_its_lease_go(local_workspace, sig):
    ws = local_workspace
    cmd = Command(ws.root, "controller", "--interval", "0.2", "--lease-seconds", "60")
    try:
        cmd.wait_for_line("leading (term 1)")
        holder = ws.store.get_lease("controller")["holder"]
        assert holder.split(":")[1] == str(cmd.pid)
    finally:
        code = cmd.stop(sig)
    assert code == 0, cmd.output
    assert f"{signal.Signals(sig).name}: stopping" in cmd.output
    assert "released" in cmd.output
    # let go at once: a standby need not wait out the 60 s lease
    assert ws.store.get_lease("controller")["expired"]
    assert ws.controller(holder="next").leader.try_lead()


def test_an_event_starts_the_next_tick_without_waiting_for_the_interval(local_workspace):
    import threading

    ws = local_workspace
    ws.triggers.create("on-approval", cause={"on": "approval", "model": "loans"},
                       action={"do": "webhook", "url": "http://127.0.0.1:9/"}, paused=False)
    ctl = ws.controller(holder="me")
    stop, ticks = threading.Event(), []
    runner = threading.Thread(target=ctl.run, kwargs={"interval": 3600, "stop": stop,
                                                       "on_tick": ticks.append})
    runner.start()
    try:
        wait_for(lambda: ticks)  # the first tick ran; the next is an hour away
        ws.store.append_event("model.approved", "loans@1", {"model": "loans", "version": 1})
        woke = wait_for(lambda: next((t for t in ticks if t.events), None), 60)
        assert woke.number == 2 and [f["trigger"] for f in woke.firings] == ["on-approval"]
    finally:
        stop.set()
        runner.join(120)
    assert not runner.is_alive() and ws.store.get_lease("controller")["expired"]


def test_status_says_who_leads(local_workspace, cli):
    ws = local_workspace
    assert "no controller has run" in cli("-w", ws.root, "controller", "--status").out
    ctl = ws.controller(holder="host:1:abc")
    ctl.leader.try_lead()
    ctl.tick()
    out = cli("-w", ws.root, "controller", "--status").out
    assert "leader host:1:abc, term 1" in out and "events: handled up to #" in out
    found = cli("-w", ws.root, "controller", "--status", "--json").json()
    assert found["lease"]["holder"] == "host:1:abc" and found["lease"]["expired"] is False
    ctl.leader.release()
    assert "nobody leads" in cli("-w", ws.root, "controller", "--status").out


def test_a_tick_on_its_own_takes_the_lease_first(local_workspace):
    ws = local_workspace
    tick = ws.controller(holder="script").tick()
    assert tick.leading and tick.term == 1
    assert ws.controller(holder="other").tick().leading is False  # held by "script"
