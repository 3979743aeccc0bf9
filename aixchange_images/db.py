"""Engine and session plumbing: building an engine, a session per action, the cross-process locks
and the database's clock. Opening the database (one engine per URL, migrated) is `engines`; the
schema's history is `migrations`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine

from . import models

_immediate: ContextVar[bool] = ContextVar("immediate", default=False)


def build_engine(url: str) -> Engine:
    """A new engine for `url` (SQLite: WAL, foreign keys, Unicode lower(), BEGIN IMMEDIATE for writes)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # On PostgreSQL days (date(started_at)) and timestamps mean UTC whatever the server's own zone.
        # A server that never answers costs at most connect_timeout seconds, not the system's minutes.
        utc = {"options": "-c timezone=UTC", "connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=utc)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see `_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # SQLite's lower() folds ASCII only: titles like "Ärzte" must match as PostgreSQL matches them.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock up front, so a transaction that reads and then writes
        # waits for other writers instead of failing with "database is locked".
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")

    return engine


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A session for one action; `write=True` takes the database's write lock when it begins."""
    token = _immediate.set(write)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        _immediate.reset(token)


def take_lock(session: Session, name: str) -> None:
    """Serialise the rest of this transaction with every other holder of `name` (any process).

    An UPDATE of the lock's row holds its row lock until commit (PostgreSQL) or the write lock
    (SQLite). The row is created on first use; a racing creator is harmless.
    """
    for _ in range(2):
        result = session.execute(text("UPDATE lock SET counter = counter + 1 WHERE name = :n"), {"n": name})
        if result.rowcount:  # type: ignore[attr-defined]
            return
        try:
            with session.begin_nested():
                session.add(models.Lock(name=name, counter=0))
        except IntegrityError:
            pass  # another transaction made it first: the UPDATE above now waits for that one
    raise RuntimeError(f"Could not take the {name} lock.")


def db_now(session: Session) -> datetime:
    """Now by the database's clock (PostgreSQL), so instances on several machines compare instants
    without trusting each other's clocks; SQLite lives on one machine and uses its clock."""
    if session.get_bind().dialect.name == "postgresql":
        return aware(session.execute(text("SELECT now()")).scalar_one())
    return models.utcnow()


def aware(moment: datetime) -> datetime:
    """A timestamp as an aware UTC instant (SQLite hands back naive UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


LOCK_NAME_MAX = 40  # models.Lock.name


def lock_solution(session: Session, solution_id: str) -> None:
    """Serialise the rest of this transaction with everyone else acting on this solution's image."""
    name = f"solution:{solution_id}"
    if len(name) > LOCK_NAME_MAX:  # ids may be up to 40 characters
        name = "solution:" + hashlib.sha256(solution_id.encode()).hexdigest()[: LOCK_NAME_MAX - len("solution:")]
    take_lock(session, name)


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics (after bulk loads), so it picks the covering indexes."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
