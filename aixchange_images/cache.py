"""The cache: an identical earlier request's image serves a new one at $0.

A request's identity is its `request_key` (provider, model, size, quality, format, prompt, variant,
and for a refine the image it changes); a success's image may be served again while it is kept and
was never turned down.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from .models import Attempt, AttemptStatus, Candidate, CandidateState, Purpose

_LIVE = (CandidateState.pending, CandidateState.approved)
# Fields a served copy takes from its source; the rest (review state, its own solution, cost) are its own.
_OWN = {
    "id",
    "state",
    "reject_reason",
    "reject_note",
    "reviewed_at",
    "reviewed_by",
    "created_at",
    "solution_id",
    "cost_usd",
    "template_ref",
    "purpose",
    "checked_at",  # a copy is checked for itself: it may look like the solution it was copied from
    "flags",
}


def cached_sources(keys: list[str]) -> Any:
    """(candidate, request key) for the images earlier successful requests with these keys made, not
    cleaned up and never turned down (rejected or rolled back): what the cache may serve."""
    return (
        select(Candidate, Attempt.request_key)
        .join(Attempt, Attempt.candidate_id == Candidate.id)
        .where(
            col(Attempt.request_key).in_(keys),
            Attempt.status == AttemptStatus.succeeded,
            col(Candidate.deleted_at).is_(None),
            col(Candidate.state).not_in((CandidateState.rejected, CandidateState.rolled_back)),
        )
    )


def reusable(source: Candidate, solution_id: str) -> bool:
    """A cached image may serve another solution; for its own only while waiting or published, so a
    replaced image never comes back."""
    return source.solution_id != solution_id or source.state in _LIVE


def serve(session: Session, attempt: Attempt, kept: Any) -> Candidate | None:
    """The candidate that serves `attempt` from the cache, added to the session (a new one for another
    solution, the same one for its own), with the attempt marked a $0 success; None on a miss.
    `kept(candidate)` says whether its file is still on disk."""
    sources = session.exec(cached_sources([attempt.request_key]).order_by(col(Attempt.id).desc())).all()
    source = next((c for c, _ in sources if reusable(c, attempt.solution_id) and kept(c)), None)
    if source is None:
        return None
    if source.solution_id == attempt.solution_id:
        candidate = source  # the same image is already waiting or published: nothing new to keep
        if candidate.state == CandidateState.pending and attempt.purpose == Purpose.regular:
            candidate.purpose = Purpose.regular  # a trial's image asked for by a real run joins the queue
            session.add(candidate)
    else:
        candidate = Candidate(
            **source.model_dump(exclude=_OWN),
            solution_id=attempt.solution_id,
            purpose=attempt.purpose,
            cost_usd=0.0,
            template_ref=attempt.template_ref,
        )
        candidate.cache_hit = True
        session.add(candidate)
        session.flush()
    origin = session.get(Attempt, source.attempt_id) if source.attempt_id else None
    attempt.cache_hit, attempt.cost_source, attempt.bytes = True, "cache", candidate.bytes
    attempt.saved_usd = origin.cost_usd if origin is not None else 0.0
    attempt.candidate_id = candidate.id
    return candidate
