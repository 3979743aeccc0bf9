"""The review queue: solutions whose candidates await a decision, filtered, sorted and paged in SQL.

A solution is in the queue while it has a pending candidate that matches the candidate filters
(model, template version, run, purpose, the automatic checks' flags); the solution filters (text,
category) narrow it further. Prompt Studio's trial candidates are left out unless asked for (`QueueFilter.purpose`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import checks, review
from .auth import Actor, require
from .catalogue import solution_filter
from .config import Settings, UserError
from .db import lock_solution, session_scope
from .deliveries import deliver_waiting
from .models import Attempt, Candidate, CandidateState, Purpose, Solution

log = logging.getLogger(__name__)

SORTS = {
    "oldest": "Oldest first",  # the longest waiting: the default
    "newest": "Newest first",
    "most": "Most candidates",
    "title": "Title",
    "flagged": "Flagged first",  # a blocking flag, then a caution (duplicate), then the rest; oldest first in each
    "unflagged": "Unflagged first",  # a candidate that passed every check, then unchecked ones, then flagged
}
PURPOSES = {Purpose.regular: "Regular", Purpose.trial: "Prompt Studio trials", None: "Both"}
FLAGS: dict[str, str] = dict(checks.LABELS)  # what the automatic checks flag, in plain words
# What the check filter offers (QueueFilter.checks): a candidate's verdict as a whole, or one flag.
CHECK_FILTERS: dict[str, str] = {
    "all": "All",
    "flagged": "Flagged",
    "unflagged": "Not flagged",  # checked, and no check raised a flag
    "unchecked": "Not checked yet",
    **FLAGS,
}


@dataclass(frozen=True)
class QueueFilter:
    text: str = ""  # in title or description (or the exact id)
    category: str | None = None
    model: str | None = None
    template: str | None = None  # a template version, e.g. default@2
    batch: str | None = None  # one generation run (Generate's "Review the new candidates")
    purpose: str | None = Purpose.regular  # None: regular and trial candidates alike
    flags: tuple[str, ...] = ()  # candidates flagged by any of these checks
    checks: str = "all"  # one of CHECK_FILTERS


@dataclass(frozen=True)
class QueueRow:
    solution: Solution
    candidates: int  # pending ones that match the filter
    since: datetime  # when the oldest of them was made
    flagged: int = 0  # how many of them an automatic check flagged


@dataclass(frozen=True)
class Place:
    """Where a solution sits in the queue (index from 0), and its neighbours."""

    index: int | None
    previous: str | None
    next: str | None


def _candidate_clauses(filters: QueueFilter) -> list[Any]:
    clauses: list[Any] = [Candidate.state == CandidateState.pending]
    if filters.purpose is not None:
        clauses.append(Candidate.purpose == filters.purpose)
    if filters.model:
        clauses.append(Candidate.model == filters.model)
    if filters.template:
        clauses.append(Candidate.template_ref == filters.template)
    if filters.batch:  # a cache hit's candidate is found through the attempt of this run that served it
        run = select(Attempt.candidate_id).where(Attempt.batch_id == filters.batch)
        clauses.append(col(Candidate.id).in_(run))
    if filters.flags:
        clauses.append(_flagged(filters.flags))
    if filters.checks != "all":
        clauses.append(_verdict(filters.checks))
    return clauses


def _flagged(flags: tuple[str, ...] | list[str]) -> Any:
    """Candidates flagged by any of these checks (`flags` holds each name with a space on both sides)."""
    return or_(*(col(Candidate.flags).contains(f" {name} ", autoescape=True) for name in flags))


def _verdict(choice: str) -> Any:
    """The candidates a check filter keeps (see CHECK_FILTERS)."""
    if choice == "flagged":
        return Candidate.flags != ""
    if choice == "unflagged":
        return and_(col(Candidate.checked_at).is_not(None), Candidate.flags == "")
    if choice == "unchecked":
        return col(Candidate.checked_at).is_(None)
    if choice in FLAGS:
        return _flagged([choice])
    raise review.ReviewError(f"Filter the checks by one of: {', '.join(CHECK_FILTERS)} (got '{choice}').")


def _waiting(filters: QueueFilter) -> Any:
    """Per solution: how many matching candidates wait, the oldest and the newest of them, and how many
    of them a check flagged (any flag, a blocking one) or passed."""
    return (
        select(
            Candidate.solution_id,
            func.count().label("n"),
            func.min(Candidate.created_at).label("since"),
            func.max(Candidate.created_at).label("latest"),
            func.sum(case((Candidate.flags != "", 1), else_=0)).label("flagged"),
            func.sum(case((_flagged(checks.BLOCKING), 1), else_=0)).label("blocking"),
            func.sum(case((_verdict("unflagged"), 1), else_=0)).label("passed"),
        )
        .where(*_candidate_clauses(filters))
        .group_by(Candidate.solution_id)
        .subquery()
    )


def _queue(filters: QueueFilter, sort: str, *columns: Any) -> tuple[Any, list[Any]]:
    """SELECT `columns` of the queue's solutions (the waiting figures as `waiting`), and its ORDER BY."""
    if sort not in SORTS:
        raise review.ReviewError(f"Sort the queue by one of: {', '.join(SORTS)} (got '{sort}').")
    waiting = _waiting(filters)
    query = (
        select(*[waiting.c[c] if isinstance(c, str) else c for c in columns])
        .join_from(Solution, waiting, waiting.c.solution_id == Solution.id)
        .where(*solution_filter(category=filters.category, text=filters.text))
    )
    order = {
        "oldest": [waiting.c.since, Solution.id],
        "newest": [waiting.c.latest.desc(), Solution.id],
        "most": [waiting.c.n.desc(), waiting.c.since, Solution.id],
        "title": [func.lower(Solution.title), Solution.id],
        "flagged": [_last(waiting.c.blocking == 0), _last(waiting.c.flagged == 0), waiting.c.since, Solution.id],
        "unflagged": [_last(waiting.c.passed == 0), _last(waiting.c.blocking > 0), waiting.c.since, Solution.id],
    }[sort]
    return query, order


