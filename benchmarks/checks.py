"""Checks benchmark: what each automatic check costs, and what the checks add to a batch.

    .venv/bin/python benchmarks/checks.py [--images 20] [--rounds 3]

1. Each check's CPU time per 1024x1024 image (its thread's CPU plus tesseract's, a child process),
   median and p95, over local cards (lettering to read) and 1.9 MB stand-in replies (noise to hash).
2. The batch with checks on against the same batch with every check off (CHECKS_ENABLED=none):
   issue 12's benchmark, 24 solutions, each image call taking 1 s, concurrency 8, through the OpenAI
   stand-in on 127.0.0.1, as `generate --all` subprocesses, alternating, median of `--rounds`.
   Target: at most 5% longer. The command ends when every new image is checked.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import batch as batch_bench  # noqa: E402 - benchmarks/batch.py: the same 24-image run
from openai_standin import OpenAIStandIn, _image_bytes  # noqa: E402
from PIL import Image  # noqa: E402

from aixchange_images import checks  # noqa: E402
from aixchange_images.artwork import draw_card  # noqa: E402
from aixchange_images.config import load_settings  # noqa: E402

TITLES = [
    "Forge Churn Analyzer",
    "Invoice Reader Pro",
    "Sales Forecast Bot",
    "Legal Clause Finder",
    "Support Triage Assistant",
    "Code Review Helper",
    "HR Onboarding Guide",
    "Route Optimizer",
]


def cpu() -> float:
    """This thread's CPU seconds plus those of finished children (tesseract)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


