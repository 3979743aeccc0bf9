"""Trying template versions against each other, and which version's images reviewers approve.

A trial runs two versions on the same sample of solutions through the normal pipeline, so every
call is budgeted, recorded and attributed to its version: Prompt Studio queues it as two generate
jobs for the workers (`start_trial`, one per version) and reads it back from them (`trial_of`). Its candidates are marked `Purpose.trial`:
Review keeps them apart from the main queue unless asked for them, and once reviewed they count
in the yield table like any other.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, cast, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import batch, jobs, pipeline
from .auth import Actor, require
from .budget import Estimate, budget_state
from .config import Settings, UserError
from .jobmodels import ACTIVE, JobItem
from .metrics import APPROVED_STATES, FINISHED, frame
from .models import Attempt, AttemptStatus, Candidate, CandidateState, Purpose, Solution
from .prompts import PromptError
from .templates import all_labels, version_refs
from .templates import resolve as resolve_template
from .wording import money

if TYPE_CHECKING:
    import pandas as pd

MAX_SAMPLE = 12
YIELD_COLUMNS = [
    "template",
    "labels",
    "attempts",
    "succeeded",
    "success_rate",
    "spend_usd",
    "candidates",
    "pending",
    "reviewed",
    "approved",
    "rolled_back",
    "approval_rate",
    "cost_per_approved_usd",
    "rejections",
]


# -- the yield table ---------------------------------------------------------------------------
def yield_table(*, session: Session, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """Per template version: attempts, success rate, approval rate of its candidates, rejection
    reasons and cost per approved image. Approved counts candidates a reviewer approved (live now,
    superseded later, or rolled back); reviewed adds every rejection, `not_chosen` included."""
    attempts = _attempt_figures(session, since, until)
    reviews = _candidate_figures(session, since, until)
    marks = all_labels(session=session)
    refs = list(dict.fromkeys([*version_refs(session=session), *sorted(set(attempts) | set(reviews))]))
    rows = []
    for ref in refs:
        tried, ok, spend = attempts.get(ref, (0, 0, 0.0))
        states = reviews.get(ref, {})
        rejections = {reason: n for (state, reason), n in states.items() if state == CandidateState.rejected}
        approved = sum(n for (state, _), n in states.items() if state in APPROVED_STATES)
        reviewed = approved + sum(rejections.values())
        rows.append(
            {
                "template": ref,
                "labels": ", ".join(marks.get(ref, [])),
                "attempts": tried,
                "succeeded": ok,
                "success_rate": ok / tried if tried else None,
                "spend_usd": round(spend, 6),
                "candidates": sum(states.values()),
                "pending": states.get((CandidateState.pending, None), 0),
                "reviewed": reviewed,
                "approved": approved,
                "rolled_back": sum(n for (state, _), n in states.items() if state == CandidateState.rolled_back),
                "approval_rate": approved / reviewed if reviewed else None,
                "cost_per_approved_usd": round(spend / approved, 6) if approved else None,
                "rejections": dict(sorted(rejections.items(), key=lambda kv: -kv[1])),
            }
        )
    return frame(rows, YIELD_COLUMNS)


def yield_readable(table: pd.DataFrame, reasons: dict[str, str]) -> pd.DataFrame:
    """The yield table as people read it: plain column names, money as money, rates as percentages,
    rejection reasons in words (`reasons` maps a reason key to its words)."""
    import pandas as pd

    def percent(value: float | None) -> str:
        return "—" if value is None or value != value else f"{value:.0%}"

    return pd.DataFrame(
        {
            "Template version": table["template"],
            "Labels": table["labels"],
            "Attempts": table["attempts"],
            "Success rate": table["success_rate"].map(percent),
            "Approval rate": table["approval_rate"].map(percent),
            "Per approved image": table["cost_per_approved_usd"].map(money),
            "Reviewed": table["reviewed"],
            "Approved": table["approved"],
            "Awaiting review": table["pending"],
            "Spent": table["spend_usd"].map(money),
            "Rejection reasons": table["rejections"].map(
                lambda found: ", ".join(f"{reasons.get(k, k)} {n}" for k, n in found.items())
            ),
        }
    )


def _attempt_figures(session: Session, since: datetime | None, until: datetime | None) -> dict[str, tuple]:
    query = select(
        Attempt.template_ref,
        func.count(),
        func.coalesce(func.sum(cast(Attempt.status == AttemptStatus.succeeded, Integer)), 0),
        func.coalesce(func.sum(Attempt.cost_usd), 0.0),
    ).where(col(Attempt.status).in_(FINISHED))
    if since is not None:
        query = query.where(Attempt.started_at >= since)
    if until is not None:
        query = query.where(Attempt.started_at < until)
    rows = session.exec(query.group_by(Attempt.template_ref)).all()
    return {ref: (int(n), int(ok), float(spend)) for ref, n, ok, spend in rows}


def _candidate_figures(session: Session, since: datetime | None, until: datetime | None) -> dict[str, dict]:
    query = select(Candidate.template_ref, Candidate.state, Candidate.reject_reason, func.count()).where(
        Candidate.source == "generated"
    )
    if since is not None:
        query = query.where(Candidate.created_at >= since)
    if until is not None:
        query = query.where(Candidate.created_at < until)
    query = query.group_by(Candidate.template_ref, Candidate.state, Candidate.reject_reason)
    figures: dict[str, dict] = {}
    for ref, state, reason, n in session.exec(query).all():
        key = (state, reason if state == CandidateState.rejected else None)
        figures.setdefault(ref, {})
        figures[ref][key] = figures[ref].get(key, 0) + int(n)
    return figures


# -- try it ------------------------------------------------------------------------------------
@dataclass
class Trial:
    """Two template versions run on the same solutions: results[ref][solution_id]."""

    refs: tuple[str, str]
    solution_ids: list[str]
    provider: str
    results: dict[str, dict[str, pipeline.GenerationResult]] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)


def sample_solutions(*, session: Session, size: int, category: str | None = None, seed: int = 0) -> list[str]:
    """A repeatable random sample of solution ids (optionally of one category)."""
    query = select(Solution.id)
    if category:
        query = query.where(Solution.category == category)
    ids = list(session.exec(query.order_by(Solution.id)).all())
    return random.Random(seed).sample(ids, min(max(size, 0), len(ids)))


def check_trial(*, session: Session, actor: Actor, refs: tuple[str, str], solution_ids: list[str]) -> tuple[str, str]:
    """Both versions pinned as name@version, and a sample of sensible size; else one clear sentence."""
    require(actor, "edit_templates")
    if not solution_ids:
        raise PromptError("Choose at least one solution to try the templates on.")
    if len(solution_ids) > MAX_SAMPLE:
        raise PromptError(f"Try at most {MAX_SAMPLE} solutions at a time.")
    pinned = tuple(resolve_template(session=session, ref=ref).ref for ref in refs)
    if pinned[0] == pinned[1]:
        raise PromptError(f"Both sides are {pinned[0]}; choose two different versions to compare.")
    return pinned  # type: ignore[return-value]


def _options(actor: Actor, provider: str, ref: str, quality: str | None) -> pipeline.GenerateOptions:
    return pipeline.GenerateOptions(
        provider=provider,
        template=ref,
        quality=quality,
        candidates=1,
        use_cache=True,
        actor=actor,
        purpose=Purpose.trial,
    )


def estimate_trial(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    refs: tuple[str, str],
    solution_ids: list[str],
    provider: str,
    quality: str | None = None,
) -> Estimate:
    """Paid calls and dollars the trial is expected to take, against what the budget has left."""
    with Session(engine) as session:
        refs = check_trial(session=session, actor=actor, refs=refs, solution_ids=solution_ids)
        left = budget_state(session=session, settings=settings).left
    first, second = (
        batch.estimate_batch(engine, settings, solution_ids, _options(actor, provider, ref, quality)) for ref in refs
    )
    return dataclasses.replace(first + second, budget_left_usd=left)


def start_trial(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    refs: tuple[str, str],
    solution_ids: list[str],
    provider: str,
    quality: str | None = None,
) -> list[int]:
    """Queue the trial for the workers: one generate job per version (purpose trial); their ids, A's first."""
    with Session(engine) as session:
        refs = check_trial(session=session, actor=actor, refs=refs, solution_ids=solution_ids)
    ids = list(dict.fromkeys(solution_ids))
    first = jobs.enqueue_generate(engine, settings, ids, _options(actor, provider, refs[0], quality))
    try:
        second = jobs.enqueue_generate(engine, settings, ids, _options(actor, provider, refs[1], quality))
    except UserError:
        jobs.cancel(engine, first.id, actor=actor)  # half a trial compares nothing
        raise
    return [first.id, second.id]


