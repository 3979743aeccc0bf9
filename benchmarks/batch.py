"""Batch benchmark: does `generate` keep its calls in parallel, and what does the pipeline add per image?

Runs against the OpenAI stand-in (tests/openai_standin.py) on 127.0.0.1, never the real API:

    .venv/bin/python benchmarks/batch.py

1. 24 solutions, `python -m aixchange_images generate --all --provider openai --concurrency 8 --json`
   as a subprocess, every image call taking 1.0 s and answering a 1.9 MB PNG (as heavy as a real
   one): ideally N x latency / C plus the same command's one-image run (issue 11's definition;
   target <= 1.05), or, stricter, 3 waves of 1 s plus the command's start-up on an empty catalogue.
2. The pipeline's own overhead per 1024x1024 image, (sum(duration_ms) - sum(provider_ms)) / n
   from the attempts table: for that run, and in-process with the stand-in answering at once.
   Target: under 150 ms.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from openai_standin import OpenAIStandIn  # noqa: E402

SOLUTIONS = 24
CONCURRENCY = 8
LATENCY = 1.0
FAKE_KEY = "bench-key-not-real-0000000000"
# Variables that would change what is measured if the caller's shell happened to set them.
CLEARED = (
    "IMAGE_MODEL",
    "DALLE_IMAGE_SIZE",
    "DALLE_IMAGE_QUALITY",
    "DALLE_IMAGE_FORMAT",
    "IMAGE_CONCURRENCY",
    "IMAGE_RATE_LIMIT_PER_MINUTE",
    "IMAGE_BUDGET_DAILY_USD",
    "IMAGE_BUDGET_MONTHLY_USD",
)


def environment(folder: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'bench.db'}",
        AIXCHANGE_DATA_DIR=str(folder / "data"),
        EXTERNAL_IMAGES_PATH=str(folder / "external-images"),
        OPENAI_API_KEY=FAKE_KEY,
        OPENAI_BASE_URL=base_url,
        IMAGE_PROVIDER="openai",
        PYTHONPATH=str(ROOT),
    )
    return env


def records() -> list[dict]:
    categories = ["Natural Language Processing", "Computer Vision", "Generative AI", "Machine Learning"]
    return [
        {
            "title": f"Benchmark solution {i:02d}",
            "description": f"Summarises support tickets of queue {i} and routes each to the right team.",
            "category": categories[i % len(categories)],
            "provider": "Acme Labs",
            "launchUrl": f"https://example.com/bench/{i}",
            "tags": ["support", "routing"],
        }
        for i in range(SOLUTIONS)
    ]


def cli(env: dict[str, str], folder: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "aixchange_images", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return time.perf_counter() - started, proc


def overhead_ms(db_file: Path) -> tuple[float, int, float]:
    """Mean (duration - provider time), count and mean provider time of successful, non-cached 1024x1024 attempts."""
    with closing(sqlite3.connect(db_file)) as conn:
        total, count, provider = conn.execute(
            "SELECT COALESCE(SUM(duration_ms - provider_ms), 0), COUNT(*), AVG(provider_ms) FROM attempt "
            "WHERE status = 'succeeded' AND cache_hit = 0 AND size = '1024x1024'"
        ).fetchone()
    return (total / count if count else math.nan), count, provider or math.nan


def warm_standin_images(count: int) -> None:
    """Have the stand-in encode its first `count` 1024x1024 PNGs once (it caches them per variant), so
    the measured calls cost the configured latency rather than the stand-in's own PNG encoding."""
    import openai

    with (
        OpenAIStandIn(heavy=True) as warm,
        openai.OpenAI(api_key=FAKE_KEY, base_url=warm.base_url, max_retries=0) as client,
    ):
        for _ in range(count):
            client.images.generate(model="gpt-image-2", prompt="warm-up", size="1024x1024", quality="medium")


def subprocess_batch() -> dict[str, float]:
    warm_standin_images(SOLUTIONS)
    with OpenAIStandIn(latency=LATENCY, heavy=True) as standin, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        folder, empty, single = Path(tmp) / "run", Path(tmp) / "empty", Path(tmp) / "one"
        for made in (folder, empty, single):
            made.mkdir()
        env, empty_env = environment(folder, standin.base_url), environment(empty, standin.base_url)
        (folder / "bulk.json").write_text(json.dumps({"solutions": records()}), encoding="utf-8")
        _, imported = cli(env, folder, "import", "bulk.json", "--json")
        assert imported.returncode == 0 and json.loads(imported.stdout)["imported"] == SOLUTIONS, imported.stderr

        command = ("generate", "--all", "--provider", "openai", "--concurrency", str(CONCURRENCY), "--json")
        cli(empty_env, empty, *command)  # warm the OS file cache, as the measured runs will be
        startup = statistics.median(cli(empty_env, empty, *command)[0] for _ in range(3))
        stats_startup = statistics.median(cli(env, folder, "stats", "--json")[0] for _ in range(3))
        one_image = statistics.median(_one_image_run(single, standin.base_url, command) for _ in range(3))

        wall, proc = cli(env, folder, *command)
        summary = json.loads(proc.stdout)["summary"]
        assert proc.returncode == 0 and summary["succeeded"] == SOLUTIONS, proc.stderr
        assert standin.max_in_flight == CONCURRENCY, standin.max_in_flight
        per_image, counted, provider_ms = overhead_ms(folder / "bench.db")
    ideal = math.ceil(SOLUTIONS / CONCURRENCY) * LATENCY + startup
    issue_ideal = SOLUTIONS * LATENCY / CONCURRENCY + one_image
    return {
        "startup": startup,
        "one_image": one_image,
        "issue_ideal": issue_ideal,
        "issue_ratio": wall / issue_ideal,
        "stats_startup": stats_startup,
        "wall": wall,
        "ideal": ideal,
        "ratio": wall / ideal,
        "batch_seconds": summary["seconds"],
        "overhead": per_image,
        "counted": counted,
        "provider_ms": provider_ms,
        "max_in_flight": standin.max_in_flight,
    }


