"""What every image provider is: the request, the reply, the error kinds, and a base class that owns
retries, backoff and the per-retry budget check around one call a provider writes.

A provider is one module in this package with one `Provider` subclass: its name, the models it
serves (list prices, shutdown dates), what it can do, and the settings it reads. `provider_registry`
finds it there; pages, the command line and Settings list what the registry holds.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from tenacity import RetryCallState, Retrying

from ..config import FORMATS, QUALITIES, STANDARD_SIZES, ProviderSettings, Settings, parse_size
from ..redaction import log_filter, redact

RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "connection"})
# Output image tokens of a 1024x1024 image at each quality, for token-priced models (openai-images.md):
# only for estimates and replies without usage; what is charged comes from the usage a call returns.
# `auto` lets the service choose, so it is priced at the dearest it may choose (high, at 1536x1024).
OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 8320, "max": 16640, "auto": 4160}
AUTO_SIZE = (1536, 1024)


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
        self.retries = 0  # retries made before giving up
        self.unanswered = 0  # calls that timed out (or were billed without usage): charged their estimate


RetryCheck = Callable[["ProviderError"], bool]  # may this failed call be tried again?


@dataclass(frozen=True)
class Usage:
    input_text_tokens: int = 0
    input_image_tokens: int = 0
    output_image_tokens: int = 0
    output_text_tokens: int = 0


@dataclass(frozen=True)
class Model:
    """A model a provider serves: its list prices in USD per 1M tokens (seeded into the price table,
    which admins edit) and the day it stops being served, if announced."""

    name: str
    text_input_per_m: float = 0.0
    image_input_per_m: float = 0.0
    image_output_per_m: float = 0.0
    shutdown: date | None = None


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    model: str
    size: str
    quality: str
    output_format: str
    variant: int = 0
    subject: dict[str, Any] = field(default_factory=dict)  # title, description, category, tags
    image: bytes | None = None  # the image to change: a refine sends the instruction as `prompt`

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
    cost_usd: float | None = None  # what the service says the call cost, for providers that report it


@dataclass(frozen=True)
class ModerationResult:
    flagged: bool
    categories: tuple[str, ...] = ()
    source: str = "local"


class Provider:
    """One image service. A subclass writes `call` (and `call_edit` if it can change an image) and
    declares the rest as class attributes; `generate` and `edit` add retries around them."""

    name: ClassVar[str] = "base"
    label: ClassVar[str] = "Base"  # what a person calls it
    paid: ClassVar[bool] = False
    models: ClassVar[tuple[Model, ...]] = ()
    default_model: ClassVar[str] = ""
    any_model: ClassVar[bool] = False  # sends any model name it is given (a compatible server may know more)
    edits: ClassVar[bool] = False
    sizes: ClassVar[tuple[str, ...]] = STANDARD_SIZES
    qualities: ClassVar[tuple[str, ...]] = QUALITIES
    formats: ClassVar[tuple[str, ...]] = FORMATS
    reports_usage: ClassVar[bool] = False  # its replies say what was used (tokens or cost)
    config: ClassVar[type[ProviderSettings] | None] = None  # the variables it reads (its key among them)
    key_variable: ClassVar[str | None] = None  # the variable without which it cannot call

    def __init__(self, settings: Settings):
        self.settings = settings
        self.options: Any = settings.provider_settings(self.config) if self.config else None
        self._secrets = settings.secrets  # only to cut them out of what a server sends
        log_filter.add(self._secrets)
        self._client: Any = None
        self._client_lock = threading.Lock()

    # -- what a provider writes ----------------------------------------------------------------
    def call(self, request: ImageRequest) -> ImageResult:
        """One try at one image; failures raise ProviderError with their kind."""
        raise NotImplementedError

    def call_edit(self, request: ImageRequest) -> ImageResult:
        """One try at changing `request.image` as `request.prompt` says."""
        raise ProviderError("invalid_request", f"{self.label} cannot change an image; refine with another provider.")

    def moderate(self, text: str) -> ModerationResult:
        """Screen a prompt before any paid call; the default is the local rule list."""
        return local_moderation(text)

    def missing(self) -> str | None:
        """Why this provider cannot call now (its key is not set), in one sentence; None when it can."""
        if self.key_variable and (self.options is None or not self.options.has_key):
            return f"{self.key_variable} is not set: put it in the environment or .env, or use the local provider."
        return None

    def make_client(self) -> Any:
        """The client a remote provider calls through (its SDK loads here, at the first call)."""
        raise NotImplementedError

    @property
    def client(self) -> Any:
        """`make_client()`'s client, made once at the first call; without the key, an `auth` failure."""
        with self._client_lock:
            if self._client is None:
                if problem := self.missing():
                    raise ProviderError("auth", problem)
                self._client = self.make_client()
            return self._client

    def _clean(self, text: str | None) -> str | None:
        """What a server sent (a message, a request id) with no piece of a secret left in it."""
        return None if text is None else redact(text, *self._secrets)

    # -- what the base class does for every provider -------------------------------------------
    def generate(self, request: ImageRequest, before_retry: RetryCheck | None = None) -> ImageResult:
        """One image. Retries what may pass on a second try, asking `before_retry` (the budget) first."""
        self.check_model(request.model)
        return self._retrying(self.call, request, before_retry)

    def edit(self, request: ImageRequest, before_retry: RetryCheck | None = None) -> ImageResult:
        """`request.image` changed as `request.prompt` says, with the same retries as `generate`."""
        if not self.edits:
            raise ProviderError(
                "invalid_request", f"{self.label} cannot change an image; refine with another provider."
            )
        self.check_model(request.model)
        return self._retrying(self.call_edit, request, before_retry)

    def _retrying(
        self, call: Callable[[ImageRequest], ImageResult], request: ImageRequest, before_retry: RetryCheck | None
    ) -> ImageResult:
        settings = self.settings
        unanswered, pause = 0, 0.0

        def again(state: RetryCallState) -> bool:
            nonlocal unanswered, pause
            exc = state.outcome.exception() if state.outcome else None
            if not isinstance(exc, ProviderError):
                return False  # a success, or a bug: neither is tried again
            unanswered += exc.kind == "timeout" or exc.billed  # billed, maybe, with no usage to show
            exc.retries, exc.unanswered = state.attempt_number - 1, unanswered  # what the whole call took
            if exc.kind not in RETRYABLE or state.attempt_number > settings.image_max_retries:
                return False
            pause = backoff(exc, state.attempt_number - 1)
            if pause > settings.image_max_retry_wait_seconds:
                return False
            if before_retry is not None and not before_retry(exc):
                exc.message += " It was not retried: the image budget cannot cover another call."
                return False
            return True

        for attempt in Retrying(retry=again, wait=lambda _: pause, reraise=True):
            with attempt:
                result = call(request)
                result.retries, result.unanswered = attempt.retry_state.attempt_number - 1, unanswered
        return result

    # -- what it knows of its models -----------------------------------------------------------
    def model(self, name: str) -> Model | None:
        return next((m for m in self.models if m.name == name), None)

    def serves(self, name: str) -> bool:
        return self.any_model or self.model(name) is not None

    def current_models(self, today: date) -> list[str]:
        return [m.name for m in self.models if m.shutdown is None or m.shutdown > today]

    def check_model(self, name: str) -> None:
        """A model past its shutdown date, or one this provider does not serve, fails before any call."""
        if retired := self.retired(name, date.today()):
            raise ProviderError("model_unavailable", retired)
        if not self.serves(name):
            raise ProviderError(
                "model_unavailable",
                f"{self.label} has no model {name}; choose one of {', '.join(self.current_models(date.today()))}.",
            )

    def retired(self, name: str, today: date) -> str | None:
        """Why `name` can no longer be called, or None."""
        found = self.model(name)
        if found is None or found.shutdown is None or today < found.shutdown:
            return None
        return (
            f"Model {name} was retired on {found.shutdown.isoformat()}; "
            f"set IMAGE_MODEL to a current model such as {self.default_model}."
        )

    def notice(self, name: str, today: date) -> str | None:
        """A warning for a model that is shut down or will be soon."""
        found = self.model(name)
        if found is None or found.shutdown is None:
            return None
        if today >= found.shutdown:
            return (
                f"Model {name} was shut down on {found.shutdown.isoformat()}; "
                f"set IMAGE_MODEL to a current model such as {self.default_model}."
            )
        return f"Model {name} shuts down on {found.shutdown.isoformat()}; move IMAGE_MODEL to {self.default_model} before then."

    # -- what a call is expected to use --------------------------------------------------------
    def expected_usage(self, request: ImageRequest) -> Usage:
        """The tokens one call is expected to use (estimates, and replies that say nothing): a GPT
        image model's by default; providers priced otherwise say theirs."""
        return Usage(
            input_text_tokens=prompt_tokens(request.prompt),
            output_image_tokens=expected_output_tokens(request.size, request.quality),
        )


