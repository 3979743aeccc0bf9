"""Periodic jobs: the nightly generation of missing images (published at once) and the marketplace pull.

Admins set them in Settings (audited). A schedule runs every `every_minutes`, counted from midnight
UTC plus `offset_minutes`. Each slot is taken once, by whichever worker's tick gets there first (a
compare-and-set on the schedule's row), so several workers on several machines never queue the same
run twice; a worker that was down when a slot passed queues it once when it comes back. A run whose
previous one is still going is skipped: a long night never piles runs up.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from . import jobs
from .auth import Actor, audit, require
from .catalogue import missing_ids
from .config import ConfigError, Settings, UserError
from .db import aware, db_now, session_scope
from .jobmodels import ACTIVE, Job, JobKind, JobSchedule
from .marketplace import configured
from .models import Role
from .pipeline import GenerateOptions

log = logging.getLogger(__name__)
NIGHTLY = "nightly_generate"
PULL = "marketplace_pull"
TITLES = {
    NIGHTLY: "Generate the missing images and publish them (no review)",
    PULL: "Pull the marketplace's solutions (and push what waits for it)",
}
SCHEDULE_ACTOR = Actor("schedule", Role.admin)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def default(settings: Settings, name: str) -> JobSchedule:
    """A schedule nobody has set: the nightly run off (02:00 UTC), the pull as MARKETPLACE_PULL_MINUTES says."""
    if name == NIGHTLY:
        return JobSchedule(name=NIGHTLY, enabled=False, every_minutes=1440, offset_minutes=120)
    minutes = settings.marketplace_pull_minutes
    on = configured(settings) and minutes > 0
    return JobSchedule(name=PULL, enabled=on, every_minutes=max(1, math.ceil(minutes or 15)), offset_minutes=0)


def current_slot(now: datetime, schedule: JobSchedule) -> datetime:
    anchor = EPOCH + timedelta(minutes=schedule.offset_minutes)
    step = timedelta(minutes=schedule.every_minutes)
    return anchor + ((now - anchor) // step) * step


def next_run(now: datetime, schedule: JobSchedule) -> datetime:
    return current_slot(now, schedule) + timedelta(minutes=schedule.every_minutes)


def read(*, session: Session, settings: Settings) -> list[JobSchedule]:
    """Both schedules as they stand (stored, or their defaults)."""
    rows = {row.name: row for row in session.exec(select(JobSchedule))}
    return [rows.get(name) or default(settings, name) for name in TITLES]


def save(
    *,
    session: Session,
    settings: Settings,
    actor: Actor,
    name: str,
    enabled: bool,
    every_minutes: int,
    offset_minutes: int,
) -> JobSchedule:
    """Change a schedule (admins; audited). Its next run is the next slot from now, never one already past."""
    require(actor, "manage")
    if name not in TITLES:
        raise ConfigError(f"There is no schedule called {name}; the schedules are {', '.join(TITLES)}.")
    if not 1 <= every_minutes <= 7 * 1440 or not 0 <= offset_minutes < 1440:
        raise ConfigError("A schedule runs every 1 minute to 7 days, at a time of day between 00:00 and 23:59 UTC.")
    row = session.get(JobSchedule, name) or default(settings, name)
    old = {"enabled": row.enabled, "every_minutes": row.every_minutes, "offset_minutes": row.offset_minutes}
    row.enabled, row.every_minutes, row.offset_minutes = enabled, every_minutes, offset_minutes
    row.last_slot = current_slot(db_now(session), row)
    row.updated_by, row.updated_at = actor.username, db_now(session)
    session.add(row)
    new = {"enabled": enabled, "every_minutes": every_minutes, "offset_minutes": offset_minutes}
    if new != old:
        audit(session, actor, "schedule.change", name, old=old, new=new)
    return row


def fire_due(engine: Engine, settings: Settings) -> list[Job]:
    """Queue the job of every schedule whose slot has come (each slot once, whichever worker is first)."""
    queued = []
    for name in TITLES:
        schedule = _stored(engine, settings, name)
        with Session(engine) as session:
            slot = current_slot(db_now(session), schedule)
        if not schedule.enabled or (schedule.last_slot is not None and aware(schedule.last_slot) >= slot):
            continue
        if not _take(engine, name, slot) or _still_running(engine, name):
            continue
        job = _queue(engine, settings, name)
        if job is not None:
            queued.append(job)
    return queued


def _stored(engine: Engine, settings: Settings, name: str) -> JobSchedule:
    """The schedule's row, made from its default the first time."""
    with session_scope(engine, write=True) as session:
        row = session.get(JobSchedule, name)
        if row is None:
            row = default(settings, name)
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # another worker made it a moment ago
                session.rollback()
                row = session.get(JobSchedule, name)
        return row


def _take(engine: Engine, name: str, slot: datetime) -> bool:
    with session_scope(engine, write=True) as session:
        taken = session.execute(
            update(JobSchedule)
            .where(col(JobSchedule.name) == name, col(JobSchedule.enabled).is_(True))
            .where(or_(col(JobSchedule.last_slot).is_(None), col(JobSchedule.last_slot) < slot))
            .values(last_slot=slot)
        ).rowcount
        session.commit()
    return bool(taken)


def _still_running(engine: Engine, name: str) -> bool:
    with Session(engine) as session:
        running = session.exec(select(Job.id).where(Job.schedule == name, col(Job.status).in_(ACTIVE))).first()
    if running is not None:
        log.warning("Schedule %s: job %s is still running, so this run is skipped.", name, running)
    return running is not None


def _queue(engine: Engine, settings: Settings, name: str) -> Job | None:
    try:
        if name == PULL:
            return jobs.enqueue_pull(engine, settings, actor=SCHEDULE_ACTOR, schedule=PULL)
        with Session(engine) as session:
            ids = missing_ids(session=session)
        options = GenerateOptions(auto_approve=True, actor=SCHEDULE_ACTOR)
        return jobs.enqueue_generate(engine, settings, ids, options, schedule=NIGHTLY)
    except UserError as exc:  # misconfigured (no key for the provider, the marketplace unset): say so in Jobs
        kind = JobKind.marketplace_pull if name == PULL else JobKind.generate
        return jobs.refused(engine, kind=kind, actor=SCHEDULE_ACTOR, schedule=name, error=str(exc))
