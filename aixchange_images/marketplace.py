"""The marketplace's own database: the connection, and where our link to it stands.

We read its "Solution" rows (`pull`) and write only their "imageUrl" and "updatedAt" (`deliveries`),
never anything else: the README's database role grants exactly that. The connection's password is
never shown, logged or stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, select

from .config import ConfigError, Settings, UserError, sqlalchemy_url
from .models import AuditEvent, Delivery, DeliveryState, Solution, SolutionOrigin
from .redaction import redact


class MarketplaceError(UserError):
    """The marketplace database cannot be used right now; the sentence says why and what to do."""


def configured(settings: Settings) -> bool:
    return settings.marketplace_database_url is not None


def where(settings: Settings) -> str:
    """Host, port and database of the marketplace connection: never the user or the password."""
    if settings.marketplace_database_url is None:
        return "not configured"
    try:
        url = make_url(sqlalchemy_url(settings.marketplace_database_url.get_secret_value()))
    except ArgumentError:
        return "an unreadable URL"
    port = f":{url.port}" if url.port else ""
    return f"{url.host or 'localhost'}{port}/{url.database or ''}"


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
T = TypeVar("T")


def engine_for(settings: Settings) -> Engine:
    """One engine per marketplace URL, without a pool: every use connects afresh within the connect
    timeout, so no pooled connection to a server that froze can hang a check."""
    if settings.marketplace_database_url is None:
        raise ConfigError(
            "MARKETPLACE_DATABASE_URL is not set; put the marketplace's postgresql:// URL (its app/.env "
            "DATABASE_URL, or better a role of its own as the README shows) there."
        )
    url = sqlalchemy_url(settings.marketplace_database_url.get_secret_value())
    if not url.startswith("postgresql+psycopg://"):
        raise ConfigError("MARKETPLACE_DATABASE_URL must be a postgresql:// URL (the marketplace runs on PostgreSQL).")
    with _engines_lock:
        if url not in _engines:
            wait = max(1, int(settings.marketplace_timeout_seconds))
            _engines[url] = create_engine(
                url,
                poolclass=NullPool,
                connect_args={
                    "connect_timeout": wait,
                    "application_name": "aixchange-images",
                    "tcp_user_timeout": wait * 1000,  # a server that vanishes mid-statement
                    "options": f"-c statement_timeout={wait * 1000} -c lock_timeout={wait * 1000}",
                },
            )
        return _engines[url]


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def within(settings: Settings, action: Callable[[], T], seconds: float | None = None) -> T:
    """Run marketplace I/O under a deadline of our own.

    A server that is frozen rather than down (a paused container) still acknowledges TCP, so no
    timeout of the driver's fires. The call runs in a thread of its own; past the deadline we give up
    on it (the thread ends when the server does) and say so in one sentence, holding nothing of ours.
    """
    limit = seconds if seconds is not None else 2 * settings.marketplace_timeout_seconds + 1
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = action()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="marketplace-io", daemon=True).start()
    if not done.wait(limit):
        raise MarketplaceError(
            f"The marketplace database {where(settings)} did not answer within {limit:g} s; "
            "image changes wait and are retried by the next command or `marketplace push`."
        )
    if "error" in box:
        error = box["error"]
        raise MarketplaceError(describe_failure(settings, error)) if isinstance(error, DBAPIError) else error
    return box["value"]


def run(settings: Settings, action: Callable[[Connection], T], seconds: float | None = None) -> T:
    """`action` in one short marketplace transaction on a fresh connection, under our deadline."""

    def unit() -> T:
        with engine_for(settings).begin() as conn:
            return action(conn)

    return within(settings, unit, seconds)


@contextmanager
def session_for(settings: Settings) -> Iterator[Connection]:
    """One marketplace connection for several short transactions (a push: `run_on` each)."""
    conn = within(settings, engine_for(settings).connect)
    try:
        yield conn
    finally:
        if not conn.closed:
            threading.Thread(target=conn.close, daemon=True).start()  # a frozen server must not hold us here


def run_on(settings: Settings, conn: Connection, action: Callable[[Connection], T]) -> T:
    """`action` in its own transaction on an open connection, under our deadline."""

    def unit() -> T:
        with conn.begin():
            return action(conn)

    return within(settings, unit)


def describe_failure(settings: Settings, exc: BaseException) -> str:
    """One sentence for a failure to reach or use the marketplace database, with no secret in it."""
    original = getattr(exc, "orig", exc)
    detail = " ".join(str(original).split())[:300]
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate == "42501":
        return (
            f'The marketplace database {where(settings)} refused: {detail}. Grant the role SELECT on "Solution" '
            'and UPDATE ("imageUrl", "updatedAt"), as the README shows.'
        )
    if sqlstate in ("42P01", "42703"):
        return f'The marketplace database {where(settings)} has no AIXchange "Solution" table as expected: {detail}.'
    return redact(f"The marketplace database {where(settings)} could not be reached: {detail}.", *settings.secrets)


def check(settings: Settings) -> str | None:
    """None when the marketplace answers, else why not (one sentence)."""
    try:
        run(settings, lambda conn: conn.execute(text('SELECT 1 FROM "Solution" LIMIT 1')).all())
    except (MarketplaceError, ConfigError) as exc:
        return str(exc)
    return None


def status(engine: Engine, settings: Settings, *, probe: bool = True) -> dict[str, Any]:
    """Where the link stands: the connection (host and database only), last pull, deliveries waiting."""
    with Session(engine) as session:
        states = dict(session.exec(select(Delivery.state, func.count()).group_by(Delivery.state)).all())
        linked = session.exec(
            select(func.count()).select_from(Solution).where(Solution.origin == SolutionOrigin.marketplace)
        ).one()
        waiting = session.exec(
            select(func.count()).select_from(Solution).where(Solution.origin == SolutionOrigin.request)
        ).one()
        last = session.exec(
            select(AuditEvent).where(AuditEvent.action == "marketplace.pull").order_by(col(AuditEvent.id).desc())
        ).first()
        delivered = session.exec(select(func.max(Delivery.delivered_at))).one()
    problem = check(settings) if probe and configured(settings) else None
    return {
        "configured": configured(settings),
        "connection": where(settings),
        "reachable": None if not (probe and configured(settings)) else problem is None,
        "problem": problem,
        "linked_solutions": int(linked),
        "awaiting_their_row": int(waiting),
        "pending": int(states.get(DeliveryState.pending, 0)),
        "conflicts": int(states.get(DeliveryState.conflict, 0)),
        "failed": int(states.get(DeliveryState.failed, 0)),
        "delivered": int(states.get(DeliveryState.delivered, 0)),
        "last_delivery_at": delivered,
        "last_pull": None if last is None else {"at": last.at, "by": last.actor, **last.detail},
    }
