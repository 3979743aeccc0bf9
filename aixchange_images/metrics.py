"""Figures for managers: every aggregate runs in SQL, pandas only sees the small result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Integer, case, cast, func
from sqlmodel import Session, col, select

from .models import Attempt, AttemptStatus, Candidate, CandidateState, Publication

FINISHED = (AttemptStatus.succeeded, AttemptStatus.failed, AttemptStatus.interrupted)


def _window(query, since: datetime | None, until: datetime | None):  # type: ignore[no-untyped-def]
    if since is not None:
        query = query.where(Attempt.started_at >= since)
    if until is not None:
        query = query.where(Attempt.started_at < until)
    return query


def _percentile(session: Session, since: datetime | None, until: datetime | None, share: float) -> int | None:
    """Nearest-rank percentile of paid generation time (cache hits excluded), via ORDER BY/OFFSET."""
    base = _window(
        select(Attempt.duration_ms).where(
            Attempt.status == AttemptStatus.succeeded, col(Attempt.cache_hit).is_(False),
            col(Attempt.duration_ms).is_not(None),
        ),
        since,
        until,
    )
    count = session.exec(select(func.count()).select_from(base.subquery())).one()
    if not count:
        return None
    offset = min(count - 1, max(0, int(round(share * count + 0.5)) - 1))
    return int(session.exec(base.order_by(Attempt.duration_ms).offset(offset).limit(1)).one())


def headline(*, session: Session, since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """The numbers `stats` prints and the Metrics page shows above its charts."""
    succeeded = func.sum(cast(Attempt.status == AttemptStatus.succeeded, Integer))
    failed = func.sum(cast(Attempt.status != AttemptStatus.succeeded, Integer))
    row = session.exec(
        _window(
            select(
                func.count(), func.coalesce(succeeded, 0), func.coalesce(failed, 0),
                func.coalesce(func.sum(Attempt.cost_usd), 0.0),
                func.coalesce(func.sum(cast(Attempt.cache_hit, Integer)), 0),
            ).where(col(Attempt.status).in_(FINISHED)),
            since,
            until,
        )
    ).one()
    attempts, ok, bad, spend, cache_hits = int(row[0]), int(row[1]), int(row[2]), float(row[3]), int(row[4])
    approved_q = select(func.count()).select_from(Publication).where(
        col(Publication.candidate_id).is_not(None)
    )
    if since is not None:
        approved_q = approved_q.where(Publication.published_at >= since)
    if until is not None:
        approved_q = approved_q.where(Publication.published_at < until)
    approved = int(session.exec(approved_q).one())
    return {
        "attempts": attempts,
        "succeeded": ok,
        "failed": bad,
        "success_rate": round(ok / attempts, 4) if attempts else None,
        "p50_ms": _percentile(session, since, until, 0.50),
        "p95_ms": _percentile(session, since, until, 0.95),
        "spend_usd": round(spend, 6),
        "cache_hits": cache_hits,
        "approved": approved,
        "cost_per_approved_usd": round(spend / approved, 6) if approved else None,
        "storage_bytes": storage_bytes(session=session),
    }


def storage_bytes(*, session: Session) -> int:
    """Bytes on disk: candidate files (a cache hit shares its source's file) plus published files."""
    candidates = session.exec(
        select(func.coalesce(func.sum(Candidate.bytes), 0)).where(col(Candidate.cache_hit).is_(False))
    ).one()
    published = session.exec(select(func.coalesce(func.sum(Publication.bytes), 0))).one()
    return int(candidates) + int(published)


def daily(*, session: Session, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """Attempts, successes, spend and mean time per UTC day."""
    day = func.date(Attempt.started_at)
    query = _window(
        select(
            day.label("day"),
            func.count().label("attempts"),
            func.sum(case((Attempt.status == AttemptStatus.succeeded, 1), else_=0)).label("succeeded"),
            func.sum(Attempt.cost_usd).label("spend_usd"),
            func.avg(Attempt.duration_ms).label("mean_ms"),
        ).where(col(Attempt.status).in_(FINISHED)),
        since,
        until,
    ).group_by(day).order_by(day)
    frame = pd.DataFrame(session.exec(query).all(), columns=["day", "attempts", "succeeded", "spend_usd", "mean_ms"])
    if not frame.empty:
        frame["success_rate"] = frame["succeeded"] / frame["attempts"]
    return frame


def failures_by_kind(*, session: Session, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    query = _window(
        select(Attempt.error_kind, func.count().label("n"))
        .where(Attempt.status == AttemptStatus.failed, col(Attempt.error_kind).is_not(None)),
        since,
        until,
    ).group_by(Attempt.error_kind).order_by(func.count().desc())
    return pd.DataFrame(session.exec(query).all(), columns=["error_kind", "n"])


def review_counts(*, session: Session) -> dict[str, int]:
    rows = session.exec(select(Candidate.state, func.count()).group_by(Candidate.state)).all()
    counts = {s.value: 0 for s in CandidateState}
    counts.update({state: int(n) for state, n in rows})
    return counts


def overview(*, session: Session, now: datetime | None = None) -> dict[str, Any]:
    """The few numbers that matter today, for the Overview page."""
    from datetime import timedelta

    from .catalogue import status_counts
    from .models import utcnow

    now = now or utcnow()
    counts = status_counts(session=session)
    week = select(func.count()).select_from(Publication).where(Publication.published_at >= now - timedelta(days=7))
    pending_solutions = select(func.count(func.distinct(Candidate.solution_id))).where(
        Candidate.state == CandidateState.pending
    )
    return {
        "solutions": sum(counts.values()),
        "missing": counts["none"] + counts["placeholder"],
        "awaiting_review": int(session.exec(pending_solutions).one()),
        "published_week": int(session.exec(week).one()),
        "status_counts": counts,
    }
