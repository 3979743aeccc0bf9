"""The synthetic generation history behind `demo-data`: attempts, candidates and publications per solution.

What it may and may not claim:
- The card a solution shows (approved) or waits with (pending) is the last attempt of its history, made
  by the local provider: `demo.load` really draws it, stores it and publishes it, and the attempt records
  that request (prompt, variant, size) and its real bytes and drawing time.
- Every other attempt is history: it may say openai (and cost what openai would have), but its
  candidate was rejected and its file cleaned up at review (`deleted_at`), so it claims no stored image.
- An approved solution past the drawing budget (`DRAWN_APPROVED`) gets no image at all, never another
  solution's card.
"""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from . import storage
from .budget import cost_from_usage
from .models import PLACEHOLDER_URL, ImageStatus, utcnow
from .prompts import Template, render_template, solution_variables
from .providers.base import Usage, expected_output_tokens

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
REASONS = ["off_topic", "low_quality", "text_artefacts", "off_brand", "unsafe", "other"]
DEMO_SIZE = "512x512"  # the cards demo-data draws: the galleries' 480-pixel thumbnails come from them
HISTORY_SIZE = "1024x1024"
REAL_PENDING = 40  # candidates awaiting review, each a card of its own solution
DRAWN_APPROVED = 300  # approved solutions drawn and published; the rest of them get no image


