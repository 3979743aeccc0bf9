"""The command line's start-up: how long a command takes in a fresh process, as medians of N runs.

    .venv/bin/python benchmarks/cli_startup.py [--runs N] [--db DIR] [--keep DIR]

Prints the median wall time (and CPU time: user + system, less sensitive to other work on the
machine) of `python -c pass` (the interpreter alone), `--help`, `generate --help`,
and `stats --json` (also `--since` 30 days ago) and `solutions --json` on a database of 10,000
solutions and 200,000 attempts. `stats` reads that migrated SQLite file without SQLAlchemy (quickstats).
`--db DIR` uses a copy of DIR/db.sqlite (and its data and external-images folders) made earlier by
`demo-data --solutions 10000 --generations 200000`; DIR itself is never written. Without it, the
database is built first (about 30 s), in a temporary folder or in `--keep DIR`.
Targets (issue 11): `--help` 0.3 s, `stats --json` 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, GENERATIONS = 10_000, 200_000


def environment(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite'}",
        "AIXCHANGE_DATA_DIR": str(folder / "data"),
        "EXTERNAL_IMAGES_PATH": str(folder / "external-images"),
        "IMAGE_PROVIDER": "local",
    }


def run(env: dict[str, str], args: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def prepare(folder: Path, source: Path | None) -> None:
    """The 10k/200k database in `folder`: copied from `source`, or built there with `demo-data`."""
    if source is not None:
        for name in ("db.sqlite", "db.sqlite-wal"):
            if (source / name).exists():
                shutil.copy2(source / name, folder / name)
        for name in ("data", "external-images"):
            if (source / name).is_dir():
                shutil.copytree(source / name, folder / name, dirs_exist_ok=True)
        return
    print(f"building {SOLUTIONS:,} solutions and {GENERATIONS:,} attempts in {folder} ...", file=sys.stderr)
    args = ["--solutions", str(SOLUTIONS), "--generations", str(GENERATIONS)]
    run(environment(folder), ["-m", "aixchange_images", "demo-data", *args, "--json"])


def measure(folder: Path, runs: int) -> None:
    env = environment(folder)
    cli = ["-m", "aixchange_images"]
    cases = [
        ("python -c pass", ["-c", "pass"]),
        ("--help", [*cli, "--help"]),
        ("generate --help", [*cli, "generate", "--help"]),
        ("stats --json", [*cli, "stats", "--json"]),
        ("stats --since", [*cli, "stats", "--json", "--since", str(date.today() - timedelta(days=30))]),
        ("solutions --json", [*cli, "solutions", "--json"]),
    ]
    for _, args in cases:  # warm the page cache and .pyc files; the first run is not counted
        run(env, args)
    print(f"median of {runs} runs, each in a fresh process ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}):")
    print(f"  {'seconds':<18} {'wall':>6}  {'min':>6}  {'max':>6}  {'CPU':>6}")
    for label, args in cases:
        walls, cpus = zip(*(run(env, args) for _ in range(runs)), strict=True)
        print(
            f"  {label:<18} {statistics.median(walls):6.3f}  {min(walls):6.3f}  {max(walls):6.3f}  "
            f"{statistics.median(cpus):6.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, metavar="N")
    parser.add_argument("--db", type=Path, metavar="DIR", help="copy this demo-data folder's database (read only)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it (else a temporary folder)")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        if not (args.keep / "db.sqlite").exists():
            prepare(args.keep, args.db)
        measure(args.keep, args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp:
        prepare(Path(tmp), args.db)
        measure(Path(tmp), args.runs)


if __name__ == "__main__":
    main()
