"""Per-solution claims: two runs that want the same solution never both pay for it.

A run (a batch, a job's items in one process) claims a solution before generating for it and
releases it after; another run that wants it waits, then finds the image stored and takes it from
the cache at $0. A claim is a row (`SolutionClaim`) taken in the database, so it holds across
processes and machines on SQLite and PostgreSQL; it lapses when the process holding it is no longer
alive (`leases`: its heartbeat is a minute old, or it ran here and its pid is gone).

A run's own parallel candidates of one solution share its claim.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from . import leases
from .db import db_now, session_scope
from .jobmodels import SolutionClaim
from .process import RUNNER

POLL_SECONDS = 0.2  # how often a waiting run looks again


class Claims:
    """One run's claims. Use as a context manager: the process stays alive (heartbeat) while inside."""

    def __init__(self, engine: Engine, stop: threading.Event | None = None, *, kind: str = "cli"):
        self.engine = engine
        self.stop = stop or threading.Event()
        self.owner = uuid.uuid4().hex[:16]
        self.kind = kind
        self._held: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __enter__(self) -> Claims:  # may be entered by several threads at once (a job's, in one worker)
        leases.join(self.engine, kind=self.kind)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        leases.part(self.engine)

    @contextmanager
    def hold(self, solution_id: str) -> Iterator[bool]:
        """Hold the solution's claim while inside; waits for another run's. False: stopped while waiting."""
        got = self._acquire(solution_id)
        try:
            yield got
        finally:
            if got:
                self._release(solution_id)

    def _lock_for(self, solution_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(solution_id, threading.Lock())

    def _acquire(self, solution_id: str) -> bool:
        lock = self._lock_for(solution_id)
        while True:
            with lock:
                if self._held.get(solution_id) or take(self.engine, solution_id, self.owner):
                    self._held[solution_id] = self._held.get(solution_id, 0) + 1
                    return True
            if self.stop.wait(POLL_SECONDS):
                return False

    def _release(self, solution_id: str) -> None:
        with self._lock_for(solution_id):
            self._held[solution_id] -= 1
            if not self._held[solution_id]:
                del self._held[solution_id]
                release(self.engine, solution_id, self.owner)


def take(engine: Engine, solution_id: str, owner: str) -> bool:
    """Claim the solution for `owner` unless a live run holds it. One short write transaction."""
    with session_scope(engine, write=True) as session:
        row = session.get(SolutionClaim, solution_id)
        if row is None:
            session.add(SolutionClaim(solution_id=solution_id, owner=owner, runner=RUNNER))
        elif row.owner != owner:
            if row.runner not in leases.dead(session, [row.runner]):
                return False
            # Taken over only if nobody else took it over first (on PostgreSQL the UPDATE re-reads the row).
            taken = session.execute(
                update(SolutionClaim)
                .where(col(SolutionClaim.solution_id) == solution_id, col(SolutionClaim.owner) == row.owner)
                .values(owner=owner, runner=RUNNER, claimed_at=db_now(session))
            )
            if not taken.rowcount:
                return False
        try:
            session.commit()
        except IntegrityError:
            return False  # another run claimed it a moment ago (PostgreSQL: our INSERT waited for theirs)
    return True


def release(engine: Engine, solution_id: str, owner: str) -> None:
    with session_scope(engine, write=True) as session:
        session.execute(
            delete(SolutionClaim).where(
                col(SolutionClaim.solution_id) == solution_id, col(SolutionClaim.owner) == owner
            )
        )
        session.commit()
