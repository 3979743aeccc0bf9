"""Provider calls in flight: which attempts this process is calling for right now, and whether any
running attempt's call may still be going on (the budget's settle asks; the pipeline tracks)."""

from __future__ import annotations

import os
import threading

from .models import Attempt
from .process import HOST, RUNNER

# Attempts this process is calling the provider for right now. A running row of this process that
# is not here belongs to a call that ended without settling (a bug, a killed thread): it is over.
_in_flight: set[int | None] = set()
_in_flight_lock = threading.Lock()


def started(attempt_id: int | None) -> None:
    """The call for this attempt is under way (mark it before anyone can see its row running)."""
    with _in_flight_lock:
        _in_flight.add(attempt_id)


def ended(attempt_id: int | None) -> None:
    """The call for this attempt is over, whatever its outcome (nothing happens if it never started)."""
    with _in_flight_lock:
        _in_flight.discard(attempt_id)


def call_alive(attempt: Attempt) -> bool:
    """Whether the call behind a running attempt may still be going on (its deadline aside)."""
    if attempt.runner == RUNNER or (attempt.runner is None and attempt.host == HOST and attempt.pid == os.getpid()):
        with _in_flight_lock:
            return attempt.id in _in_flight
    if attempt.host != HOST:
        return True  # another machine's call: its deadline decides
    if attempt.pid is None:
        return False
    try:
        os.kill(attempt.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True  # a live process here (or a namesake in another container): its deadline decides
