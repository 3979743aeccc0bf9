"""Trying two sides against each other: template versions, providers or models, on the same solutions.

A trial runs each side (a template version with a provider and a model) on the same sample of
solutions through the normal pipeline, so every call is budgeted, recorded and attributed to its
version, provider and model: Prompt Studio queues it as two generate jobs for the workers
(`start_trial`, one per side) and reads it back from them (`trial_of`). Its candidates are marked
`Purpose.trial`: Review keeps them apart from the main queue unless asked for them, and once
reviewed they count in the yield table (`yields`) like any other.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import batch, jobs, pipeline
from .auth import Actor, require
from .budget import Estimate
from .config import ConfigError, Settings, UserError
from .jobmodels import ACTIVE, JobItem
from .models import Candidate, Purpose, Solution
from .prompts import PromptError
from .provider_registry import get_provider, provider_names
from .templates import resolve as resolve_template
from .yields import yield_readable, yield_table  # noqa: F401  (their home before `yields`; callers still use these)

MAX_SAMPLE = 12


@dataclass(frozen=True)
class Side:
    """What one side of a trial runs: a template version with a provider and a model (None: the
    configured provider, or the provider's default model)."""

    template: str
    provider: str | None = None
    model: str | None = None

    def describe(self) -> str:
        return (
            f"{self.template} with {self.provider or 'the configured provider'} · {self.model or 'its default model'}"
        )


def pair(refs: tuple[str, str], provider: str | None = None, model: str | None = None) -> tuple[Side, Side]:
    """Two template versions on the same provider and model: the trial Prompt Studio started with."""
    return Side(refs[0], provider, model), Side(refs[1], provider, model)


def labels(sides: tuple[Side, Side]) -> tuple[str, str]:
    """What tells the two sides apart: the parts that differ (version, provider, model), in that order."""
    first, second = sides
    differ = [
        (a, b)
        for a, b in zip(
            (first.template, first.provider, first.model), (second.template, second.provider, second.model), strict=True
        )
        if a != b
    ]
    return " · ".join(str(a) for a, _ in differ), " · ".join(str(b) for _, b in differ)


@dataclass
class Trial:
    """Two sides run on the same solutions: results[label][solution_id], labelled by what differs."""

    sides: tuple[Side, Side]
    solution_ids: list[str]
    results: dict[str, dict[str, pipeline.GenerationResult]] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, str]:
        return labels(self.sides)

    @property
    def refs(self) -> tuple[str, str]:
        return self.sides[0].template, self.sides[1].template


def provider_problem(name: str, settings: Settings) -> str | None:
    """Why provider `name` cannot make images with these settings (one sentence), or None when it can."""
    try:
        provider = get_provider(name, settings)
    except UserError as error:
        return str(error)
    return provider.missing()


def providers_here(settings: Settings) -> dict[str, str | None]:
    """Every registered provider, with why it cannot run here (None: it can), free ones first."""
    problems = {name: provider_problem(name, settings) for name in provider_names()}
    free = [name for name, problem in problems.items() if problem is None and not get_provider(name, settings).paid]
    return {name: problems[name] for name in [*free, *(n for n in problems if n not in free)]}


def sample_solutions(*, session: Session, size: int, category: str | None = None, seed: int = 0) -> list[str]:
    """A repeatable random sample of solution ids (optionally of one category)."""
    query = select(Solution.id)
    if category:
        query = query.where(Solution.category == category)
    ids = list(session.exec(query.order_by(Solution.id)).all())
    return random.Random(seed).sample(ids, min(max(size, 0), len(ids)))


def check_trial(
    *, session: Session, settings: Settings, actor: Actor, sides: tuple[Side, Side], solution_ids: list[str]
) -> tuple[Side, Side]:
    """Both sides pinned (name@version, a configured provider, its model) and different, and a
    sample of sensible size; else one clear sentence."""
    require(actor, "edit_templates")
    if not solution_ids:
        raise PromptError("Choose at least one solution to try the templates on.")
    if len(solution_ids) > MAX_SAMPLE:
        raise PromptError(f"Try at most {MAX_SAMPLE} solutions at a time.")
    pinned = tuple(_pin(session, settings, actor, side) for side in sides)
    if pinned[0] == pinned[1]:
        raise PromptError(
            f"Both sides are {pinned[0].describe()}; choose two different versions, providers or models to compare."
        )
    return pinned  # type: ignore[return-value]


def _pin(session: Session, settings: Settings, actor: Actor, side: Side) -> Side:
    """The side as it will run: its version pinned, the configured provider and its model named."""
    template = resolve_template(session=session, ref=side.template).ref
    plan = pipeline.make_plan(settings, _options(actor, Side(template, side.provider, side.model), None))
    if problem := provider_problem(plan.provider.name, settings):
        raise ConfigError(problem)
    return Side(template, plan.provider.name, plan.model)


def _options(actor: Actor, side: Side, quality: str | None) -> pipeline.GenerateOptions:
    return pipeline.GenerateOptions(
        provider=side.provider,
        model=side.model,
        template=side.template,
        quality=quality,
        candidates=1,
        use_cache=True,
        actor=actor,
        purpose=Purpose.trial,
    )


