"""The `openai` provider: the official SDK against the Images API (GPT image models only), or any
server compatible with it at OPENAI_BASE_URL."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import time
from datetime import date
from typing import Any

from pydantic import SecretStr, field_validator

from ..config import ProviderSettings, check_base_url
from ..redaction import watch
from .base import ImageRequest, ImageResult, Model, ModerationResult, Provider, ProviderError, Usage

log = logging.getLogger(__name__)
MODERATION_MODEL = "omni-moderation-latest"
watch("openai._base_client")  # the SDK writes down response headers (x-request-id) at debug level


class OpenAISettings(ProviderSettings):
    provider = "openai"
    key_field = "openai_api_key"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None

    @field_validator("openai_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_base_url(value.strip())
        return value.strip() if value else None


# USD per 1M tokens: text in, image in, image out (openai-images.md, late 2026); seeded into the price table.
GPT_IMAGE_MODELS = (
    Model("gpt-image-2", 5.00, 8.00, 30.00),
    Model("gpt-image-2-2026-04-21", 5.00, 8.00, 30.00),
    Model("gpt-image-2.5-sunburst", 5.00, 8.00, 30.00),
    Model("gpt-image-2.5-sunburst-2026-09-08", 5.00, 8.00, 30.00),
    Model("gpt-image-2.5-flare", 5.00, 8.00, 30.00),
    Model("gpt-image-2.5-flare-2026-09-08", 5.00, 8.00, 30.00),
    Model("gpt-image-2.6-sunburst", 5.00, 8.00, 30.00),
    Model("gpt-image-2.6-flare", 5.00, 8.00, 30.00),
    Model("gpt-image-1.5", 5.00, 8.00, 32.00, date(2026, 12, 1)),
    Model("gpt-image-1-mini", 2.00, 2.50, 8.00, date(2026, 12, 1)),
    Model("chatgpt-image-latest", 5.00, 8.00, 32.00, date(2026, 12, 1)),
    Model("gpt-image-1", shutdown=date(2026, 10, 23)),
    Model("dall-e-2", shutdown=date(2026, 5, 12)),
    Model("dall-e-3", shutdown=date(2026, 5, 12)),
)


class OpenAIProvider(Provider):
    """The Images API through the official SDK; `azure` is this with another client and settings."""

    name = "openai"
    label = "OpenAI"
    paid = True
    models = GPT_IMAGE_MODELS
    default_model = "gpt-image-2"
    any_model = True  # a compatible server at OPENAI_BASE_URL may serve others
    edits = True
    reports_usage = True
    config: Any = OpenAISettings
    key_variable = "OPENAI_API_KEY"
    address_variable = "OPENAI_BASE_URL"
    moderation = True  # the service's own moderation endpoint screens prompts

    def make_client(self) -> Any:
        import openai

        from ..deadline import DeadlineClient  # the HTTP stack loads with the SDK, at the first call

        # Retries are the base class's: the SDK would also retry insufficient_quota, which never helps.
        return openai.OpenAI(
            api_key=self.options.openai_api_key.get_secret_value(),
            base_url=self.options.openai_base_url or None,
            timeout=self.settings.image_timeout_seconds,
            max_retries=0,
            http_client=DeadlineClient(limits=openai.DEFAULT_CONNECTION_LIMITS, follow_redirects=True),
        )

    def deployment(self, model: str) -> str:
        """What the SDK's `model` argument is for this model (Azure calls it a deployment)."""
        return model

    def call(self, request: ImageRequest) -> ImageResult:
        return self._reply(
            request,
            lambda: self.client.images.with_raw_response.generate(
                model=self.deployment(request.model),
                prompt=request.prompt,
                n=1,
                size=request.size,
                quality=request.quality,
                output_format=request.output_format,
            ),
        )

    def call_edit(self, request: ImageRequest) -> ImageResult:
        if not request.image:
            raise ProviderError("invalid_request", "There is no image to change.")
        suffix = "jpg" if request.image[:3] == b"\xff\xd8\xff" else "png"
        return self._reply(
            request,
            lambda: self.client.images.with_raw_response.edit(
                model=self.deployment(request.model),
                image=(f"candidate.{suffix}", request.image, f"image/{'jpeg' if suffix == 'jpg' else 'png'}"),
                prompt=request.prompt,
                n=1,
                size=request.size,
                quality=request.quality,
                output_format=request.output_format,
            ),
        )

    def _reply(self, request: ImageRequest, send: Any) -> ImageResult:
        from ..deadline import deadline

        started = time.perf_counter()
        try:
            # The timeout bounds each read; the deadline, the whole call (a trickling reply included).
            with deadline(self.settings.image_timeout_seconds):
                raw = send()
                response = raw.parse()
        except Exception as exc:  # noqa: BLE001 - sorted into an error kind; a bug in ours is re-raised there
            raise self._classify(exc, request.model) from None
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
        if not self.moderation:
            return super().moderate(text)
        from ..deadline import deadline

        try:
            with deadline(self.settings.image_timeout_seconds):
                result = self.client.moderations.create(model=MODERATION_MODEL, input=text).results[0]
        except Exception as exc:  # noqa: BLE001 - sorted as above
            raise self._classify(exc, MODERATION_MODEL) from None
        flagged = [name for name, hit in result.categories.model_dump(by_alias=True).items() if hit]
        return ModerationResult(flagged=bool(result.flagged), categories=tuple(flagged), source=self.name)

    def _classify(self, exc: Exception, model: str) -> ProviderError:
        import openai

        if not isinstance(exc, openai.OpenAIError | ValueError):
            raise exc  # not the service's doing: the pipeline records it as a surprise, with its traceback
        kind, message = classify(exc, model, self)
        retry_after = None
        request_id = self._clean(getattr(exc, "request_id", None))
        response = getattr(exc, "response", None)
        if response is not None:
            retry_after = _retry_after(response.headers)
        return ProviderError(kind, self._clean(message) or "", retry_after=retry_after, request_id=request_id)


