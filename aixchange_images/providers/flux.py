"""The `flux` provider: Black Forest Labs' FLUX.2 models over their HTTP API (https://docs.bfl.ai).

A call is three HTTP steps under one wall-clock deadline (IMAGE_TIMEOUT_SECONDS):
1. POST {BFL_BASE_URL}/v1/{model} with the `x-key` header: the reply names a task (`id`), where to
   poll it (`polling_url`, often another host of the service, such as api.eu2.bfl.ai) and what it
   costs in credits (`cost`; 1 credit = $0.01).
2. GET the polling URL until its `status` is `Ready` (waits between polls back off from
   BFL_POLL_SECONDS); `Request Moderated`/`Content Moderated`, `Error` and `Task not found` end it.
3. GET `result.sample`, a signed URL that needs no key (it never gets one), and keep its bytes.

The key goes only to the configured host, or to another host of bfl.ai over https when the
configured host is one of bfl.ai; a polling or sample URL is followed only over https or on the
configured host.

Prices. FLUX.2 is priced per megapixel: the first megapixel of output at one rate, each further
megapixel (and each megapixel of an input image) at another. The price table is per 1M "tokens",
so for these models a token is a pixel: `image_output_per_m` is USD per 1M output pixels (the
first-megapixel rate: no further megapixel costs more, so an estimate never falls short) and
`image_input_per_m` USD per 1M input-image pixels (the further-megapixel rate); `expected_usage`
counts pixels (at least one megapixel out, which is charged whole). What a call is charged is what
the service reports (`cost`), when it does; the estimate otherwise.
"""

from __future__ import annotations

import base64
import io
import math
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from ..config import ProviderSettings, check_base_url, parse_size
from .base import AUTO_SIZE, ImageRequest, ImageResult, Model, Provider, ProviderError, Usage
from .openai import _retry_after

DEFAULT_BASE_URL = "https://api.bfl.ai"
SERVICE_DOMAIN = "bfl.ai"  # the service's own hosts (api.eu.bfl.ai, api.us1.bfl.ai, ...)
CREDIT_USD = 0.01  # https://docs.bfl.ai/quick_start/pricing: "1 credit = $0.01 USD"
MEGAPIXEL = 1024 * 1024  # 1024x1024 is the one megapixel the first-megapixel price buys
MAX_POLL_WAIT = 2.0  # seconds: the longest wait between two polls (unless BFL_POLL_SECONDS is longer)
SAFETY_TOLERANCE = 2  # the API's default (0 strictest, 5 most permissive): product cards need no more
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")
ACCOUNT = "https://dashboard.bfl.ai"


