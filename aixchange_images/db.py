"""The engine, the schema migrations and the cross-process lock."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session, SQLModel, create_engine, select

from . import auth_models, jobmodels, models  # noqa: F401 - jobmodels: its tables join the metadata migrations create
from .config import ConfigError, Settings

_engines: dict[str, Engine] = {}
_immediate: ContextVar[bool] = ContextVar("immediate", default=False)
_engines_lock = threading.Lock()


def get_engine(settings: Settings) -> Engine:
    """One engine per database URL, built once, migrated on first use."""
    url = settings.database_url
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            try:
                engine = _build_engine(url)
            except OSError as exc:  # the SQLite file's folder cannot be made
                raise ConfigError(_unreachable(url, exc, settings.secrets)) from None
            except ImportError as exc:  # a database SQLAlchemy knows, with no driver installed
                raise ConfigError(
                    f"DATABASE_URL names {make_url(url).get_backend_name()}, whose driver ({exc.name}) is not "
                    "installed; use sqlite:///data/aixchange.db or postgresql://user:password@host:5432/aixchange."
                ) from None
            try:
                refuse_marketplace_database(engine)
                migrate(engine)
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


def _build_engine(url: str) -> Engine:
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


# Ordered, numbered migrations, recorded in `schemamigration` (the way simonw/llm keeps them).
# Each is idempotent so a database created by an older build can be brought forward safely.
def _m001_initial(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


def _m002_seed_prices(engine: Engine) -> None:
    from .budget import seed_prices

    with Session(engine) as session:
        seed_prices(session=session)
        session.commit()


def _add_column(engine: Engine, table: str, column: str, ddl: str) -> None:
    if column not in {c["name"] for c in inspect(engine).get_columns(table)}:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


def _m003_cache_savings_and_cleanup(engine: Engine) -> None:
    _add_column(engine, "attempt", "saved_usd", "FLOAT NOT NULL DEFAULT 0")
    _add_column(engine, "candidate", "deleted_at", "TIMESTAMP")


def _m004_prompt_templates(engine: Engine) -> None:
    """Prompt Studio's tables, and `default@1` (today's built-in template) labelled production."""
    for table in ("templateversion", "templatelabel", "templatelabelmove", "categorytemplate"):
        SQLModel.metadata.tables[table].create(engine, checkfirst=True)
    from .templates import seed_default

    with Session(engine) as session:
        seed_default(session=session)
        session.commit()


def _create_indexes(engine: Engine) -> None:
    """Create the indexes the models declare that the database lacks, then refresh the statistics."""
    for table in ("attempt", "candidate"):
        for index in SQLModel.metadata.tables[table].indexes:
            index.create(engine, checkfirst=True)
    analyze(engine)


def _m007_disk_cover(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_candidate_storage_cover")  # narrower: it slowed the others
    _create_indexes(engine)


def _m008_call_runner_and_deadline(engine: Engine) -> None:
    for name in ("runner", "deadline_at"):  # typed as the model says, e.g. a timestamp with time zone on PostgreSQL
        column_type = SQLModel.metadata.tables["attempt"].c[name].type.compile(dialect=engine.dialect)
        _add_column(engine, "attempt", name, column_type)


def _m009_marketplace(engine: Engine) -> None:
    """The marketplace connector: each solution's link to its row, the delivery outbox; titles of any length."""
    columns = SQLModel.metadata.tables["solution"].c
    for name in ("event_id", "origin", "marketplace_url", "marketplace_synced_at"):
        ddl = columns[name].type.compile(dialect=engine.dialect)
        default = " NOT NULL DEFAULT 'local'" if name == "origin" else ""
        _add_column(engine, "solution", name, ddl + default)
    SQLModel.metadata.tables["delivery"].create(engine, checkfirst=True)
    for index in (*columns["origin"].table.indexes, *SQLModel.metadata.tables["delivery"].indexes):
        index.create(engine, checkfirst=True)
    if engine.dialect.name == "postgresql":  # rows are taken as they are: no 100-character cap
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "ALTER TABLE solution ALTER COLUMN title TYPE VARCHAR, ALTER COLUMN category TYPE VARCHAR"
            )


