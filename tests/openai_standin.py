"""A local HTTP server that answers like the OpenAI API, for tests and benchmarks.

The openai SDK (3.x) talks HTTP through ``httpx2``, so respx cannot intercept it; point
the real client at this server instead::

    with OpenAIStandIn() as server:
        client = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        server.enqueue("rate_limited", retry_after="2")  # the next image call gets a 429

Stdlib and Pillow only. Shapes, errors and token counts follow
/work/shared/openai-images.md and the installed SDK's types.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import itertools
import json
import math
import random
import re
import socket
import struct
import threading
import time
import zlib
from collections import deque
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from PIL import Image, ImageChops, ImageDraw

IMAGES_PATH = "/v1/images/generations"
EDITS_PATH = "/v1/images/edits"  # multipart/form-data: the image to change, the prompt and the settings
MODERATIONS_PATH = "/v1/moderations"

# Served models -> shutdown_date (None: not announced). Anything else answers 404,
# including the retired dall-e-2, dall-e-3 and gpt-image-1.
DEFAULT_MODELS: dict[str, str | None] = {
    **dict.fromkeys(
        """gpt-image-2 gpt-image-2-2026-04-21 gpt-image-2.6-sunburst gpt-image-2.6-flare
        gpt-image-2.5-sunburst gpt-image-2.5-sunburst-2026-09-08 gpt-image-2.5-flare
        gpt-image-2.5-flare-2026-09-08 omni-moderation-latest""".split()  # noqa: SIM905
    ),
    **dict.fromkeys(["gpt-image-1.5", "gpt-image-1-mini", "chatgpt-image-latest"], "2026-12-01"),
}
STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")
# Output image tokens at 1024x1024; other sizes scale by pixel area (1536x1024: 1.5x).
TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 8320, "max": 16640}
MODERATION_CATEGORIES = """harassment harassment/threatening hate hate/threatening
    illicit illicit/violent self-harm self-harm/instructions self-harm/intent sexual
    sexual/minors violence violence/graphic""".split()  # noqa: SIM905

# Scripted error behaviour -> (HTTP status, error type, error code).
SCRIPTED_ERRORS: dict[str, tuple[int, str, str | None]] = {
    "moderation_blocked": (400, "image_generation_user_error", "moderation_blocked"),
    "invalid_request": (400, "invalid_request_error", "invalid_value"),
    "model_not_found": (404, "invalid_request_error", "model_not_found"),
    "invalid_api_key": (401, "invalid_request_error", "invalid_api_key"),
    "rate_limited": (429, "requests", "rate_limit_exceeded"),
    "insufficient_quota": (429, "insufficient_quota", "insufficient_quota"),
    "billing_hard_limit": (400, "invalid_request_error", "billing_hard_limit_reached"),
    "server_error": (500, "server_error", None),
}
MESSAGES: dict[str | None, str] = {
    "moderation_blocked": "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com.",
    "invalid_value": "Invalid request.",
    "model_not_found": "The model `{model}` does not exist or you do not have access to it.",
    "invalid_api_key": "Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.",
    "rate_limit_exceeded": "Rate limit reached for {model} on requests per min (RPM): Limit 5, Used 5, Requested 1. Please try again in {retry_after}s.",
    "insufficient_quota": "You exceeded your current quota, please check your plan and billing details.",
    "billing_hard_limit_reached": "Billing hard limit has been reached",
    None: "The server had an error while processing your request. Sorry about that!",
}
# Behaviour -> options enqueue() accepts.
ERROR_OPTS = {"message", "param", "status", "type", "retry_after", "model"}
BEHAVIOURS: dict[str, set[str]] = {
    "success": {"usage"},  # usage=False leaves it out; a dict replaces those of its fields
    "slow": {"seconds"},
    "trickle": {"seconds", "interval", "part"},  # a success sent in pieces `interval` apart over `seconds`
    "garbage_json": {"content_type"},
    "garbage_image": set(),
    "bomb": set(),
    "wrong_size": {"size"},  # a real image of `size` (WxH), whatever size was asked for and the reply says
    "picture": {"data"},  # these image bytes (a picture the test drew), whatever was asked for
    "empty_data": set(),
    **dict.fromkeys(SCRIPTED_ERRORS, ERROR_OPTS),
}


class ApiError(Exception):
    """An error answer: HTTP status, the ``{"error": {...}}`` body, extra headers."""

    def __init__(self, status, message, type_, *, param=None, code=None, headers=None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        error = {"message": message, "type": type_, "param": param, "code": code}
        self.body = {"error": error}


def _invalid(message: str, param: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, "invalid_request_error", param=param, code=code)


def _model_not_found(model: str) -> ApiError:
    message = MESSAGES["model_not_found"].format(model=model)
    return ApiError(404, message, "invalid_request_error", code="model_not_found")


def _scripted_error(behaviour: str, opts: dict[str, Any], model: str) -> ApiError:
    status, type_, code = SCRIPTED_ERRORS[behaviour]
    retry_after = str(opts.get("retry_after", "1"))
    message = opts.get("message") or MESSAGES[code].format(
        model=opts.get("model", model), retry_after=retry_after, key="sk-te***-key"
    )
    headers = {}
    if behaviour == "rate_limited" or "retry_after" in opts:
        headers["retry-after"] = retry_after
    if behaviour == "rate_limited":
        for kind, limit in (("requests", "5"), ("tokens", "100000")):
            headers[f"x-ratelimit-limit-{kind}"] = limit
            headers[f"x-ratelimit-remaining-{kind}"] = "0"
            headers[f"x-ratelimit-reset-{kind}"] = f"{retry_after}s"
    return ApiError(
        int(opts.get("status", status)),
        message,
        opts.get("type", type_),
        param=opts.get("param"),
        code=code,
        headers=headers,
    )


def _choice(body: dict[str, Any], param: str, allowed: list[str]) -> str:
    """body[param] (default: the first allowed value) or a 400 naming the param."""
    value = body.get(param) or allowed[0]
    if value not in allowed:
        message = f"Invalid value: '{value}'. Supported values are: {allowed}."
        raise _invalid(message, param)
    return value


def _size(body: dict[str, Any], model: str) -> tuple[int, int]:
    size = body.get("size") or "auto"
    w, h = map(int, size.split("x")) if re.fullmatch(r"\d+x\d+", size) else (0, 0)
    flexible = model.startswith(("gpt-image-2-", "gpt-image-2.5")) or model == "gpt-image-2"
    if size == "auto":
        return 1024, 1024
    if size in STANDARD_SIZES or (
        flexible and w % 16 == h % 16 == 0 and 0 < max(w, h) <= min(3 * min(w, h), 3840) and min(w, h) <= 2160
    ):
        return w, h
    allowed = [*STANDARD_SIZES, "auto"]
    raise _invalid(f"Invalid value: '{size}'. Supported values are: {allowed}.", "size")


def _validate(body: dict[str, Any], models: dict[str, str | None]) -> dict[str, Any]:
    """Check an image request like the real API; return the normalised settings."""
    model = body.get("model") or "dall-e-2"  # the API's historical default, now retired
    if model not in models or "image" not in model:
        raise _model_not_found(model)
    for param in ("response_format", "style"):  # DALL-E only
        if param in body:
            raise _invalid(f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        message = "Missing required parameter: 'prompt'."
        raise _invalid(message, "prompt", "missing_required_parameter")
    if len(prompt) > 32000:
        message = f"Invalid 'prompt': string too long. Expected a string with maximum length 32000, but got a string with length {len(prompt)} instead."
        raise _invalid(message, "prompt", "string_above_max_length")
    extra = ["xhigh", "max"] if model.startswith("gpt-image-2.5") else []
    quality = _choice(body, "quality", ["auto", "low", "medium", "high", *extra])
    fmt = _choice(body, "output_format", ["png", "jpeg", "webp"])
    background = _choice(body, "background", ["auto", "opaque", "transparent"])
    if background == "transparent" and fmt == "jpeg":
        message = "Transparent background requires output_format png or webp."
        raise _invalid(message, "background")
    n = body.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= 10:
        raise _invalid(f"Invalid 'n': expected 1 to 10, got {n!r}.", "n")
    w, h = _size(body, model)
    return {
        "prompt": prompt,
        "n": n,
        "quality": "medium" if quality == "auto" else quality,
        "output_format": fmt,
        "background": "transparent" if background == "transparent" else "opaque",
        "size": (w, h),
    }


def _multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """An edit request's form fields; the image file as {"bytes", "sha256"} plus its data under "_image"."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, Any] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = str(part.get_param("name", header="content-disposition") or "").removesuffix("[]")
        value = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            fields["_image"] = value
            fields[name] = {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
        else:
            text = value.decode()
            fields[name] = int(text) if name == "n" and text.isdigit() else text
    return fields


def _check_edit_image(body: dict[str, Any]) -> None:
    try:
        Image.open(io.BytesIO(body.get("_image") or b"")).verify()
    except Exception:  # noqa: BLE001 - whatever it is, it is not an image the API takes
        raise _invalid("Invalid input image: provide a PNG, JPEG or WebP image.", "image") from None


LOW_BITS = bytes(v & 0x0F for v in range(256))


@functools.lru_cache(maxsize=256)
def _image_bytes(size: tuple[int, int], fmt: str, variant: int, alpha: bool, heavy: bool = False) -> bytes:
    """A picture, not a flat colour (the blank check would flag that): a background whose red channel
    (variant * 67 % 256) names the variant, with bars drawn over it. `heavy`: low-bit noise on top,
    so a 1024x1024 PNG weighs about 1.9 MB, as a real one does."""
    colour = (variant * 67 % 256, variant * 151 % 256, 128)
    mode, fill = ("RGBA", (*colour, 0)) if alpha else ("RGB", colour)
    image = Image.new(mode, size, fill)
    draw_bars(image, variant)
    if heavy:
        noise = random.Random(variant).randbytes(size[0] * size[1] * 3).translate(LOW_BITS)
        image.paste(ImageChops.add(image.convert("RGB"), Image.frombytes("RGB", size, noise)).convert(mode))
    out = io.BytesIO()
    image.save(out, format=fmt.upper())
    return out.getvalue()


def draw_bars(image: Image.Image, variant: int) -> None:
    """Four black or white bars (whichever the background is not), placed by the variant: content to check."""
    width, height = image.size
    if min(width, height) < 16:
        return  # too small to draw on (a reply the pipeline refuses)
    red, green, blue = image.getpixel((0, 0))[:3]
    ink = (0, 0, 0) if red * 0.3 + green * 0.59 + blue * 0.11 > 128 else (255, 255, 255)
    ink += (255,) if image.mode == "RGBA" else ()
    draw = ImageDraw.Draw(image)
    for n in range(4):
        top = height * ((variant * 3 + n * 5) % 16) // 18
        draw.rectangle((width * n // 4 + 2, top, width * n // 4 + width // 8, top + height // 9), fill=ink)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


# A few hundred bytes of valid PNG declaring 30000x30000 pixels: a decompression bomb.
BOMB_PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 90001))
    + _png_chunk(b"IEND", b"")
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass  # no access log on stderr

    def do_GET(self) -> None:
        self.server.standin._handle(self)

    do_POST = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    standin: OpenAIStandIn
    connections: set[socket.socket]

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are expected here


class OpenAIStandIn:
    """OpenAI-compatible server on 127.0.0.1 with scripted failures and recording."""

    behaviours = BEHAVIOURS
    key_header = "authorization"  # where the caller's key comes (tests/gemini_standin.py: x-goog-api-key)

    def __init__(self, latency: float = 0.0, expected_key: str | None = None, *, heavy: bool = False):
        self.latency = latency
        self.heavy = heavy  # images as heavy as real ones (about 1.9 MB a 1024x1024 PNG)
        self.expected_key = expected_key
        self.flag_words: set[str] = {"violence", "gore", "kill"}
        self.echo_key = False  # like a careless proxy: every x-request-id carries the caller's key
        self.flag_category = "violence"
        self.models: dict[str, str | None] = dict(DEFAULT_MODELS)
        self.max_in_flight = 0
        self._in_flight = 0
        self._held = 0  # image requests waiting at the closed gate
        self._requests: list[dict[str, Any]] = []
        self._script: deque[tuple[str, dict[str, Any]]] = deque()
        self._ids = itertools.count(1)
        self._variants = itertools.count()
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._gate = threading.Event()  # image answers wait while it is clear (hold/release)
        self._gate.set()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.standin, self._httpd.connections = self, set()
        serve = self._httpd.serve_forever
        self._thread = threading.Thread(target=serve, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving. Slow answers in progress are dropped (connection closed)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for conn in list(self._httpd.connections):  # wake handlers idle on keep-alive
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        with self._lock:  # image handlers see _stop and leave at once
            self._lock.wait_for(lambda: self._in_flight == 0, timeout=5)

    def enqueue(self, behaviour: str, **opts: Any) -> None:
        """Script the next image request: FIFO, one entry per request, then success."""
        if behaviour not in self.behaviours:
            raise ValueError(f"unknown behaviour {behaviour!r}; see BEHAVIOURS")
        if unknown := set(opts) - self.behaviours[behaviour]:
            raise ValueError(f"{behaviour!r} does not take {sorted(unknown)}")
        with self._lock:
            self._script.append((behaviour, opts))

    def hold(self) -> None:
        """From now on image requests are taken (and counted) but not answered until `release()`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request so far: {method, path, json, headers (lower-case names)}."""
        with self._lock:
            return list(self._requests)

    @property
    def image_calls(self) -> int:
        return sum(self._is_image(r["method"], r["path"]) for r in self.requests)

    @property
    def edit_calls(self) -> int:
        return sum(r["path"] == EDITS_PATH for r in self.requests)

    @property
    def moderation_calls(self) -> int:
        return sum(r["path"] == MODERATIONS_PATH for r in self.requests)

    @property
    def in_flight(self) -> int:
        """Image requests being handled right now."""
        with self._lock:
            return self._in_flight

    def wait_held(self, count: int, timeout: float = 30.0) -> bool:
        """Block until `count` image requests wait at the gate `hold()` closed (or timeout): calls that
        cannot finish, whatever the load, until `release()`."""
        with self._lock:
            return self._lock.wait_for(lambda: self._held >= count, timeout)

    def wait_in_flight(self, count: int, timeout: float = 5.0) -> bool:
        """Block until `count` image requests are being handled at once (or timeout)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._in_flight >= count, timeout)

    # --- request handling ----------------------------------------------------------

    def _handle(self, req: _Handler) -> None:
        started = time.monotonic()
        raw = req.rfile.read(int(req.headers.get("content-length") or 0))
        path = req.path.split("?")[0].rstrip("/")
        try:  # an edit is a multipart form, everything else JSON
            body = (
                _multipart(raw, req.headers.get("content-type") or "")
                if path == EDITS_PATH
                else json.loads(raw or b"null")
            )
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in req.headers.items()}
        is_image = self._is_image(req.command, path)
        shown = {k: v for k, v in body.items() if k != "_image"} if isinstance(body, dict) else body
        record = {"method": req.command, "path": path, "json": shown, "headers": headers}
        script: tuple[str, dict[str, Any]] = ("success", {})
        with self._lock:
            self._requests.append(record)
            if is_image:
                script = self._script.popleft() if self._script else script
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
                self._lock.notify_all()
        answer = None
        held = is_image and not self._gate.is_set()
        try:
            if held:
                with self._lock:
                    self._held += 1
                    self._lock.notify_all()
            while is_image and not self._gate.wait(0.05) and not self._stop.is_set():
                pass  # held: a test decides when this call is answered
            if held:
                with self._lock:
                    self._held -= 1
                    held = False
            if not (is_image and self._stop.wait(self.latency)):
                self._check_key(headers.get(self.key_header, ""))
                if path == EDITS_PATH:
                    _check_edit_image(body if isinstance(body, dict) else {})
                answer = (
                    self._image_answer(*script, body, path) if is_image else self._other_answer(req.command, path, body)
                )
        except ApiError as err:
            answer = err.status, err.body, err.headers
        finally:
            if is_image:
                with self._lock:
                    self._in_flight -= 1
                    self._held -= held
                    self._lock.notify_all()
        if answer is None:  # abandoned because of close()
            req.close_connection = True
            return
        status, payload, extra = answer
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        elapsed_ms = round((time.monotonic() - started) * 1000)
        reply_headers = {
            "content-type": "application/json",
            "x-request-id": self._request_id(headers.get(self.key_header, "")),
            "openai-processing-ms": str(elapsed_ms),
            "content-length": str(len(raw)),
            **extra,
        }
        if script[0] == "trickle":
            self._trickle(req, status, reply_headers, raw, script[1])
            return
        req.send_response(status)
        for name, value in reply_headers.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(raw)

    def _trickle(self, req: _Handler, status: int, headers: dict[str, str], raw: bytes, opts: dict[str, Any]) -> None:
        """Send the answer in small pieces, each well within any read timeout, over `seconds` in all.

        `part` "body" (the default) sends the status line and headers at once and trickles the body;
        "head" trickles the status line and headers, then sends the body at once.
        """
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", *(f"{k}: {v}" for k, v in headers.items())]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        interval = float(opts.get("interval", 0.25))
        steps = max(1, round(float(opts.get("seconds", 20)) / interval))
        slow = head if opts.get("part") == "head" else raw
        size = math.ceil(len(slow) / steps)
        pieces = [slow[i : i + size] for i in range(0, len(slow), size)]
        if slow is head:
            pieces[-1] += raw
        else:
            pieces[0] = head + pieces[0]
        req.close_connection = True
        try:
            for i, piece in enumerate(pieces):
                if i and self._stop.wait(interval):
                    return
                req.wfile.write(piece)
        except OSError:  # the client gave up and hung up: nobody is listening any more
            return

    def _is_image(self, method: str, path: str) -> bool:
        return method == "POST" and path in (IMAGES_PATH, EDITS_PATH)

    def _request_id(self, authorization: str) -> str:
        key = authorization.removeprefix("Bearer ").strip()
        return f"req_{key}" if self.echo_key and key else f"req_{next(self._ids):032x}"

    def _check_key(self, authorization: str) -> None:
        if self.expected_key is None or authorization == f"Bearer {self.expected_key}":
            return
        key = authorization.removeprefix("Bearer ").strip()
        if key:
            message = MESSAGES["invalid_api_key"].format(key=f"{key[:3]}***{key[-4:]}")
        else:
            message = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        raise ApiError(401, message, "invalid_request_error", code="invalid_api_key")

    def _image_answer(self, behaviour: str, opts: dict[str, Any], body: Any, path: str = IMAGES_PATH):
        body = body if isinstance(body, dict) else {}
        if behaviour in SCRIPTED_ERRORS:
            raise _scripted_error(behaviour, opts, str(body.get("model") or "dall-e-2"))
        if behaviour == "slow" and self._stop.wait(float(opts.get("seconds", 10))):
            return None
        if behaviour == "garbage_json":
            content_type = opts.get("content_type", "application/json")
            return 200, b"<html>502 Bad Gateway</html>", {"content-type": content_type}
        s = _validate(body, self.models)
        (w, h), n = s.pop("size"), s["n"]
        if behaviour in ("garbage_image", "bomb"):
            blob = b"this is not an image" if behaviour == "garbage_image" else BOMB_PNG
            images = [blob] * n
        elif behaviour == "picture":
            images = [opts["data"]] * n
        else:
            alpha = s["background"] == "transparent"
            with self._lock:
                variants = [next(self._variants) % 256 for _ in range(n)]
            fmt = s["output_format"]
            made = tuple(map(int, opts["size"].split("x"))) if behaviour == "wrong_size" else (w, h)
            images = [_image_bytes(made, fmt, v, alpha, self.heavy) for v in variants]
        data = [{"b64_json": base64.b64encode(image).decode()} for image in images]
        payload: dict[str, Any] = {
            "created": int(time.time()),
            "data": [] if behaviour == "empty_data" else data,
            "background": s["background"],
            "output_format": s["output_format"],
            "quality": s["quality"],
            "size": f"{w}x{h}",
        }
        if opts.get("usage", True):
            text = math.ceil(len(s["prompt"]) / 4)
            image = round(TOKENS_1024[s["quality"]] * w * h / 1024**2) * n
            payload["usage"] = {
                "input_tokens": text,
                "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
                "output_tokens": image,
                "output_tokens_details": {"image_tokens": image, "text_tokens": 0},
                "total_tokens": text + image,
            }
            if isinstance(opts.get("usage"), dict):  # a server's own idea of usage, however wrong
                payload["usage"].update(opts["usage"])
        return 200, payload, {}

    def _other_answer(self, method: str, path: str, body: Any):
        if method == "POST" and path == MODERATIONS_PATH:
            if not isinstance(body, dict) or not body.get("input"):
                message = "Missing required parameter: 'input'."
                raise _invalid(message, "input", "missing_required_parameter")
            inputs = body["input"]
            inputs = inputs if isinstance(inputs, list) else [inputs]
            texts = [i.get("text", "") if isinstance(i, dict) else i for i in inputs]
            results = [self._moderate(str(text)) for text in texts]
            model = body.get("model") or "omni-moderation-latest"
            moderation = {"id": f"modr-{next(self._ids):024x}", "model": model}
            return 200, {**moderation, "results": results}, {}
        if method == "GET" and path == "/v1/models":
            models = list(map(self._model, self.models))
            return 200, {"object": "list", "data": models}, {}
        if method == "GET" and path.startswith("/v1/models/"):
            return 200, self._model(path.removeprefix("/v1/models/")), {}
        raise ApiError(404, f"Invalid URL ({method} {path})", "invalid_request_error")

    def _model(self, model: str) -> dict[str, Any]:
        if model not in self.models:
            raise _model_not_found(model)
        return {
            "id": model,
            "object": "model",
            "created": 1_745_000_000,
            "owned_by": "system",
            "shutdown_date": self.models[model],
        }

    def _moderate(self, text: str) -> dict[str, Any]:
        words = set(re.findall(r"[a-z]+", text.lower()))
        flagged = bool(words & {w.lower() for w in self.flag_words})
        hit = {c: flagged and c == self.flag_category for c in MODERATION_CATEGORIES}
        return {
            "flagged": flagged,
            "categories": hit,
            "category_scores": {c: 0.93 if v else 0.0001 for c, v in hit.items()},
            "category_applied_input_types": {c: ["text"] for c in hit},
        }
