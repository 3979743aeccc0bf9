"""Scale figures with `demo-data --solutions 10000 --generations 200000`.

    .venv/bin/python benchmarks/metrics.py [--solutions N] [--generations M] [--keep DIR]

Prints: the time `demo-data` takes to build the history, `stats --json` wall time (median of 3) and
the part of it spent computing the figures, and each dashboard page's render time (AppTest, cold and
warm cache). Targets: demo-data < 60 s, stats < 0.5 s, Metrics page < 1 s warm, every page < 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["overview", "solutions", "generate", "review", "metrics", "prompt_studio", "marketplace", "settings"]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


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
    print(f"data in {work}")


if __name__ == "__main__":
    main()
