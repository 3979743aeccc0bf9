"""The schema's history: ordered, numbered migrations, recorded in `schemamigration` (the way
simonw/llm keeps them).

Migration 4 seeds the built-in template `default@1`; every run of `migrate` seeds the price table
with the models of every provider the registry holds (those it lacks). `engines.get_engine`
applies what a database has not seen yet.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from . import auth_models, budget, jobmodels, models, templates  # noqa: F401 - jobmodels: its tables join the metadata
from .db import analyze
from .provider_registry import all_models


# Each is idempotent so a database created by an older build can be brought forward safely.
def _m001_initial(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


def _m002_seed_prices(engine: Engine) -> None:
    seed_prices(engine)


def seed_prices(engine: Engine) -> None:
    """Every provider's models in the price table (those it lacks): run by each migrate, so a provider
    added later has its prices without a migration of its own."""
    with Session(engine) as session:
        if budget.seed_prices(session=session, models=[model for _, model in all_models()]):
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
    with Session(engine) as session:
        templates.seed_default(session=session)
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


def _m014_estimate_and_yield_indexes(engine: Engine) -> None:
    """Where each solution's next variant starts (batch estimates), and the yield table's index now
    covering the candidates' source and time: both read from the index alone, not the table."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_candidate_template_state_reason")  # narrower
    _create_indexes(engine)


def _m015_providers_and_refine(engine: Engine) -> None:
    """Which provider made each candidate (read from its attempt), and refine's lineage."""
    _add_column(engine, "candidate", "provider", "VARCHAR(40) NOT NULL DEFAULT ''")
    _add_column(engine, "candidate", "parent_id", "INTEGER")
    _add_column(engine, "candidate", "instruction", "TEXT")
    _add_column(engine, "attempt", "parent_id", "INTEGER")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE candidate SET provider = (SELECT attempt.provider FROM attempt WHERE attempt.id = candidate.attempt_id)"
            " WHERE candidate.attempt_id IS NOT NULL AND candidate.provider = ''"
        )
    for table, column in (("candidate", "parent_id"), ("attempt", "parent_id")):
        for index in SQLModel.metadata.tables[table].indexes:
            if [c.name for c in index.columns] == [column]:
                index.create(engine, checkfirst=True)


def _m016_automatic_checks(engine: Engine) -> None:
    """Each candidate's checks: when they ran, the flags raised, its perceptual hash; each check's verdict."""
    _add_column(
        engine,
        "candidate",
        "checked_at",
        SQLModel.metadata.tables["candidate"].c["checked_at"].type.compile(dialect=engine.dialect),
    )
    _add_column(engine, "candidate", "flags", "VARCHAR(120) NOT NULL DEFAULT ''")
    _add_column(engine, "candidate", "phash", "VARCHAR(64)")
    table = SQLModel.metadata.tables["candidatecheck"]
    table.create(engine, checkfirst=True)
    for index in table.indexes:
        index.create(engine, checkfirst=True)


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
    (15, "each candidate's provider; refine's parent and instruction", _m015_providers_and_refine),
    (16, "automatic checks: each candidate's flags and perceptual hash, each check's verdict", _m016_automatic_checks),
    (17, "a covering index for the checks' flag rates", _create_indexes),
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
    seed_prices(engine)
    return applied
