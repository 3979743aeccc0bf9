"""`up`: everything a newcomer needs, started with one command (`make run`): the dashboard and, beside
it, the drop-in image service (which also keeps a configured marketplace in step).

Each runs as a process of its own; Ctrl-C (or SIGTERM) stops both. The dashboard is the one that
matters: if the service cannot start (its port is taken, say), the dashboard keeps running and the
reason is printed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

# The dashboard's server: Streamlit plus its cookie routes (dashboard/server.py says why it is not app.py).
DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard" / "server.py"


def commands(*, port: int, service_port: int, host: str = "127.0.0.1") -> dict[str, list[str]]:
    python = sys.executable
    return {
        "dashboard": [python, "-m", "streamlit", "run", str(DASHBOARD), "--server.port", str(port)],
        "image service": [python, "-m", "aixchange_images", "serve", "--host", host, "--port", str(service_port)],
    }


def up(*, port: int, service_port: int) -> int:
    """Run the dashboard and the service until the dashboard ends or we are told to stop."""
    children = {name: subprocess.Popen(argv) for name, argv in commands(port=port, service_port=service_port).items()}
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=_wait_for_dashboard, args=(children["dashboard"], stop), daemon=True).start()
    threading.Thread(target=_wait_for_service, args=(children["image service"], stop), daemon=True).start()
    print(
        f"Dashboard: http://localhost:{port}   Image service: http://127.0.0.1:{service_port}/docs   (Ctrl-C stops both)",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for child in children.values():
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    code = children["dashboard"].returncode
    # uvicorn (under Streamlit's st.App) shuts down cleanly on SIGTERM, then ends itself by that signal.
    return 0 if code == -signal.SIGTERM else code or 0


def _wait_for_dashboard(dashboard: subprocess.Popen, stop: threading.Event) -> None:
    dashboard.wait()
    stop.set()


def _wait_for_service(service: subprocess.Popen, stop: threading.Event) -> None:
    if service.wait() != 0 and not stop.is_set():
        print(f"The image service stopped (exit {service.returncode}); the dashboard runs on.", file=sys.stderr)
