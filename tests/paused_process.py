"""A command stopped exactly between linking its published file and committing, then killed.

`AIXCHANGE_TEST_PAUSE_AFTER_LINK` names a FIFO at which `storage.publish_file` stops right after
the link: it opens the FIFO to write the file's name (which blocks until we read), then opens it
to read (which blocks for good: nobody writes). We learn where it is from the FIFO itself, not
from a sleep, and SIGKILL it there. Used by tests/test_publish_crash.py and benchmarks/publish_kills.py.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_paused(folder: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path]:
    """`python -m aixchange_images ...` in `folder` that stops after linking its published file."""
    fifo = folder / f"pause-{time.monotonic_ns()}"
    os.mkfifo(fifo)
    env = {**(env or os.environ), "PYTHONPATH": str(ROOT), "AIXCHANGE_TEST_PAUSE_AFTER_LINK": str(fifo)}
    log = open(folder / f"{fifo.name}.log", "wb")  # noqa: SIM115 - closed once the process is reaped
    proc = subprocess.Popen(
        [sys.executable, "-m", "aixchange_images", *args], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc, fifo


def linked_name(proc: subprocess.Popen, fifo: Path, timeout: float = 60) -> str:
    """Wait until the process has linked its file and says which: it then waits to be killed."""
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the process's open for writing now returns
    told = b""
    deadline = time.monotonic() + timeout
    try:
        while not told.endswith(b"\n"):
            ready, _, _ = select.select([reader], [], [], 0.2)  # woken by its write; the timeout only
            if ready:  # lets us notice a process that died before it got there
                chunk = os.read(reader, 4096)
                assert chunk, f"the process closed the pause FIFO without saying what it linked: {log_of(proc)}"
                told += chunk
            else:
                assert proc.poll() is None, f"the process ended (exit {proc.returncode}) first: {log_of(proc)}"
                assert time.monotonic() < deadline, "the process never reached the link"
    finally:
        os.close(reader)
    return told.decode().strip()


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL  # reaped: its pid is really gone
    proc.log.close()  # type: ignore[attr-defined]


def log_of(proc: subprocess.Popen) -> str:
    proc.log.flush()  # type: ignore[attr-defined]
    return Path(proc.log.name).read_text(errors="replace")[-2000:]  # type: ignore[attr-defined]


def kill_after_link(folder: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a command, SIGKILL it between linking its file and committing; the file's name."""
    proc, fifo = start_paused(folder, *args, env=env)
    name = linked_name(proc, fifo)
    kill(proc)
    return name
