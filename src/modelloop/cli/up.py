"""``modelloop up``: a workspace's always-on processes in one process tree with one log view.

The controller, the endpoint server and (with ``--api PORT``) the control-plane API are children
of this process, each in a process group of its own (a terminal's Ctrl-C reaches only ``up``,
which stops them in order) and ended by the kernel if ``up`` itself is killed
(``PR_SET_PDEATHSIG``); the warm job server is started here too (the jobs the controller triggers
fork from it), and one stream consumer per stream-fed dataset whose consumer ran once
(``modelloop data stream`` records its source and options; see ``cli/up_streams.py``). Every
line they print is shown prefixed with its
name; the warm server's log file is followed the same way.

SIGTERM or Ctrl-C stops them in order: the controller first (its tick under way finishes, no
action starts after it; it lets its lease go), then the endpoint server (requests in flight are
answered, then it exits), then the stream consumers (each commits what it gathered), then the
job workers (the warm server exits once its running jobs have
ended). A pipeline run whose runner ended with the controller is marked interrupted on sight and
resumed by the controller's next start (``triggers.run_pending``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from modelloop.cli import render
from modelloop.cli.context import Context, pass_ctx
from modelloop.cli.controller import graceful_stop
from modelloop.cli.up_streams import StreamConsumers

_PR_SET_PDEATHSIG = 1
#: Seconds each child gets to stop on SIGTERM before it is killed (the controller: its
#: ``--grace`` for running actions, plus this).
STOP_LIMITS = {"controller": 120.0, "serve": 60.0, "api": 60.0, "stream": 60.0}
STYLES = {"controller": "cyan", "serve": "magenta", "api": "blue", "workers": "yellow",
          "up": "bold"}


def _child_setup() -> None:  # runs in the child between fork and exec
    os.setpgrp()
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class LogView:
    """One stream of prefixed lines, whoever writes them (a thread per child)."""

    def __init__(self):
        self.lock = threading.RLock()  # a signal handler (main thread) may print mid-line

    def line(self, name: str, text: str) -> None:
        from rich.text import Text

        with self.lock:
            render.out.print(Text.assemble((f"{name:<10}", STYLES.get(name, "")), "│ ",
                                           text.rstrip("\n")))  # fmt: skip

    def follow(self, name: str, stream) -> threading.Thread:
        def pump():
            for raw in iter(stream.readline, b""):
                self.line(name, raw.decode(errors="replace"))

        t = threading.Thread(target=pump, name=f"log-{name}", daemon=True)
        t.start()
        return t

    def tail(self, name: str, path: Path, stop: threading.Event) -> threading.Thread:
        """Follow a log file another process writes (rewritten when that process restarts)."""

        def pump():
            pos = path.stat().st_size if path.exists() else 0
            rest = b""
            while not stop.wait(0.2) or path.exists() and path.stat().st_size > pos:
                try:
                    with open(path, "rb") as fh:
                        if os.fstat(fh.fileno()).st_size < pos:
                            pos = 0  # a new server rewrote it
                        fh.seek(pos)
                        chunk = fh.read()
                except FileNotFoundError:
                    continue
                pos += len(chunk)
                *lines, rest = (rest + chunk).split(b"\n")
                for raw in lines:
                    self.line(name, raw.decode(errors="replace"))
                if stop.is_set():
                    break

        t = threading.Thread(target=pump, name=f"log-{name}", daemon=True)
        t.start()
        return t


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The endpoint server's address (as for serve).")
@click.option("--port", type=int, default=8080, show_default=True,
              help="The endpoint server's port (0: any free port).")
@click.option("--interval", type=float, default=2.0, show_default=True, metavar="SECONDS",
              help="Seconds between the controller's ticks.")
@click.option("--lease-seconds", type=float, default=10.0, show_default=True,
              help="The controller's leadership lease (as for controller).")
@click.option("--grace", type=float, default=30.0, show_default=True, metavar="SECONDS",
              help="On stop, how long the controller's running actions may take to end (as for "
                   "controller).")
@click.option("--no-serve", is_flag=True, help="Run no endpoint server here.")
@click.option("--api", "api_port", type=int, default=None, metavar="PORT",
              help="Also serve the control-plane API on this port ([api] host; as for "
                   "'api serve').")
@pass_ctx
def up(c: Context, host: str, port: int, interval: float, lease_seconds: float, grace: float,
       no_serve: bool, api_port: int | None) -> None:  # fmt: skip
    """Run the workspace: the controller, the endpoint server, the stream consumers and the
    job workers, in one process tree with one log view. SIGTERM or Ctrl-C stops them in order: in-flight requests
    are answered, running jobs finish."""
    from modelloop.training import warm_workers

    ws = c.local_ws
    ws.store  # noqa: B018 - open (and migrate) once, before the children open it too
    view = LogView()
    tails = threading.Event()
    # Children write to pipes: unbuffered (-u), or their lines would come in blocks. A flag, not
    # $PYTHONUNBUFFERED: the environment is part of the warm server's fingerprint, and the
    # controller's jobs must find the server started here (or by whoever started us) usable.
    base = [sys.executable, "-u", "-m", "modelloop", "-w", str(ws.root)]
    commands = {"controller": [*base, "controller", "--quiet", "--interval", str(interval),
                               "--lease-seconds", str(lease_seconds), "--grace", str(grace)]}
    limits = {**STOP_LIMITS, "controller": STOP_LIMITS["controller"] + grace}
    if not no_serve:
        commands["serve"] = [*base, "serve", "--host", host, "--port", str(port)]
    if api_port is not None:
        commands["api"] = [*base, "api", "serve", "--port", str(api_port)]
    view.line("up", f"workspace {ws.root} ({ws.store.safe_url}); Ctrl-C or SIGTERM to stop")
    if ws.jobs.warm_up():
        view.tail("workers", warm_workers.folder(ws.config.state_dir) / "server.log", tails)
    children: dict[str, subprocess.Popen] = {}
    code = 0

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=ws.root, preexec_fn=_child_setup,
        )  # fmt: skip
        view.follow(name, proc.stdout)
        view.line("up", f"started {name} (pid {proc.pid})")
        return proc

    consumers = StreamConsumers(
        ws, base, start=start, say=lambda message: view.line("up", message),
        stop=lambda name, proc: _stop(view, name, proc, STOP_LIMITS["stream"]))
    with graceful_stop("stopping the controller, the server, the stream consumers, then the "
                       "workers", say=lambda message: view.line("up", message)) as stop:
        for name, argv in commands.items():
            children[name] = start(name, argv)
        consumers.sync()
        while not stop.wait(0.2):
            consumers.sync()
            ended = [n for n, p in children.items() if p.poll() is not None]
            if ended:
                view.line("up", f"{ended[0]} exited with code {children[ended[0]].returncode}; "
                          "stopping the rest")  # fmt: skip
                code = 1
                break
        for name, proc in children.items():  # in the order they were started
            _stop(view, name, proc, limits.get(name, 60.0))
        consumers.stop_all()  # each commits the rows it gathered
        if warm_workers.shutdown(ws.config.state_dir):
            view.line("up", "job workers: stopping once running jobs end")
            deadline = time.monotonic() + limits["controller"]
            while time.monotonic() < deadline and any(
                    s.poll() is None for s in warm_workers._SERVERS):  # fmt: skip
                time.sleep(0.1)
        tails.set()
    view.line("up", "stopped")
    if code:
        raise SystemExit(code)


def _stop(view: LogView, name: str, proc: subprocess.Popen, limit: float) -> None:
    if proc.poll() is None:
        view.line("up", f"stopping {name}")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(limit)
        except subprocess.TimeoutExpired:
            view.line("up", f"{name} did not stop in {limit:g} s: killed")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # uvicorn re-raises the SIGTERM it handled once its requests are answered: a clean stop too
    clean = proc.returncode in (0, -signal.SIGTERM)
    view.line("up", f"{name} stopped" + ("" if clean else f" (exit code {proc.returncode})"))
