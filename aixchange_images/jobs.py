"""Background jobs: queue a batch, list jobs with their progress, cancel one, retry what failed.

A job is rows in our database (`Job`, one `JobItem` per solution) plus messages on the queue
(`jobqueue`) that wake workers up; workers run the items (`runs`) through the same pipeline as a
batch in the foreground, so budget, cache, moderation, claims, auto-approve and delivery to the
marketplace behave exactly as they do there.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import bulkfiles, jobitems, marketplace, rechecks
from .auth import Actor, PermissionDenied, require
from .config import Settings, UserError
from .db import db_now, session_scope
from .jobmodels import ACTIVE, ItemStatus, Job, JobItem, JobKind, JobStatus
from .jobqueue import QueueError, queue_for
from .models import Attempt, AttemptStatus, Publication
from .pipeline import GenerateOptions, GenerationResult, make_plan, new_batch_id
from .templates import resolve as resolve_template

CONTRACT_KEYS = ("id", "kind", "status", "total", "done", "succeeded", "failed", "cost_usd")
_STORED = ("provider", "model", "size", "quality", "output_format", "template", "candidates", "use_cache")
STORED_OPTIONS = (*_STORED, "auto_approve", "concurrency", "purpose")


class JobError(UserError):
    """A job request that cannot be done (no such job, or not in a state for it); one sentence."""


def enqueue_generate(
    engine: Engine,
    settings: Settings,
    solution_ids: list[str],
    options: GenerateOptions,
    *,
    schedule: str | None = None,
    retry_of: int | None = None,
) -> Job:
    """Queue a generation: checked as a batch would be (bad values fail here, nothing queued)."""
    make_plan(settings, options)  # the actor's permissions and every value, before anything is written
    with Session(engine) as session:
        resolve_template(session=session, ref=options.template)
    ids = list(dict.fromkeys(solution_ids))
    job = Job(
        kind=JobKind.generate,
        actor=options.actor.username,
        role=options.actor.role,
        options={name: getattr(options, name) for name in STORED_OPTIONS},
        batch_id=options.batch_id or new_batch_id(),
        schedule=schedule,
        retry_of=retry_of,
    )
    return _queue(engine, settings, job, [(sid, options.candidates) for sid in ids])


def enqueue_pull(engine: Engine, settings: Settings, *, actor: Actor, schedule: str | None = None) -> Job:
    """Queue a pull of the marketplace's solutions (and a push of what waits for it)."""
    require(actor, "edit_catalogue")
    marketplace.engine_for(settings)  # not configured: one sentence, nothing queued
    job = Job(kind=JobKind.marketplace_pull, actor=actor.username, role=actor.role, schedule=schedule)
    return _queue(engine, settings, job, [(None, 1)])


def enqueue_import(engine: Engine, settings: Settings, *, actor: Actor, source: str, data: bytes) -> Job:
    """Queue a bulk file's import: read and checked as a file here (a bad one fails here, nothing queued),
    kept in the data folder until a worker has written its records."""
    require(actor, "edit_catalogue")
    records = bulkfiles.parse_bulk(source, data)
    folder = Path(settings.data_dir) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{Path(source).suffix.lower()}"
    path.write_bytes(data)
    options = {"file": str(path), "source": source, "records": len(records)}
    job = Job(kind=JobKind.catalogue_import, actor=actor.username, role=actor.role, options=options)
    return _queue(engine, settings, job, [(None, 1)])


def enqueue_checks(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    solution_ids: list[str] | None = None,
    retry_of: int | None = None,
) -> Job:
    """Queue the automatic checks again on the stored candidates of these solutions (all with None):
    one item per solution, its candidates made up to now (later ones are checked by the run that makes them)."""
    require(actor, "generate")
    rechecks.require_enabled(settings)
    with Session(engine) as session:
        ids = None if solution_ids is None else rechecks.known(session, solution_ids)
        up_to = rechecks.newest(session)
        counts = rechecks.per_solution(session, ids, up_to)
    job = Job(
        kind=JobKind.checks,
        actor=actor.username,
        role=actor.role,
        options={"up_to": up_to, "solutions": "all" if ids is None else len(ids)},
        retry_of=retry_of,
    )
    return _queue(engine, settings, job, list(counts.items()))


