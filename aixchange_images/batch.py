"""Batches: many solutions in parallel within the concurrency, rate limit and budget; estimates first."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import budget
from .budget import Estimate
from .cache import cached_sources, reusable
from .catalogue import titles
from .claims import Claims
from .config import Settings
from .db import session_scope
from .models import Attempt, Candidate, Solution
from .pipeline import (
    SPENT,
    GenerateOptions,
    GenerationResult,
    Generator,
    Plan,
    Request,
    Stopped,
    make_plan,
)
from .prompts import SUBJECT_COLUMNS, Subject
from .recovery import recover
from .wording import error_kind, money, plain_error, seconds

if TYPE_CHECKING:
    import pandas as pd

ProgressFn = Callable[[int, int, GenerationResult], None]


def run_batch(
    engine: Engine,
    settings: Settings,
    solution_ids: list[str],
    options: GenerateOptions,
    *,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    kept: list[GenerationResult] | None = None,
    checked: bool = True,
) -> tuple[list[GenerationResult], dict[str, Any]]:
    """Generate `options.candidates` images for each solution, in parallel up to the concurrency.

    `progress` is called on the caller's thread as results come in. `kept` (a list) gets every
    result from the worker that made it, so it is complete even when the caller is interrupted
    (a Streamlit rerun): the calls in flight still finish and land there. Each solution is claimed
    while it is generated for (`claims`): another run that wants it waits, then reuses its image.
    Every new image is checked (`inspections`) while the run goes on; it returns once they all are,
    unless `checked` is False: a command that waits for the checks before it exits, not before it reports.
    """
    generator = start_run(engine, settings, options, stop)
    with Session(engine) as session:
        tasks = _tasks(session, solution_ids, options)
    if tasks and settings.enabled_checks:
        generator.inspector.warm()  # while the first calls are out
    # A worker keeping its image (verify, thumbnail, hash, fsync) has given its call slot back, so
    # as many more workers as calls keep the provider busy meanwhile (Generator.slots): a whole wave
    # of replies can be kept while the next wave's calls are made.
    # At concurrency 1 the run stays one solution after another, in order.
    extra = finishing_workers(generator.concurrency)
    generator.bound_calls()
    workers = max(1, min(generator.concurrency + extra, len(tasks) or 1))
    results: list[GenerationResult] = []
    started = time.perf_counter()
    countdown = Countdown(sid for sid, _ in tasks)
    with (
        Claims(engine, generator.stop) as claims,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="generate") as pool,
    ):
        futures = [pool.submit(_guarded, generator, claims, countdown, sid, variant, kept) for sid, variant in tasks]
        try:
            for future in as_completed(futures):
                result = future.result()
                if result is None:
                    continue
                results.append(result)
                if progress:
                    progress(len(results), len(tasks), result)
        except BaseException:
            # The caller went away (Ctrl-C, a Streamlit rerun): start nothing new; calls in
            # flight finish and are recorded, so nothing paid for is lost.
            generator.stop.set()
            raise
        finally:
            generator.close(wait=checked)  # auto-approve waited already, solution by solution
    for result in results:  # auto-approve publishes once a solution's candidates are all checked
        result.published_url = generator.published_url(result.candidate_id)
    return results, summarise(results, len(tasks), time.perf_counter() - started, generator.plan)


class Countdown:
    """How many of each solution's attempts are still to end in a run: the last one settles it."""

    def __init__(self, solution_ids: Iterable[str]):
        self._left = Counter(solution_ids)
        self._lock = threading.Lock()

    def last(self, solution_id: str) -> bool:
        with self._lock:
            self._left[solution_id] -= 1
            return self._left[solution_id] == 0


def finishing_workers(concurrency: int) -> int:
    """Workers beyond the concurrency, keeping replies while calls go on; none at concurrency 1, which
    stays one solution after another, in order."""
    return concurrency if concurrency > 1 else 0


def start_run(
    engine: Engine, settings: Settings, options: GenerateOptions, stop: threading.Event | None = None
) -> Generator:
    """What every run does first: resolve the plan (bad values fail here), settle what killed runs left."""
    plan = make_plan(settings, options)
    recover(engine, settings)  # a killed run's half-done approval: finish or undo it before publishing more
    with session_scope(engine, write=True) as session:
        budget.settle_interrupted(session=session, older_than=budget.longest_call(settings))
        session.commit()
    return Generator(engine, settings, plan, stop)


def _tasks(session: Session, solution_ids: list[str], options: GenerateOptions) -> list[tuple[str, int]]:
    """(solution, variant) pairs to run.

    With the cache a solution starts after the highest variant whose image was rejected, rolled back
    or replaced: the same request again (a resumed batch) is a cache hit, but once an image has been
    turned down the next try is a new one. Without the cache (Regenerate) it starts after the
    highest variant it ever had.
    """
    ids = list(dict.fromkeys(solution_ids))
    first: dict[str, int] = {}
    for chunk in _chunks(ids):
        first.update(first_variants(session, chunk, options))
    return [(sid, first.get(sid, 0) + n) for sid in ids for n in range(options.candidates)]


def first_variants(session: Session, solution_ids: list[str], options: GenerateOptions) -> dict[str, int]:
    """The variant each of these solutions starts at (see `_tasks`); 0 when absent."""
    query = select(Attempt.solution_id, func.max(Attempt.variant) + 1)
    if options.use_cache:
        query = query.join(Candidate, Candidate.id == Attempt.candidate_id).where(col(Candidate.state).in_(SPENT))
    rows = session.exec(query.where(col(Attempt.solution_id).in_(solution_ids)).group_by(Attempt.solution_id))
    return {sid: int(first or 0) for sid, first in rows.all()}


