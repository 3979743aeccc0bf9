"""Scale figures with `demo-data --solutions 10000 --generations 200000`.

    .venv/bin/python benchmarks/metrics.py [--solutions N] [--generations M] [--keep DIR]

Prints: the time `demo-data` takes to build the history, `stats --json` wall time (median of 3) and
the part of it spent computing the figures, the flag-rate queries (per model, per template version,
and the yield table that carries them) on every candidate checked by the five checks (demo-data checks
none: the benchmark writes their verdicts once), and each dashboard page's render time (AppTest, cold
and warm cache, the Metrics page's Image checks tab too). Targets: demo-data < 60 s, stats < 0.5 s,
Metrics page < 1 s warm, every page < 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["overview", "solutions", "generate", "review", "metrics", "prompt_studio", "marketplace", "settings"]
FLAG_EVERY = {"blank": 50, "text_garbled": 7, "unsafe": 200, "duplicate": 20, "wrong_size": 100}  # 1 in N flagged


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def median_ms(run: Callable[[], object], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def check_every_candidate(engine: Engine) -> int:
    """Verdicts of the five checks for each generated candidate that has none, written in SQL (one INSERT
    ... SELECT per check; candidate ids spread the flags), and each candidate's `flags` and `checked_at`
    as the checks leave them; returns the verdicts written."""
    from sqlalchemy import text

    raised = " || ".join(f"CASE WHEN id % {every} = 0 THEN '{name} ' ELSE '' END" for name, every in FLAG_EVERY.items())
    written = 0
    with engine.begin() as conn:
        for name, every in FLAG_EVERY.items():
            written += conn.execute(
                text(
                    "INSERT INTO candidatecheck (candidate_id, name, flagged, score, sentence, evidence, checked_at) "
                    "SELECT id, :name, (id % :every) = 0, NULL, '', '{}', created_at FROM candidate "
                    "WHERE source = 'generated' AND NOT EXISTS (SELECT 1 FROM candidatecheck k "
                    "WHERE k.candidate_id = candidate.id AND k.name = :name)"
                ),
                {"name": name, "every": every},
            ).rowcount
        conn.execute(
            text(
                f"UPDATE candidate SET checked_at = created_at, flags = CASE WHEN ({raised}) = '' THEN '' "
                f"ELSE ' ' || ({raised}) END WHERE checked_at IS NULL AND source = 'generated'"
            )
        )
    return written


def flag_rate_figures(engine: Engine) -> None:
    """The flag-rate queries' time, median of 3, on every candidate checked."""
    from sqlalchemy import func
    from sqlmodel import Session, select

    from aixchange_images import metrics, yields
    from aixchange_images.models import Candidate, CandidateCheck

    written = check_every_candidate(engine)
    with Session(engine) as session:
        candidates = session.exec(select(func.count()).select_from(Candidate)).one()
        verdicts = session.exec(select(func.count()).select_from(CandidateCheck)).one()
        print(f"flag rates over {candidates:,} candidates and {verdicts:,} verdicts ({written:,} written now):")
        for label, scope in (("all time", metrics.Scope()), ("last 30 days", metrics.last_days(30))):
            for by in ("model", "template"):
                ms = median_ms(lambda scope=scope, by=by: metrics.flag_rates(session=session, scope=scope, by=by))
                print(f"  flag_rates by {by:<8} ({label}), median of 3: {ms:.0f} ms")
            for by in (yields.BY_TEMPLATE, yields.BY_PAIR):
                ms = median_ms(lambda scope=scope, by=by: yields.yield_table(session=session, since=scope.since, by=by))
                print(f"  yield_table by {by:<8} ({label}, with the flag rates), median of 3: {ms:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--solutions", type=int, default=10_000)
    parser.add_argument("--generations", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (reused if it has a database)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="aix-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{work}/bench.db",
        "AIXCHANGE_DATA_DIR": str(work / "data"),
        "EXTERNAL_IMAGES_PATH": str(work / "ext"),
    }
    os.environ.update(env)
    cli = [sys.executable, "-m", "aixchange_images"]
    if not (work / "bench.db").exists():
        seconds = timed(
            [*cli, "demo-data", "--solutions", str(args.solutions), "--generations", str(args.generations)], env
        )
        print(
            f"demo-data --solutions {args.solutions} --generations {args.generations}: {seconds:.1f} s (target < 60 s)"
        )
    walls = [timed([*cli, "stats", "--json"], env) for _ in range(3)]
    startup = statistics.median(timed([*cli, "solutions", "--status", "uploaded", "--json"], env) for _ in range(3))
    print(f"stats --json wall, median of 3: {statistics.median(walls):.3f} s (target < 0.5 s)")
    print(f"  of which interpreter + imports + settings (a near-empty command): {startup:.3f} s")

    sys.path.insert(0, str(ROOT))
    from sqlmodel import Session, select

    from aixchange_images import metrics
    from aixchange_images.config import load_settings
    from aixchange_images.engines import get_engine
    from aixchange_images.models import User

    engine = get_engine(load_settings())
    with Session(engine) as session:
        for label, scope in (("all time", metrics.Scope()), ("last 30 days", metrics.last_days(30))):
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                metrics.headline(session=session, scope=scope)
                runs.append(time.perf_counter() - started)
            print(f"stats figures in-process ({label}), median of 3: {statistics.median(runs) * 1000:.0f} ms")
    flag_rate_figures(engine)

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from aixchange_images import auth, sessions
    from aixchange_images.auth import CLI_ACTOR, add_user

    with Session(engine) as session:  # signed in as a real user, as the browser would be
        user = session.exec(select(User).where(User.username == "bench")).first() or add_user(
            session=session, actor=CLI_ACTOR, username="bench", password="bench password 1", role="admin"
        )
        actor = auth.Actor(user.username, user.role, user.id)
        bench = sessions.start(session=session, settings=load_settings(), actor=actor)
        session.commit()
    for page in PAGES:
        st.cache_data.clear()  # cold: nothing cached from the previous page's run
        at = AppTest.from_file(str(ROOT / "dashboard" / "main.py"), default_timeout=120)  # as the server runs it
        at.session_state["actor"] = bench.actor
        at.run()
        st.cache_data.clear()
        started = time.perf_counter()
        at.switch_page(str(ROOT / "pages" / f"{page}.py")).run()
        cold = time.perf_counter() - started
        assert not at.exception, at.exception
        started = time.perf_counter()
        at.run()
        warm = time.perf_counter() - started
        print(f"page {page:<14} cold {cold:5.2f} s   warm {warm:5.2f} s (target < 1 s)")
        if page == "metrics":
            at.session_state["metrics-tab"] = "Image checks"
            st.cache_data.clear()
            started = time.perf_counter()
            at.run()
            cold = time.perf_counter() - started
            assert not at.exception, at.exception
            started = time.perf_counter()
            at.run()
            warm = time.perf_counter() - started
            print(f"  its Image checks tab cold {cold:5.2f} s   warm {warm:5.2f} s (target < 1 s)")
    print(f"data in {work}")


if __name__ == "__main__":
    main()
