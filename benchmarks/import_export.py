"""Bulk files at scale: import 10,000 records into a fresh SQLite file, export them, and what another writer waits.

    .venv/bin/python benchmarks/import_export.py [--records N]

Prints: `import` and `export` through the command line (wall time and records/s, Python's start-up
included), then the same import in-process into a second fresh database with the longest single
write transaction (how long the write lock was held at once) and the longest wait of another writer
committing small transactions all along. Target: 10,000 records imported in under 10 s; no write
transaction longer than a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CATEGORIES = ["Natural Language Processing", "Computer Vision", "Generative AI", "Machine Learning", "Other"]


def records(n: int) -> list[dict]:
    """Records like a real catalogue's: some with ids, metadata, images, a source link."""
    out = []
    for i in range(n):
        record = {
            "title": f"Benchmark solution {i:05d}",
            "description": f"Summarises support tickets of queue {i} and routes each to the right team, with replies.",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "provider": f"Provider {i % 37}",
            "launchUrl": f"https://example.com/solutions/{i}",
            "tags": ["support", "routing", f"queue-{i % 11}"],
            "tokenCost": i % 50,
            "rating": (i % 11) / 2,
            "metadata": {"resourceConfig": {"cpu": "2", "memory": "4Gi"}, "customFields": {"team": f"t{i % 7}"}},
        }
        if i % 2:
            record["id"] = f"cbench{i:019d}"
        if i % 3 == 0:
            record["imageUrl"] = f"/api/external-images/solutions/benchmark_solution_{i:05d}-1740153503444.png"
        if i % 4 == 0:
            record["sourceCodeUrl"] = f"https://github.com/example/s{i}"
        out.append(record)
    return out


def timed_cli(env: dict[str, str], *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "aixchange_images", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return seconds, json.loads(proc.stdout)


def through_the_cli(folder: Path, bulk_file: Path, n: int) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{folder / 'cli.db'}",
        "AIXCHANGE_DATA_DIR": str(folder / "data"),
        "EXTERNAL_IMAGES_PATH": str(folder / "external-images"),
    }
    seconds, report = timed_cli(env, "import", str(bulk_file))
    assert report["imported"] == n and not report["errors"], report["errors"][:3]
    print(f"import (CLI): {n:,} records in {seconds:.2f} s = {n / seconds:,.0f} records/s")
    seconds, report = timed_cli(env, "export", str(folder / "out" / "catalogue.json"))
    assert report["exported"] == n, report["refused"][:3]
    print(
        f"export (CLI): {n:,} records in {seconds:.2f} s = {n / seconds:,.0f} records/s, {len(report['files'])} files"
    )


class Probe:
    """Times every transaction of the engine (the import's are all write transactions), and another writer's waits."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        from sqlalchemy import event

        self.engine, self.started, self.longest, self.waits = engine, {}, 0.0, []
        self.done = threading.Event()
        event.listen(engine, "begin", lambda conn: self.started.__setitem__(id(conn), time.perf_counter()))
        for name in ("commit", "rollback"):
            event.listen(engine, name, self._ended)

    def _ended(self, conn) -> None:  # type: ignore[no-untyped-def]
        begun = self.started.pop(id(conn), None)
        if begun is not None and threading.current_thread() is threading.main_thread():
            self.longest = max(self.longest, time.perf_counter() - begun)

    def other_writer(self) -> None:
        from aixchange_images import auth, db

        while not self.done.is_set():
            asked = time.perf_counter()
            with db.session_scope(self.engine, write=True) as session:
                auth.audit(session, auth.CLI_ACTOR, "benchmark.probe")
                session.commit()
            self.waits.append(time.perf_counter() - asked)


def in_process(folder: Path, bulk_file: Path, n: int) -> None:
    os.environ.update(
        DATABASE_URL=f"sqlite:///{folder / 'probe.db'}",
        AIXCHANGE_DATA_DIR=str(folder / "data"),
        EXTERNAL_IMAGES_PATH=str(folder / "external-images"),
    )
    from aixchange_images import auth, bulk, bulkfiles, engines
    from aixchange_images.config import load_settings

    engine = engines.get_engine(load_settings())
    probe = Probe(engine)
    writer = threading.Thread(target=probe.other_writer)
    started = time.perf_counter()
    writer.start()
    report = bulk.import_bulk(engine, bulkfiles.read_bulk(bulk_file), actor=auth.CLI_ACTOR, source=bulk_file.name)
    seconds = time.perf_counter() - started
    probe.done.set()
    writer.join()
    assert report.imported == n and not report.errors
    print(
        f"import (in-process, another writer alongside): {seconds:.2f} s = {n / seconds:,.0f} records/s; "
        f"longest write transaction {probe.longest * 1000:.0f} ms; the other writer committed "
        f"{len(probe.waits):,} times, longest wait {max(probe.waits) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aix-bulk-") as tmp:
        folder = Path(tmp)
        bulk_file = folder / "catalogue.json"
        bulk_file.write_text(json.dumps({"solutions": records(args.records)}), encoding="utf-8")
        print(f"{args.records:,} records, {bulk_file.stat().st_size / 1e6:.1f} MB of bulk JSON")
        through_the_cli(folder, bulk_file, args.records)
        in_process(folder, bulk_file, args.records)


if __name__ == "__main__":
    main()
