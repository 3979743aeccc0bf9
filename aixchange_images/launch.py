"""`up`: everything a newcomer needs, started with one command (`make run`): the dashboard and, beside
it, the drop-in image service and a worker that runs the queued jobs (and the schedules).

Each runs as a process of its own; Ctrl-C (or SIGTERM) stops them all. The worker has a session of its
own, so Ctrl-C reaches it only as our SIGTERM: the calls it has in flight finish and are recorded. The
dashboard is the one that matters: if the service or the worker cannot start (a port is taken, the
queue is away), the dashboard keeps running and the reason is printed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

# The dashboard's server: Streamlit plus its cookie routes (dashboard/server.py says why it is not app.py).
DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard" / "server.py"
WORKER_GRACE_SECONDS = 150


def commands(*, port: int, service_port: int, host: str = "127.0.0.1") -> dict[str, list[str]]:
    python = sys.executable
    return {
        "dashboard": [python, "-m", "streamlit", "run", str(DASHBOARD), "--server.port", str(port)],
        "image service": [python, "-m", "aixchange_images", "serve", "--host", host, "--port", str(service_port)],
        "worker": [python, "-m", "aixchange_images", "worker"],
    }


def up(*, port: int, service_port: int) -> int:
    """Run the dashboard, the service and a worker until the dashboard ends or we are told to stop."""
    children = {
        name: subprocess.Popen(argv, start_new_session=name == "worker")
        for name, argv in commands(port=port, service_port=service_port).items()
    }
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=_wait_for_dashboard, args=(children["dashboard"], stop), daemon=True).start()
    for name in ("image service", "worker"):
        threading.Thread(target=_wait_for_helper, args=(name, children[name], stop), daemon=True).start()
    print(
        f"Dashboard: http://localhost:{port}   Image service: http://127.0.0.1:{service_port}/docs   "
        "Worker: running   (Ctrl-C stops them all)",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for name, child in children.items():
        try:  # the worker lets its calls in flight finish (each up to the provider's timeout)
            child.wait(timeout=WORKER_GRACE_SECONDS if name == "worker" else 30)
        except subprocess.TimeoutExpired:
            child.kill()
    code = children["dashboard"].returncode
    # uvicorn (under Streamlit's st.App) shuts down cleanly on SIGTERM, then ends itself by that signal.
    return 0 if code == -signal.SIGTERM else code or 0


def _wait_for_dashboard(dashboard: subprocess.Popen, stop: threading.Event) -> None:
    dashboard.wait()
    stop.set()


def _wait_for_helper(name: str, helper: subprocess.Popen, stop: threading.Event) -> None:
    if helper.wait() != 0 and not stop.is_set():
        print(f"The {name} stopped (exit {helper.returncode}); the dashboard runs on.", file=sys.stderr)