class History:
    """Builds plausible attempts, candidates and publications for one solution at a time."""

    def __init__(self, rng: random.Random, prices: dict, ids: tuple[int, int], templates: dict[str, Template]):
        self.rng, self.prices, self.templates = rng, prices, templates
        self.next_attempt, self.next_candidate = ids
        self.attempts: list[dict[str, Any]] = []
        self.candidates: list[dict[str, Any]] = []
        self.shown: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []  # row, attempt, candidate
        self.prompts: dict[tuple[str, str], str] = {}
        self.counts = {"pending": 0, "approved": 0}  # cards shown so far, against the drawing budgets
        self.now = utcnow()

    def solution(self, row: dict[str, Any], fate: str, count: int) -> None:
        """`count` attempts for `row`, ending as its fate says: approved, pending, placeholder or none."""
        fate = self._affordable(fate)
        times = sorted(self.now - timedelta(days=self.rng.uniform(0, 60)) for _ in range(count))
        drawn = fate in ("approved", "pending") and count > 0
        made = [self._attempt(row, t, fate != "placeholder", drawn and i == count - 1) for i, t in enumerate(times)]
        successes = [c for c in made if c is not None]
        if fate == "placeholder" or (fate in ("approved", "pending") and not successes):
            row["image_url"], row["image_status"] = PLACEHOLDER_URL, ImageStatus.placeholder
        elif drawn:
            self.counts[fate] += 1
            shown = successes.pop()
            shown.update(state=fate, reject_reason=None)
            if fate == "pending":
                shown.update(reviewed_at=None, reviewed_by=None)
            row["image_status"] = ImageStatus.pending if fate == "pending" else ImageStatus.approved
        for cand in successes:  # the rest were rejected, and their files cleaned up at review
            cand.update(state="rejected", reject_reason=self.rng.choice(REASONS), deleted_at=cand["reviewed_at"])

    def _affordable(self, fate: str) -> str:
        """Past the drawing budgets: pending becomes approved, approved becomes no image."""
        if fate == "pending" and self.counts["pending"] >= REAL_PENDING:
            fate = "approved"
        if fate == "approved" and self.counts["approved"] >= DRAWN_APPROVED:
            fate = "none"
        return fate

    def _attempt(self, row: dict[str, Any], started, ok: bool, drawn: bool) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
        """One attempt row; a candidate row when it succeeded (the shown one is drawn later)."""
        attempt = self._paid(row, started, ok) if not drawn else self._local(row, started)
        self.attempts.append(attempt)
        if attempt["status"] != "succeeded":
            return None
        candidate = self._candidate(row, attempt)
        if drawn:
            candidate["state"] = "pending"  # until the solution's fate is settled
            self.shown.append((row, attempt, candidate))
        self.candidates.append(candidate)
        return candidate

    def _paid(self, row: dict[str, Any], started, ok: bool) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        rng = self.rng
        provider, model, _ = rng.choices(MODELS, [m[2] for m in MODELS])[0]
        quality = rng.choices(["low", "medium", "high"], [15, 70, 15])[0]
        succeeded = ok and rng.random() < 0.9
        cache_hit = succeeded and rng.random() < 0.05
        paid = provider == "openai" and succeeded and not cache_hit
        duration = int(rng.lognormvariate(9.1, 0.35)) if provider == "openai" else int(rng.lognormvariate(5.5, 0.3))
        tokens = expected_output_tokens(HISTORY_SIZE, quality)
        full_price = cost_from_usage(self.prices[model], Usage(60, 0, tokens, 0)) if provider == "openai" else 0.0
        cost = full_price if paid else 0.0
        attempt = self._row(row, started, provider, model, quality, duration)
        attempt.update(
            status="succeeded" if succeeded else "failed",
            error_kind=None if succeeded else rng.choices(ERRORS, [e[1] for e in ERRORS])[0][0],
            cache_hit=cache_hit,
            input_text_tokens=60 if paid else None,
            input_image_tokens=0 if paid else None,
            output_image_tokens=tokens if paid else None,
            output_text_tokens=0 if paid else None,
            reserved_usd=cost,
            cost_usd=cost,
            saved_usd=full_price if cache_hit else 0.0,
            cost_source="usage" if paid else ("cache" if cache_hit else "none"),
            bytes=int(rng.uniform(1.1e6, 1.9e6)) if succeeded else None,
        )
        return attempt

    def _local(self, row: dict[str, Any], started) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        """The attempt `demo.load` then makes for real; its bytes and times are filled in by the drawing."""
        attempt = self._row(row, started, "local", "local-card", "medium", 0)
        attempt.update(size=DEMO_SIZE, status="succeeded", cost_source="none", reserved_usd=0.0, cost_usd=0.0)
        return attempt

    def _row(self, row: dict[str, Any], started, provider: str, model: str, quality: str, duration: int) -> dict:  # type: ignore[no-untyped-def]
        attempt_id, self.next_attempt = self.next_attempt, self.next_attempt + 1
        recent = self.now - started < timedelta(days=21)
        second = [ref for ref in self.templates if ref != "default@1"]
        template_ref = second[0] if second and recent and self.rng.random() < 0.5 else "default@1"
        return {
            "id": attempt_id,
            "solution_id": row["id"],
            "batch_id": "demo",
            "actor": "demo",
            "provider": provider,
            "model": model,
            "size": HISTORY_SIZE,
            "quality": quality,
            "output_format": "png",
            "template_ref": template_ref,
            "prompt": self._prompt(row, template_ref),
            "variant": 0,
            "request_key": f"demo-{attempt_id}",
            "status": "succeeded",
            "error_kind": None,
            "error_message": None,
            "cache_hit": False,
            "moderation": "passed",
            "started_at": started,
            "finished_at": started + timedelta(milliseconds=duration),
            "duration_ms": duration,
            "provider_ms": max(0, duration - 40),
            "retries": 0,
            "input_text_tokens": None,
            "input_image_tokens": None,
            "output_image_tokens": None,
            "output_text_tokens": None,
            "reserved_usd": 0.0,
            "cost_usd": 0.0,
            "saved_usd": 0.0,
            "cost_source": "none",
            "request_id": None,
            "bytes": None,
            "candidate_id": None,
            "pid": None,
            "host": "demo",
        }

    def _prompt(self, row: dict[str, Any], ref: str) -> str:
        """The prompt the template version rendered for this solution (as the pipeline would)."""
        key = (row["id"], ref)
        if key not in self.prompts:
            fields = SimpleNamespace(**{k: row[k] for k in ("title", "description", "category", "tags", "provider")})
            self.prompts[key] = render_template(self.templates[ref], solution_variables(fields))  # type: ignore[arg-type]
        return self.prompts[key]

    def _candidate(self, row: dict[str, Any], attempt: dict[str, Any]) -> dict[str, Any]:
        cand_id, self.next_candidate = self.next_candidate, self.next_candidate + 1
        attempt["candidate_id"] = cand_id
        stem, folder = f"demo-{cand_id}", storage.slugify(row["id"])
        width, height = (int(side) for side in attempt["size"].split("x"))
        return {
            "id": cand_id,
            "solution_id": row["id"],
            "attempt_id": attempt["id"],
            "state": "rejected",
            "file_path": f"candidates/{folder}/{stem}.png",  # the shown ones get their real paths when drawn
            "thumb_path": f"thumbnails/{folder}/{stem}.jpg",
            "image_format": "png",
            "width": width,
            "height": height,
            "bytes": attempt["bytes"] or 0,
            "sha256": hashlib.sha256(stem.encode()).hexdigest(),
            "template_ref": attempt["template_ref"],
            "model": attempt["model"],
            "cost_usd": attempt["cost_usd"],
            "cache_hit": attempt["cache_hit"],
            "source": "generated",
            "reject_reason": None,
            "reject_note": None,
            "created_at": attempt["finished_at"],
            "reviewed_at": attempt["finished_at"] + timedelta(hours=self.rng.uniform(1, 48)),
            "reviewed_by": "demo",
            "deleted_at": None,
        }