def _queue(engine: Engine, settings: Settings, job: Job, items: list[tuple[str | None, int]]) -> Job:
    with session_scope(engine, write=True) as session:
        job.total = sum(images for _, images in items)
        job.created_at = job.updated_at = db_now(session)
        if not items:
            job.status, job.finished_at = JobStatus.done, job.created_at
        session.add(job)
        session.flush()
        session.add_all(JobItem(job_id=job.id, solution_id=sid, images=images) for sid, images in items)
        session.commit()
    if items:
        try:
            queue_for(settings).push(job.id, jobitems.shards(len(items)))
        except QueueError as exc:
            jobitems.fail(engine, job.id, str(exc))
            jobitems.finalize(engine, job.id)
            raise
    return job


def refused(engine: Engine, *, kind: str, actor: Actor, error: str, schedule: str | None = None) -> Job:
    """A job that could not even be queued (a schedule's, misconfigured), recorded as failed so Jobs shows why."""
    job = Job(kind=kind, actor=actor.username, role=actor.role, schedule=schedule, error=error)
    with session_scope(engine, write=True) as session:
        job.status = JobStatus.failed
        job.created_at = job.updated_at = job.finished_at = db_now(session)
        session.add(job)
        session.commit()
    return job


def options_of(job: Job) -> GenerateOptions:
    """The options a generation job runs with, as its author had them checked."""
    known = {f.name for f in fields(GenerateOptions)}
    stored = {k: v for k, v in job.options.items() if k in known}
    return GenerateOptions(**stored, actor=Actor(job.actor, job.role), batch_id=job.batch_id)


