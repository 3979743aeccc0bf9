"""A local HTTP server that answers like the Gemini API's generateContent (image output), for tests.

The google-genai SDK talks HTTP through ``httpx2``; point the real client at this server::

    with GeminiStandIn() as server:
        options = types.HttpOptions(base_url=server.base_url, api_version="v1beta")
        client = genai.Client(api_key="k", http_options=options)
        server.enqueue("resource_exhausted", retry_delay="2s")  # the next call gets a 429

The REST shape the SDK speaks: POST /v1beta/models/{model}:generateContent with the key in
x-goog-api-key; candidates[].content.parts[].inlineData{mimeType,data}, finishReason, usageMetadata,
promptFeedback; errors as {"error": {code, message, status, details}}. The HTTP plumbing (holding,
trickling, recording) is the OpenAI stand-in's.
"""

from __future__ import annotations

import base64
import itertools
import math
import re
from typing import Any

from openai_standin import ApiError, OpenAIStandIn, _image_bytes

GENERATE = re.compile(r"/v1beta/models/([^/:]+):generateContent")
DEFAULT_MODELS = {"gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-2.5-flash-image"}
RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
SIDES = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}
# Output image tokens per tier (the 2.5 model has one tier and refuses imageSize).
TOKENS = {
    "gemini-3.1-flash-image": {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
    "gemini-3-pro-image": {"1K": 1120, "2K": 1120, "4K": 2000},
    "gemini-2.5-flash-image": {None: 1290},
}
IMAGE_INPUT_TOKENS = 1120

# Scripted error behaviour -> (HTTP status, status, message).
SCRIPTED_ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_argument": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "invalid_key": (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    "permission_denied": (403, "PERMISSION_DENIED", "The caller does not have permission"),
    "not_found": (404, "NOT_FOUND", "models/{model} is not found for API version v1beta."),
    "resource_exhausted": (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. Please retry in {delay}.",
    ),
    "daily_quota": (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan."),
    "internal": (500, "INTERNAL", "An internal error has occurred. Please retry or report it."),
    "unavailable": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
}
ERROR_OPTS = {"message", "status", "retry_delay"}
BEHAVIOURS: dict[str, set[str]] = {
    "success": {"usage", "thoughts"},  # usage=False leaves usageMetadata out; a dict replaces its fields
    "slow": {"seconds"},
    "trickle": {"seconds", "interval", "part"},
    "garbage_json": {"content_type"},
    "garbage_image": set(),
    "text_only": set(),  # a STOP with a text part and no image
    "image_safety": set(),  # finishReason IMAGE_SAFETY, no content
    "prompt_blocked": set(),  # promptFeedback.blockReason SAFETY, no candidates
    "wrong_size": {"size"},  # a real image of `size` (WxH), whatever was asked for
    **dict.fromkeys(SCRIPTED_ERRORS, ERROR_OPTS),
}


class GoogleError(ApiError):
    """An error answer in Google's shape: {"error": {code, message, status, details}}."""

    def __init__(self, code: int, status: str, message: str, details: list[dict] | None = None):
        super().__init__(code, message, status)
        self.body = {"error": {"code": code, "message": message, "status": status, "details": details or []}}


def _scripted(behaviour: str, opts: dict[str, Any], model: str) -> GoogleError:
    code, status, message = SCRIPTED_ERRORS[behaviour]
    delay = str(opts.get("retry_delay", "1s"))
    message = opts.get("message") or message.format(model=model, delay=delay)
    details: list[dict] = []
    if behaviour == "invalid_key":
        details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    if behaviour in ("resource_exhausted", "daily_quota"):
        quota = "GenerateRequestsPerDayPerProjectPerModel" if behaviour == "daily_quota" else "PerMinute"
        details = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": quota}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
        ]
    return GoogleError(int(opts.get("status", code)), status, message, details)


def _invalid(message: str) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message)