def prompt_tokens(prompt: str) -> int:
    """A tokenizer-free estimate: about four characters a token."""
    return max(1, math.ceil(len(prompt) / 4))


def expected_output_tokens(size: str, quality: str) -> int:
    width, height = AUTO_SIZE if size == "auto" else parse_size(size)
    per_1024 = OUTPUT_TOKENS_1024.get(quality, OUTPUT_TOKENS_1024["max"])
    return math.ceil(per_1024 * width * height / (1024 * 1024))


def backoff(exc: ProviderError, retries: int) -> float:
    """How long to wait before the next try: what the service asked for, else exponential with jitter."""
    if exc.retry_after is not None:
        return exc.retry_after
    return 0.5 * 2**retries * (0.75 + random.random() / 4)


# A short list of what a product card must never depict; the openai provider asks the API instead.
_BLOCKED = re.compile(
    r"\b(gore|gory|beheading|massacre|terroris[mt]|bomb[- ]making|child (?:abuse|porn)|porn(?:ographic)?|"
    r"nude|naked|sexual|self[- ]harm|suicide|kill(?:ing)? people|genocide|swastika|hate speech)\b",
    re.IGNORECASE,
)


def local_moderation(text: str) -> ModerationResult:
    found = sorted({m.group(0).lower() for m in _BLOCKED.finditer(text)})
    return ModerationResult(flagged=bool(found), categories=tuple(found), source="local")