def get(*, session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobError(f"There is no job {job_id}; see `jobs` for the ids.")
    return job


def waiting_for(*, session: Session, solution_id: str) -> bool:
    """Whether a generation job that has not ended holds work for the solution (its images are on the way)."""
    query = (
        select(JobItem.id)
        .join(Job, col(Job.id) == JobItem.job_id)
        .where(JobItem.solution_id == solution_id, Job.kind == JobKind.generate, col(Job.status).in_(ACTIVE))
        .where(col(JobItem.status).in_((ItemStatus.queued, ItemStatus.running)))
    )
    return session.exec(query.limit(1)).first() is not None


def recent(*, session: Session, limit: int = 50, active: bool = False) -> list[Job]:
    """The newest jobs first (only the queued and running ones with `active`)."""
    query = select(Job).order_by(col(Job.id).desc()).limit(limit)
    if active:
        query = query.where(col(Job.status).in_(ACTIVE))
    return list(session.exec(query).all())


def failures(*, session: Session, job_id: int, limit: int = 100) -> list[JobItem]:
    """The job's items that failed, with their one-sentence errors."""
    query = select(JobItem).where(JobItem.job_id == job_id, JobItem.status == ItemStatus.failed)
    return list(session.exec(query.order_by(col(JobItem.id)).limit(limit)).all())


def results(*, session: Session, job: Job, limit: int | None = None, failed: bool = False) -> list[GenerationResult]:
    """What a generation job has done so far, as a batch run in the page returns it (for
    `batch.results_table`): one result per finished attempt of its batch, oldest first, then one
    failure for each item that failed without making an attempt (its settings no longer worked, say).
    Only the failures with `failed`; at most `limit` results."""
    if job.kind != JobKind.generate or job.batch_id is None:
        return []
    query = select(Attempt).where(Attempt.batch_id == job.batch_id, Attempt.status != AttemptStatus.running)
    if failed:
        query = query.where(Attempt.status != AttemptStatus.succeeded)
    attempts = list(session.exec(query.order_by(col(Attempt.id)).limit(limit)).all())
    made = [a.candidate_id for a in attempts if a.candidate_id is not None]
    urls: dict[int, str] = {}
    if made:  # an auto-approved candidate's publication (its first one: a later rollback does not undo the run)
        published = select(Publication.candidate_id, Publication.image_url).where(
            col(Publication.candidate_id).in_(made)
        )
        for candidate_id, url in session.exec(published.order_by(col(Publication.id).desc())).all():
            urls[candidate_id] = url
    found = [GenerationResult.of(a, urls.get(a.candidate_id or -1)) for a in attempts]
    if limit is not None and len(found) >= limit:
        return found
    tried = select(Attempt.solution_id).where(Attempt.batch_id == job.batch_id)
    unattempted = select(JobItem).where(
        JobItem.job_id == job.id, JobItem.status == ItemStatus.failed, col(JobItem.solution_id).not_in(tried)
    )
    rest = None if limit is None else limit - len(found)
    for item in session.exec(unattempted.order_by(col(JobItem.id)).limit(rest)).all():
        found.append(GenerationResult(item.solution_id or "", "failed", error=item.error))
    return found


def cancel(engine: Engine, job_id: int, *, actor: Actor) -> Job:
    """Stop a job: nothing new starts; items in flight finish and are kept. It ends as cancelled once they have."""
    with session_scope(engine, write=True) as session:
        job = get(session=session, job_id=job_id)
        _may_change(actor, job, "stop")
        if job.status not in ACTIVE:
            raise JobError(f"Job {job_id} has already ended ({job.status}); there is nothing to stop.")
        session.execute(update(Job).where(col(Job.id) == job_id).values(cancel_requested=True))
        session.commit()
    jobitems.finalize(engine, job_id)  # ends now unless an item is in flight
    with Session(engine) as session:
        return get(session=session, job_id=job_id)


def retry(engine: Engine, settings: Settings, job_id: int, *, actor: Actor) -> Job:
    """Queue, as a new job, what an ended job did not get done: its failed and cancelled items."""
    with Session(engine) as session:
        job = get(session=session, job_id=job_id)
        _may_change(actor, job, "retry")
        if job.status in ACTIVE:
            raise JobError(f"Job {job_id} is still {job.status}; retry it once it has ended.")
        undone = (ItemStatus.failed, ItemStatus.cancelled)
        items = session.exec(
            select(JobItem.solution_id).where(JobItem.job_id == job_id, col(JobItem.status).in_(undone))
        )
        ids = list(items.all())
    if not ids:
        raise JobError(f"Job {job_id} has nothing to retry: all of it succeeded.")
    if job.kind == JobKind.marketplace_pull:
        return enqueue_pull(engine, settings, actor=actor)
    if job.kind == JobKind.catalogue_import:
        raise JobError(f"Job {job_id} was an import; import the file again to retry it.")
    if job.kind == JobKind.checks:
        return enqueue_checks(engine, settings, actor=actor, solution_ids=[s for s in ids if s], retry_of=job_id)
    options = options_of(job)
    options.actor, options.batch_id = actor, None
    return enqueue_generate(engine, settings, [sid for sid in ids if sid], options, retry_of=job_id)


def _may_change(actor: Actor, job: Job, verb: str) -> None:
    require(actor, "generate")
    if actor.role != "admin" and actor.username != job.actor:
        raise PermissionDenied(f"Only an admin or {job.actor}, who started it, may {verb} job {job.id}.")


def as_dict(job: Job) -> dict[str, Any]:
    """A job as `jobs --json` lists it: product.md's keys first, then the rest."""
    extra = ("actor", "schedule", "retry_of", "batch_id", "cancel_requested", "error")
    times = ("created_at", "started_at", "finished_at")
    row = {key: getattr(job, key) for key in (*CONTRACT_KEYS, *extra, *times)}
    row["cost_usd"] = round(job.cost_usd, 6)
    return row
