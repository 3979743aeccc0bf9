"""The automatic checks' settings as an admin meets them: what each check looks for, a plain label and
help for each threshold, and saving changes through `admin.save_overrides` (validated and audited),
a refused value said in those plain words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from . import admin
from .auth import Actor
from .checks import LABELS, NAMES
from .config import ConfigError, Settings

WHAT = {
    "blank": "A flat or nearly empty picture.",
    "text_garbled": "Large lettering with misspelt or made-up words (read offline).",
    "unsafe": "Nudity, found by an offline detector.",
    "duplicate": "Looks like a picture made for another solution. A warning only: it never keeps auto-approve "
    "from publishing.",
    "wrong_size": "Smaller than a card needs, or not the size that was asked for.",
}


@dataclass(frozen=True)
class Threshold:
    key: str  # the setting (config.Settings)
    check: str
    label: str
    help: str
    step: float | int
    format: str


THRESHOLDS = (
    Threshold(
        "check_blank_max_spread",
        "blank",
        "Largest colour spread",
        "A picture is blank when no colour varies by more than this (0 to 128, on the 0-255 scale of a colour) "
        "and its detail is at most the next setting. Higher flags more pictures.",
        0.5,
        "%.1f",
    ),
    Threshold(
        "check_blank_max_detail",
        "blank",
        "Most detail",
        "How much neighbouring pixels may differ on average (0 to 255) in a blank picture. Higher flags more pictures.",
        0.1,
        "%.2f",
    ),
    Threshold(
        "check_text_min_height",
        "text_garbled",
        "Smallest lettering read",
        "Only lettering at least this share of the picture's height is read: above 0 and below 1 (0.04 is 4%). "
        "Smaller lettering is ignored.",
        0.01,
        "%.3f",
    ),
    Threshold(
        "check_text_min_confidence",
        "text_garbled",
        "Reading confidence",
        "How sure the reader must be of a word (0 to 100) before its spelling counts.",
        5.0,
        "%.0f",
    ),
    Threshold(
        "check_text_max_unknown_words",
        "text_garbled",
        "Misspelt words allowed",
        "How many large words that are neither English nor in the solution's own text a picture may show "
        "before it is flagged (0 or more).",
        1,
        "%d",
    ),
    Threshold(
        "check_unsafe_min_score",
        "unsafe",
        "Detector score that flags",
        "How sure the detector must be (above 0, at most 1) to flag a picture. Lower flags more pictures.",
        0.05,
        "%.2f",
    ),
    Threshold(
        "check_duplicate_max_distance",
        "duplicate",
        "Most differing bits",
        "Two pictures are copies when at most this many of their fingerprints' 256 bits differ (0 to 256). "
        "Higher flags more pairs.",
        1,
        "%d",
    ),
    Threshold(
        "check_min_side_px",
        "wrong_size",
        "Shortest side allowed (pixels)",
        "A picture whose shorter side has fewer pixels than this is flagged (1 to 8192).",
        16,
        "%d",
    ),
)
BY_KEY = {t.key: t for t in THRESHOLDS}


def thresholds(check: str) -> list[Threshold]:
    return [t for t in THRESHOLDS if t.check == check]


def form_values(enabled: list[str], numbers: dict[str, Any]) -> dict[str, Any]:
    """The form's values as settings: the checks turned on (in the checks' order) and each threshold."""
    return {"checks_enabled": ",".join(n for n in NAMES if n in enabled), **numbers}


def save(*, session: Session, settings: Settings, actor: Actor, changes: dict[str, Any]) -> Settings:
    """Store the changed check settings (each one audited); a refused value in one plain sentence."""
    try:
        return admin.save_overrides(session=session, settings=settings, actor=actor, changes=changes)
    except ConfigError as exc:
        raise ConfigError(_plain(str(exc))) from None


def _plain(message: str) -> str:
    """`Setting CHECK_TEXT_MIN_HEIGHT: Input should be less than 1.` in the form's words."""
    head, _, problem = message.partition(": ")
    found = BY_KEY.get(head.removeprefix("Setting ").lower())
    if found is None or not problem:
        return message
    return f"{LABELS[found.check]}: {found.label.lower()} {problem.removeprefix('Input ')}"
