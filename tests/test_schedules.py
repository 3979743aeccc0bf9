"""Schedules: the nightly generation and the marketplace pull as periodic jobs, each slot queued once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import get_solution, run_jobs
from sqlmodel import Session, select

from aixchange_images import jobs, pull, schedules
from aixchange_images.auth import Actor, PermissionDenied
from aixchange_images.config import ConfigError, load_settings
from aixchange_images.db import session_scope
from aixchange_images.jobmodels import Job, JobKind, JobSchedule, JobStatus, Runner
from aixchange_images.models import AuditEvent, SolutionOrigin, utcnow

ALICE = Actor("alice", "admin")


def at(hour: int, minute: int = 0, day: int = 30) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_a_slot_is_counted_from_midnight_utc():
    nightly = JobSchedule(name=schedules.NIGHTLY, every_minutes=1440, offset_minutes=120)
    every_15 = JobSchedule(name=schedules.PULL, every_minutes=15, offset_minutes=0)

    assert schedules.current_slot(at(1, 59), nightly) == at(2, 0, day=29)
    assert schedules.current_slot(at(2, 0), nightly) == at(2, 0)
    assert schedules.next_run(at(2, 0), nightly) == at(2, 0) + timedelta(days=1)
    assert schedules.current_slot(at(13, 44), every_15) == at(13, 30)


def save(engine, actor=ALICE, **values) -> JobSchedule:
    fields = {"name": schedules.NIGHTLY, "enabled": True, "every_minutes": 1440, "offset_minutes": 120} | values
    with session_scope(engine, write=True) as session:
        row = schedules.save(session=session, settings=load_settings(), actor=actor, **fields)
        session.commit()
        return row


def yesterday_was_the_last_run(engine, name: str = schedules.NIGHTLY) -> None:
    """As if the last slot taken was a day ago: today's slot is due."""
    with session_scope(engine, write=True) as session:
        row = session.get(JobSchedule, name)
        row.last_slot -= timedelta(days=1)
        session.add(row)
        session.commit()


def test_an_admin_sets_a_schedule_audited_and_its_next_run_is_ahead(engine):
    row = save(engine, offset_minutes=3 * 60 + 30)

    assert row.enabled and row.last_slot <= utcnow() < schedules.next_run(utcnow(), row)
    assert schedules.fire_due(engine, load_settings()) == []  # the slot that passed before the change is not run
    with Session(engine) as session:
        (change,) = session.exec(select(AuditEvent).where(AuditEvent.action == "schedule.change")).all()
    assert (change.actor, change.target, change.detail["new"]["offset_minutes"]) == ("alice", "nightly_generate", 210)
    with pytest.raises(PermissionDenied):
        save(engine, actor=Actor("pat", "product"))
    with pytest.raises(ConfigError, match="between 00:00 and 23:59"):
        save(engine, offset_minutes=1440)


def test_a_due_nightly_run_is_queued_once_however_many_workers_tick(engine, make_solutions):
    ids = make_solutions(3)
    save(engine)
    yesterday_was_the_last_run(engine)
    start, queued = threading.Barrier(4), []

    def tick() -> None:
        start.wait()
        queued.extend(schedules.fire_due(engine, load_settings()))

    workers = [threading.Thread(target=tick) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    (job,) = queued
    assert (job.kind, job.schedule, job.actor, job.total) == (JobKind.generate, schedules.NIGHTLY, "schedule", 3)
    assert job.options["auto_approve"] is True
    assert schedules.fire_due(engine, load_settings()) == []
    run_jobs(engine, load_settings())
    assert {get_solution(engine, sid).image_status for sid in ids} == {"approved"}


def test_a_nightly_run_is_skipped_while_the_last_one_still_runs(engine, make_solutions):
    make_solutions(2)
    save(engine)
    yesterday_was_the_last_run(engine)
    (first,) = schedules.fire_due(engine, load_settings())
    yesterday_was_the_last_run(engine)

    assert schedules.fire_due(engine, load_settings()) == []
    with Session(engine) as session:
        assert [j.id for j in session.exec(select(Job))] == [first.id]


def test_a_schedule_that_cannot_queue_its_job_leaves_a_failed_job_saying_why(engine):
    save(engine, name=schedules.PULL, every_minutes=15, offset_minutes=0)  # no MARKETPLACE_DATABASE_URL here
    yesterday_was_the_last_run(engine, schedules.PULL)

    (job,) = schedules.fire_due(engine, load_settings())

    assert (job.kind, job.status) == (JobKind.marketplace_pull, JobStatus.failed)
    assert job.error.startswith("MARKETPLACE_DATABASE_URL is not set;")


def test_the_pull_is_a_job_for_workers_and_serve_leaves_it_to_a_live_one(engine, marketplace):
    first = marketplace.add_solution(title="Pulled by the worker")
    job = jobs.enqueue_pull(engine, load_settings(), actor=ALICE)
    run_jobs(engine, load_settings())
    assert job_status(engine, job.id) == JobStatus.done
    assert get_solution(engine, first).origin == SolutionOrigin.marketplace

    second = marketplace.add_solution(title="Pulled by serve")
    with session_scope(engine, write=True) as session:  # a worker on another machine, alive
        session.add(Runner(token="w", host="another-machine", pid=1, kind="worker", seen_at=utcnow()))
        session.commit()
    serve = pull.Schedule(engine, load_settings(), load_settings)
    serve.round()
    assert get_solution(engine, second) is None

    with session_scope(engine, write=True) as session:  # it stopped beating a while ago
        session.get(Runner, "w").seen_at = utcnow() - timedelta(minutes=5)
        session.commit()
    serve.round()
    assert get_solution(engine, second).origin == SolutionOrigin.marketplace


def job_status(engine, job_id: int) -> str:
    with Session(engine) as session:
        return session.get(Job, job_id).status