def trial_of(*, session: Session, job_ids: list[int]) -> Trial:
    """The trial its two jobs (from `start_trial`) have made so far, ready for `comparison`."""
    found = [jobs.get(session=session, job_id=job_id) for job_id in job_ids]
    if len(found) != 2 or any(job.options.get("purpose") != Purpose.trial for job in found):
        raise PromptError(f"Jobs {', '.join(map(str, job_ids))} are not a Prompt Studio trial.")
    items = select(JobItem.solution_id).where(JobItem.job_id == found[0].id).order_by(col(JobItem.id))
    trial = Trial(
        refs=(found[0].options["template"], found[1].options["template"]),
        solution_ids=[sid for sid in session.exec(items).all() if sid],
        provider=found[0].options["provider"],
    )
    for ref, job in zip(trial.refs, found, strict=True):
        trial.results[ref] = {r.solution_id: r for r in jobs.results(session=session, job=job)}
        trial.summaries[ref] = {"succeeded": job.succeeded, "failed": job.failed, "cost_usd": job.cost_usd}
    return trial


def trial_ended(*, session: Session, job_ids: list[int]) -> bool:
    """Whether both of the trial's jobs have ended (done, failed or stopped)."""
    return all(jobs.get(session=session, job_id=job_id).status not in ACTIVE for job_id in job_ids)


