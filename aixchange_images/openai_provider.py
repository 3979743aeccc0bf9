"""The `openai` provider: the official SDK against the Images API (GPT image models only)."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import random
import time
from datetime import date

import openai

from .budget import Usage
from .deadline import DeadlineClient, deadline
from .providers import (
    CURRENT_MODEL,
    RETRYABLE,
    SHUTDOWN_DATES,
    ImageRequest,
    ImageResult,
    ModerationResult,
    Provider,
    ProviderError,
    RetryCheck,
    redact,
)

log = logging.getLogger(__name__)
MODERATION_MODEL = "omni-moderation-latest"
# Loggers of the SDK and its HTTP stack that write down what a server sent (x-request-id, response
# headers) at debug level: a server echoing the key would put it in a log line.
HTTP_LOGGERS = (
    "openai._base_client",
    "httpx2",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.connection",
    "httpcore2.proxy",
    "httpcore2.socks",
)


class _Redacting(logging.Filter):
    """Cuts the secrets of every provider made so far out of the HTTP_LOGGERS' records."""

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


_log_filter = _Redacting()
for _name in HTTP_LOGGERS:
    logging.getLogger(_name).addFilter(_log_filter)


class OpenAIProvider(Provider):
    name = "openai"
    paid = True

    def __init__(self, settings):  # type: ignore[no-untyped-def]
        super().__init__(settings)
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self._secrets = settings.secrets
        _log_filter.add(self._secrets)
        self._client = None
        if key:
            # Retries are ours (below): the SDK would also retry insufficient_quota, which never helps.
            self._client = openai.OpenAI(
                api_key=key,
                base_url=settings.openai_base_url or None,
                timeout=settings.image_timeout_seconds,
                max_retries=0,
                http_client=DeadlineClient(limits=openai.DEFAULT_CONNECTION_LIMITS, follow_redirects=True),
            )

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            raise ProviderError(
                "auth", "OPENAI_API_KEY is not set: put it in the environment or .env, or use the local provider."
            )
        return self._client

    def generate(self, request: ImageRequest, before_retry: RetryCheck | None = None) -> ImageResult:
        shutdown = SHUTDOWN_DATES.get(request.model)
        if shutdown and date.today() >= shutdown:
            raise ProviderError(
                "model_unavailable",
                f"Model {request.model} was retired on {shutdown.isoformat()}; "
                f"set IMAGE_MODEL to a current model such as {CURRENT_MODEL}.",
            )
        retries = unanswered = 0
        while True:
            try:
                result = self._call(request)
                result.retries, result.unanswered = retries, unanswered
                return result
            except ProviderError as exc:
                unanswered += exc.kind == "timeout" or exc.billed  # billed, maybe, with no usage to show
                exc.retries, exc.unanswered = retries, unanswered  # what the whole call took
                if exc.kind not in RETRYABLE or retries >= self.settings.image_max_retries:
                    raise
                wait = (
                    exc.retry_after if exc.retry_after is not None else 0.5 * 2**retries * (0.75 + random.random() / 4)
                )
                if wait > self.settings.image_max_retry_wait_seconds:
                    raise
                if before_retry is not None and not before_retry(exc):
                    exc.message += " It was not retried: the image budget cannot cover another call."
                    raise
                retries += 1
                time.sleep(wait)  # backing off before the provider's next try, not synchronisation

    def _call(self, request: ImageRequest) -> ImageResult:
        started = time.perf_counter()
        try:
            # The timeout bounds each read; the deadline, the whole call (a trickling reply included).
            with deadline(self.settings.image_timeout_seconds):
                raw = self.client.images.with_raw_response.generate(
                    model=request.model,
                    prompt=request.prompt,
                    n=1,
                    size=request.size,
                    quality=request.quality,  # type: ignore[arg-type]
                    output_format=request.output_format,  # type: ignore[arg-type]
                )
                response = raw.parse()
        except openai.OpenAIError as exc:
            raise self._classify(exc, request.model) from None
        except ValueError:  # a body labelled JSON that is not (say, a proxy's HTML error page)
            raise ProviderError("bad_image", "The image service's reply was not the JSON it should be.") from None
        elapsed = int((time.perf_counter() - started) * 1000)
        request_id = self._clean(raw.headers.get("x-request-id"))
        data = _first_image(response, request_id)
        return ImageResult(
            data=data,
            usage=_usage(response, request_id),
            request_id=request_id,
            provider_ms=elapsed,
            size=_text(getattr(response, "size", None)),
            quality=_text(getattr(response, "quality", None)),
        )

    def moderate(self, text: str) -> ModerationResult:
        try:
            with deadline(self.settings.image_timeout_seconds):
                result = self.client.moderations.create(model=MODERATION_MODEL, input=text).results[0]
        except openai.OpenAIError as exc:
            raise self._classify(exc, MODERATION_MODEL) from None
        flagged = [name for name, hit in result.categories.model_dump(by_alias=True).items() if hit]
        return ModerationResult(flagged=bool(result.flagged), categories=tuple(flagged), source="openai")

    def _classify(self, exc: openai.OpenAIError, model: str) -> ProviderError:
        kind, message = classify(exc, model)
        retry_after = None
        request_id = self._clean(getattr(exc, "request_id", None))
        response = getattr(exc, "response", None)
        if response is not None:
            retry_after = _retry_after(response.headers)
        return ProviderError(kind, self._clean(message) or "", retry_after=retry_after, request_id=request_id)

    def _clean(self, text: str | None) -> str | None:
        """What the server sent (a message, a request id) with no piece of a secret left in it."""
        return None if text is None else redact(text, *self._secrets)


