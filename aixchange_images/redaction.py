"""Cutting secrets out of text: a secret, or any piece of one long enough to say too much."""

from __future__ import annotations

import itertools
import logging
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


class _LogRedaction(logging.Filter):
    """Cuts every provider's secrets out of the records of the loggers it watches: the HTTP stack and
    the SDKs write down what a server sent at debug level, and a server may echo a key."""

    secrets: tuple[str, ...] = ()

    def add(self, secrets: tuple[str, ...]) -> None:
        self.secrets = tuple(dict.fromkeys((*self.secrets, *secrets)))  # replaced whole: threads may be reading

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = redact(message, *self.secrets)
            if clean != message:
                record.msg, record.args = clean, None
        return True


log_filter = _LogRedaction()


def watch(*loggers: str) -> None:
    """Have `log_filter` clean these loggers' records."""
    for name in loggers:
        logging.getLogger(name).addFilter(log_filter)


# The HTTP stack every provider's client uses (the openai and google-genai SDKs, FLUX's client).
watch("httpx2", "httpcore2.http11", "httpcore2.http2", "httpcore2.connection", "httpcore2.proxy", "httpcore2.socks")
