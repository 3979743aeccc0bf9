"""The figures that compare providers, on the database DATABASE_URL names: make one with
`python -m aixchange_images demo-data --solutions 10000 --generations 200000` (a fresh data folder).

    DATABASE_URL=sqlite:///DIR/bench.db .venv/bin/python benchmarks/providers.py [--rounds R]

Prints the least CPU time of R runs of each query, so that a busy machine changes the figures little
(SQLite runs in this process): Prompt Studio's yield table per template version and per provider and
model (all time, last 30 days), and the Metrics parts a provider filter touches (the headline, the
Totals tab with its per-provider table) over 30 and 90 days, for all providers and for each one.
Targets: each well under 1 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best(rounds: int, action) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        started = time.process_time()  # the worker threads' time too
        action()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
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
            print(f"yield table by {by:<8} {period:<13} {best(rounds, table) * 1000:6.0f} ms")
    with Session(engine) as session:
        providers = metrics.choices(session=session)["provider"]
    for provider in (None, *providers):
        for period in ("30", "90"):
            scope = metrics.period_scope(period, provider=provider)
            for parts in (("head",), ("providers", "totals")):
                took = best(
                    rounds, lambda scope=scope, parts=parts: metrics_dashboard.gather(engine, scope, parts=parts)
                )
                print(
                    f"Metrics {'+'.join(parts):<16} {period:>2} days, {provider or 'all providers':<13} {took * 1000:6.0f} ms"
                )


if __name__ == "__main__":
    main()
