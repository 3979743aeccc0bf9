"""The `local` provider: offline and free, it draws a card from the solution itself, deterministic
per prompt and variant, and refines one with a few documented Pillow edits (`refinements`)."""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from ..config import parse_size
from .base import ImageRequest, ImageResult, Model, Provider, ProviderError

log = logging.getLogger(__name__)


class LocalProvider(Provider):
    name = "local"
    label = "Local (offline, free)"
    models = (Model("local-card"),)
    default_model = "local-card"
    edits = True  # a few documented Pillow edits: refinements.py lists the instructions

    def call(self, request: ImageRequest) -> ImageResult:
        from ..artwork import draw_card  # drawing code is only loaded when it draws
        from ..fonts import missing
        from ..style_cues import read

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
        return ImageResult(data=encode(image, request.output_format), provider_ms=_ms(started))

    def call_edit(self, request: ImageRequest) -> ImageResult:
        """The image changed as the instruction says, in its own format; an instruction with no word
        it knows fails as invalid_request, with the list of those it knows."""
        from ..refinements import RefineError, apply  # Pillow edits are only loaded when it refines

        started = time.perf_counter()
        try:
            image, image_format = apply(request.image or b"", request.prompt)
        except RefineError as exc:
            raise ProviderError("invalid_request", str(exc)) from None
        return ImageResult(data=encode(image, image_format), provider_ms=_ms(started))


def encode(image: Any, output_format: str) -> bytes:
    out = io.BytesIO()
    if output_format == "jpeg":
        image.convert("RGB").save(out, format="JPEG", quality=92)
    else:
        image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def subject_texts(subject: dict[str, Any]) -> list[str]:
    """The solution's own words in a prompt: its style cues are the template's, never these."""
    texts = [subject.get(key) or "" for key in ("title", "description", "category", "provider")]
    return [str(t) for t in texts + list(subject.get("tags") or []) if t]
