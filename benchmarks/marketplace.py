"""The marketplace connector at scale, against a throwaway PostgreSQL holding the marketplace's tables.

    .venv/bin/python benchmarks/marketplace.py [--solutions N] [--deliveries M]

Prints: the first pull of N rows (all new) and the next one (all unchanged), on a SQLite database of
ours; a push of M waiting deliveries; and what an approval's immediate delivery adds to it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from marketplace_db import Marketplace, start_server  # noqa: E402


def fill(market: Marketplace, n: int) -> None:
    rows = [
        (f"c{i:024d}", f"Solution {i}", "Routes support tickets to the right team.", "Other", "Acme", "https://e.com")
        for i in range(n)
    ]
    with market.server.connect(market.database) as conn, conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO "Solution" (id, title, description, category, provider, "launchUrl", "authorId", '
            f"\"updatedAt\", tags) VALUES (%s, %s, %s, %s, %s, %s, '{market.author}', now() AT TIME ZONE 'UTC', ARRAY['ops'])",
            rows,
        )


def timed(label: str, action) -> object:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = action()
    print(f"{label}: {time.perf_counter() - started:.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--solutions", type=int, default=10_000)
    parser.add_argument("--deliveries", type=int, default=1_000)
    args = parser.parse_args()
    server = start_server()
    try:
        market = Marketplace(server)
        fill(market, args.solutions)
        work = Path(tempfile.mkdtemp(prefix="aix-market-"))
        os.environ.update(
            DATABASE_URL=f"sqlite:///{work}/db.sqlite",
            AIXCHANGE_DATA_DIR=str(work / "data"),
            EXTERNAL_IMAGES_PATH=str(work / "external-images"),
            MARKETPLACE_DATABASE_URL=market.url,
        )
        run(args)
    finally:
        server.__exit__(None, None, None)


def run(args: argparse.Namespace) -> None:
    from sqlmodel import select

    from aixchange_images import db, deliveries, engines, pull
    from aixchange_images.auth import CLI_ACTOR
    from aixchange_images.config import load_settings
    from aixchange_images.models import Solution

    settings = load_settings()
    engine = engines.get_engine(settings)
    report = timed(f"pull of {args.solutions:,} new rows", lambda: pull.pull(engine, settings, actor=CLI_ACTOR))
    print(f"  {report.as_dict() | {'errors': len(report.errors)}}")
    report = timed(f"pull of {args.solutions:,} unchanged rows", lambda: pull.pull(engine, settings, actor=CLI_ACTOR))
    print(f"  {report.as_dict() | {'errors': len(report.errors)}}")
    with db.session_scope(engine, write=True) as session:
        for solution in session.exec(select(Solution).limit(args.deliveries)):
            solution.image_url = f"/api/external-images/solutions/bench-{solution.id}.png"
            deliveries.enqueue(session, solution, reason="approve", by="bench")
        session.commit()
    pushed = timed(f"push of {args.deliveries:,} deliveries", lambda: deliveries.push(engine, settings))
    print(f"  written {pushed.written}, pending {pushed.pending}, errors {len(pushed.errors)}")
    latencies = []
    with db.session_scope(engine) as session:
        some = list(session.exec(select(Solution).offset(args.deliveries).limit(50)))
    for solution in some:
        with db.session_scope(engine, write=True) as session:
            solution = session.merge(solution)
            solution.image_url = f"/api/external-images/solutions/one-{solution.id}.png"
            deliveries.enqueue(session, solution, reason="approve", by="bench")
            session.commit()
        started = time.perf_counter()
        deliveries.deliver_waiting(engine, settings)
        latencies.append((time.perf_counter() - started) * 1000)
    print(
        f"immediate delivery after one approval: median {statistics.median(latencies):.1f} ms, "
        f"p95 {sorted(latencies)[int(len(latencies) * 0.95) - 1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
