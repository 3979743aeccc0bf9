"""Who is alive: every process that holds claims or runs jobs keeps a heartbeat row (`Runner`).

"Dead" has to mean the same thing on every machine: a runner is dead once its heartbeat is older
than `LEASE` (a machine that lost power or its network stops beating, and its claims and items lapse
a minute later), or at once when it ran on this machine and its process is gone (`kill -9`).
Times come from the database's clock on PostgreSQL, so machines need not agree on the time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from .db import aware, db_now, session_scope
from .jobmodels import Runner
from .process import HOST, RUNNER, pid_running

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
BEAT_SECONDS = 10.0
FORGET_AFTER = timedelta(days=1)


class _Presence:
    """This process's heartbeat on one database, kept while anything in the process needs it."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.holders = 0
        self.kind, self.concurrency = "cli", None
        self._stop = threading.Event()

    def enter(self, kind: str, concurrency: int | None) -> None:
        if kind == "worker" or self.holders == 0:
            self.kind, self.concurrency = kind, concurrency
        if self.holders == 0:
            beat(self.engine, self.kind, self.concurrency)  # visible before any claim that names us
            self._stop = threading.Event()
            threading.Thread(target=self._run, args=(self._stop,), name="heartbeat", daemon=True).start()
        self.holders += 1

    def leave(self) -> None:
        self.holders -= 1
        if self.holders == 0:
            self._stop.set()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(BEAT_SECONDS):
            try:
                beat(self.engine, self.kind, self.concurrency)
            except SQLAlchemyError as exc:  # the database is away for a moment: the next beat tries again
                log.warning("Heartbeat failed: %s", type(exc).__name__)


_presences: dict[int, _Presence] = {}
_lock = threading.Lock()


@contextmanager
def presence(engine: Engine, *, kind: str = "cli", concurrency: int | None = None) -> Iterator[None]:
    """This process counts as alive (its heartbeat row stays fresh) while inside."""
    join(engine, kind=kind, concurrency=concurrency)
    try:
        yield
    finally:
        part(engine)


def join(engine: Engine, *, kind: str = "cli", concurrency: int | None = None) -> None:
    """Count this process alive until the matching `part` (several holders may overlap)."""
    with _lock:
        _presences.setdefault(id(engine), _Presence(engine)).enter(kind, concurrency)


def part(engine: Engine) -> None:
    with _lock:
        _presences[id(engine)].leave()


def beat(engine: Engine, kind: str = "cli", concurrency: int | None = None) -> None:
    """Write this process's heartbeat (its row is made on the first beat)."""
    with session_scope(engine, write=True) as session:
        now = db_now(session)
        values = {"seen_at": now, "kind": kind, "concurrency": concurrency}
        if not session.execute(update(Runner).where(col(Runner.token) == RUNNER).values(**values)).rowcount:
            session.add(Runner(token=RUNNER, host=HOST, pid=os.getpid(), started_at=now, **values))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # another thread of ours made the row a moment ago: it is fresh


def is_alive(runner: Runner | None, now: datetime) -> bool:
    if runner is None:
        return False
    if runner.token == RUNNER:
        return True
    if aware(runner.seen_at) < now - LEASE:
        return False
    return runner.host != HOST or pid_running(runner.pid)


def dead(session: Session, tokens: Iterable[str]) -> set[str]:
    """Which of these runners are no longer alive (unknown ones included)."""
    wanted = set(tokens)
    if not wanted:
        return set()
    now = db_now(session)
    rows = {r.token: r for r in session.exec(select(Runner).where(col(Runner.token).in_(wanted)))}
    return {token for token in wanted if not is_alive(rows.get(token), now)}


def live_workers(session: Session) -> list[Runner]:
    now = db_now(session)
    rows = session.exec(select(Runner).where(Runner.kind == "worker", col(Runner.seen_at) >= now - LEASE))
    return [r for r in rows if is_alive(r, now)]


def forget(session: Session) -> None:
    """Drop the rows of runners not seen for a day (the caller commits)."""
    session.execute(delete(Runner).where(col(Runner.seen_at) < db_now(session) - FORGET_AFTER))
