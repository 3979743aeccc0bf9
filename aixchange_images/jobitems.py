"""A job's items as workers take and finish them, and the sweep that hands a dead worker's items on.

Every step is one short write transaction that changes a row only from the state the caller saw
(queued -> running -> finished), so any number of workers on any number of machines may share a
job: each item runs once unless its worker dies, and then it is queued again for another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import leases
from .db import db_now, session_scope
from .jobmodels import ACTIVE, ItemStatus, Job, JobItem, JobKind, JobStatus
from .models import Attempt
from .process import RUNNER

SHARDS = 64  # messages per job at most: how many worker threads, on all machines together, share one job
STUCK_AFTER = timedelta(seconds=10)  # a job with work left that nobody touched this long is queued again


def shards(items: int) -> int:
    return max(1, min(items, SHARDS))


@dataclass(frozen=True)
class Outcome:
    """What running one item came to."""

    status: str  # an ItemStatus
    succeeded: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    error: str | None = None

    @property
    def images(self) -> int:
        return self.succeeded + self.failed


def start(engine: Engine, job_id: int) -> Job | None:
    """Mark the job running (first worker in); None when it is over or being cancelled."""
    with session_scope(engine, write=True) as session:
        job = session.get(Job, job_id)
        if job is None or job.status not in ACTIVE or job.cancel_requested:
            return None
        if job.status == JobStatus.queued:
            job.status, job.started_at = JobStatus.running, db_now(session)
            session.add(job)
            session.commit()
        return job


def claim_next(engine: Engine, job_id: int) -> JobItem | None:
    """Take the job's next queued item for this process; None when none is left."""
    while True:
        with session_scope(engine, write=True) as session:
            query = select(JobItem).where(JobItem.job_id == job_id, JobItem.status == ItemStatus.queued)
            item = session.exec(query.order_by(JobItem.id).limit(1).with_for_update(skip_locked=True)).first()
            if item is None:
                return None
            now = db_now(session)
            taken = session.execute(
                update(JobItem)
                .where(col(JobItem.id) == item.id, col(JobItem.status) == ItemStatus.queued)
                .values(status=ItemStatus.running, runner=RUNNER, started_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            session.commit()
        if taken:  # else another worker took it between our read and our write: try the next
            item.status, item.runner, item.started_at = ItemStatus.running, RUNNER, now
            return item


def finish(engine: Engine, item: JobItem, outcome: Outcome) -> bool:
    """Record the item's outcome and add it to the job's progress, in one transaction.

    Only while the item is still ours: had a sweep taken it from us (we looked dead), its new
    runner's outcome counts, not ours (the cache made ours free for it, or its own is the same).
    """
    with session_scope(engine, write=True) as session:
        now = db_now(session)
        mine = (col(JobItem.id) == item.id, col(JobItem.status) == ItemStatus.running, col(JobItem.runner) == RUNNER)
        values = {"status": outcome.status, "succeeded": outcome.succeeded, "failed": outcome.failed}
        values |= {"cost_usd": outcome.cost_usd, "error": outcome.error, "finished_at": now}
        if not session.execute(update(JobItem).where(*mine).values(**values)).rowcount:
            return False
        session.execute(
            update(Job)
            .where(col(Job.id) == item.job_id)
            .values(
                done=Job.done + outcome.images,
                succeeded=Job.succeeded + outcome.succeeded,
                failed=Job.failed + outcome.failed,
                cost_usd=Job.cost_usd + outcome.cost_usd,
                updated_at=now,
            )
        )
        session.commit()
    return True


def finalize(engine: Engine, job_id: int) -> str | None:
    """End the job once nothing of it is queued or running; its final status, or None while it goes on.

    A job being cancelled has its queued items cancelled here: nothing new starts.
    """
    with session_scope(engine, write=True) as session:
        job = session.get(Job, job_id)
        if job is None or job.status not in ACTIVE:
            return None
        if job.cancel_requested:
            _cancel_queued(session, job_id)
        if _count(session, job_id, ItemStatus.queued, ItemStatus.running):
            session.commit()
            return None
        job.status = _final_status(job)
        job.finished_at = job.updated_at = db_now(session)
        if job.kind == JobKind.generate and job.batch_id:  # the attempts say what it cost, interrupted calls too
            spent = select(func.coalesce(func.sum(Attempt.cost_usd), 0.0)).where(Attempt.batch_id == job.batch_id)
            job.cost_usd = round(float(session.exec(spent).one()), 6)
        session.add(job)
        session.commit()
        return job.status


def _final_status(job: Job) -> str:
    if job.cancel_requested:
        return JobStatus.cancelled
    return JobStatus.failed if job.failed or job.error else JobStatus.done


def _cancel_queued(session: Session, job_id: int) -> None:
    session.execute(
        update(JobItem)
        .where(col(JobItem.job_id) == job_id, col(JobItem.status) == ItemStatus.queued)
        .values(status=ItemStatus.cancelled)
    )


def _count(session: Session, job_id: int, *statuses: str) -> int:
    query = select(func.count()).where(JobItem.job_id == job_id, col(JobItem.status).in_(statuses))
    return int(session.exec(query).one())


def fail(engine: Engine, job_id: int, error: str) -> None:
    """The job cannot run at all (its settings no longer work): it fails with `error`; its queued
    items are marked failed, so a retry (once fixed) runs them."""
    with session_scope(engine, write=True) as session:
        job = session.get(Job, job_id)
        if job is None or job.status not in ACTIVE:
            return
        job.error = error
        session.add(job)
        session.execute(
            update(JobItem)
            .where(col(JobItem.job_id) == job_id, col(JobItem.status) == ItemStatus.queued)
            .values(status=ItemStatus.failed, error=error)
        )
        session.commit()


def cancel_requested(engine: Engine, job_id: int) -> bool:
    with Session(engine) as session:
        return bool(session.exec(select(Job.cancel_requested).where(Job.id == job_id)).first())


def reap(engine: Engine) -> dict[int, int]:
    """Queue again the items of workers that died while running them; end jobs left with nothing to do.

    Returns {job id: messages to queue} for the jobs that have work again.
    """
    with session_scope(engine, write=True) as session:
        runners = session.exec(select(JobItem.runner).where(JobItem.status == ItemStatus.running).distinct()).all()
        gone = leases.dead(session, [r for r in runners if r])
        again: dict[int, int] = {}
        if gone:
            lost = col(JobItem.status) == ItemStatus.running, col(JobItem.runner).in_(gone)
            jobs = session.exec(select(JobItem.job_id, func.count()).where(*lost).group_by(JobItem.job_id)).all()
            session.execute(update(JobItem).where(*lost).values(status=ItemStatus.queued, runner=None))
            again = {job_id: shards(n) for job_id, n in jobs}
        leases.forget(session)
        session.commit()
    for job_id in _idle_running(engine):
        finalize(engine, job_id)
    return again


def _idle_running(engine: Engine) -> list[int]:
    """Running jobs with no item queued or running: their last worker died before ending them."""
    busy = select(JobItem.job_id).where(col(JobItem.status).in_((ItemStatus.queued, ItemStatus.running)))
    with Session(engine) as session:
        return list(session.exec(select(Job.id).where(Job.status == JobStatus.running, col(Job.id).not_in(busy))))


def stuck(engine: Engine) -> dict[int, int]:
    """Active jobs with queued items that nobody runs or touched for a while (their messages were lost,
    or went to another machine's queue): {job id: messages to queue}."""
    running = select(JobItem.job_id).where(JobItem.status == ItemStatus.running)
    with Session(engine) as session:
        idle_since = db_now(session) - STUCK_AFTER
        query = (
            select(JobItem.job_id, func.count())
            .join(Job, col(Job.id) == JobItem.job_id)
            .where(JobItem.status == ItemStatus.queued, col(Job.status).in_(ACTIVE), col(Job.updated_at) < idle_since)
            .where(col(JobItem.job_id).not_in(running))
            .group_by(JobItem.job_id)
        )
        return {job_id: shards(n) for job_id, n in session.exec(query).all()}


def touch(engine: Engine, job_ids: list[int]) -> None:
    """Mark jobs as just handled (queued again), so the stuck sweep leaves them be for a while."""
    if job_ids:
        with session_scope(engine, write=True) as session:
            session.execute(update(Job).where(col(Job.id).in_(job_ids)).values(updated_at=db_now(session)))
            session.commit()


def left_over(engine: Engine, job_ids: list[int]) -> dict[int, int]:
    """Of these jobs, those with queued items: {job id: messages to queue}."""
    if not job_ids:
        return {}
    query = select(JobItem.job_id, func.count()).where(
        col(JobItem.job_id).in_(job_ids), JobItem.status == ItemStatus.queued
    )
    with Session(engine) as session:
        return {job_id: shards(n) for job_id, n in session.exec(query.group_by(JobItem.job_id)).all()}
