"""`up` (what `make run` starts): the dashboard and the image service together, stopped together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from sqlmodel import Session
from test_browser import ROOT, _free_port, _healthy, _wait_until

from aixchange_images import leases
from aixchange_images.process import pid_running


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def live_worker_pids(engine) -> list[int]:
    with Session(engine) as session:
        return [w.pid for w in leases.live_workers(session)]


def test_up_starts_the_dashboard_the_service_and_a_worker_and_stops_them_all(tmp_path, engine):
    dashboard, service = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    up = subprocess.Popen(
        [sys.executable, "-m", "aixchange_images", "up", "--port", str(dashboard), "--service-port", str(service)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until(lambda: _healthy(f"http://127.0.0.1:{dashboard}") or up.poll() is not None, 90, "the dashboard")
        _wait_until(
            lambda: _healthy(f"http://127.0.0.1:{service}", "/healthz") or up.poll() is not None, 60, "the service"
        )
        pids = _wait_until(lambda: live_worker_pids(engine) or up.poll() is not None, 60, "the worker")
        assert up.poll() is None
    finally:
        up.send_signal(signal.SIGTERM)
        _, err = up.communicate(timeout=60)

    assert up.returncode == 0, err
    assert f"Dashboard: http://localhost:{dashboard}" in err
    assert not _listening(dashboard) and not _listening(service)
    assert not any(pid_running(pid) for pid in pids)
    assert (tmp_path / "data").is_dir() and (tmp_path / "external-images" / "solutions").is_dir()
