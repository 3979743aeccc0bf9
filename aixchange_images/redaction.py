"""Cutting secrets out of text: a secret, or any piece of one long enough to say too much."""

from __future__ import annotations

import itertools
import re

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
