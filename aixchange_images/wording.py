"""The words and numbers people read: money, image statuses, failure kinds, times, error sentences.

One place decides how an amount or a status reads, so the dashboard, the audit log and the
library's own sentences say it the same way.
"""

from __future__ import annotations

import math
import re

# Money: whole dollars without cents ($0, $5, $1,234), cents when there are any ($0.04, $12.50),
# whole dollars from $1,000 up. Below a cent a total reads "<$0.01"; one call's cost or a price
# (`exact=True`) keeps two significant figures ($0.0082), since there the cents are the story.
SUB_CENT = "<$0.01"

IMAGE_STATUS_WORDS = {
    "none": "No image",
    "placeholder": "Placeholder (generation failed)",
    "pending": "Awaiting review",
    "approved": "Approved",
    "uploaded": "Author's image",
}

# Why a candidate was turned down; the review form and `reject --reason` offer these (the command
# line's parser reads them here, where no database code is loaded).
REJECT_REASONS = {
    "off_topic": "Off-topic",
    "low_quality": "Low quality",
    "text_artefacts": "Text artefacts",
    "off_brand": "Off-brand",
    "unsafe": "Unsafe",
    "other": "Other",
}

ERROR_KIND_WORDS = {
    "moderation_blocked": "Blocked by moderation",
    "budget_exceeded": "Over budget",
    "rate_limited": "Rate limited",
    "quota_exceeded": "Account quota used up",
    "timeout": "Timed out",
    "connection": "Could not connect",
    "auth": "Key refused",
    "invalid_request": "Request refused",
    "model_unavailable": "Model unavailable",
    "server_error": "Image service error",
    "bad_image": "Unusable image",
    "storage": "Could not store",
}


def money(value: float | None, *, exact: bool = False) -> str:
    """An amount of US dollars as people write it (see the rule above); None is a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    sign, amount = ("-" if value < 0 else ""), abs(float(value))
    if round(amount, 6) == 0:
        return "$0"
    if amount < 0.01:
        return f"{sign}${amount:.{_decimals(amount)}f}" if exact else f"{sign}{SUB_CENT}"
    if amount >= 1000:
        return f"{sign}${amount:,.0f}"
    cents = round(amount, 2)
    return f"{sign}${cents:,.0f}" if cents == int(cents) else f"{sign}${cents:,.2f}"


def _decimals(amount: float) -> int:
    """Decimals that show two significant figures of a sub-cent amount, at most six."""
    return min(6, 1 - math.floor(math.log10(amount)))


def image_status(status: str | None) -> str:
    return IMAGE_STATUS_WORDS.get(status or "", status or "")


def error_kind(kind: str | None) -> str:
    """A failure kind as words; an unknown kind is its name with spaces."""
    if not kind:
        return ""
    return ERROR_KIND_WORDS.get(kind, kind.replace("_", " ").capitalize())


def seconds(ms: float | None) -> str:
    """Milliseconds as seconds with one decimal ("1.4 s"); None is a dash."""
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return "—"
    return f"{ms / 1000:,.1f} s"


def megabytes(size: float | None) -> str:
    if not size:
        return "0 MB"
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.0f} KB"


_CLASS = r"(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt)"
_CLEAN_UPS = (
    (re.compile(rf"\s*\(\s*{_CLASS}\s*\)"), ""),  # "(UnidentifiedImageError)"
    (re.compile(rf"\b{_CLASS}\s*:\s*"), ""),  # "OSError: disk full" -> "disk full"
    (re.compile(rf":\s*{_CLASS}(?=\s*[.;]?\s*$)"), ""),  # "...: APIConnectionError."
    (re.compile(r"\[Errno -?\d+\]\s*"), ""),  # "[Errno 28] No space left" -> "No space left"
    (re.compile(r"\(\s*\)"), ""),
    (re.compile(r"\s+([.,;:])"), r"\1"),
    (re.compile(r"\s{2,}"), " "),
)


def plain_error(message: str | None) -> str:
    """An error message without Python class names or errno codes, as one sentence for a person."""
    text = (message or "").strip()
    for pattern, replacement in _CLEAN_UPS:
        text = pattern.sub(replacement, text)
    text = text.strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text[:1].upper() + text[1:]
