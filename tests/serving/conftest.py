"""Serving fixtures: small registered models and a real ``modelloop serve`` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

FEATURES = [f"f{i}" for i in range(5)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def register_model(ws, name: str = "clf", *, kind: str = "logreg", seed: int = 0,
                   approve: bool = True) -> str:
    """Train a tiny model on generated data, package and register it (approved, as endpoints
    require, unless ``approve=False``); returns ``name@v``."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(200, len(FEATURES))), columns=FEATURES)
    y = (X["f0"] + X["f1"] > 0).astype(int)
    if kind == "logreg":
        model = LogisticRegression().fit(X, y)
    elif kind == "constant":  # predicts class 1 only: tells variants apart in traffic
        model = LogisticRegression().fit(X, np.r_[np.ones(199, dtype=int), 0])
        model.coef_[:] = 0
        model.intercept_[:] = 50.0
    elif kind == "regression":
        model = LinearRegression().fit(X, X["f0"] * 2.0)
    elif kind == "forest":  # ~5 ms per predict: requests pile up under concurrent load
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=100, max_depth=8, n_jobs=1,
                                       random_state=seed).fit(X, y)
    elif kind == "broken":  # its weights do not fit the signature: every predict raises
        model = LogisticRegression().fit(X[["f0", "f1", "f2"]], y)
    else:
        raise ValueError(kind)
    path = Path(ws.root) / "packages" / f"{name}-{kind}-{seed}-{time.time_ns()}"
    save_package(model, path, signature=Signature.from_frame(X),
                 task="binary" if kind != "regression" else "regression")
    ref = ws.models.register(name, path)["ref"]
    if approve:
        ws.models.approve(ref, reason="test model")
    return ref


class Server:
    """A real ``modelloop serve`` subprocess on a free loopback port."""

    def __init__(self, root: Path, *extra: str):
        # a free port can be taken between our probe and the server's bind (tests run in
        # parallel, and every outgoing connection takes an ephemeral port): try another one
        for attempt in range(5):
            if self._start(root, extra) or attempt == 4:
                break
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/v2/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def _start(self, root: Path, extra: tuple[str, ...]) -> bool:
        """Start on a free port; False if the port was taken before the server bound it."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MODELLOOP_HOME": str(root)}
        # a file, not a pipe: an undrained pipe would block the server once it fills
        self.log = Path(root) / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelloop", "serve", "--port", str(self.port), *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"),
            start_new_session=True)
        deadline = time.monotonic() + 60
        while self.proc.poll() is None and time.monotonic() < deadline:
            if "modelloop: serving on" in self.log.read_text(errors="replace"):
                return True
            time.sleep(0.05)
        return "address already in use" not in self.log.read_text(errors="replace").lower()

    def wait_for(self, endpoint: str, predicate=lambda info: True, timeout: float = 20) -> dict:
        """Wait until the server serves ``endpoint`` in a state matching ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = httpx.get(self.url + "/endpoints", timeout=5).json().get(endpoint)
            if info and predicate(info):
                return info
            time.sleep(0.1)
        raise AssertionError(f"server never served {endpoint} as expected")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(ws, *extra: str) -> Server:
        server = Server(ws.root, *extra)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def row(seed: int = 0, n: int = 1) -> list[list[float]]:
    import numpy as np

    return np.random.default_rng(seed).normal(size=(n, len(FEATURES))).round(4).tolist()
