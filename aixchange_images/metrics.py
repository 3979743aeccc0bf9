"""Figures for managers: every aggregate runs in SQL, pandas only sees the small result."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, and_, case, cast, func, literal, literal_column, text, union_all
from sqlmodel import Session, col, select

from . import quickstats
from .attribution import made_by
from .checks import LABELS, NAMES
from .models import (
    Attempt,
    AttemptStatus,
    Candidate,
    CandidateCheck,
    CandidateState,
    Publication,
    Purpose,
    Solution,
    utcnow,
)

if TYPE_CHECKING:
    import pandas as pd


def frame(rows: Any, columns: list[str]) -> pd.DataFrame:
    """A DataFrame of a small SQL result; pandas loads on first use, keeping the CLI's start-up quick."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=columns)
    if "day" in table.columns:  # SQLite's date() gives text, PostgreSQL's a date: one form for both
        table["day"] = table["day"].map(lambda day: str(day)[:10] if day is not None else None)
    return table


FINISHED = (AttemptStatus.succeeded, AttemptStatus.failed, AttemptStatus.interrupted)
APPROVED_STATES = (CandidateState.approved, CandidateState.superseded, CandidateState.rolled_back)
BREAKDOWNS = {"model": Attempt.model, "template": Attempt.template_ref, "provider": Attempt.provider}


@dataclass(frozen=True)
class Scope:
    """The period and filters a chart or figure covers; None means no filter."""

    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    template: str | None = None
    provider: str | None = None

    def clauses(self) -> list[Any]:
        out: list[Any] = [col(Attempt.status).in_(FINISHED)]
        if self.since is not None:
            out.append(Attempt.started_at >= self.since)
        if self.until is not None:
            out.append(Attempt.started_at < self.until)
        for value, column in (
            (self.model, Attempt.model),
            (self.template, Attempt.template_ref),
            (self.provider, Attempt.provider),
        ):
            if value:
                out.append(column == value)
        return out


def last_days(days: int, **filters: str | None) -> Scope:
    return Scope(since=utcnow() - timedelta(days=days), **filters)


PERIODS = {"7": "Last 7 days", "30": "Last 30 days", "90": "Last 90 days", "month": "This month", "custom": "Custom"}


def period_scope(
    period: str,
    *,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
    **filters: str | None,
) -> Scope:
    """The scope of a period the Metrics page offers: the last N days, this UTC month, or whole
    UTC days from `start` to `end` (both included)."""
    now = now or utcnow()
    if period == "month":
        return Scope(since=now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), **filters)
    if period == "custom":
        first, last = start or now.date(), end or start or now.date()
        first, last = min(first, last), max(first, last)
        since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
        return Scope(
            since=since, until=datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=UTC), **filters
        )
    return Scope(since=now - timedelta(days=int(period)), **filters)


def _paid_durations(scope: Scope):  # type: ignore[no-untyped-def]
    """Generation time of calls that reached a provider and succeeded (cache hits excluded)."""
    return select(Attempt.duration_ms).where(
        *scope.clauses(),
        Attempt.status == AttemptStatus.succeeded,
        col(Attempt.cache_hit).is_(False),
        col(Attempt.duration_ms).is_not(None),
    )


