"""The figures that compare providers, on `demo-data --solutions 10000 --generations 200000`.

    .venv/bin/python benchmarks/providers.py [--solutions N] [--generations M] [--keep DIR] [--rounds R]

Prints the best of R runs of each query (no page around it): Prompt Studio's yield table per template
version and per provider and model (all time, last 30 days), and the Metrics parts a provider filter
touches (the headline, the Totals tab with its per-provider table) over 30 and 90 days, for all
providers and for each one. Targets: the yield table and each Metrics part well under 1 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best(rounds: int, action) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--solutions", type=int, default=10_000)
    parser.add_argument("--generations", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (reused if it has a database)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="aix-providers-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{work}/bench.db",
        "AIXCHANGE_DATA_DIR": str(work / "data"),
        "EXTERNAL_IMAGES_PATH": str(work / "ext"),
    }
    os.environ.update(env)
    if not (work / "bench.db").exists():
        demo = ["demo-data", "--solutions", str(args.solutions), "--generations", str(args.generations)]
        subprocess.run([sys.executable, "-m", "aixchange_images", *demo], env=os.environ, check=True)

    sys.path.insert(0, str(ROOT))
    from sqlmodel import Session

    from aixchange_images import engines, metrics, metrics_dashboard, yields
    from aixchange_images.config import load_settings
    from aixchange_images.models import utcnow

    engine = engines.get_engine(load_settings())
    for by in (yields.BY_TEMPLATE, yields.BY_PAIR):
        for days in (0, 30):
            since = utcnow() - timedelta(days=days) if days else None

            def table(by: str = by, since=since) -> None:  # type: ignore[no-untyped-def]
                with Session(engine) as session:
                    yields.yield_table(session=session, since=since, by=by)

            period = f"last {days} days" if days else "all time"
            print(f"yield table by {by:<8} {period:<13} {best(args.rounds, table) * 1000:6.0f} ms")
    with Session(engine) as session:
        providers = metrics.choices(session=session)["provider"]
    for provider in (None, *providers):
        for period in ("30", "90"):
            scope = metrics.period_scope(period, provider=provider)
            for parts in (("head",), ("providers", "totals")):
                took = best(
                    args.rounds, lambda scope=scope, parts=parts: metrics_dashboard.gather(engine, scope, parts=parts)
                )
                print(
                    f"Metrics {'+'.join(parts):<16} {period:>2} days, {provider or 'all providers':<13} {took * 1000:6.0f} ms"
                )


if __name__ == "__main__":
    main()
