"""Publish-kill benchmark: 10 approvals SIGKILLed between linking their file and committing.

Issue 9 measured 10 orphans out of 10 such kills (a public file with no publication row, the
solution stuck `pending`). This kills 10 real `approve` processes at exactly that point (the FIFO
pause of tests/paused_process.py), counts what they left, runs one ordinary command (which
recovers first), and counts again. It also times what the journal adds to one publication.

    .venv/bin/python benchmarks/publish_kills.py

Target: each kill leaves its orphan (10 of 10, as before the journal), the next command recovers
it: 0 orphans and 10 solutions approved at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from paused_process import kill_after_link  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from aixchange_images import engines, journal  # noqa: E402
from aixchange_images.config import Settings  # noqa: E402
from aixchange_images.models import Publication, Solution  # noqa: E402

KILLS = 10


def environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGE_", "DALLE_", "OPENAI_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'bench.db'}",
        AIXCHANGE_DATA_DIR=str(folder / "data"),
        EXTERNAL_IMAGES_PATH=str(folder / "external-images"),
        IMAGE_PROVIDER="local",
        DALLE_IMAGE_SIZE="256x256",
        PYTHONPATH=str(ROOT),
    )
    return env


def cli(folder: Path, env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "aixchange_images", *args, "--json"], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def catalogue(folder: Path, env: dict[str, str]) -> dict[str, int]:
    """KILLS solutions, one candidate each: solution id -> candidate id."""
    records = [
        {
            "title": f"Kill {i}",
            "description": "Routes support tickets to the right team.",
            "category": "Automation",
            "provider": "Acme",
            "launchUrl": "https://example.com",
            "tags": ["x"],
        }
        for i in range(KILLS)
    ]
    (folder / "bulk.json").write_text(json.dumps({"solutions": records}))
    cli(folder, env, "import", "bulk.json")
    results = cli(folder, env, "generate", "--all")["results"]
    return {r["solution_id"]: r["candidate_id"] for r in results}


def unrecorded(settings: Settings) -> set[str]:
    """Files in solutions/ that no publication row names."""
    engine = engines.get_engine(settings)
    with Session(engine) as session:
        recorded = set(session.exec(select(Publication.file_name)).all())
    engines.dispose_engines()
    return {p.name for p in settings.publish_dir.iterdir()} - recorded


def approved(settings: Settings) -> int:
    engine = engines.get_engine(settings)
    with Session(engine) as session:
        count = len(session.exec(select(Solution.id).where(Solution.image_status == "approved")).all())
    engines.dispose_engines()
    return count


def journal_cost(settings: Settings, rounds: int = 200) -> float:
    """Median ms that writing and removing one journal adds to a publication (two fsyncs, two links)."""
    journal.incoming_dir(settings).mkdir(parents=True, exist_ok=True)
    timings = []
    for i in range(rounds):
        intent = journal.Intent(
            solution_id="s", candidate_id=i, candidate_state="pending", actor="bench", previous_publication_id=None
        )
        started = time.perf_counter()
        journal.claim(settings, intent, f"bench-{i}.png")
        journal.release(settings, intent)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = environment(folder)
        settings = Settings(
            database_url=env["DATABASE_URL"],
            data_dir=folder / "data",
            external_images_path=folder / "external-images",
        )
        at_kill = 0
        for candidate_id in catalogue(folder, env).values():
            name = kill_after_link(folder, "approve", str(candidate_id), env=env)
            at_kill += name in unrecorded(settings)  # each `approve` recovers the kill before it first
        print(f"{at_kill} of {KILLS} kills between link and commit left a file with no publication row")
        started = time.perf_counter()
        cli(folder, env, "solutions")
        seconds = time.perf_counter() - started
        print(
            f"after one more command (`solutions`, {seconds:.2f} s with recovery): "
            f"{len(unrecorded(settings))} orphan(s), {approved(settings)} of {KILLS} solutions approved"
        )
        print(f"the journal adds {journal_cost(settings):.2f} ms (median) to one publication")
        started = time.perf_counter()
        for _ in range(1000):
            journal.waiting(settings)
        per_call_ms = (time.perf_counter() - started) * 1000 / 1000
        print(f"every command's check for journals, with none: {per_call_ms:.3f} ms")


if __name__ == "__main__":
    main()
