"""Jobs in the dashboard: every page's sidebar, the Jobs page, Stop and Retry, Generate's job, Settings' schedules."""

from __future__ import annotations

import json
from datetime import time

from conftest import app_test, open_page, run_jobs, solution_record
from sqlmodel import Session, select

from aixchange_images import jobs
from aixchange_images.auth import Actor
from aixchange_images.config import load_settings
from aixchange_images.jobmodels import Job, JobSchedule, JobStatus
from aixchange_images.models import AuditEvent
from aixchange_images.pipeline import GenerateOptions

ALICE, BOB, MIA = Actor("alice", "admin"), Actor("bob", "admin"), Actor("mia", "manager")


def queued_by_alice(engine, make_solutions, n: int = 2) -> Job:
    return jobs.enqueue_generate(engine, load_settings(), make_solutions(n), GenerateOptions(actor=ALICE))


def progress_texts(element) -> list[str]:  # type: ignore[no-untyped-def]
    """Progress bars' labels as a person reads them (the app escapes markdown in them)."""
    return [p.proto.text.replace("\\", "") for p in element.get("progress")]


def job_of(engine, job_id: int) -> Job:
    with Session(engine) as session:
        return session.get(Job, job_id)


def test_everyone_sees_a_running_job_in_the_sidebar_of_any_page(engine, make_solutions):
    job = queued_by_alice(engine, make_solutions)
    at = app_test(MIA)
    at.run()  # the first page, Overview (AppTest shows no sidebar after a switch_page)
    assert not at.exception
    assert any(f"job {job.id} · alice: 0 of 2 done" in text for text in progress_texts(at.sidebar))


def test_the_jobs_page_lists_it_live_and_a_manager_cannot_stop_it(engine, make_solutions):
    job = queued_by_alice(engine, make_solutions)
    at = open_page("jobs", MIA)
    assert any(f"job {job.id}" in text for text in progress_texts(at.main))
    assert not [b for b in at.button if b.label == "Stop"]
    assert any("No worker is running" in w.value for w in at.warning)


def test_another_admin_stops_it_from_the_jobs_page(engine, make_solutions):
    job = queued_by_alice(engine, make_solutions)
    at = open_page("jobs", BOB)
    next(b for b in at.button if b.label == "Stop").click().run()
    assert not at.exception
    assert job_of(engine, job.id).status == JobStatus.cancelled  # it had not started: nothing was in flight


def test_retry_on_the_jobs_page_queues_what_did_not_get_done(engine, make_solutions):
    job = queued_by_alice(engine, make_solutions, 3)
    jobs.cancel(engine, job.id, actor=ALICE)
    at = open_page("jobs", ALICE)
    next(b for b in at.button if b.label == "Retry").click().run()
    assert not at.exception
    with Session(engine) as session:
        again = session.exec(select(Job).where(Job.retry_of == job.id)).one()
    assert (again.status, again.total, again.actor) == (JobStatus.queued, 3, "alice")


def test_generates_stop_cancels_the_job_it_queued(engine, make_solutions):
    make_solutions(2)
    at = open_page("generate", ALICE)
    next(b for b in at.button if b.label == "Generate").click().run()
    next(b for b in at.button if b.label == "Stop").click().run()
    assert not at.exception
    with Session(engine) as session:
        (job,) = session.exec(select(Job)).all()
    assert (job.status, job.cancel_requested, job.actor) == (JobStatus.cancelled, True, "alice")


def test_an_admin_sets_the_nightly_run_in_settings_and_it_is_audited(engine):
    at = open_page("settings", ALICE)
    at.toggle[0].set_value(True)
    at.time_input[0].set_value(time(3, 30))
    next(b for b in at.button if b.label == "Save schedule").click().run()
    assert not at.exception
    with Session(engine) as session:
        nightly = session.get(JobSchedule, "nightly_generate")
        change = session.exec(select(AuditEvent).where(AuditEvent.action == "schedule.change")).one()
    assert (nightly.enabled, nightly.every_minutes, nightly.offset_minutes) == (True, 1440, 210)
    assert change.actor == "alice"


def test_the_solutions_page_follows_the_import_it_queued_and_lists_what_it_wrote(engine):
    data = json.dumps([solution_record(i) for i in range(2)]).encode()
    job = jobs.enqueue_import(engine, load_settings(), actor=ALICE, source="big.json", data=data)
    at = app_test(ALICE)
    at.session_state["import_job_id"] = job.id  # what Import leaves for a file over LARGE_IMPORT records
    at.run()
    at.switch_page("pages/solutions.py").run()

    assert not at.exception
    assert any(f"Import · job {job.id} · alice: 0 of 1 done" in text for text in progress_texts(at.main))
    run_jobs(engine, load_settings())
    at.run()
    assert not at.exception
    assert any(f"Job {job.id} is done." in s.value for s in at.success)