def classify(exc: Exception, model: str, provider: OpenAIProvider) -> tuple[str, str]:
    """Map an SDK exception to (error_kind, one sentence for a person)."""
    import openai

    if not isinstance(exc, openai.OpenAIError):  # a body labelled JSON that is not (a proxy's HTML error page)
        return "bad_image", "The image service's reply was not the JSON it should be."
    code = (getattr(exc, "code", None) or "").lower()
    etype = (getattr(exc, "type", None) or "").lower()
    detail = _detail(exc)
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", "The image service did not answer in time; try again or raise IMAGE_TIMEOUT_SECONDS."
    if isinstance(exc, openai.APIConnectionError):
        return "connection", f"Could not reach the image service; check the network or {provider.address_variable}."
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return "auth", f"The image service refused the API key; check {provider.key_variable}."
    if isinstance(exc, openai.RateLimitError):
        if "insufficient_quota" in (code, etype):
            return "quota_exceeded", "The OpenAI account is out of credit; add credit or raise its limit."
        return "rate_limited", f"The image service is rate-limiting us; it will be retried later. {detail}".strip()
    if code in ("moderation_blocked", "content_policy_violation", "content_filter"):
        return "moderation_blocked", "The image service's safety system refused this prompt; reword the description."
    if code == "billing_hard_limit_reached":
        return "quota_exceeded", "The OpenAI account reached its billing hard limit; raise it to continue."
    if isinstance(exc, openai.NotFoundError) or code == "model_not_found":
        return "model_unavailable", (
            f"Model {model} is not available (retired or unknown); set IMAGE_MODEL to a current model "
            f"such as {provider.default_model}."
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


def _detail(exc: Exception) -> str:
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
        raise nonsense_usage(request_id)
    return Usage(*counts)  # type: ignore[arg-type]


def nonsense_usage(request_id: str | None) -> ProviderError:
    """A reply whose usage makes no sense: the call may have been billed, so it is charged its estimate."""
    return ProviderError(
        "bad_image",
        "The image service's reply reported token usage that makes no sense (negative or not whole "
        "numbers); the call is charged at its estimate.",
        request_id=request_id,
        billed=True,
    )


def _count(value: object) -> int | None:
    """A token count: missing is 0; None when it is not a whole number of tokens at or above zero."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if value >= 0 and value == int(value) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
