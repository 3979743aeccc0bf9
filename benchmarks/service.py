"""Service benchmark: requests/s and latency of `serve` at concurrency 8, and what it adds over the pipeline.

Local provider (free, offline), 1024x1024 PNG, every request a new solution with its own description
(so the cache serves none of them), published at once as the marketplace's route did:

    .venv/bin/python benchmarks/service.py [--requests N] [--rounds R]

- The service: `python -m aixchange_images serve` as a subprocess on 127.0.0.1, requests from 8 client
  threads (urllib). Prints requests/s, p50 and p95.
- The pipeline alone, in this process on its own fresh database: the same generations as one run_batch
  per request from 8 threads (what the service calls per request, minus HTTP, JSON and making the
  solution), and as one run_batch of the whole round at concurrency 8 (the pipeline's best throughput).
- The service's overhead per request: its p50 minus the per-request pipeline's p50, at concurrency 8
  and, where CPU contention does not blur it, one request at a time.

The three are interleaved round by round, so a machine busy with something else slows them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

CONCURRENCY = 8
WARM_UP = 8
SEQUENTIAL = 16  # one-at-a-time requests each way, for the overhead without contention
# Variables that would change what is measured if the caller's shell happened to set them.
CLEARED = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "IMAGE_MODEL",
    "DALLE_IMAGE_SIZE",
    "DALLE_IMAGE_QUALITY",
    "DALLE_IMAGE_FORMAT",
    "IMAGE_RATE_LIMIT_PER_MINUTE",
    "IMAGE_BUDGET_DAILY_USD",
    "IMAGE_BUDGET_MONTHLY_USD",
    "MARKETPLACE_DATABASE_URL",
)


def environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'bench.db'}",
        AIXCHANGE_DATA_DIR=str(folder / "data"),
        EXTERNAL_IMAGES_PATH=str(folder / "external-images"),
        IMAGE_PROVIDER="local",
        IMAGE_CONCURRENCY=str(CONCURRENCY),  # the service's pool, like the batch's workers
        SERVICE_RATE_LIMIT="1000000/minute",  # one client sends everything here
        SERVICE_TOTAL_RATE_LIMIT="1000000/minute",
        PYTHONPATH=str(ROOT),
    )
    return env


def request(tag: str, i: int) -> dict[str, str]:
    return {
        "title": f"Benchmark {tag} {i:03d}",
        "description": f"Summarises the support tickets of queue {tag}-{i} and routes each to the right team.",
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(work: Callable[[int], Any], n: int, concurrency: int = CONCURRENCY) -> tuple[float, list[float]]:
    """Run work(0..n-1) from `concurrency` threads; wall seconds and each call's milliseconds."""

    def one(i: int) -> float:
        started = time.perf_counter()
        work(i)
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(one, range(n)))
    return time.perf_counter() - started, latencies


# -- the service, in its own process ----------------------------------------------------------------
@contextmanager
def serving(folder: Path) -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder.mkdir(parents=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aixchange_images", "serve", "--port", str(port)],
        cwd=folder,
        env=environment(folder),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, proc)
        yield port
    finally:
        proc.terminate()  # SIGTERM: uvicorn shuts down gracefully
        proc.wait(60)


def wait_until_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)  # polling is fine here: start-up is not what is measured
    raise RuntimeError("serve did not come up within 60 s")


def post(port: int, payload: dict[str, str]) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/generate-image",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as response:
        body = json.loads(response.read())
    assert body["status"] == "success" and body["imageUrl"].startswith("/api/external-images/"), body


# -- the pipeline, in this process ------------------------------------------------------------------
class Pipeline:
    """Request solutions made as the service makes them (not timed), then published through run_batch."""

    def __init__(self, folder: Path):
        from aixchange_images import engines
        from aixchange_images.auth import SERVICE_ACTOR
        from aixchange_images.config import load_settings
        from aixchange_images.pipeline import GenerateOptions

        os.environ.clear()
        os.environ.update(environment(folder))
        self.settings = load_settings()
        self.engine = engines.get_engine(self.settings)
        self.options = GenerateOptions(auto_approve=True, actor=SERVICE_ACTOR, concurrency=CONCURRENCY)

    def solutions(self, tag: str, n: int) -> list[str]:
        from sqlmodel import Session

        from aixchange_images.models import Solution, SolutionOrigin

        with Session(self.engine) as session:
            rows = [
                Solution(**request(tag, i), category="Other", provider="Unknown", origin=SolutionOrigin.request)
                for i in range(n)
            ]
            session.add_all(rows)
            session.commit()
            return [row.id for row in rows]

    def publish(self, ids: list[str]) -> None:
        from aixchange_images import batch

        _, summary = batch.run_batch(self.engine, self.settings, ids, self.options)
        assert summary["published"] == len(ids), summary