def run_trial(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    refs: tuple[str, str],
    solution_ids: list[str],
    provider: str,
    quality: str | None = None,
    progress: Callable[[int, int, pipeline.GenerationResult], None] | None = None,
) -> Trial:
    """Generate one candidate per solution with each version here, in the foreground (the cache reuses
    identical requests); Prompt Studio queues its trials as jobs instead (`start_trial`)."""
    with Session(engine) as session:
        refs = check_trial(session=session, actor=actor, refs=refs, solution_ids=solution_ids)
    trial = Trial(refs=refs, solution_ids=list(dict.fromkeys(solution_ids)), provider=provider)
    total, done = 2 * len(trial.solution_ids), 0

    def step(_done: int, _total: int, result: pipeline.GenerationResult) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, result)

    for ref in refs:
        results, summary = batch.run_batch(
            engine, settings, trial.solution_ids, _options(actor, provider, ref, quality), progress=step
        )
        trial.results[ref] = {r.solution_id: r for r in results}
        trial.summaries[ref] = summary
    return trial


def comparison(*, session: Session, trial: Trial) -> list[dict[str, Any]]:
    """One row per solution: its title and category, and per version the candidate (or the failure)."""
    ids = [r.candidate_id for per in trial.results.values() for r in per.values() if r.candidate_id]
    candidates = (
        {c.id: c for c in session.exec(select(Candidate).where(col(Candidate.id).in_(ids))).all()} if ids else {}
    )
    solutions = {s.id: s for s in session.exec(select(Solution).where(col(Solution.id).in_(trial.solution_ids))).all()}
    rows = []
    for sid in trial.solution_ids:
        solution = solutions.get(sid)
        row: dict[str, Any] = {
            "solution_id": sid,
            "title": solution.title if solution else sid,
            "category": solution.category if solution else "",
            "sides": {},
        }
        for ref in trial.refs:
            result = trial.results.get(ref, {}).get(sid)
            candidate = candidates.get(result.candidate_id) if result and result.candidate_id else None
            row["sides"][ref] = {
                "thumb_path": candidate.thumb_path if candidate else None,
                "candidate_id": candidate.id if candidate else None,
                "cost_usd": result.cost_usd if result else 0.0,
                "cache_hit": bool(result and result.cache_hit),
                "error": (result.error or result.error_kind) if result and result.status == "failed" else None,
            }
        rows.append(row)
    return rows