class GeminiStandIn(OpenAIStandIn):
    """Gemini-compatible server on 127.0.0.1 with scripted failures and recording."""

    behaviours = BEHAVIOURS
    key_header = "x-goog-api-key"

    def __init__(self, latency: float = 0.0, expected_key: str | None = None):
        super().__init__(latency, expected_key)
        self.models = dict.fromkeys(DEFAULT_MODELS)  # type: ignore[assignment]
        self._response_ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def _is_image(self, method: str, path: str) -> bool:
        return method == "POST" and GENERATE.fullmatch(path) is not None

    def _check_key(self, key: str) -> None:
        if self.expected_key is not None and key != self.expected_key:
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
            raise GoogleError(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details)

    def _other_answer(self, method: str, path: str, body: Any):
        raise GoogleError(404, "NOT_FOUND", f"Invalid URL ({method} {path})")

    def _image_answer(self, behaviour: str, opts: dict[str, Any], body: Any, path: str = ""):
        model = GENERATE.fullmatch(path)[1]  # type: ignore[index]
        body = body if isinstance(body, dict) else {}
        if behaviour in SCRIPTED_ERRORS:
            raise _scripted(behaviour, opts, model)
        if behaviour == "slow" and self._stop.wait(float(opts.get("seconds", 10))):
            return None
        if behaviour == "garbage_json":
            return 200, b"<html>502 Bad Gateway</html>", {"content-type": opts.get("content_type", "application/json")}
        if model not in self.models:
            raise GoogleError(404, "NOT_FOUND", SCRIPTED_ERRORS["not_found"][2].format(model=model))
        prompt, images, (width, height), tier = _validate(body, model)
        payload: dict[str, Any] = {"modelVersion": model, "responseId": f"resp-{next(self._response_ids):08d}"}
        tokens = TOKENS[model][tier]
        if behaviour == "prompt_blocked":
            payload["promptFeedback"] = {"blockReason": "SAFETY"}
            tokens = 0
        elif behaviour == "image_safety":
            payload["candidates"] = [{"finishReason": "IMAGE_SAFETY", "index": 0}]
        elif behaviour == "text_only":
            text = {"text": "I cannot make that image, but here is a description of it."}
            payload["candidates"] = [{"content": {"role": "model", "parts": [text]}, "finishReason": "STOP"}]
            tokens = 14
        else:
            if behaviour == "wrong_size":
                width, height = map(int, opts["size"].split("x"))
            data = b"this is not an image" if behaviour == "garbage_image" else self._image(width, height)
            part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}}
            payload["candidates"] = [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]
        if opts.get("usage", True):
            payload["usageMetadata"] = _usage(prompt, images, tokens, behaviour, opts)
        return 200, payload, {}

    def _image(self, width: int, height: int) -> bytes:
        with self._lock:
            variant = next(self._variants) % 256
        return _image_bytes((width, height), "png", variant, False)


def _validate(body: dict[str, Any], model: str) -> tuple[str, int, tuple[int, int], str | None]:
    """(prompt, input images, size made, tier) of a request, or a 400 like the real API's."""
    parts = [p for c in body.get("contents") or [] for p in c.get("parts") or []]
    prompt = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str))
    if not prompt:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified")
    images = sum(1 for p in parts if "inlineData" in p)
    config = body.get("generationConfig") or {}
    if "IMAGE" not in (config.get("responseModalities") or ["TEXT", "IMAGE"]):
        raise _invalid("This model only supports responseModalities that include IMAGE.")
    image_config = config.get("imageConfig") or {}
    ratio = image_config.get("aspectRatio") or "1:1"
    if ratio not in RATIOS:
        raise _invalid(f"Unsupported aspect ratio: {ratio}.")
    tiers = TOKENS[model]
    tier = image_config.get("imageSize")
    if None in tiers:
        if tier is not None:
            raise _invalid(f"imageSize is not supported by {model}.")
    elif (tier := tier or "1K") not in tiers:
        raise _invalid(f"Unsupported image size: {tier}.")
    width, height = map(int, ratio.split(":"))
    side = SIDES.get(tier or "1K", 1024)
    made = (round(side * math.sqrt(width / height) / 16) * 16, round(side * math.sqrt(height / width) / 16) * 16)
    return prompt, images, made, tier


def _usage(prompt: str, images: int, tokens: int, behaviour: str, opts: dict[str, Any]) -> dict[str, Any]:
    text = math.ceil(len(prompt) / 4)
    modality = "TEXT" if behaviour == "text_only" else "IMAGE"
    usage: dict[str, Any] = {
        "promptTokenCount": text + images * IMAGE_INPUT_TOKENS,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": text}]
        + ([{"modality": "IMAGE", "tokenCount": images * IMAGE_INPUT_TOKENS}] if images else []),
        "candidatesTokenCount": tokens,
        "candidatesTokensDetails": [{"modality": modality, "tokenCount": tokens}] if tokens else [],
        "totalTokenCount": text + images * IMAGE_INPUT_TOKENS + tokens + int(opts.get("thoughts", 0)),
    }
    if opts.get("thoughts"):
        usage["thoughtsTokenCount"] = opts["thoughts"]
    if isinstance(opts.get("usage"), dict):  # a server's own idea of usage, however wrong
        usage.update(opts["usage"])
    return usage
