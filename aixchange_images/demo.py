"""`demo-data`: a realistic synthetic catalogue and generation history (also the scale fixture).

It tells the truth about what is on disk: each approved solution shows a card the local provider
drew for it, the storage figures are the bytes of the files written, and an image's attempt names the
provider that drew it (`demo_history` says what the synthetic history may claim).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from . import storage, templates
from .auth import Actor, audit, require
from .budget import price_for
from .config import Settings
from .db import analyze, session_scope
from .demo_history import MODELS, History
from .models import PUBLIC_PREFIX, Attempt, Candidate, ImageStatus, Publication, Role, Solution, new_solution_id, utcnow
from .providers.base import ImageRequest
from .providers.local import LocalProvider

CATEGORIES = [
    "Natural Language Processing",
    "Computer Vision",
    "Speech Recognition",
    "Generative AI",
    "Machine Learning",
    "Deep Learning",
    "Reinforcement Learning",
    "AppliedDataScience",
    "Automation",
    "Other",
]
SUBJECTS = {
    "Natural Language Processing": [
        "contract clauses",
        "support tickets",
        "clinical notes",
        "product reviews",
        "legal briefs",
    ],
    "Computer Vision": ["shelf images", "X-ray scans", "drone footage", "factory cameras", "satellite tiles"],
    "Speech Recognition": [
        "call-centre audio",
        "meeting recordings",
        "voice commands",
        "podcast episodes",
        "field interviews",
    ],
    "Generative AI": ["marketing copy", "product photos", "slide decks", "test data", "code snippets"],
    "Machine Learning": [
        "churn signals",
        "sales pipelines",
        "sensor readings",
        "credit applications",
        "demand history",
    ],
    "Deep Learning": ["protein sequences", "medical images", "time series", "molecule graphs", "video streams"],
    "Reinforcement Learning": ["warehouse robots", "ad bidding", "traffic lights", "energy grids", "pricing engines"],
    "AppliedDataScience": ["clinical trials", "supply chains", "survey results", "lab results", "patient cohorts"],
    "Automation": ["invoice processing", "onboarding workflows", "IT tickets", "report generation", "data entry"],
    "Other": ["team knowledge", "research papers", "compliance checks", "meeting notes", "customer feedback"],
}
VERBS = [
    "analyses",
    "summarises",
    "classifies",
    "forecasts",
    "detects anomalies in",
    "extracts insights from",
    "automates the review of",
    "generates reports from",
    "monitors",
    "answers questions about",
]
NAMES = ["Insight", "Pilot", "Lens", "Flow", "Scout", "Forge", "Pulse", "Atlas", "Echo", "Nova", "Sage", "Beacon"]
FATES, FATE_WEIGHTS = ["approved", "pending", "placeholder", "none"], [60, 15, 10, 15]
# A second version of the default template, tried on the last few weeks of the synthetic history, so the
# yield table and the Metrics filter have two versions to compare.
DEMO_TEMPLATE_V2 = (
    'A bold, modern product illustration for "{title}", an AI solution in {category} that {description}\n'
    "One clear central motif, soft gradients, generous negative space; no text, letters or logos."
)
CHUNK = 5000


def _solution_rows(rng: random.Random, count: int, taken: set[str]) -> list[dict[str, Any]]:
    rows = []
    now = utcnow()
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)] if i < len(CATEGORIES) else rng.choice(CATEGORIES)
        subject = rng.choice(SUBJECTS[category])
        title = f"{rng.choice(NAMES)} {subject.split()[0].title()} {rng.choice(['AI', 'Assistant', 'Analyzer', 'Studio', 'Copilot'])}"
        base, n = title, 2
        while title.lower() in taken:
            title, n = f"{base} {n}", n + 1
        taken.add(title.lower())
        verb = rng.choice(VERBS)
        created = now - timedelta(days=rng.uniform(5, 120))
        rows.append(
            {
                "id": new_solution_id(),
                "title": title[:100],
                "category": category,
                "description": f"{verb} {subject} so teams act faster, with explainable results and an audit trail.",
                "provider": rng.choice(["Acme Labs", "Northwind AI", "Contoso Research", "Fabrikam"]),
                "launch_url": f"https://example.com/solutions/{storage.slugify(title)}",
                "source_code_url": None,
                "tags": [category.split()[0].lower(), subject.split()[0].lower()],
                "version": "1.0.0",
                "is_published": True,
                "status": "Active",
                "token_cost": rng.choice([0, 5, 10, 25]),
                "rating": round(rng.uniform(3, 5), 1),
                "metadata": {},
                "author_id": None,
                "image_url": None,
                "image_status": ImageStatus.none,
                "created_at": created,
                "updated_at": created,
            }
        )
    return rows


def load(
    engine: Engine,
    settings: Settings,
    *,
    solutions: int,
    generations: int,
    actor: Actor,
    progress: Callable[[str], None] = lambda _msg: None,
    seed: int = 42,
) -> dict[str, Any]:
    """Insert `solutions` solutions and about `generations` attempts over the last 60 days."""
    require(actor, "edit_catalogue")
    rng = random.Random(seed)
    second = _second_template(engine)
    with Session(engine) as session:
        taken = {t.lower() for t in session.exec(select(Solution.title)).all()}
        ids = tuple((session.exec(select(func.max(m.id))).one() or 0) + 1 for m in (Attempt, Candidate))
        prices = {m: price_for(session=session, model=m)[0] for _, m, _ in MODELS}
        versions = {ref: templates.resolve(session=session, ref=ref) for ref in ("default@1", second)}
    rows = _solution_rows(rng, solutions, taken)
    history = History(rng, prices, ids, versions)  # type: ignore[arg-type]
    fates = [rng.choices(FATES, FATE_WEIGHTS)[0] for _ in rows]
    tried = [i for i, fate in enumerate(fates) if fate != "none"] or list(range(len(rows)))
    counts = Counter(rng.choices(tried, k=generations))  # exactly `generations` attempts in all
    for i, row in enumerate(rows):
        history.solution(row, fates[i], counts[i])
    progress(f"Drawing {len(history.shown)} cards, one for each solution that shows or awaits one…")
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # encoding and files release the GIL
        publications = list(pool.map(lambda shown: _draw(settings, *shown), history.shown))
    with session_scope(engine, write=True) as session:
        _bulk(session, Solution, rows)
        progress(f"Inserted {len(rows)} solutions; writing {len(history.attempts)} attempts…")
        _bulk(session, Attempt, history.attempts)
        _bulk(session, Candidate, history.candidates)
        _bulk(session, Publication, [p for p in publications if p is not None])
        _reset_sequences(session, (Attempt, Candidate, Publication))
        counts = {
            "solutions": len(rows),
            "attempts": len(history.attempts),
            "candidates": len(history.candidates),
            "publications": sum(p is not None for p in publications),
        }
        audit(session, actor, "catalogue.demo_data", None, **counts)
        session.commit()
    analyze(engine)
    return counts


def _draw(settings: Settings, row: dict[str, Any], attempt: dict[str, Any], candidate: dict[str, Any]) -> dict | None:
    """Make the shown attempt for real: the local provider draws it, it is stored, and published if approved."""
    subject = {k: row[k] for k in ("title", "description", "category", "tags", "provider")}
    request = ImageRequest(attempt["prompt"], "local-card", attempt["size"], "medium", "png", subject=subject)
    started = time.perf_counter()
    reply = LocalProvider(settings).generate(request)
    info = storage.verify_image(reply.data)
    file_path, thumb_path = storage.store_candidate(settings, row["id"], reply.data, info)
    took = int((time.perf_counter() - started) * 1000)
    attempt.update(bytes=info.bytes, provider_ms=reply.provider_ms, duration_ms=took)
    attempt["finished_at"] = attempt["started_at"] + timedelta(milliseconds=took)
    candidate.update(file_path=file_path, thumb_path=thumb_path, bytes=info.bytes, sha256=info.sha256)
    candidate.update(width=info.width, height=info.height, created_at=attempt["finished_at"])
    if candidate["state"] != "approved":
        return None
    name = _publish(settings, row["title"], reply.data, candidate["reviewed_at"])
    row["image_url"], row["image_status"] = PUBLIC_PREFIX + name, ImageStatus.approved
    return {
        "solution_id": row["id"],
        "candidate_id": candidate["id"],
        "file_name": name,
        "image_url": PUBLIC_PREFIX + name,
        "bytes": info.bytes,
        "previous_image_url": None,
        "previous_status": ImageStatus.none,
        "published_at": candidate["reviewed_at"],
        "published_by": "demo",
        "active": True,
        "rolled_back_at": None,
        "rolled_back_by": None,
    }


def _publish(settings: Settings, title: str, data: bytes, when) -> str:  # type: ignore[no-untyped-def]
    """Write a card into the publish folder under the AIXchange name for its approval time; never overwrite."""
    storage.make_public_folder(settings.publish_dir)
    millis = int(when.timestamp() * 1000)
    for offset in range(1000):
        name = f"{storage.slugify(title)}-{millis + offset}.png"
        try:
            fd = os.open(settings.publish_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, storage.PUBLIC_FILE_MODE)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(settings.publish_dir / name, storage.PUBLIC_FILE_MODE)  # whatever the umask
        return name
    raise storage.StorageError(f"Could not find a free file name in {settings.publish_dir}.")


def _second_template(engine: Engine) -> str:
    with session_scope(engine, write=True) as session:
        existing = templates.get_version(session=session, name="default", version=2)
        if existing is None:
            existing = templates.save_version(
                session=session,
                actor=Actor("demo", Role.admin),
                name="default",
                body=DEMO_TEMPLATE_V2,
                note="demo: a bolder illustration style",
            )
            session.commit()
        return existing.ref


def _bulk(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(table), rows[start : start + CHUNK])


def _reset_sequences(session: Session, models: tuple[type, ...]) -> None:
    """Move PostgreSQL's id sequences past the ids inserted explicitly, so the next insert gets a free one.

    SQLite needs nothing: it takes the next rowid from the table itself.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in models:
        table = model.__tablename__  # type: ignore[attr-defined]
        # setval is strict: on an empty table max(id) is NULL and the sequence is left alone.
        session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"))
