"""Background jobs in the library: queue, run, progress, cancel, retry, dead workers; on SQLite and Redis queues."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from conftest import run_jobs, solution_record
from openai_standin import IMAGES_PATH
from redis_server import PASSWORD
from sqlalchemy import inspect
from sqlmodel import Session, select
from test_claims import gone_pid

from aixchange_images import batch, cli, jobitems, jobqueue, jobs, leases, migrations, runs
from aixchange_images.auth import Actor, PermissionDenied
from aixchange_images.config import ConfigError, load_settings
from aixchange_images.db import session_scope
from aixchange_images.jobmodels import ItemStatus, Job, JobItem, JobStatus, Runner
from aixchange_images.jobqueue import QueueError
from aixchange_images.models import Attempt, Candidate, Solution, utcnow
from aixchange_images.pipeline import GenerateOptions
from aixchange_images.process import HOST

SMALL = GenerateOptions(size="256x256")
PAT = Actor("pat", "product")


def job_row(engine, job_id: int) -> Job:
    with Session(engine) as session:
        return session.get(Job, job_id)


def items(engine, job_id: int) -> list[JobItem]:
    with Session(engine) as session:
        return list(session.exec(select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.id)))


def image_prompts(standin) -> list[str]:
    # a request a kill cut off mid-body (no JSON) is not a call the service would answer or bill
    return [r["json"]["prompt"] for r in standin.requests if r["path"] == IMAGES_PATH and r["json"]]


def test_a_queued_generation_waits_for_a_worker_then_runs_through_the_pipeline(queue_backend, engine, make_solutions):
    ids = make_solutions(3)
    settings = load_settings()
    job = jobs.enqueue_generate(engine, settings, ids, GenerateOptions(size="256x256", candidates=2))

    assert (job.status, job.total, job.done) == (JobStatus.queued, 6, 0)
    assert jobqueue.queue_for(settings).pending() == 3  # one message per item: three threads may share it
    with Session(engine) as session:
        assert session.exec(select(Candidate)).all() == []  # queued, not run

    run_jobs(engine, settings)

    done = job_row(engine, job.id)
    assert (done.status, done.done, done.succeeded, done.failed) == (JobStatus.done, 6, 6, 0)
    assert done.started_at is not None and done.finished_at is not None
    with Session(engine) as session:
        made = session.exec(select(Attempt.solution_id).where(Attempt.batch_id == job.batch_id)).all()
        assert sorted(made) == sorted(ids * 2)
    assert {i.status for i in items(engine, job.id)} == {ItemStatus.succeeded}


def test_bad_options_or_a_role_that_may_not_queue_nothing(engine, settings, make_solutions):
    ids = make_solutions(2)
    with pytest.raises(ConfigError, match="16"):
        jobs.enqueue_generate(engine, settings, ids, GenerateOptions(size="1000x1000"))
    with pytest.raises(PermissionDenied):
        jobs.enqueue_generate(engine, settings, ids, GenerateOptions(auto_approve=True, actor=PAT))
    with Session(engine) as session:
        assert session.exec(select(Job)).all() == []


def test_cancel_starts_nothing_new_and_keeps_the_call_in_flight(
    queue_backend, engine, openai_settings, standin, make_solutions
):
    ids = make_solutions(5)
    job = jobs.enqueue_generate(engine, openai_settings, ids, GenerateOptions())
    standin.hold()
    worker = threading.Thread(target=runs.work, args=(engine, openai_settings, job.id, threading.Event()))
    worker.start()
    assert standin.wait_in_flight(1, timeout=30)

    cancelling = jobs.cancel(engine, job.id, actor=Actor("alice", "admin"))
    standin.release()
    worker.join(timeout=60)

    assert (cancelling.status, cancelling.cancel_requested) == (JobStatus.running, True)
    ended = job_row(engine, job.id)
    assert (ended.status, ended.done, ended.succeeded) == (JobStatus.cancelled, 1, 1)
    assert ended.cost_usd > 0  # the call that was in flight is paid for, and kept
    assert [i.status for i in items(engine, job.id)] == [ItemStatus.succeeded] + [ItemStatus.cancelled] * 4
    assert len(image_prompts(standin)) == 1


def test_retry_queues_only_what_did_not_get_done_and_pays_for_nothing_twice(
    queue_backend, engine, openai_settings, standin, make_solutions
):
    ids = make_solutions(3)
    standin.enqueue("invalid_request")  # the first call is refused (and not retried)
    job = jobs.enqueue_generate(engine, openai_settings, ids, GenerateOptions(concurrency=1))
    run_jobs(engine, openai_settings)
    failed = job_row(engine, job.id)
    assert (failed.status, failed.succeeded, failed.failed) == (JobStatus.failed, 2, 1)

    again = jobs.retry(engine, openai_settings, job.id, actor=Actor("alice", "admin"))
    run_jobs(engine, openai_settings)

    assert (again.retry_of, again.total) == (job.id, 1)
    assert job_row(engine, again.id).status == JobStatus.done
    assert len(image_prompts(standin)) == 4  # three, and the one that failed once more
    with pytest.raises(jobs.JobError, match="nothing to retry"):
        jobs.retry(engine, openai_settings, again.id, actor=Actor("alice", "admin"))


def test_only_an_admin_or_its_author_may_stop_a_job(engine, settings, make_solutions):
    ids = make_solutions(1)
    job = jobs.enqueue_generate(engine, settings, ids, GenerateOptions(actor=Actor("alice", "admin")))
    with pytest.raises(PermissionDenied, match="alice"):
        jobs.cancel(engine, job.id, actor=PAT)
    with pytest.raises(PermissionDenied):
        jobs.cancel(engine, job.id, actor=Actor("mia", "manager"))
    assert jobs.cancel(engine, job.id, actor=Actor("bob", "admin")).status == JobStatus.cancelled  # never started


def taken_by(engine, job_id: int, token: str, *, host: str, pid: int, seen_ago: timedelta) -> None:
    """The job's first item as another worker holds it: running, with that worker's heartbeat `seen_ago`."""
    with session_scope(engine, write=True) as session:
        session.add(Runner(token=token, host=host, pid=pid, kind="worker", seen_at=utcnow() - seen_ago))
        first = session.exec(select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.id)).first()
        first.status, first.runner = ItemStatus.running, token
        session.add(first)
        session.commit()


def test_the_items_of_dead_workers_are_queued_again_and_a_live_ones_are_left(engine, settings, make_solutions):
    ids = make_solutions(3)
    live, silent, killed = (jobs.enqueue_generate(engine, settings, [sid], SMALL) for sid in ids)
    taken_by(engine, live.id, "live", host="another-machine", pid=1, seen_ago=timedelta(seconds=5))
    taken_by(engine, silent.id, "silent", host="machine-c", pid=1, seen_ago=leases.LEASE + timedelta(seconds=1))
    taken_by(engine, killed.id, "killed", host=HOST, pid=gone_pid(), seen_ago=timedelta(seconds=1))

    assert jobitems.reap(engine) == {silent.id: 1, killed.id: 1}
    assert [i.status for i in items(engine, live.id)] == [ItemStatus.running]
    for job in (silent, killed):
        assert [(i.status, i.runner) for i in items(engine, job.id)] == [(ItemStatus.queued, None)]


def test_a_queue_that_cannot_be_reached_is_one_sentence_without_its_password(engine, make_solutions, monkeypatch):
    ids = make_solutions(1)
    from pg_server import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")
    settings = load_settings()
    with pytest.raises(QueueError) as refused:
        jobs.enqueue_generate(engine, settings, ids, SMALL)

    sentence = str(refused.value)
    assert "Redis at redis://127.0.0.1:" in sentence and "unset REDIS_URL" in sentence
    assert PASSWORD not in sentence and sentence.count(". ") == 0
    with Session(engine) as session:
        (job,) = session.exec(select(Job)).all()
    assert job.status == JobStatus.failed and PASSWORD not in json.dumps(jobs.as_dict(job), default=str)


# -- the command line ------------------------------------------------------------------------------
def cli_run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


CONTRACT = {"id", "kind", "status", "total", "done", "succeeded", "failed", "cost_usd"}


def test_generate_background_returns_at_once_and_jobs_lists_it(queue_backend, engine, make_solutions, capsys):
    make_solutions(2)
    code, out, err = cli_run(capsys, "generate", "--missing", "--size", "256x256", "--background", "--json")
    assert code == 0, err
    queued = json.loads(out)
    assert queued["status"] == "queued" and isinstance(queued["job_id"], int)
    assert "no worker is running" in err

    code, out, _ = cli_run(capsys, "jobs", "--json")
    (listed,) = json.loads(out)["jobs"]
    assert code == 0 and set(listed) >= CONTRACT
    assert (listed["id"], listed["status"], listed["total"], listed["done"]) == (queued["job_id"], "queued", 2, 0)

    code, out, _ = cli_run(capsys, "jobs", "cancel", str(queued["job_id"]), "--json")
    assert code == 0 and json.loads(out)["status"] == "cancelled"


@pytest.mark.parametrize("command", ["cancel", "retry"])
def test_an_unknown_job_is_bad_usage_in_one_sentence(engine, capsys, command):
    code, out, err = cli_run(capsys, "jobs", command, "4242")
    assert (code, out) == (2, "")
    assert err.strip() == "error: There is no job 4242; see `jobs` for the ids."


def test_stopping_an_ended_job_changes_nothing_and_says_so(engine, settings, make_solutions, capsys):
    job = jobs.enqueue_generate(engine, settings, make_solutions(1), SMALL)
    run_jobs(engine, settings)
    code, _, err = cli_run(capsys, "jobs", "cancel", str(job.id))
    assert code == 2 and "has already ended (done)" in err
    assert job_row(engine, job.id).status == JobStatus.done
    assert job_row(engine, job.id).cancel_requested is False


def test_a_job_run_by_a_process_that_finds_it_over_does_nothing(engine, settings, make_solutions):
    job = jobs.enqueue_generate(engine, settings, make_solutions(1), SMALL)
    jobs.cancel(engine, job.id, actor=Actor("alice", "admin"))
    runs.work(engine, settings, job.id, threading.Event())  # a message still on the queue for it
    with Session(engine) as session:
        assert session.exec(select(Attempt)).all() == []
    assert job_row(engine, job.id).status == JobStatus.cancelled


def test_a_jobs_results_read_as_a_batch_run_in_the_page_returns_them(engine, settings, make_solutions):
    ids = make_solutions(2)
    job = jobs.enqueue_generate(engine, settings, ids, GenerateOptions(size="256x256", candidates=2, auto_approve=True))
    run_jobs(engine, settings)
    with Session(engine) as session:
        results = jobs.results(session=session, job=job)
        table = batch.results_table(session=session, results=results)
        assert jobs.results(session=session, job=job, failed=True) == []
        assert len(jobs.results(session=session, job=job, limit=3)) == 3
    assert sorted(r.solution_id for r in results) == sorted(ids * 2)
    assert all(r.status == "succeeded" and r.candidate_id and r.attempt_id for r in results)
    assert sum(r.published_url is not None for r in results) == 2  # each solution's first image, auto-approved
    assert sorted(table["Result"]) == ["New candidate for review"] * 2 + ["Published"] * 2
    assert sorted(set(table["Solution"])) == ["Solution number 0", "Solution number 1"]


def test_a_jobs_items_that_failed_without_an_attempt_are_its_failures(engine, settings, make_solutions):
    job = jobs.enqueue_generate(engine, settings, make_solutions(2), SMALL)
    jobitems.fail(engine, job.id, "The template default@9 is gone.")
    jobitems.finalize(engine, job.id)
    with Session(engine) as session:
        failed = jobs.results(session=session, job=job, failed=True)
    assert [(r.status, r.attempt_id, r.error) for r in failed] == [
        ("failed", None, "The template default@9 is gone.")
    ] * 2


def test_a_database_from_before_background_jobs_gains_their_tables(engine):
    tables = ("jobitem", "job", "solutionclaim", "runner", "jobschedule")
    with engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("DELETE FROM schemamigration WHERE version = 13")
    assert migrations.migrate(engine) == [13]
    assert migrations.migrate(engine) == []
    assert set(tables) <= set(inspect(engine).get_table_names())


def test_redis_url_is_checked_and_its_password_is_a_secret(monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://:{PASSWORD}@queue.internal:6380/2")
    settings = load_settings()
    assert PASSWORD in settings.secrets
    assert jobqueue.JobQueue(settings).where == "Redis at redis://queue.internal:6380/2"

    monkeypatch.setenv("REDIS_URL", f"http://user:{PASSWORD}@queue.internal")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "not a Redis URL" in str(refused.value) and PASSWORD not in str(refused.value)


# -- large imports --------------------------------------------------------------------------------
def test_import_background_writes_nothing_until_a_worker_runs_it(engine, settings, tmp_path, capsys):
    records = [solution_record(i) for i in range(3)] + [solution_record(9, title="")]
    bulk_file = tmp_path / "catalogue.json"
    bulk_file.write_text(json.dumps(records))

    code, out, err = cli_run(capsys, "import", str(bulk_file), "--background", "--json")

    assert code == 0, err
    queued = json.loads(out)
    assert (queued["status"], queued["records"]) == ("queued", 4) and "no worker is running" in err
    with Session(engine) as session:
        assert session.exec(select(Solution)).all() == []  # the worker writes them, not the command
    assert run_jobs(engine, settings) == [queued["job_id"]]
    with Session(engine) as session:
        job = jobs.get(session=session, job_id=queued["job_id"])
        titles = sorted(session.exec(select(Solution.title)).all())
    assert (job.kind, job.status, job.done, job.total) == ("catalogue_import", "done", 1, 1)
    assert job.error is None and job.failed == 0
    assert titles == [f"Solution number {i}" for i in range(3)]
    assert list((settings.data_dir / "imports").iterdir()) == []  # its copy is gone once written


def test_an_import_jobs_refused_records_are_noted_on_the_job(engine, settings, tmp_path):
    data = json.dumps([solution_record(1), solution_record(2, title="")]).encode()

    job = jobs.enqueue_import(engine, settings, actor=Actor("alice", "admin"), source="two.json", data=data)
    run_jobs(engine, settings)

    with Session(engine) as session:
        ended = jobs.get(session=session, job_id=job.id)
        (item,) = session.exec(select(JobItem).where(JobItem.job_id == job.id)).all()
    assert (ended.status, ended.error, ended.failed) == ("done", None, 0)
    assert item.error == "1 record(s) refused; see the audit log."


def test_a_file_that_is_not_a_bulk_file_queues_no_import(engine, tmp_path, capsys):
    bad = tmp_path / "catalogue.json"
    bad.write_text("{not json")

    code, out, err = cli_run(capsys, "import", str(bad), "--background")

    assert (code, out) == (2, "") and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    with Session(engine) as session:
        assert jobs.recent(session=session) == []


def test_a_manager_may_not_queue_an_import(engine, settings):
    with pytest.raises(PermissionDenied):
        jobs.enqueue_import(engine, settings, actor=Actor("mia", "manager"), source="x.json", data=b"[]")
    with Session(engine) as session:
        assert jobs.recent(session=session) == []
