"""Image providers behind one small interface, and the built-in local one; `provider_registry` finds
them by name."""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from .budget import Usage
from .config import Settings, parse_size

# Models the API no longer serves (or soon won't), with the day they stop (openai-images.md).
SHUTDOWN_DATES = {
    "dall-e-2": date(2026, 5, 12),
    "dall-e-3": date(2026, 5, 12),
    "gpt-image-1": date(2026, 10, 23),
    "gpt-image-1-mini": date(2026, 12, 1),
    "gpt-image-1.5": date(2026, 12, 1),
    "chatgpt-image-latest": date(2026, 12, 1),
}
CURRENT_MODEL = "gpt-image-2"
RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "connection"})
log = logging.getLogger(__name__)


class ProviderError(Exception):
    """A failed call, already sorted into one of product.md's error kinds."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retry_after: float | None = None,
        request_id: str | None = None,
        billed: bool = False,
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.request_id = request_id
        self.billed = billed  # the service answered, so it may have billed this call, with no usage we trust
        self.retries = 0  # retries made before giving up, set by providers that retry
        self.unanswered = 0  # calls that timed out (or were billed without usage): charged their estimate


RetryCheck = Callable[["ProviderError"], bool]  # may this failed call be tried again?


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    model: str
    size: str
    quality: str
    output_format: str
    variant: int = 0
    subject: dict[str, Any] = field(default_factory=dict)  # title, description, category, tags

    @property
    def seed(self) -> int:
        digest = hashlib.sha256(f"{self.prompt}\x00{self.variant}".encode()).digest()
        return int.from_bytes(digest[:8], "big")


@dataclass
class ImageResult:
    data: bytes
    usage: Usage | None = None
    request_id: str | None = None
    provider_ms: int = 0
    retries: int = 0
    unanswered: int = 0  # earlier tries that timed out: the service may have billed them
    size: str | None = None  # what the service says it made (it chooses when asked for `auto`)
    quality: str | None = None


@dataclass(frozen=True)
class ModerationResult:
    flagged: bool
    categories: tuple[str, ...] = ()
    source: str = "local"


class Provider:
    """One required method, `generate`; capabilities are class attributes."""

    name: ClassVar[str] = "base"
    paid: ClassVar[bool] = False
    fixed_model: ClassVar[str | None] = None  # providers that ignore IMAGE_MODEL name their own

    def __init__(self, settings: Settings):
        self.settings = settings

    def generate(self, request: ImageRequest, before_retry: RetryCheck | None = None) -> ImageResult:
        """One image. A provider that retries asks `before_retry` first and gives up when it says no."""
        raise NotImplementedError

    def moderate(self, text: str) -> ModerationResult:
        """Screen a prompt before any paid call; the default is the local rule list."""
        return local_moderation(text)


# A short list of what a product card must never depict; the openai provider asks the API instead.
_BLOCKED = re.compile(
    r"\b(gore|gory|beheading|massacre|terroris[mt]|bomb[- ]making|child (?:abuse|porn)|porn(?:ographic)?|"
    r"nude|naked|sexual|self[- ]harm|suicide|kill(?:ing)? people|genocide|swastika|hate speech)\b",
    re.IGNORECASE,
)


def local_moderation(text: str) -> ModerationResult:
    found = sorted({m.group(0).lower() for m in _BLOCKED.finditer(text)})
    return ModerationResult(flagged=bool(found), categories=tuple(found), source="local")


class LocalProvider(Provider):
    """Offline and free: draws a card from the solution itself, deterministic per prompt and variant."""

    name = "local"
    fixed_model = "local-card"

    def generate(self, request: ImageRequest, before_retry: RetryCheck | None = None) -> ImageResult:
        from .artwork import draw_card  # drawing code is only loaded when it draws
        from .fonts import missing
        from .style_cues import read

        started = time.perf_counter()
        width, height = parse_size(request.size)
        subject = request.subject
        title = subject.get("title") or "Untitled solution"
        if lost := missing(title):
            log.warning(
                "The characters %s of the title %r could not be drawn: no installed font has them.", lost, title
            )
        image = draw_card(
            title=title,
            description=subject.get("description") or request.prompt,
            category=subject.get("category") or "Other",
            tags=list(subject.get("tags") or []),
            seed=request.seed,
            width=width,
            height=height,
            cues=read(request.prompt, ignore=subject_texts(subject)),
        )
        out = io.BytesIO()
        if request.output_format == "jpeg":
            image.convert("RGB").save(out, format="JPEG", quality=92)
        else:
            image.save(out, format="PNG", compress_level=1)
        return ImageResult(data=out.getvalue(), provider_ms=int((time.perf_counter() - started) * 1000))


def subject_texts(subject: dict[str, Any]) -> list[str]:
    """The solution's own words in a prompt: its style cues are the template's, never these."""
    texts = [subject.get(key) or "" for key in ("title", "description", "category", "provider")]
    return [str(t) for t in texts + list(subject.get("tags") or []) if t]


def model_notice(model: str, today: date) -> str | None:
    """A warning for a model that is shut down or will be soon."""
    shutdown = SHUTDOWN_DATES.get(model)
    if shutdown is None:
        return None
    if today >= shutdown:
        return f"Model {model} was shut down on {shutdown.isoformat()}; set IMAGE_MODEL to a current model such as {CURRENT_MODEL}."
    return f"Model {model} shuts down on {shutdown.isoformat()}; move IMAGE_MODEL to {CURRENT_MODEL} before then."


PIECE = 8  # this many characters of a secret in a row already say too much (a server may echo part of a key)


def redact(text: str, *secrets: str | None) -> str:
    """Remove anything that looks like, or is, a secret from a message: a secret, or any run of
    `PIECE` or more characters from within one."""
    pieces = {s[i : i + PIECE] for s in secrets if s for i in range(len(s) - PIECE + 1)}
    for secret in secrets:
        if secret and len(secret) < PIECE:
            text = text.replace(secret, "[redacted]")
    if pieces:
        hidden = [False] * len(text)
        for i in range(len(text) - PIECE + 1):
            if text[i : i + PIECE] in pieces:
                hidden[i : i + PIECE] = [True] * PIECE
        runs = itertools.groupby(zip(text, hidden, strict=True), key=lambda pair: pair[1])
        text = "".join("[redacted]" if gone else "".join(c for c, _ in run) for gone, run in runs)
    return re.sub(r"(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]{8,}", r"\1…[redacted]", text)
