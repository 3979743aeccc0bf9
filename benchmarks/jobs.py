"""Jobs benchmark: how soon an idle worker starts a queued job, and how close two workers come to the ideal.

Runs against the OpenAI stand-in (tests/openai_standin.py) on 127.0.0.1, never the real API:

    .venv/bin/python benchmarks/jobs.py [--backend sqlite|redis-postgres|both] [--images N] [--size WxH] [--light]

For each backend (huey's SQLite storage with the SQLite database; Redis with PostgreSQL, both
throwaway servers started as the tests start them), two `worker --concurrency 16` processes run:

1. Enqueue-to-start latency: 20 one-image jobs queued one after another (the stand-in answering
   at once), each measured from its row's created_at to its started_at, with idle workers.
2. 1,000 images, every image call taking 1.0 s: one job, from its created_at to its finished_at,
   against the ideal of 1000 x 1 s / 32 + start-up (the median enqueue-to-start latency). Target:
   within 10%. The ideal counts no time for the pipeline's own work (checking, storing and
   thumbnailing each image, its database writes): the workers' CPU per image is printed too, since
   on a small machine that, not the queue, bounds how many images a second two workers can take.
   Two ends are printed: when the last image was stored, and when the job ended (its last images
   checked too).

The replies weigh what real ones do (a 1024x1024 PNG of about 1.9 MB); `--light` sends 5 KB PNGs of
the same size, to tell the queue's own cost from the cost of the bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import openai_standin  # noqa: E402
from openai_standin import OpenAIStandIn  # noqa: E402

from aixchange_images.config import parse_size, sqlalchemy_url  # noqa: E402

WORKERS, CONCURRENCY, LATENCY = 2, 16, 1.0
FAKE_KEY = "bench-key-not-real-0000000000"
CLEARED = ("IMAGE_MODEL", "DALLE_IMAGE_SIZE", "DALLE_IMAGE_QUALITY", "IMAGE_CONCURRENCY", "IMAGE_RATE_LIMIT_PER_MINUTE")
CLEARED += ("IMAGE_BUDGET_DAILY_USD", "IMAGE_BUDGET_MONTHLY_USD", "REDIS_URL", "DATABASE_URL")


def environment(folder: Path, base_url: str, database: str, redis: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        DATABASE_URL=database,
        AIXCHANGE_DATA_DIR=str(folder / "data"),
        EXTERNAL_IMAGES_PATH=str(folder / "external-images"),
        OPENAI_API_KEY=FAKE_KEY,
        OPENAI_BASE_URL=base_url,
        IMAGE_PROVIDER="openai",
        PYTHONPATH=str(ROOT),
    )
    if redis:
        env["REDIS_URL"] = redis
    return env


def cli(env: dict[str, str], folder: Path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "aixchange_images", *args, "--json"], cwd=folder, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def import_solutions(env: dict[str, str], folder: Path, count: int) -> None:
    records = [
        {
            "title": f"Benchmark solution {i:04d}",
            "description": f"Summarises support tickets of queue {i} and routes each to the right team.",
            "category": ["Natural Language Processing", "Computer Vision", "Generative AI"][i % 3],
            "provider": "Acme Labs",
            "launchUrl": f"https://example.com/bench/{i}",
            "tags": ["support", "routing"],
        }
        for i in range(count)
    ]
    (folder / "bulk.json").write_text(json.dumps({"solutions": records}), encoding="utf-8")
    assert cli(env, folder, "import", "bulk.json")["imported"] == count


def job_times(database: str, job_id: int) -> dict | None:
    """The job's row once it has ended; None before. Read here, not with `jobs --json`: a command's start-up
    several times a second would take a core from the workers being measured."""
    from sqlalchemy import create_engine, text

    engine = _engines.setdefault(database, create_engine(sqlalchemy_url(database)))
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM job WHERE id = :id"), {"id": job_id}).mappings().first()
    return dict(row) if row is not None and row["status"] not in ("queued", "running") else None


_engines: dict = {}


def wait_for(database: str, job_id: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while (job := job_times(database, job_id)) is None:
        assert time.monotonic() < deadline, f"job {job_id} did not end within {timeout} s"
        time.sleep(0.2)
    return job


def seconds(job: dict, start: str, end: str) -> float:
    from datetime import datetime

    moments = [job[key] if isinstance(job[key], datetime) else datetime.fromisoformat(job[key]) for key in (start, end)]
    return (moments[1] - moments[0]).total_seconds()


def start_workers(env: dict[str, str], folder: Path, stack: ExitStack) -> list[subprocess.Popen]:
    procs = []
    for n in range(WORKERS):
        log = stack.enter_context(open(folder / f"worker-{n}.log", "wb"))  # noqa: SIM115 - the stack closes it
        command = [sys.executable, "-m", "aixchange_images", "worker", "--concurrency", str(CONCURRENCY)]
        proc = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(lambda p=proc: (p.terminate(), p.wait(timeout=120)))
        procs.append(proc)
    deadline = time.monotonic() + 60
    while not all("Worker:" in (folder / f"worker-{n}.log").read_text() for n in range(WORKERS)):
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)
    return procs


def enqueue(env: dict[str, str], folder: Path, *args: str) -> int:
    return int(cli(env, folder, "generate", *args, "--background")["job_id"])


def measure(database: str, redis: str | None, images: int, size: str, heavy: bool) -> dict[str, float]:
    for variant in range(256):  # the stand-in's PNGs, encoded once (called as it calls them, or the cache
        openai_standin._image_bytes(parse_size(size), "png", variant, False, heavy)  # misses): calls cost
    with (  # the latency, not its encoder
        OpenAIStandIn(latency=0.0, heavy=heavy) as standin,
        tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp,
        ExitStack() as stack,
    ):
        folder = Path(tmp)
        env = environment(folder, standin.base_url, database.replace("{folder}", str(folder)), redis)
        import_solutions(env, folder, images)
        ids = [s["id"] for s in cli(env, folder, "solutions")["solutions"]]
        workers = start_workers(env, folder, stack)
        latencies = []
        for sid in ids[:20]:  # one image each, the stand-in answering at once
            job = wait_for(env["DATABASE_URL"], enqueue(env, folder, "--solution", sid, "--size", size), 60)
            latencies.append(seconds(job, "created_at", "started_at"))
        standin.latency = LATENCY
        calls_before, cpu_before = standin.image_calls, cpu_seconds(workers)
        job = wait_for(env["DATABASE_URL"], enqueue(env, folder, "--all", "--no-cache", "--size", size), 900)
        assert job["succeeded"] == images and standin.image_calls - calls_before == images, job
        wall = seconds(job, "created_at", "finished_at")
        stored = seconds({**job, **last_image(env["DATABASE_URL"], job)}, "created_at", "stored")
        cpu = (cpu_seconds(workers) - cpu_before) / images
    startup = statistics.median(latencies)
    ideal = images * LATENCY / (WORKERS * CONCURRENCY) + startup
    return {
        "latency_median": startup,
        "latency_max": max(latencies),
        "wall": wall,
        "stored": stored,
        "ideal": ideal,
        "cpu": cpu,
    }


def last_image(database: str, job: dict) -> dict:
    """When the job's last image was stored: its newest candidate (the job made every one since it began)."""
    from sqlalchemy import text

    with _engines[database].connect() as conn:
        newest = conn.execute(
            text("SELECT max(created_at) FROM candidate WHERE created_at >= :t"), {"t": job["created_at"]}
        )
        return {"stored": newest.scalar_one()}


