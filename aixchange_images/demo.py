"""`demo-data`: a realistic synthetic catalogue and generation history (also the scale fixture)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from . import storage, templates
from .auth import Actor, audit, require
from .budget import Usage, cost_from_usage, expected_output_tokens, price_for
from .config import Settings
from .db import analyze, session_scope
from .models import (
    PLACEHOLDER_URL,
    PUBLIC_PREFIX,
    Attempt,
    Candidate,
    ImageStatus,
    Publication,
    Role,
    Solution,
    new_solution_id,
    utcnow,
)
from .providers import ImageRequest, LocalProvider

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
ERRORS = [
    ("rate_limited", 30),
    ("server_error", 20),
    ("timeout", 15),
    ("moderation_blocked", 10),
    ("bad_image", 5),
    ("budget_exceeded", 10),
    ("connection", 5),
    ("invalid_request", 5),
]
MODELS = [("openai", "gpt-image-2", 70), ("local", "local-card", 20), ("openai", "gpt-image-2.5-sunburst", 10)]
FATES, FATE_WEIGHTS = ["approved", "pending", "placeholder", "none"], [60, 15, 10, 15]
REASONS = ["off_topic", "low_quality", "text_artefacts", "off_brand", "unsafe", "other"]
POOL_SIZE = 8
# A second version of the default template, tried on the last few weeks of the synthetic history, so the
# yield table and the Metrics filter have two versions to compare.
DEMO_TEMPLATE_V2 = (
    'A bold, modern product illustration for "{title}", an AI solution in {category} that {description}\n'
    "One clear central motif, soft gradients, generous negative space; no text, letters or logos."
)
REAL_PENDING = 40  # candidates awaiting review get a real drawing of their own solution (the rest share a pool)
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


def _draw(settings: Settings, row: dict[str, Any], folder: str) -> dict[str, Any]:
    """A real local-provider image of `row`, stored like a candidate's."""
    request = ImageRequest(
        prompt=row["description"],
        model="local-card",
        size="1024x1024",
        quality="medium",
        output_format="png",
        subject=row,
    )
    data = LocalProvider(settings).generate(request).data
    info = storage.verify_image(data)
    file_path, thumb_path = storage.store_candidate(settings, folder, data, info)
    return {
        "file_path": file_path,
        "thumb_path": thumb_path,
        "image_format": "png",
        "width": info.width,
        "height": info.height,
        "sha256": info.sha256,
        "bytes": info.bytes,
    }