def _asked(sides: tuple[Side, Side] | None, refs: tuple[str, str] | None, provider: str | None) -> tuple[Side, Side]:
    """The sides asked for: given, or two versions on one provider (`refs`, `provider`)."""
    if sides is not None:
        return sides
    if refs is None:
        raise PromptError("Choose the two sides of the trial.")
    return pair(refs, provider)


def _checked(
    engine: Engine, settings: Settings, actor: Actor, ids: list[str], sides: tuple[Side, Side]
) -> tuple[Side, Side]:
    with Session(engine) as session:
        return check_trial(session=session, settings=settings, actor=actor, sides=sides, solution_ids=ids)


def estimate_sides(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    solution_ids: list[str],
    sides: tuple[Side, Side],
    quality: str | None = None,
) -> list[tuple[str, Side, Estimate]]:
    """Each side's estimate before the trial runs: (its label, the side pinned, its batch's estimate)."""
    pinned = _checked(engine, settings, actor, solution_ids, sides)
    return [
        (label, side, batch.estimate_batch(engine, settings, solution_ids, _options(actor, side, quality)))
        for label, side in zip(labels(pinned), pinned, strict=True)
    ]


def estimate_total(parts: list[Estimate]) -> Estimate:
    """The sides' estimates added up against the one budget they share."""
    first, second = parts
    return first + second


def estimate_trial(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    solution_ids: list[str],
    sides: tuple[Side, Side] | None = None,
    refs: tuple[str, str] | None = None,
    provider: str | None = None,
    quality: str | None = None,
) -> Estimate:
    """Paid calls and dollars the whole trial is expected to take, against what the budget has left."""
    asked = _asked(sides, refs, provider)
    found = estimate_sides(engine, settings, actor=actor, solution_ids=solution_ids, sides=asked, quality=quality)
    return estimate_total([part for *_, part in found])


def start_trial(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    solution_ids: list[str],
    sides: tuple[Side, Side] | None = None,
    refs: tuple[str, str] | None = None,
    provider: str | None = None,
    quality: str | None = None,
) -> list[int]:
    """Queue the trial for the workers: one generate job per side (purpose trial); their ids, A's first."""
    pinned = _checked(engine, settings, actor, solution_ids, _asked(sides, refs, provider))
    ids = list(dict.fromkeys(solution_ids))
    first = jobs.enqueue_generate(engine, settings, ids, _options(actor, pinned[0], quality))
    try:
        second = jobs.enqueue_generate(engine, settings, ids, _options(actor, pinned[1], quality))
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
    sides = tuple(Side(job.options["template"], job.options.get("provider"), job.options.get("model")) for job in found)
    trial = Trial(sides=sides, solution_ids=[sid for sid in session.exec(items).all() if sid])  # type: ignore[arg-type]
    for label, job in zip(trial.labels, found, strict=True):
        trial.results[label] = {r.solution_id: r for r in jobs.results(session=session, job=job)}
        trial.summaries[label] = {"succeeded": job.succeeded, "failed": job.failed, "cost_usd": job.cost_usd}
    return trial


def trial_ended(*, session: Session, job_ids: list[int]) -> bool:
    """Whether both of the trial's jobs have ended (done, failed or stopped)."""
    return all(jobs.get(session=session, job_id=job_id).status not in ACTIVE for job_id in job_ids)


def run_trial(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    solution_ids: list[str],
    sides: tuple[Side, Side] | None = None,
    refs: tuple[str, str] | None = None,
    provider: str | None = None,
    quality: str | None = None,
    progress: Callable[[int, int, pipeline.GenerationResult], None] | None = None,
) -> Trial:
    """Generate one candidate per solution with each side here, in the foreground (the cache reuses
    identical requests); Prompt Studio queues its trials as jobs instead (`start_trial`)."""
    pinned = _checked(engine, settings, actor, solution_ids, _asked(sides, refs, provider))
    trial = Trial(sides=pinned, solution_ids=list(dict.fromkeys(solution_ids)))
    total, done = 2 * len(trial.solution_ids), 0

    def step(_done: int, _total: int, result: pipeline.GenerationResult) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, result)

    for label, side in zip(trial.labels, pinned, strict=True):
        results, summary = batch.run_batch(
            engine, settings, trial.solution_ids, _options(actor, side, quality), progress=step
        )
        trial.results[label] = {r.solution_id: r for r in results}
        trial.summaries[label] = summary
    return trial


def comparison(*, session: Session, trial: Trial) -> list[dict[str, Any]]:
    """One row per solution: its title and category, and per side (by label) the candidate or the failure."""
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
        for label in trial.labels:
            result = trial.results.get(label, {}).get(sid)
            candidate = candidates.get(result.candidate_id) if result and result.candidate_id else None
            row["sides"][label] = {
                "thumb_path": candidate.thumb_path if candidate else None,
                "candidate_id": candidate.id if candidate else None,
                "cost_usd": result.cost_usd if result else 0.0,
                "cache_hit": bool(result and result.cache_hit),
                "error": (result.error or result.error_kind) if result and result.status == "failed" else None,
            }
        rows.append(row)
    return rows