def percentile(session: Session, scope: Scope, count: int, share: float) -> int | None:
    """Nearest-rank percentile of `count` paid durations: one ORDER BY/OFFSET on a covering index."""
    if not count:
        return None
    rank = max(1, -(-int(share * 1000) * count // 1000))  # ceil(share * count)
    query = _paid_durations(scope).order_by(Attempt.duration_ms).offset(rank - 1).limit(1)
    return int(session.exec(query).one())


PAID_SUCCESS = and_(
    Attempt.status == AttemptStatus.succeeded, col(Attempt.cache_hit).is_(False), col(Attempt.duration_ms).is_not(None)
)


def scoped_candidates(query: Any, scope: Scope, session: Session | None = None) -> Any:
    """`query` over Candidate narrowed to generated candidates made in the scope (with a `session`,
    a provider filter reads the candidates' covering index instead of joining every attempt)."""
    query = query.where(Candidate.source == "generated")
    if scope.since is not None:
        query = query.where(Candidate.created_at >= scope.since)
    if scope.until is not None:
        query = query.where(Candidate.created_at < scope.until)
    if scope.model:
        query = query.where(Candidate.model == scope.model)
    if scope.template:
        query = query.where(Candidate.template_ref == scope.template)
    if scope.provider and session is not None:
        query = query.where(made_by(session=session, provider=scope.provider))
    elif scope.provider:
        query = query.join(Attempt, Attempt.id == Candidate.attempt_id).where(Attempt.provider == scope.provider)
    return query


APPROVED = cast(col(Candidate.state).in_(APPROVED_STATES), Integer)

# -- how often the automatic checks flag what a model or a template version makes ------------------
FLAG_BREAKDOWNS = {"model": Candidate.model, "template": Candidate.template_ref}
FLAG_COLUMNS = [
    "checked",
    "flagged",
    "flag_rate",
    *(f"{name}_{part}" for name in NAMES for part in ("flagged", "rate")),
]
NO_FLAGS = (0, 0, None, *(figure for _ in NAMES for figure in (0, None)))  # a row nothing was checked for
CHECKED_SUMS = (func.count(), func.sum(case((Candidate.flags != "", 1), else_=0)))  # checked, flagged by any check


def checked_in(query: Any, scope: Scope, session: Session) -> Any:
    """`query` over the scope's generated candidates the checks have looked at (ix_candidate_check_cover
    holds what it reads)."""
    return scoped_candidates(query.where(col(Candidate.checked_at).is_not(None)), scope, session)


def raised_in(query: Any, scope: Scope, session: Session) -> Any:
    """`query` over the flags raised on the scope's generated candidates: each flagged verdict joined to
    its candidate. Flags are few, and the index (name, flagged, candidate_id) finds them."""
    query = query.join(CandidateCheck, CandidateCheck.candidate_id == Candidate.id)
    flagged = (col(CandidateCheck.name).in_(NAMES), col(CandidateCheck.flagged).is_(True))
    return scoped_candidates(query.where(*flagged), scope, session)


def flags_by(*, session: Session, scope: Scope | None = None, by: str = "model") -> dict[str, tuple]:
    """FLAG_COLUMNS per model or template version (`by="template"`) the scope's checked candidates have:
    two GROUP BYs, candidates checked and flagged (their `flags`), and each check's flags."""
    scope = scope or Scope()
    # `|| ''` keeps SQLite off the template index, which lacks checked_at, for ix_candidate_check_cover
    key = FLAG_BREAKDOWNS[by] + literal_column("''")
    checked = session.exec(checked_in(select(key, *CHECKED_SUMS), scope, session).group_by(key)).all()
    raised = raised_in(select(key, CandidateCheck.name, func.count()), scope, session)
    return flag_figures(checked, session.exec(raised.group_by(key, CandidateCheck.name)).all())


def flag_figures(checked: Iterable[tuple], raised: Iterable[tuple]) -> dict[Any, tuple]:
    """FLAG_COLUMNS per key from rows (key, candidates checked, flagged by any check) and (key, check,
    candidates it flagged); a check that did not run on a candidate counts as not flagging it."""
    counts: dict[Any, dict[str, int]] = {}
    for key, name, n in raised:
        per_check = counts.setdefault(key, dict.fromkeys(NAMES, 0))
        per_check[name] += int(n)
    figures = {}
    for key, n, flagged in checked:
        n, flagged, per_check = int(n), int(flagged or 0), counts.get(key, dict.fromkeys(NAMES, 0))
        shares = [(per_check[name], per_check[name] / n) for name in NAMES]
        figures[key] = (n, flagged, flagged / n, *(figure for share in shares for figure in share))
    return figures


def flag_rates(*, session: Session, scope: Scope | None = None, by: str = "model") -> pd.DataFrame:
    """Per model (or template version, `by="template"`) the scope's generated candidates the checks looked
    at: how many, the share any check flagged, and for each check how many it flagged and their share."""
    figures = flags_by(session=session, scope=scope, by=by)
    return frame([(key, *figures[key]) for key in sorted(figures)], [by, *FLAG_COLUMNS])


def percent(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.0%}"


def flag_readable(table: pd.DataFrame) -> dict[str, Any]:
    """The flag columns as people read them: candidates checked, then shares in percent under each check's words."""
    return {
        "Checked": table["checked"],
        "Flagged": table["flag_rate"].map(percent),
        **{LABELS[name]: table[f"{name}_rate"].map(percent) for name in NAMES},
    }


def headline(*, session: Session, scope: Scope | None = None) -> dict[str, Any]:
    """The numbers `stats` prints and the Metrics page shows above its charts (defined in quickstats,
    whose SQL the `stats` command also runs without the ORM)."""
    return quickstats.headline(_runner(session), scope or Scope(), session.get_bind().dialect.name)


def storage_bytes(*, session: Session) -> int:
    """Bytes on disk: candidate files (a cache hit shares its source's file) plus published files."""
    return quickstats.storage_bytes(_runner(session))


def _runner(session: Session) -> quickstats.Run:
    return lambda sql, params: list(session.execute(text(sql), params).all())


DAILY_COLUMNS = ["day", "attempts", "succeeded", "spend_usd", "cache_hits", "saved_usd"]


def daily(*, session: Session, scope: Scope | None = None) -> pd.DataFrame:
    """Per UTC day: attempts, successes, success rate, spend, cache hits and savings."""
    scope = scope or Scope()
    day = func.date(Attempt.started_at)
    query = select(day.label("day"), *_DAY_SUMS).where(*scope.clauses()).group_by(day).order_by(day)
    return _with_success_rate(frame(session.exec(query).all(), DAILY_COLUMNS))


_DAY_SUMS = (
    func.count(),
    func.sum(case((Attempt.status == AttemptStatus.succeeded, 1), else_=0)),
    func.sum(Attempt.cost_usd),
    func.sum(cast(Attempt.cache_hit, Integer)),
    func.sum(Attempt.saved_usd),
)


def _with_success_rate(table: pd.DataFrame) -> pd.DataFrame:
    table["success_rate"] = table["succeeded"] / table["attempts"] if not table.empty else []
    return table


def daily_percentiles(*, session: Session, scope: Scope | None = None) -> pd.DataFrame:
    """p50 and p95 generation time per day, ranked with a window function in SQL."""
    scope = scope or Scope()
    day = func.date(Attempt.started_at)
    ranked = (
        select(
            day.label("day"),
            Attempt.duration_ms.label("ms"),
            func.row_number().over(partition_by=day, order_by=Attempt.duration_ms).label("rn"),
            func.count().over(partition_by=day).label("n"),
        )
        .where(
            *scope.clauses(),
            Attempt.status == AttemptStatus.succeeded,
            col(Attempt.cache_hit).is_(False),
            col(Attempt.duration_ms).is_not(None),
        )
        .subquery()
    )
    # nearest rank: the smallest rn with rn >= share * n
    p50 = func.min(case((ranked.c.rn * 100 >= ranked.c.n * 50, ranked.c.ms)))
    p95 = func.min(case((ranked.c.rn * 100 >= ranked.c.n * 95, ranked.c.ms)))
    query = select(ranked.c.day, p50.label("p50_ms"), p95.label("p95_ms")).group_by(ranked.c.day).order_by(ranked.c.day)
    return frame(session.exec(query).all(), ["day", "p50_ms", "p95_ms"])


def spend_by(*, session: Session, scope: Scope | None = None, by: str = "model") -> pd.DataFrame:
    """Spend per day split by model, template version or provider."""
    scope = scope or Scope()
    key = BREAKDOWNS[by]
    day = func.date(Attempt.started_at)
    query = (
        select(day.label("day"), key.label(by), func.sum(Attempt.cost_usd).label("spend_usd"))
        .where(*scope.clauses())
        .group_by(day, key)
        .order_by(day, key)
    )
    return frame(session.exec(query).all(), ["day", by, "spend_usd"])


def day_breakdown(*, session: Session, scope: Scope) -> list[tuple]:
    """Per UTC day, model and template version, the sums `daily` adds up: one pass over the period
    from which `daily` and `spend_by` model and template (what the Metrics page shows together) follow."""
    day = func.date(Attempt.started_at)
    query = select(day, Attempt.model, Attempt.template_ref, *_DAY_SUMS).where(*scope.clauses())
    return list(session.exec(query.group_by(day, Attempt.model, Attempt.template_ref)).all())


def daily_of(breakdown: list[tuple]) -> pd.DataFrame:
    """`daily` from a `day_breakdown`."""
    sums: dict[Any, list] = {}
    for day, _, _, *figures in breakdown:
        total = sums.setdefault(day, [0, 0, 0.0, 0, 0.0])
        for i, value in enumerate(figures):
            total[i] += value or 0
    return _with_success_rate(frame([(day, *total) for day, total in sorted(sums.items())], DAILY_COLUMNS))


def spend_of(breakdown: list[tuple], by: str) -> pd.DataFrame:
    """`spend_by` model or template from a `day_breakdown`, in its order."""
    sums: dict[tuple, float] = {}
    for day, model, template, _, _, spend, _, _ in breakdown:
        key = (day, model if by == "model" else template)
        sums[key] = sums.get(key, 0.0) + (spend or 0.0)
    return frame([(day, key, spend) for (day, key), spend in sorted(sums.items())], ["day", by, "spend_usd"])


def failures_by_kind(*, session: Session, scope: Scope | None = None) -> pd.DataFrame:
    scope = scope or Scope()
    query = (
        select(Attempt.error_kind, func.count().label("n"))
        .where(*scope.clauses(), Attempt.status != AttemptStatus.succeeded, col(Attempt.error_kind).is_not(None))
        .group_by(Attempt.error_kind)
        .order_by(func.count().desc())
    )
    return frame(session.exec(query).all(), ["error_kind", "n"])


def storage_over_time(*, session: Session, since: datetime | None = None) -> pd.DataFrame:
    """Bytes on disk at the end of each day, for published, candidate and rejected images."""
    kind = case((Candidate.state == CandidateState.rejected, literal("rejected")), else_=literal("candidates"))
    own_file = and_(col(Candidate.cache_hit).is_(False))
    added = select(
        func.date(Candidate.created_at).label("day"), kind.label("kind"), Candidate.bytes.label("delta")
    ).where(own_file)
    removed = select(
        func.date(Candidate.deleted_at).label("day"), kind.label("kind"), (-Candidate.bytes).label("delta")
    ).where(own_file, col(Candidate.deleted_at).is_not(None))
    published = select(
        func.date(Publication.published_at).label("day"),
        literal("published").label("kind"),
        Publication.bytes.label("delta"),
    )
    moves = union_all(added, removed, published).subquery()
    query = (
        select(moves.c.day, moves.c.kind, func.sum(moves.c.delta).label("delta"))
        .group_by(moves.c.day, moves.c.kind)
        .order_by(moves.c.day)
    )
    moves_by_day = frame(session.exec(query).all(), ["day", "kind", "delta"])
    if moves_by_day.empty:
        return frame([], ["day", "kind", "bytes"])
    wide = moves_by_day.pivot_table(index="day", columns="kind", values="delta", aggfunc="sum", fill_value=0).cumsum()
    long = wide.reset_index().melt(id_vars="day", var_name="kind", value_name="bytes")
    if since is not None:
        long = long[long["day"] >= since.date().isoformat()]
    return long


def largest_consumers(*, session: Session, limit: int = 10) -> pd.DataFrame:
    """Solutions holding the most bytes (candidate files still on disk plus published files)."""
    cand = select(Candidate.solution_id.label("sid"), Candidate.bytes.label("b")).where(
        col(Candidate.cache_hit).is_(False), col(Candidate.deleted_at).is_(None)
    )
    pub = select(Publication.solution_id.label("sid"), Publication.bytes.label("b"))
    both = union_all(cand, pub).subquery()
    top = select(both.c.sid, func.sum(both.c.b).label("bytes"), func.count().label("files")).group_by(both.c.sid)
    top = top.order_by(func.sum(both.c.b).desc()).limit(limit).subquery()
    query = select(Solution.title, top.c.bytes, top.c.files).join(top, top.c.sid == Solution.id)
    return frame(session.exec(query.order_by(top.c.bytes.desc())).all(), ["title", "bytes", "files"])


def attempts_table(*, session: Session, scope: Scope | None = None, limit: int = 50_000) -> pd.DataFrame:
    """The attempt rows behind the charts, for the CSV download (newest first)."""
    scope = scope or Scope()
    fields = [
        Attempt.id,
        Attempt.started_at,
        Attempt.solution_id,
        Attempt.provider,
        Attempt.model,
        Attempt.template_ref,
        Attempt.size,
        Attempt.quality,
        Attempt.status,
        Attempt.error_kind,
        Attempt.duration_ms,
        Attempt.cost_usd,
        Attempt.cache_hit,
        Attempt.saved_usd,
        Attempt.actor,
    ]
    query = select(*fields).where(*scope.clauses()).order_by(col(Attempt.id).desc()).limit(limit)
    return frame(session.exec(query).all(), [f.key for f in fields])


def choices(*, session: Session) -> dict[str, list[str]]:
    """Values the filters can take."""
    return {
        by: [v for v in session.exec(select(column).distinct().order_by(column)).all() if v]
        for by, column in BREAKDOWNS.items()
    }


def review_counts(*, session: Session) -> dict[str, int]:
    rows = session.exec(select(Candidate.state, func.count()).group_by(Candidate.state)).all()
    counts = {s.value: 0 for s in CandidateState}
    counts.update({state: int(n) for state, n in rows})
    return counts


def overview(*, session: Session, now: datetime | None = None) -> dict[str, Any]:
    """The few numbers that matter today, for the Overview page."""
    from .catalogue import status_counts

    now = now or utcnow()
    counts = status_counts(session=session)
    week = select(func.count()).select_from(Publication).where(Publication.published_at >= now - timedelta(days=7))
    pending_solutions = select(func.count(func.distinct(Candidate.solution_id))).where(
        Candidate.state == CandidateState.pending,
        Candidate.purpose == Purpose.regular,  # trials wait apart
    )
    return {
        "solutions": sum(counts.values()),
        "missing": counts["none"] + counts["placeholder"],
        "awaiting_review": int(session.exec(pending_solutions).one()),
        "published_week": int(session.exec(week).one()),
        "status_counts": counts,
    }