def _image_pool(settings: Settings, solutions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A few real images that the synthetic history shares, so galleries show pictures."""
    return [{k: v for k, v in _draw(settings, row, "demo").items() if k != "bytes"} for row in solutions[:POOL_SIZE]]


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
    with Session(engine) as session:
        taken = {t.lower() for t in session.exec(select(Solution.title)).all()}
        next_attempt = (session.exec(select(func.max(Attempt.id))).one() or 0) + 1
        next_candidate = (session.exec(select(func.max(Candidate.id))).one() or 0) + 1
        prices = {m: price_for(session=session, model=m)[0] for _, m, _ in MODELS}
    second = _second_template(engine)
    rows = _solution_rows(rng, solutions, taken)
    progress(f"Drawing {min(POOL_SIZE, len(rows))} demo images…")
    pool = _image_pool(settings, rows)
    history = _History(rng, prices, pool, next_attempt, next_candidate, second)
    fates = [rng.choices(FATES, FATE_WEIGHTS)[0] for _ in rows]
    tried = [i for i, fate in enumerate(fates) if fate != "none"] or list(range(len(rows)))
    counts = Counter(rng.choices(tried, k=generations))  # exactly `generations` attempts in all
    for i, row in enumerate(rows):
        history.solution(row, fates[i], counts[i])
    if history.awaiting:
        progress(f"Drawing {len(history.awaiting)} candidates awaiting review…")
    for row, candidate in history.awaiting:
        candidate.update(_draw(settings, row, row["id"]))
    with session_scope(engine, write=True) as session:
        _bulk(session, Solution, rows)
        progress(f"Inserted {len(rows)} solutions; writing {len(history.attempts)} attempts…")
        _bulk(session, Attempt, history.attempts)
        _bulk(session, Candidate, history.candidates)
        _bulk(session, Publication, history.publications)
        _reset_sequences(session, (Attempt, Candidate, Publication))
        counts = {
            "solutions": len(rows),
            "attempts": len(history.attempts),
            "candidates": len(history.candidates),
            "publications": len(history.publications),
        }
        audit(session, actor, "catalogue.demo_data", None, **counts)
        session.commit()
    analyze(engine)
    return counts


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


class _History:
    """Builds plausible attempts, candidates and publications for one solution at a time."""

    def __init__(
        self,
        rng: random.Random,
        prices: dict,
        pool: list[dict],
        next_attempt: int,
        next_candidate: int,
        second_template: str,
    ):
        self.rng, self.prices, self.pool, self.second_template = rng, prices, pool, second_template
        self.next_attempt, self.next_candidate = next_attempt, next_candidate
        self.attempts: list[dict[str, Any]] = []
        self.candidates: list[dict[str, Any]] = []
        self.publications: list[dict[str, Any]] = []
        self.awaiting: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.now = utcnow()

    def solution(self, row: dict[str, Any], fate: str, count: int) -> None:
        rng = self.rng
        if fate == "pending" and len(self.awaiting) >= REAL_PENDING:
            fate = "approved"
        times = sorted(self.now - timedelta(days=rng.uniform(0, 60)) for _ in range(count))
        successes = [self._attempt(row, t, ok=fate != "placeholder") for t in times]
        successes = [c for c in successes if c is not None]
        if fate == "placeholder" or (fate != "none" and not successes):
            row["image_url"], row["image_status"] = PLACEHOLDER_URL, ImageStatus.placeholder
        elif fate == "pending":
            successes[-1].update(state="pending", reviewed_at=None, reviewed_by=None)
            row["image_status"] = ImageStatus.pending
            self.awaiting.append((row, successes[-1]))
        elif fate == "approved":
            self._publish(row, successes[-1])
        for cand in successes[:-1]:
            cand["state"], cand["reject_reason"] = "rejected", rng.choice(REASONS)

    def _attempt(self, row: dict[str, Any], started, ok: bool) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
        rng = self.rng
        provider, model, _ = rng.choices(MODELS, [m[2] for m in MODELS])[0]
        quality = rng.choices(["low", "medium", "high"], [15, 70, 15])[0]
        succeeded = ok and rng.random() < 0.9
        cache_hit = succeeded and rng.random() < 0.05
        paid = provider == "openai" and succeeded and not cache_hit
        duration = int(rng.lognormvariate(9.1, 0.35)) if provider == "openai" else int(rng.lognormvariate(5.5, 0.3))
        tokens = expected_output_tokens("1024x1024", quality)
        full_price = cost_from_usage(self.prices[model], Usage(60, 0, tokens, 0)) if provider == "openai" else 0.0
        cost = full_price if paid else 0.0
        attempt_id, self.next_attempt = self.next_attempt, self.next_attempt + 1
        recent = self.now - started < timedelta(days=21)
        template_ref = self.second_template if recent and rng.random() < 0.5 else "default@1"
        attempt = {
            "id": attempt_id,
            "solution_id": row["id"],
            "batch_id": "demo",
            "actor": "demo",
            "provider": provider,
            "model": model,
            "size": "1024x1024",
            "quality": quality,
            "output_format": "png",
            "template_ref": template_ref,
            "prompt": row["description"],
            "variant": 0,
            "request_key": f"demo-{attempt_id}",
            "status": "succeeded" if succeeded else "failed",
            "error_kind": None if succeeded else rng.choices(ERRORS, [e[1] for e in ERRORS])[0][0],
            "error_message": None,
            "cache_hit": cache_hit,
            "moderation": "passed",
            "started_at": started,
            "finished_at": started + timedelta(milliseconds=duration),
            "duration_ms": duration,
            "provider_ms": duration - 40,
            "retries": 0,
            "input_text_tokens": 60 if paid else None,
            "input_image_tokens": 0 if paid else None,
            "output_image_tokens": tokens if paid else None,
            "output_text_tokens": 0 if paid else None,
            "reserved_usd": cost,
            "cost_usd": cost,
            "saved_usd": full_price if cache_hit else 0.0,
            "cost_source": "usage" if paid else ("cache" if cache_hit else "none"),
            "request_id": None,
            "bytes": None,
            "candidate_id": None,
            "pid": None,
            "host": "demo",
        }
        self.attempts.append(attempt)
        if not succeeded:
            return None
        image = self.pool[attempt_id % len(self.pool)] if self.pool else {}
        size = int(rng.uniform(1.1e6, 1.9e6))
        cand_id, self.next_candidate = self.next_candidate, self.next_candidate + 1
        attempt["candidate_id"], attempt["bytes"] = cand_id, size
        candidate = {
            "id": cand_id,
            "solution_id": row["id"],
            "attempt_id": attempt_id,
            "state": "rejected",
            "bytes": size,
            "template_ref": template_ref,
            "model": model,
            "cost_usd": cost,
            "cache_hit": cache_hit,
            "source": "generated",
            "reject_reason": None,
            "reject_note": None,
            "created_at": attempt["finished_at"],
            "reviewed_at": attempt["finished_at"] + timedelta(hours=rng.uniform(1, 48)),
            "reviewed_by": "demo",
            **image,
        }
        self.candidates.append(candidate)
        return candidate

    def _publish(self, row: dict[str, Any], candidate: dict[str, Any]) -> None:
        stamp = int(candidate["reviewed_at"].timestamp() * 1000)
        name = f"{storage.slugify(row['title'])}-{stamp}.png"
        candidate["state"] = "approved"
        row["image_url"], row["image_status"] = PUBLIC_PREFIX + name, ImageStatus.approved
        self.publications.append(
            {
                "solution_id": row["id"],
                "candidate_id": candidate["id"],
                "file_name": name,
                "image_url": PUBLIC_PREFIX + name,
                "bytes": candidate["bytes"],
                "previous_image_url": None,
                "previous_status": ImageStatus.none,
                "published_at": candidate["reviewed_at"],
                "published_by": "demo",
                "active": True,
                "rolled_back_at": None,
                "rolled_back_by": None,
            }
        )
