"""Who this process is, for records that outlive it: running calls, publish journals."""

from __future__ import annotations

import os
import socket
import uuid

HOST = socket.gethostname()
RUNNER = uuid.uuid4().hex[:16]  # this process, even where another one shares its host name and pid


def pid_running(pid: int) -> bool:
    """Whether a process with this pid runs on this host (maybe a namesake: the caller decides)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