def _last(condition: Any) -> Any:
    """An ORDER BY key that puts the solutions meeting `condition` after the others."""
    return case((condition, 1), else_=0)


def page(
    *, session: Session, filters: QueueFilter = QueueFilter(), sort: str = "oldest", offset: int = 0, limit: int = 30
) -> list[QueueRow]:
    query, order = _queue(filters, sort, Solution, "n", "since", "flagged")
    rows = session.exec(query.order_by(*order).offset(offset).limit(limit)).all()
    return [QueueRow(solution, int(n), since, int(flagged or 0)) for solution, n, since, flagged in rows]


def count(*, session: Session, filters: QueueFilter = QueueFilter()) -> int:
    query, _ = _queue(filters, "oldest", Solution.id)
    return int(session.exec(select(func.count()).select_from(query.subquery())).one())


def locate(
    *, session: Session, solution_id: str | None, filters: QueueFilter = QueueFilter(), sort: str = "oldest"
) -> Place:
    """The solution's place in the queue and the ones before and after it (one window query)."""
    if solution_id is None:
        return Place(None, None, None)
    query, order = _queue(filters, sort, Solution.id)
    ranked = query.add_columns(
        func.row_number().over(order_by=order).label("rn"),
        func.lag(Solution.id).over(order_by=order).label("previous"),
        func.lead(Solution.id).over(order_by=order).label("next"),
    ).subquery()
    found = session.exec(
        select(ranked.c.rn, ranked.c.previous, ranked.c.next).where(ranked.c.id == solution_id)
    ).first()
    if found is None:
        return Place(None, None, None)
    rank, previous, following = found
    return Place(int(rank) - 1, previous, following)


@dataclass(frozen=True)
class View:
    """The queue as a reviewer sees it: its size, the trials kept out of it, and whom to show."""

    total: int
    trials_apart: int  # solutions with trial candidates matching the filter, when it shows regular ones
    current: str | None
    place: Place


