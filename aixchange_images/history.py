"""One solution's image story for its page: its candidates, what was published and rolled back, and
what the marketplace was sent; reachable whether or not anything waits for review."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from .deliveries import conflicts
from .models import PLACEHOLDER_URL, Attempt, Candidate, Delivery, Publication, Solution

MAX_CANDIDATES = 60  # the newest; a solution regenerated for years keeps the rest in the database
MAX_DELIVERIES = 10


@dataclass
class SolutionHistory:
    solution: Solution
    candidates: list[Candidate]  # newest first
    candidate_total: int
    attempts: dict[int, Attempt]  # by candidate id: the call that made each one
    publications: list[Publication]  # newest first
    deliveries: list[Delivery]  # newest first
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def live(self) -> Publication | None:
        return next((p for p in self.publications if p.active), None)

    @property
    def thumbs(self) -> dict[int, str]:
        return {c.id: c.thumb_path for c in self.candidates if c.id is not None}


def solution_history(*, session: Session, solution_id: str) -> SolutionHistory | None:
    solution = session.get(Solution, solution_id)
    if solution is None:
        return None
    newest = select(Candidate).where(Candidate.solution_id == solution_id).order_by(col(Candidate.id).desc())
    made = list(session.exec(newest.limit(MAX_CANDIDATES)).all())
    total = select(func.count()).select_from(Candidate).where(Candidate.solution_id == solution_id)
    return SolutionHistory(
        solution=solution,
        candidates=made,
        candidate_total=int(session.exec(total).one()),
        attempts=_attempts(session, made),
        publications=list(
            session.exec(
                select(Publication).where(Publication.solution_id == solution_id).order_by(col(Publication.id).desc())
            ).all()
        ),
        deliveries=list(
            session.exec(
                select(Delivery)
                .where(Delivery.solution_id == solution_id)
                .order_by(col(Delivery.id).desc())
                .limit(MAX_DELIVERIES)
            ).all()
        ),
        conflicts=conflicts(session=session, solution_id=solution_id),
    )


def _attempts(session: Session, candidates: list[Candidate]) -> dict[int, Attempt]:
    ids = [c.attempt_id for c in candidates if c.attempt_id]
    if not ids:
        return {}
    by_id = {a.id: a for a in session.exec(select(Attempt).where(col(Attempt.id).in_(ids))).all()}
    return {c.id: by_id[c.attempt_id] for c in candidates if c.attempt_id in by_id and c.id is not None}


def leaves_no_image(publication: Publication) -> bool:
    """Whether rolling this publication back leaves the card without a real image."""
    return publication.previous_image_url in (None, "", PLACEHOLDER_URL)