def images(n: int) -> list[tuple[str, Image.Image]]:
    made = []
    for i in range(n):
        if i % 2 == 0:
            title = TITLES[i // 2 % len(TITLES)]
            card = draw_card(
                title=title,
                description="Answers customers and routes tickets",
                category="Analytics",
                tags=["ai"],
                seed=i,
                width=1024,
                height=1024,
            )
            made.append((title, card.convert("RGB")))
        else:
            reply = Image.open(io.BytesIO(_image_bytes((1024, 1024), "png", i, False, True)))
            made.append(("", reply.convert("RGB")))
    return made


def per_check(n: int) -> dict[str, list[float]]:
    settings = load_settings()
    times: dict[str, list[float]] = {name: [] for name in (*checks.NAMES, "decode", "hash")}
    checks.text_garbled(images(1)[0][1], set(), settings)  # load the word list and the model first
    checks.unsafe(images(1)[0][1], settings)
    for title, image in images(n):
        steps = _steps(title, image, settings)
        for name, step in steps.items():
            started = cpu()
            step()
            times[name].append((cpu() - started) * 1000)
    return times


def _steps(title: str, image: Image.Image, settings) -> dict:
    encoded = io.BytesIO()
    image.save(encoded, format="PNG", compress_level=1)
    return {
        "decode": lambda: Image.open(io.BytesIO(encoded.getvalue())).convert("RGB"),
        "hash": lambda: checks.perceptual_hash(image),
        "blank": lambda: checks.blank(image, settings),
        "text_garbled": lambda: checks.text_garbled(image, checks.known_words(title), settings),
        "unsafe": lambda: checks.unsafe(image, settings),
        "duplicate": lambda: checks.duplicate(None, settings),  # comparing hashes: NumPy over all, in `hash`
        "wrong_size": lambda: checks.wrong_size(1024, 1024, "1024x1024", settings),
    }


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def batch_runs(rounds: int) -> dict[str, list[float]]:
    batch_bench.warm_standin_images(batch_bench.SOLUTIONS)
    walls: dict[str, list[float]] = {"on": [], "off": []}
    command = ("generate", "--all", "--provider", "openai", "--concurrency", str(batch_bench.CONCURRENCY), "--json")
    with OpenAIStandIn(latency=batch_bench.LATENCY, heavy=True) as standin:
        for _ in range(rounds):
            for mode in ("off", "on"):
                with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
                    folder = Path(tmp)
                    env = batch_bench.environment(folder, standin.base_url)
                    env.pop("CHECKS_ENABLED", None)
                    if mode == "off":
                        env["CHECKS_ENABLED"] = "none"
                    (folder / "bulk.json").write_text(
                        json.dumps({"solutions": batch_bench.records()}), encoding="utf-8"
                    )
                    batch_bench.cli(env, folder, "import", "bulk.json", "--json")
                    wall, proc = batch_bench.cli(env, folder, *command)
                    summary = json.loads(proc.stdout)["summary"]
                    assert proc.returncode == 0 and summary["succeeded"] == batch_bench.SOLUTIONS, proc.stderr
                    walls[mode].append(wall)
    return walls


def in_process(rounds: int) -> dict[str, list[float]]:
    """The same batch in this process: until its images are in (what `generate` reports), and until its
    last check is done (when a job's item, or Review's Regenerate, returns)."""
    from sqlmodel import Session

    from aixchange_images import batch, bulk, catalogue, engines, inspections, pipeline
    from aixchange_images.auth import CLI_ACTOR

    times: dict[str, list[float]] = {"off": [], "on": [], "on, checked": []}
    with OpenAIStandIn(latency=batch_bench.LATENCY, heavy=True) as standin:
        for _ in range(rounds):
            for mode in ("off", "on"):
                with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
                    saved = dict(os.environ)
                    os.environ.update(batch_bench.environment(Path(tmp), standin.base_url))
                    os.environ["CHECKS_ENABLED"] = "none" if mode == "off" else ",".join(checks.NAMES)
                    try:
                        settings = load_settings()
                        engine = engines.get_engine(settings)
                        with Session(engine) as session:
                            bulk.import_records(session=session, records=batch_bench.records(), actor=CLI_ACTOR)
                            session.commit()
                            ids = [s.id for s in catalogue.list_solutions(session=session)]
                        options = pipeline.GenerateOptions(concurrency=batch_bench.CONCURRENCY)
                        started = time.perf_counter()
                        results, _ = batch.run_batch(engine, settings, ids, options, checked=False)
                        times[mode].append(time.perf_counter() - started)
                        inspections.finish()
                        if mode == "on":
                            times["on, checked"].append(time.perf_counter() - started)
                        assert all(r.status == "succeeded" for r in results)
                        engines.dispose_engines()
                    finally:
                        os.environ.clear()
                        os.environ.update(saved)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU per 1024x1024 image, {args.images} images (half local cards, half 1.9 MB stand-in replies), ms:")
    times = per_check(args.images)
    for name, values in times.items():
        print(f"  {name:<13} median {statistics.median(values):7.1f}   p95 {p95(values):7.1f}")
    total = [sum(v[i] for v in times.values()) for i in range(args.images)]
    print(f"  {'all':<13} median {statistics.median(total):7.1f}   p95 {p95(total):7.1f}")
    print(
        f"\nBatch: {batch_bench.SOLUTIONS} images, {batch_bench.LATENCY:g} s per call, concurrency "
        f"{batch_bench.CONCURRENCY}, `generate --all` wall time ({os.cpu_count()} cores):"
    )
    walls = batch_runs(args.rounds)
    off, on = statistics.median(walls["off"]), statistics.median(walls["on"])
    print(f"  checks off  {off:6.2f} s   runs {', '.join(f'{w:.2f}' for w in walls['off'])}")
    print(f"  checks on   {on:6.2f} s   runs {', '.join(f'{w:.2f}' for w in walls['on'])}")
    print(f"  ratio       {on / off:6.3f}   (target <= 1.05)")
    print("\nThe same batch in-process: until its images are in; until its checks are done too:")
    times = in_process(args.rounds)
    for mode, values in times.items():
        print(f"  {mode:<12} {statistics.median(values):6.2f} s   runs {', '.join(f'{v:.2f}' for v in values)}")
    print(
        f"  ratio       {statistics.median(times['on']) / statistics.median(times['off']):6.3f} (returned),"
        f" {statistics.median(times['on, checked']) / statistics.median(times['off']):6.3f} (checked)"
    )


if __name__ == "__main__":
    main()