def cpu_seconds(procs: list[subprocess.Popen]) -> float:
    """User and system CPU time the processes have used so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split() for p in procs]  # noqa: SIM115
    return sum(int(f[11]) + int(f[12]) for f in fields) / tick


def backends(choice: str, stack: ExitStack) -> list[tuple[str, str, str | None]]:
    chosen = []
    if choice in ("sqlite", "both"):
        chosen.append(("SQLite queue, SQLite database", "sqlite:///{folder}/bench.db", None))
    if choice in ("redis-postgres", "both"):
        from pg_server import PostgresServer
        from redis_server import RedisServer

        pg = stack.enter_context(PostgresServer())
        pg.sql("CREATE DATABASE bench")
        redis = stack.enter_context(RedisServer())
        chosen.append(("Redis queue, PostgreSQL database", pg.url("bench"), redis.url))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "redis-postgres", "both"], default="both")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", default="1024x1024", help="image size (the pipeline's own work grows with it)")
    parser.add_argument("--light", action="store_true", help="5 KB replies instead of real ones' 1.9 MB")
    args = parser.parse_args()
    print(f"{WORKERS} workers x concurrency {CONCURRENCY}, stand-in latency {LATENCY:.1f} s per image call")
    checks = os.environ.get("CHECKS_ENABLED", "the default checks")
    weight = "5 KB" if args.light else "1.9 MB"
    with ExitStack() as stack:
        for name, database, redis in backends(args.backend, stack):
            f = measure(database, redis, args.images, args.size, not args.light)
            ratio = f["wall"] / f["ideal"]
            print(f"\n{name}, {args.size}, {weight} replies, checks: {checks}")
            print(
                f"  enqueue-to-start, idle workers (20 jobs): median {f['latency_median'] * 1000:.0f} ms, max {f['latency_max'] * 1000:.0f} ms"
            )
            print(
                f"  {args.images} images in one job: {f['wall']:.1f} s; ideal {args.images} x {LATENCY:.0f} s / {WORKERS * CONCURRENCY} + start-up = {f['ideal']:.1f} s"
            )
            print(f"  ratio {ratio:.3f} (target <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'})")
            stored = f["stored"] / f["ideal"]
            print(f"  the last image stored after {f['stored']:.1f} s: ratio {stored:.3f} (the rest: its checks)")
            print(
                f"  the workers' CPU per image: {f['cpu'] * 1000:.0f} ms (the pipeline's own work, on {os.cpu_count()} cores)"
            )
            floor = args.images * f["cpu"] / (os.cpu_count() or 1)
            print(f"  so on this machine no run can end before {floor:.1f} s: the cores, not the queue, set the pace")


if __name__ == "__main__":
    main()
