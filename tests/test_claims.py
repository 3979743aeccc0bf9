"""Per-solution claims: two runs never both pay for one solution, on one machine or several."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta

from conftest import ROOT
from openai_standin import IMAGES_PATH
from sqlmodel import Session, select

from aixchange_images import claims, leases
from aixchange_images.db import session_scope
from aixchange_images.jobmodels import Runner, SolutionClaim
from aixchange_images.models import Solution, utcnow
from aixchange_images.process import HOST


def claim_held_by(engine, solution_id: str, *, host: str, pid: int, seen_ago: timedelta) -> None:
    """A claim of another process, with that process's heartbeat `seen_ago`."""
    with session_scope(engine, write=True) as session:
        session.add(Runner(token="other-runner", host=host, pid=pid, seen_at=utcnow() - seen_ago))
        session.add(SolutionClaim(solution_id=solution_id, owner="other-run", runner="other-runner"))
        session.commit()


def gone_pid() -> int:
    """The pid of a process of this machine that has ended (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_claimed_solution_cannot_be_claimed_by_another_run_until_released(engine, make_solutions):
    (sid,) = make_solutions(1)
    with claims.Claims(engine):  # this process is alive while it holds claims
        assert claims.take(engine, sid, "run-a")
        assert not claims.take(engine, sid, "run-b")
        assert claims.take(engine, sid, "run-a")  # its own claim again
        claims.release(engine, sid, "run-a")
        assert claims.take(engine, sid, "run-b")


def test_of_runs_racing_for_one_solution_exactly_one_gets_it(engine, make_solutions):
    (sid,) = make_solutions(1)
    start, won = threading.Barrier(8), []

    def race(owner: str) -> None:
        start.wait()
        if claims.take(engine, sid, owner):
            won.append(owner)

    with claims.Claims(engine):
        threads = [threading.Thread(target=race, args=(f"run-{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(won) == 1


def test_a_claim_of_another_machine_holds_until_its_heartbeat_is_a_lease_old(engine, make_solutions):
    fresh, stale = make_solutions(2)
    claim_held_by(engine, fresh, host="another-machine", pid=os.getpid(), seen_ago=timedelta(seconds=5))
    assert not claims.take(engine, fresh, "run-b")

    with session_scope(engine, write=True) as session:
        row = session.get(Runner, "other-runner")
        row.seen_at = utcnow() - leases.LEASE - timedelta(seconds=1)
        session.commit()
    assert claims.take(engine, fresh, "run-b")
    with Session(engine) as session:
        assert session.get(SolutionClaim, fresh).owner == "run-b"


def test_a_claim_of_a_process_of_this_machine_that_is_gone_lapses_at_once(engine, make_solutions):
    (sid,) = make_solutions(1)
    claim_held_by(engine, sid, host=HOST, pid=gone_pid(), seen_ago=timedelta(seconds=1))
    assert claims.take(engine, sid, "run-b")


def test_a_run_waits_for_anothers_claim_and_its_own_candidates_share_one(engine, make_solutions):
    (sid,) = make_solutions(1)
    with claims.Claims(engine) as first, first.hold(sid) as held, first.hold(sid) as again:
        assert held and again  # the same run's second candidate does not wait for the first
        stop = threading.Event()
        second = claims.Claims(engine, stop)
        outcome: list[bool] = []
        waiting = threading.Thread(target=lambda: outcome.append(second.hold(sid).__enter__()))
        waiting.start()
        stop.set()  # it gives up only because it is stopped: the claim was never free meanwhile
        waiting.join(timeout=30)
        assert outcome == [False]
    with claims.Claims(engine) as third, third.hold(sid) as held:
        assert held


def test_three_overlapping_missing_runs_pay_once_per_solution_and_publish_once(
    engine, openai_settings, standin, make_solutions, tmp_path
):
    ids = make_solutions(10)
    standin.latency = 0.3  # the runs overlap for certain
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "aixchange_images", "generate", "--missing", "--auto-approve", "--json"]
    runs = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    codes = [run.wait(timeout=180) for run in runs]

    assert codes == [0, 0, 0], [run.stderr.read().decode()[-2000:] for run in runs]
    assert len([r for r in standin.requests if r["path"] == IMAGES_PATH]) == 10
    assert len(list(openai_settings.publish_dir.iterdir())) == 10
    with Session(engine) as session:
        assert {s.image_status for s in session.exec(select(Solution).where(Solution.id.in_(ids)))} == {"approved"}
        assert session.exec(select(SolutionClaim)).all() == []  # every claim was released


def test_live_workers_are_those_whose_heartbeat_is_fresh(engine):
    with session_scope(engine, write=True) as session:
        now = utcnow()
        session.add(Runner(token="w-fresh", host="machine-a", pid=1, kind="worker", concurrency=16, seen_at=now))
        session.add(Runner(token="w-stale", host="machine-b", pid=1, kind="worker", seen_at=now - 2 * leases.LEASE))
        session.add(Runner(token="w-gone", host=HOST, pid=gone_pid(), kind="worker", seen_at=now))
        session.add(Runner(token="a-cli", host="machine-a", pid=2, kind="cli", seen_at=now))
        session.commit()
    with leases.presence(engine, kind="worker", concurrency=3), Session(engine) as session:
        assert sorted(r.token for r in leases.live_workers(session) if r.token.startswith("w-")) == ["w-fresh"]
        assert any(r.host == HOST and r.pid == os.getpid() and r.concurrency == 3 for r in leases.live_workers(session))