def classify(exc: openai.OpenAIError, model: str) -> tuple[str, str]:
    """Map an SDK exception to (error_kind, one sentence for a person)."""
    code = (getattr(exc, "code", None) or "").lower()
    etype = (getattr(exc, "type", None) or "").lower()
    detail = _detail(exc)
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", "The image service did not answer in time; try again or raise IMAGE_TIMEOUT_SECONDS."
    if isinstance(exc, openai.APIConnectionError):
        return "connection", "Could not reach the image service; check the network or OPENAI_BASE_URL."
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return "auth", "The image service refused the API key; check OPENAI_API_KEY."
    if isinstance(exc, openai.RateLimitError):
        if "insufficient_quota" in (code, etype):
            return "quota_exceeded", "The OpenAI account is out of credit; add credit or raise its limit."
        return "rate_limited", f"The image service is rate-limiting us; it will be retried later. {detail}".strip()
    if code in ("moderation_blocked", "content_policy_violation"):
        return "moderation_blocked", "The image service's safety system refused this prompt; reword the description."
    if code == "billing_hard_limit_reached":
        return "quota_exceeded", "The OpenAI account reached its billing hard limit; raise it to continue."
    if isinstance(exc, openai.NotFoundError) or code == "model_not_found":
        return "model_unavailable", (
            f"Model {model} is not available (retired or unknown); set IMAGE_MODEL to a current model "
            f"such as {CURRENT_MODEL}."
        )
    if isinstance(exc, openai.InternalServerError):
        return "server_error", f"The image service had an internal error; it will be retried later. {detail}".strip()
    if isinstance(exc, openai.APIResponseValidationError):
        return "bad_image", "The image service's reply was not the JSON it should be."
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return "server_error", f"The image service failed with HTTP {exc.status_code}."
        param = getattr(exc, "param", None)
        where = f" (parameter {param})" if param else ""
        return "invalid_request", f"The image service rejected the request{where}: {detail}".strip()
    log.warning("Unclassified error from the image service: %s", type(exc).__name__)  # for whoever debugs it
    return "server_error", "The image service gave a reply this version does not understand."


def _detail(exc: openai.OpenAIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:300]
    return ""


def _retry_after(headers) -> float | None:  # type: ignore[no-untyped-def]
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                return None
    return None


def _first_image(response, request_id: str | None) -> bytes:  # type: ignore[no-untyped-def]
    items = getattr(response, "data", None)
    if not isinstance(items, list) or not items or not getattr(items[0], "b64_json", None):
        raise ProviderError("bad_image", "The image service answered without an image.", request_id=request_id)
    try:
        return base64.b64decode(items[0].b64_json, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderError(
            "bad_image", "The image service sent an image that is not valid base64.", request_id=request_id
        ) from None


def _usage(response, request_id: str | None) -> Usage | None:  # type: ignore[no-untyped-def]
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    inputs = getattr(usage, "input_tokens_details", None)
    details = getattr(usage, "output_tokens_details", None)
    if getattr(usage, "output_tokens", None) is None and details is None:
        return None  # not the Images API's usage shape (another server's): charge the per-image price
    text_in = getattr(inputs, "text_tokens", None) if inputs else getattr(usage, "input_tokens", None)
    image_in = getattr(inputs, "image_tokens", None) if inputs else 0
    image_out = getattr(details, "image_tokens", None) if details else usage.output_tokens
    text_out = getattr(details, "text_tokens", None) if details else 0
    counts = [_count(value) for value in (text_in, image_in, image_out, text_out)]
    if None in counts:  # a negative bill would hand money back to the budget: trust none of this reply
        raise ProviderError(
            "bad_image",
            "The image service's reply reported token usage that makes no sense (negative or not whole "
            "numbers); the call is charged at its estimate.",
            request_id=request_id,
            billed=True,
        )
    return Usage(*counts)  # type: ignore[arg-type]


def _count(value: object) -> int | None:
    """A token count: missing is 0; None when it is not a whole number of tokens at or above zero."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if value >= 0 and value == int(value) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
