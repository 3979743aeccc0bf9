"""Workers as processes: killed with -9 and replaced, stopped with SIGTERM, two sharing one job and one budget.

Each runs on huey's SQLite storage and on a real redis-server. Synchronisation is by what the other
process does (rows it writes, calls the stand-in holds, lines it logs), waited for under a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, run_jobs
from openai_standin import IMAGES_PATH
from redis_server import PASSWORD
from sqlmodel import Session, col, select

from aixchange_images import cli, jobs
from aixchange_images.jobmodels import ItemStatus, Job, JobItem, JobStatus
from aixchange_images.models import Attempt, AttemptStatus, Candidate, Solution
from aixchange_images.pipeline import GenerateOptions

pytestmark = pytest.mark.usefixtures("queue_backend")


def start_worker(tmp_path: Path, *args: str) -> subprocess.Popen:
    """`python -m aixchange_images worker ...` as a process of its own, with this test's environment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed when it ends
    proc = subprocess.Popen(
        [sys.executable, "-m", "aixchange_images", "worker", *args],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def log_of(proc: subprocess.Popen) -> str:
    proc.log.flush()  # type: ignore[attr-defined]
    return Path(proc.log.name).read_text(errors="replace")  # type: ignore[attr-defined]


def wait_until(condition: Callable[[], bool], *procs: subprocess.Popen, timeout: float = 60) -> None:
    """Poll `condition` until it holds; fail if the deadline passes or a worker ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.poll() is None, f"the worker ended (exit {proc.returncode}) first:\n{log_of(proc)[-3000:]}"
        assert time.monotonic() < deadline, f"no progress before the deadline:\n{log_of(procs[0])[-3000:]}"
        time.sleep(0.05)  # polling interval, not a stand-in for synchronisation


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=90)
    finally:
        proc.log.close()  # type: ignore[attr-defined]


def job_row(engine, job_id: int) -> Job:
    with Session(engine) as session:
        return session.get(Job, job_id)


def ended(engine, job_id: int) -> Callable[[], bool]:
    return lambda: job_row(engine, job_id).status not in (JobStatus.queued, JobStatus.running)


def image_prompts(standin) -> list[str]:
    # a request the kill cut off mid-body (no JSON) is not a call the service would answer or bill
    return [r["json"]["prompt"] for r in standin.requests if r["path"] == IMAGES_PATH and r["json"]]


def progress(engine) -> tuple[set[str], list[int]]:
    """Solutions with a stored candidate, and ids of attempts still marked running."""
    with Session(engine) as session:
        stored = set(session.exec(select(Candidate.solution_id)).all())
        running = list(session.exec(select(Attempt.id).where(Attempt.status == AttemptStatus.running)).all())
    return stored, running


def titles(engine, ids: list[str]) -> dict[str, str]:
    with Session(engine) as session:
        return {sid: session.get(Solution, sid).title for sid in ids}


def test_a_worker_killed_mid_job_is_replaced_and_pays_for_nothing_twice(
    engine, openai_settings, standin, make_solutions, tmp_path
):
    ids = make_solutions(8)
    standin.latency = 0.4  # calls are in flight when the kill comes
    job = jobs.enqueue_generate(engine, openai_settings, ids, GenerateOptions())
    first = start_worker(tmp_path, "--concurrency", "2")

    wait_until(lambda: len(progress(engine)[0]) >= 2, first)
    standin.hold()  # the next call waits for us: it is surely in flight (its attempt running) at the kill
    assert standin.wait_held(1), log_of(first)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL  # reaped: its pid is really gone
    first.log.close()  # type: ignore[attr-defined]
    standin.release()
    deadline = time.monotonic() + 10
    while standin.in_flight:  # the dead worker's calls are answered (and so paid) before we count new ones
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stored, running = progress(engine)
    assert running and job_row(engine, job.id).status == JobStatus.running
    calls_before = len(image_prompts(standin))

    second = start_worker(tmp_path, "--concurrency", "2")
    wait_until(ended(engine, job.id), second)
    assert stop(second) == 0

    done = job_row(engine, job.id)
    assert (done.status, done.succeeded, done.failed) == (JobStatus.done, 8, 0)
    named = titles(engine, ids)
    new_calls = image_prompts(standin)[calls_before:]
    paid_again = sorted(next(t for t in named.values() if f'"{t}"' in p) for p in new_calls)
    assert paid_again == sorted(t for sid, t in named.items() if sid not in stored)  # only what was not stored
    with Session(engine) as session:
        closed = session.exec(select(Attempt).where(col(Attempt.id).in_(running))).all()
        assert {a.status for a in closed} == {AttemptStatus.interrupted}
        assert done.cost_usd == pytest.approx(sum(session.exec(select(Attempt.cost_usd)).all()))


def test_sigterm_lets_the_call_in_flight_finish_and_leaves_the_rest_for_the_next_worker(
    engine, openai_settings, standin, make_solutions, tmp_path
):
    ids = make_solutions(4)
    job = jobs.enqueue_generate(engine, openai_settings, ids, GenerateOptions())
    standin.hold()
    worker = start_worker(tmp_path, "--concurrency", "1")
    assert standin.wait_in_flight(1, timeout=60), log_of(worker)

    worker.send_signal(signal.SIGTERM)
    wait_until(lambda: "Stopping: no new item starts" in log_of(worker), worker)
    standin.release()
    assert worker.wait(timeout=60) == 0, log_of(worker)
    assert "Worker: 1 thread(s) on the job queue" in log_of(worker) and PASSWORD not in log_of(worker)
    worker.log.close()  # type: ignore[attr-defined]

    with Session(engine) as session:
        states = session.exec(select(JobItem.status).where(JobItem.job_id == job.id).order_by(JobItem.id)).all()
        attempts = session.exec(select(Attempt.status)).all()
    assert states == [ItemStatus.succeeded] + [ItemStatus.queued] * 3
    assert attempts == [AttemptStatus.succeeded]  # finished and recorded, not interrupted
    assert len(image_prompts(standin)) == 1

    nxt = start_worker(tmp_path, "--concurrency", "2")
    wait_until(ended(engine, job.id), nxt)
    assert stop(nxt) == 0
    assert (job_row(engine, job.id).status, len(image_prompts(standin))) == (JobStatus.done, 4)


def test_two_workers_share_one_job_and_overlapping_jobs_pay_once(
    engine, openai_settings, standin, make_solutions, tmp_path, capsys
):
    make_solutions(10)
    queued = []
    for _ in range(3):  # a nightly run that overran, twice: the same solutions wanted three times
        assert cli.main(["generate", "--missing", "--auto-approve", "--background", "--json"]) == 0
        queued.append(int(capsys.readouterr().out.split('"job_id": ')[1].split(",")[0]))
    standin.hold()
    workers = [start_worker(tmp_path, "--concurrency", "1") for _ in range(2)]
    assert standin.wait_in_flight(2, timeout=60)  # one call each, at once: both work on the first job
    standin.release()

    for job_id in queued:
        wait_until(ended(engine, job_id), *workers)
    assert [stop(w) for w in workers] == [0, 0]

    assert len(image_prompts(standin)) == 10
    assert len(list(openai_settings.publish_dir.iterdir())) == 10
    with Session(engine) as session:
        runners = set(session.exec(select(JobItem.runner).where(JobItem.job_id == queued[0])).all())
    assert len(runners) == 2
    assert [job_row(engine, j).status for j in queued] == [JobStatus.done] * 3
    assert [job_row(engine, j).succeeded for j in queued] == [10, 10, 10]  # the later ones from the cache, at $0
    assert run_jobs(engine, openai_settings) == []  # nothing left over