@contextmanager
def pipeline(folder: Path) -> Iterator[Pipeline]:
    from aixchange_images import engines

    saved = dict(os.environ)
    try:
        yield Pipeline(folder)
    finally:
        engines.dispose_engines()
        os.environ.clear()
        os.environ.update(saved)


def measure(n: int, rounds: int) -> dict[str, Any]:
    chunk = n // rounds
    figures: dict[str, Any] = {"n": chunk * rounds, "svc": [], "each": [], "svc_wall": 0.0, "each_wall": 0.0}
    figures["batch_wall"] = 0.0
    with (
        tempfile.TemporaryDirectory(prefix="bench-service-") as tmp,
        serving(Path(tmp) / "service") as port,
        pipeline(Path(tmp) / "pipeline") as pipe,
    ):
        timed(lambda i: post(port, request("warm", i)), WARM_UP)
        warm = pipe.solutions("warm", WARM_UP)
        timed(lambda i: pipe.publish([warm[i]]), WARM_UP)
        for r in range(rounds):
            one_round(port, pipe, f"r{r}", chunk, figures)
        seq = pipe.solutions("seq", SEQUENTIAL)
        figures["seq_svc"], figures["seq_each"] = [], []
        for i in range(SEQUENTIAL):  # interleaved, one at a time
            figures["seq_svc"] += timed(lambda _, i=i: post(port, request("seq", i)), 1, 1)[1]
            figures["seq_each"] += timed(lambda _, i=i: pipe.publish([seq[i]]), 1, 1)[1]
    return figures


def one_round(port: int, pipe: Pipeline, tag: str, chunk: int, figures: dict[str, Any]) -> None:
    """The service, the pipeline per request, the pipeline as one batch: `chunk` new solutions each."""
    wall, latencies = timed(lambda i: post(port, request(f"svc-{tag}", i)), chunk)
    figures["svc_wall"] += wall
    figures["svc"] += latencies
    ids = pipe.solutions(f"each-{tag}", chunk)
    wall, latencies = timed(lambda i: pipe.publish([ids[i]]), chunk)
    figures["each_wall"] += wall
    figures["each"] += latencies
    whole = pipe.solutions(f"batch-{tag}", chunk)
    figures["batch_wall"] += timed(lambda _: pipe.publish(whole), 1, 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    f = measure(args.requests, args.rounds)
    p = {k: (percentile(f[k], 0.5), percentile(f[k], 0.95)) for k in ("svc", "each", "seq_svc", "seq_each")}
    print(
        f"{f['n']} requests at concurrency {CONCURRENCY} in {args.rounds} interleaved rounds; local provider, "
        f"1024x1024 PNG, each published; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"service (serve, HTTP on 127.0.0.1): {f['n'] / f['svc_wall']:.1f} requests/s, "
        f"p50 {p['svc'][0]:.0f} ms, p95 {p['svc'][1]:.0f} ms"
    )
    print(
        f"pipeline, one run_batch per request from {CONCURRENCY} threads: {f['n'] / f['each_wall']:.1f} requests/s, "
        f"p50 {p['each'][0]:.0f} ms, p95 {p['each'][1]:.0f} ms"
    )
    print(f"pipeline, one run_batch per round at concurrency {CONCURRENCY}: {f['n'] / f['batch_wall']:.1f} images/s")
    print(f"service overhead per request at concurrency {CONCURRENCY} (p50 - p50): {p['svc'][0] - p['each'][0]:.0f} ms")
    print(
        f"one request at a time (n={SEQUENTIAL} each): service p50 {p['seq_svc'][0]:.0f} ms, pipeline p50 "
        f"{p['seq_each'][0]:.0f} ms: overhead {p['seq_svc'][0] - p['seq_each'][0]:.0f} ms "
        f"({statistics.mean(f['seq_svc']) - statistics.mean(f['seq_each']):.0f} ms on the means)"
    )


if __name__ == "__main__":
    main()
