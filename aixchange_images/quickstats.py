"""The headline figures (`stats`, the Metrics page's numbers) as SQL text, and `stats` without the ORM.

The figures are defined once, here, as a few SQL statements run through any `Run` callable:
`metrics.headline` runs them through a SQLAlchemy session (SQLite and PostgreSQL), and `answer`
runs them through the standard library's SQLite driver, so `stats` on a migrated SQLite file loads
neither SQLAlchemy nor the table classes (issue 11: 0.5 s at 10k solutions and 200k attempts).
This module imports only the standard library and `config`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

from . import provider_registry
from .config import ConfigError, Settings, load_settings

Run = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]  # (SQL with :named parameters, values) -> rows

FINISHED = ("succeeded", "failed", "interrupted")  # metrics.FINISHED, as stored
APPROVED_STATES = ("approved", "superseded", "rolled_back")  # metrics.APPROVED_STATES, as stored
SCHEMA_VERSION = 17  # the last of migrations.MIGRATIONS: a database without it is migrated by the general path


class Filters(Protocol):
    """What narrows the figures (metrics.Scope is one); None means no filter."""

    since: datetime | None
    until: datetime | None
    model: str | None
    template: str | None
    provider: str | None


def _moment(value: datetime, dialect: str) -> Any:
    """A timestamp bound as the column stores it: SQLAlchemy keeps SQLite's as text, fields as given."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else value


def _narrowed(table: str, scope: Filters, dialect: str, clauses: list[str]) -> tuple[str, dict[str, Any]]:
    """`clauses` and the scope's filters on `table` (attempt or candidate), joined by AND."""
    params: dict[str, Any] = {}
    moment = "started_at" if table == "attempt" else "created_at"
    for op, name in ((">=", "since"), ("<", "until")):
        if getattr(scope, name) is not None:
            clauses.append(f"{table}.{moment} {op} :{name}")
            params[name] = _moment(getattr(scope, name), dialect)
    for name, column in (("model", "model"), ("template", "template_ref"), ("provider", "provider")):
        if getattr(scope, name):
            where = "attempt" if name == "provider" else table  # a candidate's provider is its attempt's
            clauses.append(f"{where}.{column} = :{name}")
            params[name] = getattr(scope, name)
    return " AND ".join(clauses), params


FINISHED_SQL = f"attempt.status IN {FINISHED!r}"
PAID_SUCCESS_SQL = "attempt.status = 'succeeded' AND attempt.cache_hit = :no AND attempt.duration_ms IS NOT NULL"
ATTEMPT_SUMS = f"""SELECT count(*),
 coalesce(sum(CAST(attempt.status = 'succeeded' AS INTEGER)), 0), coalesce(sum(attempt.cost_usd), 0.0),
 coalesce(sum(CAST(attempt.cache_hit AS INTEGER)), 0), coalesce(sum(attempt.saved_usd), 0.0),
 coalesce(sum(CAST({PAID_SUCCESS_SQL} AS INTEGER)), 0)
 FROM attempt WHERE """
CANDIDATE_SUMS = f"""SELECT coalesce(sum(CAST(candidate.state IN {APPROVED_STATES!r} AS INTEGER)), 0),
 coalesce(sum(CAST(candidate.state = 'approved' AS INTEGER)), 0),
 coalesce(sum(CASE WHEN candidate.state = 'rejected' THEN candidate.cost_usd ELSE 0.0 END), 0.0)
 FROM candidate"""
STORAGE_SQL = """SELECT
 (SELECT coalesce(sum(bytes), 0) FROM candidate WHERE cache_hit = :no AND deleted_at IS NULL),
 (SELECT coalesce(sum(bytes), 0) FROM publication)"""


def headline(run: Run, scope: Filters, dialect: str) -> dict[str, Any]:
    """The numbers `stats` prints and the Metrics page shows above its charts, for finished attempts
    (and generated candidates) in the scope."""
    where, params = _narrowed("attempt", scope, dialect, [FINISHED_SQL])
    row = run(ATTEMPT_SUMS + where, {**params, "no": False})[0]
    attempts, ok, cache_hits, timed = (int(row[i]) for i in (0, 1, 3, 5))  # PostgreSQL may sum to Decimal
    spend, saved = float(row[2]), float(row[4])
    approved, live, rejected_spend = _review_figures(run, scope, dialect)
    return {
        "attempts": attempts,
        "succeeded": ok,
        "failed": attempts - ok,
        "success_rate": round(ok / attempts, 4) if attempts else None,
        "p50_ms": _percentile(run, scope, dialect, timed, 0.50),
        "p95_ms": _percentile(run, scope, dialect, timed, 0.95),
        "spend_usd": round(spend, 6),
        "cache_hits": cache_hits,
        "cache_saved_usd": round(saved, 6),
        "approved": approved,
        "approved_live": live,
        "cost_per_approved_usd": round(spend / approved, 6) if approved else None,
        "rejected_spend_usd": round(rejected_spend, 6),
        "storage_bytes": storage_bytes(run),
    }


