"""Checking stored candidates again (`checks`): which candidates, a background job's share of them, and
the summary: how many were checked and how many each check flagged.

`inspections` runs the checks; this decides what to hand it. A job has one item per solution, holding
the solution's stored candidates made up to the job's start (`up_to`), so any number of workers share
the job and the Jobs page counts candidates.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from .checks import LABELS, NAMES
from .config import Settings
from .errors import UserError
from .inspections import Inspector, Outcome, stored_candidates
from .jobitems import Outcome as ItemOutcome
from .jobmodels import ItemStatus
from .models import Candidate, Solution


def require_enabled(settings: Settings) -> None:
    """Checking again with every check off would only wipe the verdicts kept: refused in one sentence."""
    if not settings.enabled_checks:
        raise UserError("Every automatic check is turned off; turn one on in Settings > Checks (or CHECKS_ENABLED).")


def known(session: Session, solution_ids: list[str]) -> list[str]:
    """The ids, each once, in order; an unknown one is refused in one sentence."""
    found = set(session.exec(select(Solution.id).where(col(Solution.id).in_(solution_ids))).all())
    if missing := [sid for sid in solution_ids if sid not in found]:
        raise UserError(f"There is no solution with id {missing[0]}; see `solutions` for the ids.")
    return list(dict.fromkeys(solution_ids))


def newest(session: Session) -> int:
    """The newest candidate's id (0 when there is none): a job checks candidates up to it."""
    return int(session.exec(select(func.coalesce(func.max(Candidate.id), 0))).one())


def per_solution(session: Session, solution_ids: list[str] | None, up_to: int) -> dict[str, int]:
    """{solution id: its stored candidates up to `up_to`}, solutions with none left out."""
    query = (
        select(Candidate.solution_id, func.count())
        .where(col(Candidate.deleted_at).is_(None), col(Candidate.id) <= up_to)
        .group_by(Candidate.solution_id)
        .order_by(Candidate.solution_id)
    )
    if solution_ids is not None:
        query = query.where(col(Candidate.solution_id).in_(solution_ids))
    return {sid: int(n) for sid, n in session.exec(query).all()}


def run_item(engine: Engine, inspector: Inspector, solution_id: str, up_to: int | None) -> ItemOutcome:
    """A job item: check one solution's stored candidates (those made up to the job's start) again."""
    with Session(engine) as session:
        ids = [c for c in stored_candidates(session, [solution_id]) if up_to is None or c <= up_to]
    outcomes = [future.result() for future in [inspector.submit(c) for c in ids]]
    problems = [o.problem for o in outcomes if o.problem]
    return ItemOutcome(
        ItemStatus.failed if problems else ItemStatus.succeeded,
        succeeded=len(outcomes) - len(problems),
        failed=len(problems),
        error=problems[0] if problems else None,
    )


def summary(settings: Settings, outcomes: list[Outcome]) -> dict[str, Any]:
    """What `checks` prints: candidates checked, those flagged by each check (by name), those with no
    flag, and the ones that could not be checked, each with its sentence."""
    checked = [o for o in outcomes if o.problem is None]
    counts = Counter(name for o in checked for name in o.flags)
    return {
        "checks": list(settings.enabled_checks),
        "checked": len(checked),
        "flagged": {name: counts[name] for name in NAMES if name in settings.enabled_checks},
        "no_flag": sum(not o.flags for o in checked),
        "not_checked": [{"candidate_id": o.candidate_id, "problem": o.problem} for o in outcomes if o.problem],
    }


def label(name: str) -> str:
    """A check's name in plain words."""
    return LABELS.get(name, name)