def _one_image_run(folder: Path, base_url: str, command: tuple[str, ...]) -> float:
    """The same command over a catalogue of one solution, in a fresh folder each time."""
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    env = environment(folder, base_url)
    (folder / "one.json").write_text(json.dumps({"solutions": records()[:1]}), encoding="utf-8")
    cli(env, folder, "import", "one.json", "--json")
    seconds, proc = cli(env, folder, *command, "--no-cache")
    assert proc.returncode == 0, proc.stderr
    return seconds


def in_process(concurrency: int, latency: float = 0.0) -> tuple[float, int, float]:
    """Overhead per image with the stand-in answering at once: everything measured is ours."""
    from sqlmodel import Session

    from aixchange_images import batch, bulk, catalogue, engines, pipeline
    from aixchange_images.auth import CLI_ACTOR
    from aixchange_images.config import load_settings

    with OpenAIStandIn(latency=latency, heavy=True) as standin, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        folder = Path(tmp)
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(environment(folder, standin.base_url))
        try:
            settings = load_settings()
            engine = engines.get_engine(settings)
            with Session(engine) as session:
                bulk.import_records(session=session, records=records(), actor=CLI_ACTOR)
                session.commit()
                ids = [s.id for s in catalogue.list_solutions(session=session)]
            started = time.perf_counter()
            results, _ = batch.run_batch(engine, settings, ids, pipeline.GenerateOptions(concurrency=concurrency))
            seconds = time.perf_counter() - started
            assert all(r.status == "succeeded" for r in results), [r.error for r in results if r.error]
            engines.dispose_engines()
            per_image, counted, _ = overhead_ms(folder / "bench.db")
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return per_image, counted, seconds


def main() -> None:
    batch = subprocess_batch()
    print(f"solutions: {SOLUTIONS} at concurrency {CONCURRENCY}, stand-in latency {LATENCY:.1f} s per image call")
    print(f"start-up (same command, empty catalogue, median of 3): {batch['startup']:.2f} s")
    print(f"start-up of `stats` (median of 3): {batch['stats_startup']:.2f} s")
    print(f"wall time of the batch command: {batch['wall']:.2f} s")
    print(f"batch time reported by the command itself: {batch['batch_seconds']:.2f} s")
    print(f"one-image run of the same command (median of 3): {batch['one_image']:.2f} s")
    verdict = "met" if batch["issue_ratio"] <= 1.05 else "MISSED"
    print(
        f"ratio wall / (N x latency / C + one-image run) = {batch['wall']:.2f} / {batch['issue_ideal']:.2f}: "
        f"{batch['issue_ratio']:.3f} (target <= 1.05: {verdict})"
    )
    print(f"stricter: wall / (3 waves x {LATENCY:.1f} s + start-up {batch['startup']:.2f} s): {batch['ratio']:.3f}")
    print(f"max image calls in flight: {batch['max_in_flight']}")
    print(f"mean provider time per call (stand-in latency + transfer + SDK): {batch['provider_ms']:.0f} ms")
    print(f"pipeline overhead per 1024x1024 image, this run (n={batch['counted']}): {batch['overhead']:.1f} ms")
    for concurrency in (1, CONCURRENCY):
        per_image, counted, seconds = in_process(concurrency)
        verdict = "met" if per_image < 150 else "MISSED"
        print(
            f"pipeline overhead per 1024x1024 image, in-process, latency 0, concurrency {concurrency} "
            f"(n={counted}, batch {seconds:.2f} s): {per_image:.1f} ms (target < 150 ms: {verdict})"
        )

    _, _, seconds = in_process(CONCURRENCY, LATENCY)
    print(
        f"the same batch in-process (no start-up), latency {LATENCY:.1f} s, concurrency {CONCURRENCY}: "
        f"{seconds:.2f} s against {SOLUTIONS * LATENCY / CONCURRENCY:.1f} s of latency"
    )


if __name__ == "__main__":
    main()