def _percentile(run: Run, scope: Filters, dialect: str, count: int, share: float) -> int | None:
    """Nearest-rank percentile of `count` paid durations: one ORDER BY/OFFSET on a covering index."""
    if not count:
        return None
    rank = max(1, -(-int(share * 1000) * count // 1000))  # ceil(share * count)
    where, params = _narrowed("attempt", scope, dialect, [FINISHED_SQL, PAID_SUCCESS_SQL])
    sql = f"SELECT attempt.duration_ms FROM attempt WHERE {where} ORDER BY attempt.duration_ms LIMIT 1 OFFSET :skip"
    return int(run(sql, {**params, "no": False, "skip": rank - 1})[0][0])


def _review_figures(run: Run, scope: Filters, dialect: str) -> tuple[int, int, float]:
    """Approved images (all, and those still live) and the money spent on rejected ones, from
    generated candidates made in the scope."""
    where, params = _narrowed("candidate", scope, dialect, ["candidate.source = 'generated'"])
    join = " JOIN attempt ON attempt.id = candidate.attempt_id" if scope.provider else ""
    approved, live, rejected = run(f"{CANDIDATE_SUMS}{join} WHERE {where}", params)[0]
    return int(approved), int(live), float(rejected)


def storage_bytes(run: Run) -> int:
    """Bytes on disk: candidate files (a cache hit shares its source's file) plus published files."""
    candidates, published = run(STORAGE_SQL, {"no": False})[0]
    return int(candidates) + int(published)


COMMITTED_SQL = """SELECT coalesce(sum(CASE WHEN attempt.status = 'running' THEN attempt.reserved_usd
 ELSE attempt.cost_usd END), 0.0) FROM attempt WHERE attempt.started_at >= :since"""  # budget.committed_since


# --- `stats` without the ORM ---------------------------------------------------------------------


class _Args(Protocol):
    since: date | None
    model: str | None
    template: str | None
    provider: str | None


def answer(args: _Args) -> dict[str, Any] | None:
    """`stats`'s figures read with the SQLite driver, or None when the general path must answer:
    a database that is not a migrated SQLite file (it creates and migrates it), publications to
    recover, a marketplace to deliver to, or a budget whose alerts the budget module words."""
    settings = load_settings()
    provider_registry.check_settings(settings)  # as cli._open: a malformed provider variable is bad usage
    path = _sqlite_file(settings.database_url)
    if path is None or _journals_waiting(settings) or settings.marketplace_database_url is not None:
        return None
    since = datetime.combine(args.since, datetime.min.time(), tzinfo=UTC) if args.since else None
    scope = SimpleNamespace(since=since, until=None, model=args.model, template=args.template, provider=args.provider)
    try:
        with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as conn:
            conn.execute("BEGIN")  # one snapshot for every figure, as one session reads them; never committed
            if not _migrated(conn) or _capped(_with_overrides(conn, settings)):
                return None

            def run(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
                return conn.execute(sql, params).fetchall()

            return {**headline(run, scope, "sqlite"), "budget": _uncapped_budget(run)}
    except sqlite3.Error:  # locked past the timeout, damaged, not a database: the general path says so
        return None


def _sqlite_file(url: str) -> Path | None:
    """The existing file a plain `sqlite:///PATH` URL names (a URL with options or escapes: None)."""
    path = url.removeprefix("sqlite:///")
    if path == url or not path or path == ":memory:" or "?" in path or "%" in path:
        return None
    return Path(path) if Path(path).is_file() else None


def _journals_waiting(settings: Settings) -> bool:
    """Whether a publish journal waits to be settled (journal.waiting, without loading the ORM)."""
    folder = settings.external_images_path / ".incoming"
    return folder.is_dir() and any(folder.glob("*.intent.json"))


def _migrated(conn: sqlite3.Connection) -> bool:
    """Whether every migration has run (and the file is ours, not the marketplace's)."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schemamigration" not in tables or tables & {"Solution", "_prisma_migrations"}:
        return False
    done = {version for (version,) in conn.execute("SELECT version FROM schemamigration")}
    return done >= set(range(1, SCHEMA_VERSION + 1))


def _with_overrides(conn: sqlite3.Connection, settings: Settings) -> Settings:
    """admin.effective_settings: the admins' overrides on top (a bad override is ignored)."""
    rows = conn.execute("SELECT key, value FROM setting").fetchall()
    # a JSON column has numeric affinity in SQLite: numbers come back as numbers, the rest as JSON text
    stored = {key: json.loads(value) if isinstance(value, str) else value for key, value in rows}
    try:
        return settings.with_overrides(stored)
    except ConfigError:
        return settings


def _capped(settings: Settings) -> bool:
    return settings.image_budget_daily_usd is not None or settings.image_budget_monthly_usd is not None


def _uncapped_budget(run: Run) -> dict[str, Any]:
    """budget.BudgetState.as_dict() when no cap is set: only the money committed today and this month."""
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    spent = [
        float(run(COMMITTED_SQL, {"since": _moment(start, "sqlite")})[0][0]) for start in (day, day.replace(day=1))
    ]
    return {
        "daily_cap_usd": None,
        "monthly_cap_usd": None,
        "spent_today_usd": round(spent[0], 6),
        "spent_month_usd": round(spent[1], 6),
        "left_usd": None,
        "alerts": [],
    }