class FluxSettings(ProviderSettings):
    provider = "flux"
    key_field = "bfl_api_key"
    bfl_api_key: SecretStr | None = None
    bfl_base_url: str = DEFAULT_BASE_URL
    bfl_poll_seconds: float = Field(default=0.5, gt=0, le=30)

    @field_validator("bfl_base_url", mode="before")
    @classmethod
    def _base_url(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_BASE_URL
        if isinstance(value, str):
            try:
                check_base_url(value.strip())
            except ValueError:
                raise ValueError(
                    f"this is not an http(s) address the images client can call; write it like {DEFAULT_BASE_URL} "
                    "(or a regional one such as https://api.eu.bfl.ai), or leave it unset"
                ) from None
            return value.strip().rstrip("/")
        return value


# USD per 1M pixels: (input-image pixels, output pixels) from the credits per megapixel of
# https://docs.bfl.ai/quick_start/pricing (late 2026): first megapixel out; each further megapixel.
FLUX2_MODELS = (
    Model("flux-2-pro", image_input_per_m=0.015, image_output_per_m=0.03),
    Model("flux-2-max", image_input_per_m=0.03, image_output_per_m=0.07),
    Model("flux-2-flex", image_input_per_m=0.05, image_output_per_m=0.05),
    Model("flux-2-klein-9b", image_input_per_m=0.002, image_output_per_m=0.015),
    Model("flux-2-klein-4b", image_input_per_m=0.001, image_output_per_m=0.014),
)


class FluxProvider(Provider):
    """FLUX.2 through the BFL API: submit, poll, download; the reply's cost in credits is charged."""

    name = "flux"
    label = "Black Forest Labs FLUX.2"
    paid = True
    models = FLUX2_MODELS
    default_model = "flux-2-pro"
    edits = True
    reports_usage = True  # its replies say what the call cost
    config: Any = FluxSettings
    key_variable = "BFL_API_KEY"
    address_variable = "BFL_BASE_URL"

    def __init__(self, settings):  # type: ignore[no-untyped-def]
        super().__init__(settings)
        base = urlsplit(self.options.bfl_base_url)
        self._base = (base.scheme, base.hostname or "", base.port)

    def make_client(self) -> Any:
        """An HTTP client whose calls keep to `deadline()`."""
        from ..deadline import DeadlineClient  # the HTTP stack loads at the first call

        # No redirects: one would carry the x-key header to wherever it points.
        return DeadlineClient(timeout=self.settings.image_timeout_seconds, follow_redirects=False)

    # -- the calls -----------------------------------------------------------------------------
    def call(self, request: ImageRequest) -> ImageResult:
        return self._run(request, self._body(request))

    def call_edit(self, request: ImageRequest) -> ImageResult:
        if not request.image:
            raise ProviderError("invalid_request", "There is no image to change.")
        body = {**self._body(request), "input_image": base64.b64encode(request.image).decode("ascii")}
        return self._run(request, body)

    def _body(self, request: ImageRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "seed": request.seed % 2**31,
            "safety_tolerance": SAFETY_TOLERANCE,
            "output_format": request.output_format,
        }
        if request.size != "auto":  # `auto`: the service's default size, or the input image's for an edit
            body["width"], body["height"] = parse_size(request.size)
        return body

    def _run(self, request: ImageRequest, body: dict[str, Any]) -> ImageResult:
        import httpx2

        from ..deadline import deadline

        if problem := self.missing():
            raise ProviderError("auth", problem)
        started = time.perf_counter()
        timeout = self.settings.image_timeout_seconds
        task: dict[str, Any] = {}
        try:
            with deadline(timeout):
                task = self._submit(request.model, body)
                sample = self._poll(task, started + timeout)
                data = self._download(sample, task)
        except httpx2.TimeoutException:
            raise ProviderError(
                "timeout",
                "The image service did not finish in time; try again or raise IMAGE_TIMEOUT_SECONDS.",
                request_id=task.get("id"),
            ) from None
        except httpx2.RequestError:  # refused, reset, a broken stream: the network, or what is on it
            raise ProviderError(
                "connection",
                f"Could not reach the image service; check the network or {self.address_variable}.",
                request_id=task.get("id"),
                billed=bool(task),
            ) from None
        return ImageResult(
            data=data,
            request_id=task.get("id"),
            provider_ms=int((time.perf_counter() - started) * 1000),
            cost_usd=task.get("cost_usd"),
        )

    def _submit(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.options.bfl_base_url}/v1/{model}"
        response = self.client.post(url, json=body, headers=self._headers(url))
        if response.status_code != 200:
            raise self._refusal(response, model)
        reply = self._json(response, billed=False)
        task_id = self._clean(_text(reply.get("id")))
        polling_url = _text(reply.get("polling_url"))
        if not polling_url:
            raise ProviderError(
                "bad_image", "The image service accepted the task but said nowhere to fetch it.", request_id=task_id
            )
        credits = reply.get("cost")
        cost = None
        if isinstance(credits, int | float) and not isinstance(credits, bool) and math.isfinite(credits):
            cost = max(0.0, float(credits)) * CREDIT_USD
        return {"id": task_id, "polling_url": polling_url, "cost_usd": cost}

    def _poll(self, task: dict[str, Any], ends: float) -> str:
        """The sample's URL once the task is Ready; waits between polls back off."""
        url = self._followable(task["polling_url"], task, "polling")
        wait, polls = self.options.bfl_poll_seconds, 0
        while True:
            response = self.client.get(url, headers=self._headers(url))
            polls += 1
            transient = response.status_code == 429 or response.status_code >= 500
            if response.status_code != 200 and not transient:
                error = self._refusal(response, "")
                error.billed, error.request_id = True, task["id"]
                raise error
            if not transient:
                reply = self._json(response, billed=True, task=task)
                status = _text(reply.get("status")) or ""
                if status == "Ready":
                    result = reply.get("result")
                    sample = _text(result.get("sample")) if isinstance(result, dict) else None
                    if not sample:
                        raise self._broken(
                            "The image service said the image was ready but gave no address for it.", task
                        )
                    return sample
                if status != "Pending":
                    raise self._ended(status, reply, task)
            pause = min(wait * 1.5 ** (polls - 1), max(wait, MAX_POLL_WAIT))
            if transient:
                pause = max(pause, _retry_after(response.headers) or 0.0)
            if time.perf_counter() + pause >= ends:
                raise ProviderError(
                    "timeout",
                    f"The image was still not ready after {polls} checks; try again or raise IMAGE_TIMEOUT_SECONDS.",
                    request_id=task["id"],
                )
            time.sleep(pause)  # backoff between polls, not synchronisation

    def _download(self, sample: str, task: dict[str, Any]) -> bytes:
        url = self._followable(sample, task, "image")
        # A signed URL: it needs no key, and gets none (whatever its host).
        response = self.client.get(url, follow_redirects=True)
        if response.status_code != 200:
            kind = "server_error" if response.status_code >= 500 else "bad_image"
            raise ProviderError(
                kind,
                f"The finished image could not be downloaded (HTTP {response.status_code}); try again.",
                request_id=task["id"],
                billed=True,
            )
        data = response.content
        if not data.startswith(IMAGE_SIGNATURES):
            raise self._broken("The image service's finished image is not a PNG, JPEG or WebP image.", task)
        return data

    # -- where the key may go ------------------------------------------------------------------
    def _headers(self, url: str) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if self.key_allowed(url):
            headers["x-key"] = self.options.bfl_api_key.get_secret_value()
        return headers

    def key_allowed(self, url: str) -> bool:
        """The configured host, or (over https) another of the service's hosts when it is the service."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        scheme, base_host, base_port = self._base
        if (parts.scheme, host, parts.port) == (scheme, base_host, base_port):
            return True
        return parts.scheme == "https" and _under(host, SERVICE_DOMAIN) and _under(base_host, SERVICE_DOMAIN)

    def _followable(self, url: str, task: dict[str, Any], what: str) -> str:
        """`url` if this client may fetch it: over https, or on the configured host."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        scheme, base_host, base_port = self._base
        if (
            parts is not None
            and parts.hostname
            and (parts.scheme == "https" or (parts.scheme, parts.hostname, port) == (scheme, base_host, base_port))
        ):
            return url
        raise self._broken(
            f"The image service gave an {what} address that is neither https nor on {self.address_variable}; "
            "it was not followed.",
            task,
        )

    # -- what the service said -----------------------------------------------------------------
    def _json(self, response: Any, *, billed: bool, task: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise ProviderError(
                "bad_image",
                "The image service's reply was not the JSON it should be.",
                request_id=task["id"] if task else None,
                billed=billed,
            )
        return reply

    def _broken(self, message: str, task: dict[str, Any]) -> ProviderError:
        return ProviderError("bad_image", message, request_id=task["id"], billed=True)

    def _ended(self, status: str, reply: dict[str, Any], task: dict[str, Any]) -> ProviderError:
        reasons = self._details(reply.get("details"))
        if status == "Request Moderated":  # refused before any work: nothing to pay for
            return ProviderError(
                "moderation_blocked",
                f"The image service's safety system refused this prompt{reasons}; reword the description.",
                request_id=task["id"],
            )
        if status == "Content Moderated":
            return ProviderError(
                "moderation_blocked",
                f"The image service's safety system withheld the image it made{reasons}; reword the description.",
                request_id=task["id"],
                billed=True,
            )
        if status == "Task not found":
            message = "The image service lost the task (Task not found); it will be retried."
        elif status == "Error":
            message = f"The image service failed to make the image{reasons}; it will be retried."
        else:
            shown = self._clean(status[:60]) or "no status"
            message = f"The image service answered with a status this version does not know ({shown})."
        return ProviderError("server_error", message, request_id=task["id"], billed=True)

    def _details(self, details: object) -> str:
        """Reasons the service gave (moderation reasons, an error), as a short parenthesis."""
        found: list[str] = []
        values = details.values() if isinstance(details, dict) else [details]
        for value in values:
            items = value if isinstance(value, list) else [value]
            found += [item for item in items if isinstance(item, str) and item.strip()]
        text = self._clean("; ".join(found)[:200]) or ""
        return f" ({text})" if text else ""

    def _refusal(self, response: Any, model: str) -> ProviderError:
        status = response.status_code
        detail = self._detail(response)
        retry_after = _retry_after(response.headers)
        if status in (401, 403):
            return ProviderError("auth", f"The image service refused the API key; check {self.key_variable}.")
        if status == 402:
            return ProviderError(
                "quota_exceeded", f"The Black Forest Labs account is out of credits; add credits at {ACCOUNT}."
            )
        if status == 429:
            return ProviderError(
                "rate_limited",
                f"The image service is rate-limiting us; it will be retried later. {detail}".strip(),
                retry_after=retry_after,
            )
        if status == 404 and model:
            return ProviderError(
                "model_unavailable",
                f"Model {model} is not available (retired or unknown); set IMAGE_MODEL to a current model "
                f"such as {self.default_model}.",
            )
        if status >= 500:
            return ProviderError(
                "server_error",
                f"The image service failed with HTTP {status}; it will be retried later.",
                retry_after=retry_after,
            )
        if status in (400, 413, 422):
            return ProviderError("invalid_request", f"The image service rejected the request: {detail}".strip())
        return ProviderError(
            "server_error", f"The image service answered HTTP {status}, which this version does not expect."
        )

    def _detail(self, response: Any) -> str:
        """The service's reason (FastAPI's `detail`: a sentence, or a list of field errors)."""
        try:
            body = response.json()
        except ValueError:
            return ""
        detail = body.get("detail", body.get("message")) if isinstance(body, dict) else None
        if isinstance(detail, list):
            parts = []
            for item in detail[:3]:
                if isinstance(item, dict):
                    where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                    parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", "")))
            detail = "; ".join(parts)
        return self._clean(detail[:300]) or "" if isinstance(detail, str) else ""

    # -- what a call is expected to use --------------------------------------------------------
    def expected_usage(self, request: ImageRequest) -> Usage:
        """Pixels, not tokens (see the module's docstring): out, at least one megapixel; in, the image's."""
        width, height = AUTO_SIZE if request.size == "auto" else parse_size(request.size)
        return Usage(
            input_image_tokens=_pixels(request.image) if request.image else 0,
            output_image_tokens=max(width * height, MEGAPIXEL),
        )


def _pixels(image: bytes) -> int:
    """The pixels of an input image, read from its header; an unreadable one counts as 4 megapixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as probe:
            width, height = probe.size
    except (UnidentifiedImageError, OSError, ValueError):
        return 4 * MEGAPIXEL
    return width * height


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
