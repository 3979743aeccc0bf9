"""A solution's candidates as the `candidates` command lists them, and a refined candidate's lineage."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from . import inspections
from .errors import UserError
from .models import Attempt, Candidate, Solution

LINEAGE_DEPTH = 50  # a chain longer than this is cut (a refine of a refine of ...)


def listing(*, session: Session, solution_id: str) -> list[dict[str, Any]]:
    """Every candidate of the solution, newest first, with what made it and what the automatic checks
    found (`flags`, `checked_at`, `checks`: every candidate's verdicts read in one query)."""
    if session.get(Solution, solution_id) is None:
        raise UserError(f"There is no solution with id {solution_id}; see `solutions` for the ids.")
    rows = session.exec(
        select(Candidate, Attempt.provider)  # candidates made before they recorded their provider: the attempt's
        .outerjoin(Attempt, Attempt.id == Candidate.attempt_id)
        .where(Candidate.solution_id == solution_id)
        .order_by(col(Candidate.id).desc())
    ).all()
    found = inspections.verdicts(session, [c.id for c, _ in rows if c.id is not None])
    return [
        {
            "id": c.id,
            "status": c.state,
            "provider": c.provider or provider or None,
            "model": c.model or None,
            "cost_usd": round(c.cost_usd, 6),
            "parent_id": c.parent_id,
            "instruction": c.instruction,
            "path": c.file_path,
            **inspections.as_json(c, found.get(c.id or 0, [])),
            "created_at": c.created_at,
        }
        for c, provider in rows
    ]


def lineage(*, session: Session, candidate: Candidate) -> list[Candidate]:
    """The candidates this one was refined from, its parent first and the original last."""
    chain: list[Candidate] = []
    seen = {candidate.id}
    parent_id = candidate.parent_id
    while parent_id is not None and parent_id not in seen and len(chain) < LINEAGE_DEPTH:
        parent = session.get(Candidate, parent_id)
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.id)
        parent_id = parent.parent_id
    return chain


def family_order(shown: list[Candidate]) -> list[Candidate]:
    """Candidates in the order made, each refinement right after the one it was refined from (when
    that one is shown too), so a child appears next to its parent."""
    ids = {c.id for c in shown}
    children: dict[int | None, list[Candidate]] = {}
    for c in sorted(shown, key=lambda c: c.id or 0):
        children.setdefault(c.parent_id if c.parent_id in ids else None, []).append(c)
    ordered: list[Candidate] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        c = stack.pop()
        ordered.append(c)
        stack.extend(reversed(children.get(c.id, [])))
    return ordered


def lineage_text(candidate: Candidate, chain: list[Candidate]) -> str | None:
    """`Refined from #12: 'make it warmer'`, then each earlier step; None for an original. Plain text:
    a page shows it through `ui.literal`."""
    if candidate.parent_id is None:
        return None
    steps = [f"Refined from #{candidate.parent_id}: '{candidate.instruction or ''}'"]
    steps += [f"#{c.id} from #{c.parent_id}: '{c.instruction or ''}'" for c in chain if c.parent_id is not None]
    return " ← ".join(steps)
