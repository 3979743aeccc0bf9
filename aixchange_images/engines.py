"""Opening the database: one engine per database URL, built once, checked and migrated on first use."""

from __future__ import annotations

import threading

from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from . import migrations
from .config import ConfigError, Settings
from .db import build_engine

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(settings: Settings) -> Engine:
    """One engine per database URL, built once, migrated on first use."""
    url = settings.database_url
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            try:
                engine = build_engine(url)
            except OSError as exc:  # the SQLite file's folder cannot be made
                raise ConfigError(_unreachable(url, exc, settings.secrets)) from None
            except ImportError as exc:  # a database SQLAlchemy knows, with no driver installed
                raise ConfigError(
                    f"DATABASE_URL names {make_url(url).get_backend_name()}, whose driver ({exc.name}) is not "
                    "installed; use sqlite:///data/aixchange.db or postgresql://user:password@host:5432/aixchange."
                ) from None
            try:
                refuse_marketplace_database(engine)
                migrations.migrate(engine)
            except (OperationalError, InterfaceError, OSError) as exc:
                engine.dispose()
                raise ConfigError(_unreachable(url, exc, settings.secrets)) from None
            _engines[url] = engine
        return engine


def _unreachable(url: str, exc: Exception, secrets: tuple[str, ...]) -> str:
    """One sentence for a database that cannot be reached: where, why (the driver's last words), what to do."""
    parsed = make_url(url)
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["no reason given"]
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else detail[0].rsplit(": ", 1)[-1]
    reason = reason.strip().rstrip(".")
    if parsed.get_backend_name() == "sqlite":
        where, check = f"the SQLite file {parsed.database}", "that its folder exists and can be written"
    else:
        where = f"{parsed.get_backend_name()} at {parsed.host}:{parsed.port or 5432}"
        check = "that the server is running and the URL's host, port, user and password are right"
    sentence = f"Could not open the database in DATABASE_URL ({where}): {reason}. Check {check}."
    for secret in secrets:
        sentence = sentence.replace(secret, "[redacted]")
    return sentence


MARKETPLACE_TABLES = ("Solution", "_prisma_migrations")


def refuse_marketplace_database(engine: Engine) -> None:
    """Never migrate the marketplace's own database: its `DATABASE_URL` is easily picked up from its `.env`."""
    names = set(inspect(engine).get_table_names())
    if names & set(MARKETPLACE_TABLES):
        engine.dispose()
        raise ConfigError(
            "DATABASE_URL points at the marketplace's own database (it holds the marketplace's \"Solution\" table); "
            "give AIXchange Images a database of its own and put the marketplace's URL in MARKETPLACE_DATABASE_URL."
        )


def dispose_engines() -> None:
    """Close every pooled connection (tests and forked workers)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