def _m010_purpose(engine: Engine) -> None:
    """Prompt Studio's trial images are marked, so Review keeps them apart; earlier ones count as regular."""
    for table in ("attempt", "candidate"):
        ddl = SQLModel.metadata.tables[table].c["purpose"].type.compile(dialect=engine.dialect)
        _add_column(engine, table, "purpose", f"{ddl} NOT NULL DEFAULT 'regular'")
    _create_indexes(engine)


def _m011_browser_sessions(engine: Engine) -> None:
    """Server-side browser sessions, sign-in throttles with backoff, and the browsers users signed in from."""
    for model in (auth_models.BrowserSession, auth_models.SignInThrottle, auth_models.KnownBrowser):
        table = SQLModel.metadata.tables[model.__tablename__]
        table.create(engine, checkfirst=True)
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def _m012_single_sign_on(engine: Engine) -> None:
    """Each user's email, the identity single sign-on maps to them (unique when set)."""
    user = SQLModel.metadata.tables["user"]
    if "email" not in {c["name"] for c in inspect(engine).get_columns("user")}:
        ddl = user.c["email"].type.compile(dialect=engine.dialect)
        with engine.begin() as conn:  # "user" is a reserved word on PostgreSQL: quoted
            conn.exec_driver_sql(
                f"ALTER TABLE {engine.dialect.identifier_preparer.quote('user')} ADD COLUMN email {ddl}"
            )
    for index in user.indexes:
        index.create(engine, checkfirst=True)


def _m013_background_jobs(engine: Engine) -> None:
    """Background jobs: jobs and their items, per-solution claims, live processes, schedules."""
    for table in ("job", "jobitem", "solutionclaim", "runner", "jobschedule"):
        SQLModel.metadata.tables[table].create(engine, checkfirst=True)
        for index in SQLModel.metadata.tables[table].indexes:
            index.create(engine, checkfirst=True)


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics (after bulk loads), so it picks the covering indexes."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def _m014_estimate_and_yield_indexes(engine: Engine) -> None:
    """Where each solution's next variant starts (batch estimates), and the yield table's index now
    covering the candidates' source and time: both read from the index alone, not the table."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_candidate_template_state_reason")  # narrower
    _create_indexes(engine)


MIGRATIONS: list[tuple[int, str, Callable[[Engine], None]]] = [
    (1, "initial tables", _m001_initial),
    (2, "seed the price table", _m002_seed_prices),
    (3, "cache savings and storage clean-up", _m003_cache_savings_and_cleanup),
    (4, "prompt templates: versions, labels, category overrides", _m004_prompt_templates),
    (5, "indexes for the yield table and percentiles", _create_indexes),
    (6, "a covering index for storage in use", _create_indexes),
    (7, "the storage index also covers storage by solution and over time", _m007_disk_cover),
    (8, "each call's process token and deadline", _m008_call_runner_and_deadline),
    (9, "the marketplace connector: links, the delivery outbox", _m009_marketplace),
    (10, "trial images kept apart: each attempt's and candidate's purpose", _m010_purpose),
    (11, "browser sessions, sign-in throttles, known browsers", _m011_browser_sessions),
    (12, "users' emails for single sign-on", _m012_single_sign_on),
    (13, "background jobs: jobs, items, solution claims, runners, schedules", _m013_background_jobs),
    (14, "covering indexes for batch estimates and the yield table", _m014_estimate_and_yield_indexes),
]


def migrate(engine: Engine) -> list[int]:
    """Apply the migrations this database has not seen; returns their numbers."""
    if not inspect(engine).has_table("schemamigration"):
        SQLModel.metadata.tables["schemamigration"].create(engine)
    with Session(engine) as session:
        done = set(session.exec(select(models.SchemaMigration.version)).all())
    applied = []
    for number, name, step in MIGRATIONS:
        if number in done:
            continue
        step(engine)
        with Session(engine) as session:
            if session.get(models.SchemaMigration, number) is None:
                session.add(models.SchemaMigration(version=number, name=name))
                session.commit()
        applied.append(number)
    return applied
