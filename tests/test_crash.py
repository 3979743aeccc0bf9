"""A batch killed with SIGKILL mid-call: nothing half-written is visible, and the next run resumes without paying twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT
from openai_standin import IMAGES_PATH, OpenAIStandIn
from sqlmodel import Session, col, select

from aixchange_images import storage
from aixchange_images.config import Settings
from aixchange_images.models import Attempt, AttemptStatus, Candidate, Solution

COMMAND = ["generate", "--all", "--provider", "openai", "--concurrency", "4"]


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    """`python -m aixchange_images ...` as its own process, with this test's environment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / f"run-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "aixchange_images", *args], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        proc.log.close()  # type: ignore[attr-defined]


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 30) -> None:
    """Poll `condition` until it holds; fail if the deadline passes or the process ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the batch ended (exit {proc.returncode}) before the condition held"
        assert time.monotonic() < deadline, "the batch made no progress before the deadline"
        time.sleep(0.02)  # polling interval, not a stand-in for synchronisation


def progress(engine) -> tuple[set[str], list[int]]:
    """Solutions with a stored candidate, and ids of attempts still marked running."""
    with Session(engine) as session:
        stored = set(session.exec(select(Candidate.solution_id)).all())
        running = list(session.exec(select(Attempt.id).where(Attempt.status == AttemptStatus.running)).all())
    return stored, running


def kill_mid_batch(
    engine, standin: OpenAIStandIn, proc: subprocess.Popen, also: Callable[[], bool] = lambda: True
) -> tuple[set[str], list[int]]:
    def mid_batch() -> bool:
        stored, _ = progress(engine)
        return len(stored) >= 2 and also()

    wait_until(mid_batch, proc)
    standin.hold()  # the next call waits for us: it is surely in flight (its attempt running) at the kill
    assert standin.wait_held(1), "no call reached the stand-in after the batch was held"
    os.kill(proc.pid, signal.SIGKILL)
    assert finish(proc) == -signal.SIGKILL  # reaped, so its pid is really gone
    standin.release()
    deadline = time.monotonic() + 10
    while standin.in_flight:  # let the server finish the dead process's calls before counting new ones
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return progress(engine)


def visible_leftovers(settings: Settings) -> list[Path]:
    folder = settings.publish_dir
    return (
        [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")] if folder.exists() else []
    )


@pytest.fixture
def titles(engine, make_solutions) -> dict[str, str]:
    ids = make_solutions(12)
    with Session(engine) as session:
        return {sid: session.get(Solution, sid).title for sid in ids}


def test_a_killed_batch_leaves_nothing_half_done_and_the_rerun_pays_only_for_the_rest(
    engine, openai_settings, standin, titles, tmp_path
):
    standin.latency = 0.4  # calls are in flight when the kill comes
    proc = start(tmp_path, *COMMAND)

    stored, running = kill_mid_batch(engine, standin, proc)

    assert running and len(stored) < len(titles)
    assert visible_leftovers(openai_settings) == []
    assert not openai_settings.publish_dir.exists() or not any(openai_settings.publish_dir.iterdir())
    with Session(engine) as session:
        for candidate in session.exec(select(Candidate)).all():  # what was stored is whole
            storage.verify_image((openai_settings.data_dir / candidate.file_path).read_bytes())
    calls_before = len(standin.requests)

    rerun = start(tmp_path, *COMMAND)

    assert finish(rerun) == 0
    new_images = [
        r["json"]["prompt"] for r in standin.requests[calls_before:] if r["path"] == IMAGES_PATH and r["json"]
    ]
    expected = sorted(title for sid, title in titles.items() if sid not in stored)
    assert sorted(next(t for t in titles.values() if f'"{t}"' in p) for p in new_images) == expected
    with Session(engine) as session:
        closed = session.exec(select(Attempt).where(col(Attempt.id).in_(running))).all()
        assert {a.status for a in closed} == {AttemptStatus.interrupted}
        assert all(a.finished_at is not None and a.cost_usd == a.reserved_usd > 0 for a in closed)
        assert session.exec(select(Attempt).where(Attempt.status == AttemptStatus.running)).all() == []
        assert set(session.exec(select(Candidate.solution_id)).all()) == set(titles)


def test_a_batch_killed_while_publishing_leaves_only_whole_files_in_the_publish_folder(
    engine, openai_settings, standin, titles, tmp_path
):
    standin.latency = 0.3
    proc = start(tmp_path, *COMMAND, "--auto-approve")

    def published() -> list[Path]:
        folder = openai_settings.publish_dir
        return list(folder.iterdir()) if folder.exists() else []

    kill_mid_batch(engine, standin, proc, also=lambda: bool(published()))

    assert visible_leftovers(openai_settings) == []
    for path in published():
        storage.verify_image(path.read_bytes())

    rerun = start(tmp_path, *COMMAND, "--auto-approve")

    assert finish(rerun) == 0
    assert visible_leftovers(openai_settings) == []
    with Session(engine) as session:
        assert all(
            s.image_url and s.image_url.startswith("/api/external-images/solutions/")
            for s in session.exec(select(Solution)).all()
        )
