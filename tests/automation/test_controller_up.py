"""``modelloop up``: the controller, the endpoint server and the job workers in one process
tree with one log view; SIGTERM stops them all, in order, cleanly."""

from __future__ import annotations

import re
import signal
import urllib.request

from tests.automation.processes import Command
from tests.foreground import alive, wait_for


def test_up_starts_everything_and_sigterm_stops_it_in_order(local_workspace):
    ws = local_workspace
    up = Command(ws.root, "up", "--port", "0", "--interval", "0.3", "--lease-seconds", "30")
    try:
        served = up.wait_for_line("serving on http://")
        url = re.search(r"http://[0-9.]+:[0-9]+", served).group(0)
        with urllib.request.urlopen(f"{url}/v2/health/live", timeout=30) as response:
            assert response.status == 200
        up.wait_for_line("leading")
        pids = {m.group(1): int(m.group(2)) for ln in up.lines
                if (m := re.search(r"started (\w+) \(pid (\d+)\)", ln))}
        assert set(pids) == {"controller", "serve"}
        assert ws.store.get_lease("controller")["holder"].split(":")[1] == str(pids["controller"])
    finally:
        code = up.stop(signal.SIGTERM)
    out = up.output
    assert code == 0, out
    lines = [ln.split("│", 1) for ln in out.splitlines() if "│" in ln]
    assert {name.strip() for name, _ in lines} >= {"up", "controller", "serve"}  # one view
    said = [text.strip() for name, text in lines if name.strip() == "up"]
    assert said.index("controller stopped") < said.index("stopping serve")  # in order
    assert said.index("serve stopped") < said.index("stopped")
    assert not any(alive(pid) for pid in pids.values())
    assert ws.store.get_lease("controller")["expired"]  # the controller let its lease go
    from modelloop.training import warm_workers

    # the job workers' server was asked to stop and is gone
    wait_for(lambda: not warm_workers.wait_ready(ws.config.state_dir, ws.root, limit=0.5))