def view(*, session: Session, filters: QueueFilter, sort: str, current: str | None) -> View:
    """`current` while it is in this view, else the first solution of it (None: nothing waits)."""
    total = count(session=session, filters=filters)
    trials = replace(filters, purpose=Purpose.trial)
    apart = count(session=session, filters=trials) if filters.purpose == Purpose.regular else 0
    place = locate(session=session, solution_id=current, filters=filters, sort=sort)
    if place.index is None:
        first = page(session=session, filters=filters, sort=sort, limit=1)
        current = first[0].solution.id if first else None
        place = locate(session=session, solution_id=current, filters=filters, sort=sort)
    return View(total, apart, current, place)


def candidates(*, session: Session, solution_id: str, filters: QueueFilter = QueueFilter()) -> list[Candidate]:
    """The solution's pending candidates that match the filter, in the order they were made (1, 2, 3…)."""
    query = select(Candidate).where(Candidate.solution_id == solution_id, *_candidate_clauses(filters))
    return list(session.exec(query.order_by(Candidate.id)).all())


def choices(*, session: Session, purpose: str | None = Purpose.regular) -> dict[str, list[str]]:
    """What the filters can offer: the categories, models and template versions of what waits."""
    waiting = _candidate_clauses(QueueFilter(purpose=purpose))
    in_queue = select(Candidate.solution_id).where(*waiting)
    categories = select(Solution.category).where(col(Solution.id).in_(in_queue)).distinct()
    return {
        "categories": sorted(session.exec(categories).all()),
        "models": sorted(m for m in session.exec(select(Candidate.model).where(*waiting).distinct()).all() if m),
        "templates": sorted(t for t in session.exec(select(Candidate.template_ref).where(*waiting).distinct()).all()),
        "flags": sorted(FLAGS),
    }


# -- bulk approval --------------------------------------------------------------------------------
@dataclass
class BulkApproval:
    approved: list[str] = field(default_factory=list)  # solution ids
    failed: dict[str, str] = field(default_factory=dict)  # solution id -> one sentence

    @property
    def done(self) -> int:
        return len(self.approved) + len(self.failed)


UNEXPECTED = "An unexpected error stopped it; the server log has the details."


def approve_first(
    engine: Engine,
    settings: Settings,
    solution_ids: list[str],
    *,
    actor: Actor,
    filters: QueueFilter = QueueFilter(),
    progress: Callable[[int, int], None] | None = None,
) -> BulkApproval:
    """Approve each solution's first candidate (as Review shows them), each in its own transaction.

    A solution that cannot be approved is reported in one sentence; the others still go.
    """
    require(actor, "review")
    outcome, ids = BulkApproval(), list(dict.fromkeys(solution_ids))
    for sid in ids:
        try:
            _approve_first(engine, settings, sid, actor, filters)
            outcome.approved.append(sid)
        except UserError as exc:
            outcome.failed[sid] = str(exc)
        except Exception:  # noqa: BLE001 - one solution's surprise must not stop the others
            log.exception("Bulk approval of %s failed", sid)
            outcome.failed[sid] = UNEXPECTED
        if progress:
            progress(outcome.done, len(ids))
    deliver_waiting(engine, settings)  # the marketplace rows show them now, or the outbox keeps them
    return outcome


def _approve_first(engine: Engine, settings: Settings, solution_id: str, actor: Actor, filters: QueueFilter) -> None:
    with session_scope(engine, write=True) as session:
        lock_solution(session, solution_id)  # what waits is read after anyone else's decision on it
        title = session.exec(select(Solution.title).where(Solution.id == solution_id)).first()
        if title is None:
            raise review.ReviewError(f"There is no solution {solution_id}.")
        first = next(iter(candidates(session=session, solution_id=solution_id, filters=filters)), None)
        if first is None:
            raise review.ReviewError(f"{title} has no candidate waiting for review any more.")
        review.approve(session=session, settings=settings, candidate_id=first.id, actor=actor)
        session.commit()