def _guarded(
    generator: Generator,
    claims: Claims,
    countdown: Countdown,
    solution_id: str,
    variant: int,
    kept: list[GenerationResult] | None,
) -> GenerationResult | None:
    result = None
    with claims.hold(solution_id) as held:
        # Not held, or stopped: nothing was asked, nothing is recorded (also when stopped while it
        # waited for a call slot or the rate limit).
        if held and not generator.stop.is_set():
            with contextlib.suppress(Stopped):
                result = generator.generate(solution_id, variant)
        if countdown.last(solution_id):
            generator.settle(solution_id)  # auto-approve: its best checked candidate, under the claim
    if result is None:
        return None
    if kept is not None:
        kept.append(result)  # list.append is atomic: workers share the list safely
    return result


def estimate_batch(engine: Engine, settings: Settings, solution_ids: list[str], options: GenerateOptions) -> Estimate:
    """Paid calls and dollars a batch is expected to take, against what the budget has left.

    Built for thousands of solutions: only the columns a prompt is made of are read, in chunks, as
    are the cache look-ups; templates are resolved once per category, the price once.
    """
    plan = make_plan(settings, options)
    with Session(engine) as session:
        generator = Generator(engine, settings, plan)
        tasks = _tasks(session, solution_ids, options)
        subjects = _subjects(session, list(dict.fromkeys(sid for sid, _ in tasks)))
        planned = [generator.prepare(session, subjects[sid], variant) for sid, variant in tasks if sid in subjects]
        planned = [r for r in planned if r.problem is None]
        paid = _not_cached(session, planned) if options.use_cache else planned
        dollars = _dollars(session, plan, paid)
        left = budget.budget_state(session=session, settings=settings).left
    return Estimate(
        calls=len(paid) if plan.provider.paid else 0,
        paid=plan.provider.paid,
        expected_cache_hits=len(planned) - len(paid),
        cost_usd=dollars,
        budget_left_usd=left,
    )


def _subjects(session: Session, ids: list[str]) -> dict[str, Subject]:
    """The prompt columns of these solutions (rows, not ORM objects: a tenth of the time for thousands)."""
    found: dict[str, Subject] = {}
    for chunk in _chunks(ids):
        found.update({row.id: row for row in session.exec(select(*SUBJECT_COLUMNS).where(col(Solution.id).in_(chunk)))})
    return found


def _not_cached(session: Session, planned: list[Request]) -> list[Request]:
    """The requests the cache cannot serve: those that will be paid calls."""
    sources: dict[str, list[Candidate]] = {}
    for chunk in _chunks([r.key for r in planned]):
        for candidate, key in session.exec(cached_sources(chunk)):
            sources.setdefault(key, []).append(candidate)
    return [r for r in planned if not any(reusable(c, r.solution_id) for c in sources.get(r.key, ()))]


def _dollars(session: Session, plan: Plan, paid: list[Request]) -> float:
    if not plan.provider.paid or not paid:
        return 0.0
    price, _ = budget.price_for(session=session, model=plan.model)
    return sum(budget.cost_from_usage(price, plan.provider.expected_usage(plan.request(r.prompt))) for r in paid)


def _chunks(items: list, size: int = 500) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def summarise(results: list[GenerationResult], planned: int, seconds: float, plan: Plan) -> dict[str, Any]:
    kinds = Counter(r.error_kind for r in results if r.error_kind)
    return {
        "batch_id": plan.batch_id,
        "provider": plan.provider.name,
        "model": plan.model,
        "size": plan.size,
        "quality": plan.quality,
        "planned": planned,
        "attempted": len(results),
        "not_run": planned - len(results),
        "succeeded": sum(r.status == "succeeded" for r in results),
        "failed": sum(r.status == "failed" for r in results),
        "cache_hits": sum(r.cache_hit for r in results),
        "published": sum(r.published_url is not None for r in results),
        "cost_usd": round(sum(r.cost_usd for r in results), 6),
        "errors_by_kind": dict(kinds),
        "seconds": round(seconds, 3),
    }


RESULT_COLUMNS = ["thumb_path", "Solution", "Result", "Cost", "Time", "Details"]


def results_table(*, session: Session, results: list[GenerationResult]) -> pd.DataFrame:
    """A run's results as people read them: the solution's title, the new image's thumbnail path,
    what happened, what it cost and took, and the reason of a failure in words."""
    import pandas as pd

    named = titles(session=session, ids=[r.solution_id for r in results])
    made = [r.candidate_id for r in results if r.candidate_id is not None]
    thumbs: dict[int, str] = {}
    for chunk in _chunks(made):
        thumbs.update(
            session.exec(select(Candidate.id, Candidate.thumb_path).where(col(Candidate.id).in_(chunk))).all()
        )
    rows = [
        {
            "thumb_path": thumbs.get(r.candidate_id or -1, ""),
            "Solution": named.get(r.solution_id, r.solution_id),
            "Result": _outcome(r),
            "Cost": money(r.cost_usd, exact=True),
            "Time": seconds(r.duration_ms),
            "Details": plain_error(r.error) if r.status == "failed" else (r.published_url or ""),
        }
        for r in results
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _outcome(result: GenerationResult) -> str:
    if result.status == "failed":
        return f"Failed: {error_kind(result.error_kind).lower() or 'unknown reason'}"
    if result.published_url:
        return "Published"
    return "Reused an identical image" if result.cache_hit else "New candidate for review"
