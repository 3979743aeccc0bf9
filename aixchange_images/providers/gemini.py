"""The `gemini` provider: Google's Gemini image models through the `google-genai` SDK (generateContent
with image output), or a server compatible with it at GEMINI_BASE_URL.

Gemini takes no pixel size: it makes an aspect ratio (imageConfig.aspectRatio) at a resolution tier
(imageConfig.imageSize: 512, 1K, 2K, 4K, where the model has them). A WxH is sent as the nearest ratio
at the smallest tier that covers it, and what comes back is cropped to WxH's exact ratio (at most a few
percent) and scaled down to WxH, so the image is the size asked for. `auto` lets the model choose.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, SecretStr

from ..config import ProviderSettings, check_base_url, parse_size
from ..redaction import watch
from .base import ImageRequest, ImageResult, Model, Provider, ProviderError, Usage, prompt_tokens
from .openai import _count, nonsense_usage

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"
API_VERSION = "v1beta"  # imageConfig is a v1beta field; the SDK's default is v1
# The SDK's loggers: one that logged a server's words would carry a key the server echoed.
SDK_LOGGERS = ("google_genai._api_client", "google_genai._common", "google_genai.models")
watch(*SDK_LOGGERS)


def _checked_url(value: str | None) -> str | None:
    if value is not None:
        check_base_url(value.strip())
    return value.strip() if value else None


class GeminiSettings(ProviderSettings):
    provider = "gemini"
    key_field = "gemini_api_key"
    gemini_api_key: SecretStr | None = None
    gemini_base_url: Annotated[str | None, AfterValidator(_checked_url)] = None


@dataclass(frozen=True)
class Output:
    """What a model can make: its aspect ratios, and output image tokens per resolution tier (None: the
    model has one tier and takes no imageSize)."""

    ratios: tuple[str, ...]
    tokens: dict[str | None, int]


RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
# Image tokens per output image (https://ai.google.dev/gemini-api/docs/image-generation, late 2026).
FLASH_31 = Output(RATIOS, {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520})
PRO_3 = Output(RATIOS, {"1K": 1120, "2K": 1120, "4K": 2000})
FLASH_25 = Output(RATIOS, {None: 1290})
TIER_SIDE = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096, None: 1024}  # a 1:1 image's side
INPUT_IMAGE_TOKENS = 1120  # an image sent to a Gemini 3 model (default media resolution), for estimates
# USD per 1M tokens: text in, image in, image out (https://ai.google.dev/gemini-api/docs/pricing, read
# through https://github.com/api-evangelist/gemini plans/gemini-plans-pricing.yml of 2026-09-20 and
# https://aifreeapi.com/en/posts/gemini-flash-image-generation-pricing); shutdown dates from
# https://ai.google.dev/gemini-api/docs/deprecations. Imagen was shut down on 2026-06-24: not offered.
GEMINI_IMAGE_MODELS = (
    Model("gemini-3.1-flash-image", 0.50, 0.50, 60.00),
    Model("gemini-3-pro-image", 2.00, 2.00, 120.00),
    Model("gemini-3.1-flash-image-preview", 0.50, 0.50, 60.00, date(2026, 6, 25)),
    Model("gemini-3-pro-image-preview", 2.00, 2.00, 120.00, date(2026, 6, 25)),
    Model("gemini-2.5-flash-image", 0.30, 0.30, 30.00, date(2026, 10, 2)),
)
OUTPUTS = {
    "gemini-3.1-flash-image": FLASH_31,
    "gemini-3-pro-image": PRO_3,
    "gemini-3.1-flash-image-preview": FLASH_31,
    "gemini-3-pro-image-preview": PRO_3,
    "gemini-2.5-flash-image": FLASH_25,
}
SAFETY_REASONS = {
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
}


def output_of(model: str) -> Output:
    """What `model` makes; a model this version does not know (at a compatible server) as the newest flash."""
    return OUTPUTS.get(model, FLASH_31)


def image_config(model: str, size: str) -> tuple[str | None, str | None]:
    """(aspectRatio, imageSize) for a WxH: the nearest ratio, and the smallest tier that covers WxH."""
    output = output_of(model)
    tiers = list(output.tokens)
    if size == "auto":
        return None, "1K" if "1K" in tiers else None
    width, height = parse_size(size)
    ratio = min(output.ratios, key=lambda r: abs(math.log(width / height) - math.log(_ratio(r))))
    for tier in tiers:
        side = TIER_SIDE[tier]
        if side * math.sqrt(_ratio(ratio)) >= width * 0.99 and side / math.sqrt(_ratio(ratio)) >= height * 0.99:
            return ratio, tier
    return ratio, tiers[-1]


def _ratio(text: str) -> float:
    width, height = text.split(":")
    return int(width) / int(height)


class GeminiProvider(Provider):
    name = "gemini"
    label = "Google Gemini"
    paid = True
    models = GEMINI_IMAGE_MODELS
    default_model = "gemini-3.1-flash-image"
    any_model = False  # IMAGE_MODEL's default (a GPT image model) is not sent here: see `serves`
    edits = True
    reports_usage = True
    sizes = ("1024x1024", "1536x1024", "1024x1536", "1536x864", "864x1536", "2048x2048", "auto")
    config: Any = GeminiSettings
    key_variable = "GEMINI_API_KEY"
    address_variable = "GEMINI_BASE_URL"

    def serves(self, name: str) -> bool:
        """Its models, and any other Gemini model a compatible server at GEMINI_BASE_URL may serve."""
        return self.model(name) is not None or name.startswith("gemini-")

    def make_client(self) -> Any:
        from google import genai
        from google.genai import types

        from ..deadline import DeadlineClient

        # Retries are the base class's (attempts=1: none in the SDK); the deadline bounds the whole call.
        options = types.HttpOptions(
            base_url=self.options.gemini_base_url or DEFAULT_BASE_URL,
            api_version=API_VERSION,
            timeout=math.ceil(self.settings.image_timeout_seconds * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_client=DeadlineClient(),
        )
        return genai.Client(
            vertexai=False, api_key=self.options.gemini_api_key.get_secret_value(), http_options=options
        )

    def call(self, request: ImageRequest) -> ImageResult:
        return self._reply(request, [request.prompt])

    def call_edit(self, request: ImageRequest) -> ImageResult:
        if not request.image:
            raise ProviderError("invalid_request", "There is no image to change.")
        from google.genai import types

        mime = "image/jpeg" if request.image[:3] == b"\xff\xd8\xff" else "image/png"
        return self._reply(request, [request.prompt, types.Part.from_bytes(data=request.image, mime_type=mime)])

    def _reply(self, request: ImageRequest, contents: list[Any]) -> ImageResult:
        from google.genai import types

        from ..deadline import deadline

        ratio, tier = image_config(request.model, request.size)
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            candidate_count=1,
            image_config=types.ImageConfig(aspect_ratio=ratio, image_size=tier),
        )
        started = time.perf_counter()
        try:
            # The timeout bounds each read; the deadline, the whole call (a trickling reply included).
            with deadline(self.settings.image_timeout_seconds):
                response = self.client.models.generate_content(model=request.model, contents=contents, config=config)
        except Exception as exc:  # noqa: BLE001 - sorted into an error kind; a bug in ours is re-raised there
            raise self._classify(exc, request.model) from None
        elapsed = int((time.perf_counter() - started) * 1000)
        request_id = self._clean(_request_id(response))
        usage = _usage(response, request_id)
        data = _first_image(response, request_id, billed=_used(usage), clean=self._clean)
        data, made = fit(data, request.size, ratio, request.output_format)
        return ImageResult(data=data, usage=usage, request_id=request_id, provider_ms=elapsed, size=made)

    def expected_usage(self, request: ImageRequest) -> Usage:
        _, tier = image_config(request.model, request.size)
        return Usage(
            input_text_tokens=prompt_tokens(request.prompt),
            input_image_tokens=INPUT_IMAGE_TOKENS if request.image else 0,
            output_image_tokens=output_of(request.model).tokens[tier],
        )

    def _classify(self, exc: Exception, model: str) -> ProviderError:
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            kind, message, retry_after = classify_api_error(exc, model, self)
            return ProviderError(kind, self._clean(message) or "", retry_after=retry_after)
        transport = _transport_error(exc, self)
        if transport is not None:
            return transport
        if isinstance(exc, ValueError):  # the body is not the JSON it should be (a proxy's HTML page)
            return ProviderError("bad_image", "The image service's reply was not the JSON it should be.")
        raise exc  # not the service's doing: the pipeline records it as a surprise, with its traceback


def _transport_error(exc: Exception, provider: GeminiProvider) -> ProviderError | None:
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(
            "timeout", "The image service did not answer in time; try again or raise IMAGE_TIMEOUT_SECONDS."
        )
    if isinstance(exc, httpx2.TransportError):
        return ProviderError(
            "connection", f"Could not reach the image service; check the network or {provider.address_variable}."
        )
    return None


def classify_api_error(exc: Any, model: str, provider: GeminiProvider) -> tuple[str, str, float | None]:
    """(error kind, one sentence for a person, seconds to wait) for an error answer from the service."""
    code, status = exc.code or 0, (exc.status or "").upper()
    detail = (exc.message or "")[:300] if isinstance(exc.message, str) else ""
    reasons = {str(d.get("reason", "")) for d in _details(exc)}
    if code in (401, 403) or status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or "API_KEY_INVALID" in reasons:
        return "auth", f"The image service refused the API key; check {provider.key_variable}.", None
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        quotas = " ".join(str(v.get("quotaId", "")) for d in _details(exc) for v in d.get("violations") or [])
        if "PerDay" in quotas:
            return "quota_exceeded", "The Gemini project's daily quota is used up; wait for it or raise it.", None
        message = f"The image service is rate-limiting us; it will be retried later. {detail}".strip()
        return "rate_limited", message, _retry_delay(exc)
    if code == 404 or status == "NOT_FOUND":
        return (
            "model_unavailable",
            (
                f"Model {model} is not available (retired or unknown); set IMAGE_MODEL to a current model "
                f"such as {provider.default_model}."
            ),
            None,
        )
    if code >= 500:
        return "server_error", f"The image service failed with HTTP {code}; it will be retried later.", None
    return "invalid_request", f"The image service rejected the request: {detail}".strip(), None


def _details(exc: Any) -> list[dict]:
    body = exc.details if isinstance(exc.details, dict) else {}
    found = (body.get("error") or {}).get("details") if isinstance(body.get("error"), dict) else None
    return [d for d in found or [] if isinstance(d, dict)]


def _retry_delay(exc: Any) -> float | None:
    """The wait RetryInfo asks for ("37s", "1.5s"), else a Retry-After header."""
    for detail in _details(exc):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _request_id(response: Any) -> str | None:
    if isinstance(response.response_id, str) and response.response_id:
        return response.response_id
    headers = getattr(response.sdk_http_response, "headers", None) or {}
    return headers.get("x-request-id")  # a compatible server's own


def _first_image(response: Any, request_id: str | None, billed: bool, clean: Any) -> bytes:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        raise _blocked(request_id, billed)
    candidate = (response.candidates or [None])[0]
    reason = str(getattr(candidate, "finish_reason", None) or "").rsplit(".", 1)[-1]
    if reason in SAFETY_REASONS:
        raise _blocked(request_id, billed)
    parts = (candidate.content.parts or []) if candidate is not None and candidate.content else []
    for part in parts:
        if part.inline_data is not None and part.inline_data.data:
            return part.inline_data.data
    said = clean(" ".join(p.text for p in parts if p.text)[:200])
    why = f" It said: {said}" if said else ""
    raise ProviderError(
        "bad_image", f"The image service answered without an image.{why}", request_id=request_id, billed=billed
    )


def _blocked(request_id: str | None, billed: bool) -> ProviderError:
    return ProviderError(
        "moderation_blocked",
        "The image service's safety system refused this prompt; reword the description.",
        request_id=request_id,
        billed=billed,
    )


def _usage(response: Any, request_id: str | None) -> Usage | None:
    """usageMetadata as Usage: image tokens apart from text ones where the reply details them."""
    meta = response.usage_metadata
    if meta is None or (meta.prompt_token_count is None and meta.candidates_token_count is None):
        return None
    text_in, image_in = _split(meta.prompt_tokens_details, meta.prompt_token_count, image_first=False)
    image_out, text_out = _split(meta.candidates_tokens_details, meta.candidates_token_count, image_first=True)
    thoughts = _count(meta.thoughts_token_count)
    counts = [text_in, image_in, image_out, None if text_out is None or thoughts is None else text_out + thoughts]
    if None in counts:  # a negative bill would hand money back to the budget: trust none of this reply
        raise nonsense_usage(request_id)
    return Usage(*counts)  # type: ignore[arg-type]


def _split(details: Any, total: Any, *, image_first: bool) -> tuple[int | None, int | None]:
    """(tokens of the main modality, the others) from per-modality details, else all of `total` as the main."""
    if not details:
        return _count(total), 0
    images = [_count(d.token_count) for d in details if str(d.modality or "").endswith("IMAGE")]
    others = [_count(d.token_count) for d in details if not str(d.modality or "").endswith("IMAGE")]
    if None in images or None in others:
        return None, None
    image, other = sum(images), sum(others)  # type: ignore[arg-type]
    return (image, other) if image_first else (other, image)


def _used(usage: Usage | None) -> bool:
    """Whether the reply says tokens were spent on an answer (so a refusal may have been billed)."""
    return usage is not None and usage.output_image_tokens + usage.output_text_tokens > 0


def fit(data: bytes, size: str, ratio: str | None, output_format: str) -> tuple[bytes, str | None]:
    """The image at the WxH asked for, and the size made: Gemini's image of `ratio` cropped to WxH's exact
    ratio and scaled to WxH. An image that is not of `ratio` (or not an image) is left as it came, for the
    pipeline to refuse."""
    from PIL import Image

    from ..storage import MAX_PIXELS

    try:
        with Image.open(io.BytesIO(data)) as probe:
            made = f"{probe.width}x{probe.height}"
            if size == "auto" or made == size or ratio is None or probe.width * probe.height > MAX_PIXELS:
                return data, made
            if abs(math.log(probe.width / probe.height) - math.log(_ratio(ratio))) > 0.03:
                return data, made
            width, height = parse_size(size)
            image = probe.convert("RGBA" if output_format == "png" and "A" in probe.getbands() else "RGB")
    except Exception:  # noqa: BLE001 - not an image we can read: the pipeline says so
        return data, None
    crop_w = min(image.width, round(image.height * width / height))
    crop_h = min(image.height, round(image.width * height / width))
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format=output_format.upper())
    return out.getvalue(), size
