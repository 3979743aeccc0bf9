"""A local HTTP server that answers like the Black Forest Labs API (FLUX.2), for tests.

    with FluxStandIn() as server:
        server.enqueue("success", pending=3)  # the next task answers Pending three times, then Ready
        ...  # BFL_BASE_URL=server.base_url

A task is submitted (POST /v1/<model>: id, polling_url, cost in credits), polled (GET
/v1/get_result?id=...: Pending, then Ready with result.sample, or how it ended) and its image
downloaded from the signed sample URL (GET /samples/<id>.<ext>?sig=...), which takes no key.
Shapes follow https://docs.bfl.ai (API reference, errors, pricing). Stdlib and Pillow only.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import math
import threading
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openai_standin import OpenAIStandIn, _Handler, _Server, draw_bars
from PIL import Image

MEGAPIXEL = 1024 * 1024
# Credits (1 credit = $0.01): (first megapixel out, each further megapixel out or in).
CREDITS = {
    "flux-2-pro": (3.0, 1.5),
    "flux-2-max": (7.0, 3.0),
    "flux-2-flex": (5.0, 5.0),
    "flux-2-klein-9b": (1.5, 0.2),
    "flux-2-klein-4b": (1.4, 0.1),
}
SUBMIT_ERRORS: dict[str, tuple[int, str]] = {
    "forbidden": (403, "Not authenticated"),
    "no_credits": (402, "Insufficient credits. Add credits at https://dashboard.bfl.ai."),
    "invalid": (422, ""),
    "rate_limited": (429, "Too many active tasks"),
    "server_error": (500, "Internal Server Error"),
}
ENDINGS = {"request_moderated": "Request Moderated", "content_moderated": "Content Moderated", "error": "Error"}
# Behaviour -> the options enqueue() takes.
BEHAVIOURS: dict[str, set[str]] = {
    # pending: Pending answers before Ready; cost: credits to report (None leaves `cost` out);
    # polling_host / sample_host: put that host (same port) in the URL; sample: bytes served as the image
    "success": {"pending", "cost", "polling_host", "sample_host", "sample", "sample_status"},
    "pending_forever": set(),
    "task_not_found": set(),
    "garbled_json": {"step"},  # step "submit" (default) or "poll": an HTML page labelled JSON
    "trickle": {"step", "seconds", "interval"},  # step "submit", "poll" or "sample" (default) sent in pieces
    **dict.fromkeys(ENDINGS, {"details", "pending"}),
    **dict.fromkeys(SUBMIT_ERRORS, {"status", "retry_after", "detail"}),
}


class FluxStandIn:
    """BFL-like server on 127.0.0.1 with scripted tasks and a record of every request."""

    def __init__(self, expected_key: str | None = None):
        self.expected_key = expected_key
        self.echo_key = False  # like a careless proxy: errors and task ids carry the caller's key
        self._requests: list[dict[str, Any]] = []
        self._script: deque[tuple[str, dict[str, Any]]] = deque()
        self._tasks: dict[str, dict[str, Any]] = {}
        self._variants = itertools.count()
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._gate, self._in_flight = threading.Event(), 0  # no gate here: nothing is ever held
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.standin, self._httpd.connections = self, set()
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # The same server lifecycle and trickling as the OpenAI stand-in's (they read only _stop, _gate,
    # _lock, _in_flight, _httpd and _thread).
    __enter__, __exit__, close = OpenAIStandIn.__enter__, OpenAIStandIn.__exit__, OpenAIStandIn.close
    _trickle = OpenAIStandIn._trickle

    def enqueue(self, behaviour: str, **opts: Any) -> None:
        """Script the next submitted task: FIFO, one entry per submit, then success."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; see BEHAVIOURS")
        if unknown := set(opts) - BEHAVIOURS[behaviour]:
            raise ValueError(f"{behaviour!r} does not take {sorted(unknown)}")
        with self._lock:
            self._script.append((behaviour, opts))

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request so far: {method, path, query, json, headers (lower-case names)}."""
        with self._lock:
            return list(self._requests)

    def calls(self, kind: str) -> list[dict[str, Any]]:
        """The requests of one kind: "submit", "poll" or "sample"."""
        return [r for r in self.requests if r["kind"] == kind]

    # --- request handling ----------------------------------------------------------------
    def _handle(self, req: _Handler) -> None:
        raw = req.rfile.read(int(req.headers.get("content-length") or 0))
        parts = urlsplit(req.path)
        headers = {k.lower(): v for k, v in req.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        kind = {"POST": "submit"}.get(req.command) or ("poll" if parts.path == "/v1/get_result" else "sample")
        record = {"kind": kind, "method": req.command, "path": parts.path, "json": body, "headers": headers}
        with self._lock:
            self._requests.append({**record, "query": parse_qs(parts.query)})
        status, payload, extra, trickle = self._answer(kind, parts, body, headers)
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        reply_headers = {"content-type": "application/json", "content-length": str(len(content)), **extra}
        if trickle:
            self._trickle(req, status, reply_headers, content, trickle)
            return
        req.send_response(status)
        for name, value in reply_headers.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(content)

    def _answer(self, kind: str, parts: Any, body: Any, headers: dict[str, str]):
        if kind == "sample":
            return self._sample(parts.path.removeprefix("/samples/").split(".")[0])
        key = headers.get("x-key", "")
        if self.expected_key is not None and key != self.expected_key:
            said = f"Invalid API key {key}" if self.echo_key else "Not authenticated"
            return 403, {"detail": said}, {}, None
        if kind == "poll":
            return self._poll(parse_qs(parts.query).get("id", [""])[0])
        return self._submit(parts.path.removeprefix("/v1/"), body if isinstance(body, dict) else {}, key)

    def _submit(self, model: str, body: dict[str, Any], key: str):
        with self._lock:
            behaviour, opts = self._script.popleft() if self._script else ("success", {})
        if model not in CREDITS:
            return 404, {"detail": "Not Found"}, {}, None
        if behaviour in SUBMIT_ERRORS:
            return self._refuse(behaviour, opts, key)
        if behaviour == "garbled_json" and opts.get("step", "submit") == "submit":
            return 200, b"<html>502 Bad Gateway</html>", {}, None
        problem = _invalid(body)
        if problem:
            return 422, {"detail": [problem]}, {}, None
        width, height, input_pixels = _sizes(body)
        first, further = CREDITS[model]
        out_mp, in_mp = math.ceil(width * height / MEGAPIXEL), math.ceil(input_pixels / MEGAPIXEL)
        credits = first + (out_mp - 1) * further + in_mp * further
        task_id = f"{key}-{uuid.uuid4()}" if self.echo_key and key else str(uuid.uuid4())
        task = {"behaviour": behaviour, "opts": opts, "size": (width, height), "format": body.get("output_format")}
        task["pending"] = opts.get("pending", 1)
        with self._lock:
            self._tasks[task_id] = task
        host = opts.get("polling_host", "127.0.0.1")
        reply: dict[str, Any] = {
            "id": task_id,
            "polling_url": f"http://{host}:{self.port}/v1/get_result?id={task_id}",
            "input_mp": in_mp,
            "output_mp": out_mp,
        }
        cost = opts.get("cost", credits)
        if cost is not None:
            reply["cost"] = cost
        return 200, reply, {}, self._trickled(task, "submit")

    def _refuse(self, behaviour: str, opts: dict[str, Any], key: str):
        status, detail = SUBMIT_ERRORS[behaviour]
        extra = {"retry-after": str(opts.get("retry_after", "1"))} if behaviour == "rate_limited" else {}
        if "retry_after" in opts:
            extra["retry-after"] = str(opts["retry_after"])
        if behaviour == "invalid":
            said: Any = [{"loc": ["body", "width"], "msg": "Input should be a multiple of 16", "type": "value_error"}]
        else:
            said = opts.get("detail") or (f"{detail} (key {key})" if self.echo_key else detail)
        return int(opts.get("status", status)), {"detail": said}, extra, None

    def _poll(self, task_id: str):
        with self._lock:
            task = self._tasks.get(task_id)
            if task is not None and task["pending"] > 0 and task["behaviour"] != "pending_forever":
                task["pending"] -= 1
                status = "Pending"
            else:
                status = None
        if task is None or task["behaviour"] == "task_not_found":
            return 200, {"id": task_id, "status": "Task not found", "result": None}, {}, None
        trickle = self._trickled(task, "poll")
        if task["behaviour"] == "pending_forever" or status == "Pending":
            return 200, {"id": task_id, "status": "Pending", "result": None, "progress": 0.5}, {}, trickle
        if task["behaviour"] == "garbled_json":
            return 200, b"<html>502 Bad Gateway</html>", {}, None
        if task["behaviour"] in ENDINGS:
            details = task["opts"].get("details")
            return (
                200,
                {"id": task_id, "status": ENDINGS[task["behaviour"]], "result": None, "details": details},
                {},
                None,
            )
        host = task["opts"].get("sample_host", "127.0.0.1")
        ext = "jpg" if task["format"] == "jpeg" else "png"
        sample = f"http://{host}:{self.port}/samples/{task_id}.{ext}?se=2026-12-01T00%3A10&sig=c2lnbmVk"
        result = {"sample": sample, "seed": 42, "start_time": time.time() - 1, "end_time": time.time()}
        return 200, {"id": task_id, "status": "Ready", "result": result, "progress": None}, {}, trickle

    def _sample(self, task_id: str):
        with self._lock:
            task = self._tasks.get(task_id)
            variant = next(self._variants)
        if task is None:
            return 404, b"<Error><Code>BlobNotFound</Code></Error>", {"content-type": "application/xml"}, None
        opts = task["opts"]
        fmt = "jpeg" if task["format"] == "jpeg" else "png"
        data = opts["sample"] if "sample" in opts else _image_bytes(task["size"], fmt, variant % 256)
        status = int(opts.get("sample_status", 200))
        return status, data, {"content-type": f"image/{fmt}"}, self._trickled(task, "sample")

    def _trickled(self, task: dict[str, Any], step: str) -> dict[str, Any] | None:
        opts = task["opts"]
        if task["behaviour"] == "trickle" and opts.get("step", "sample") == step:
            return {"seconds": opts.get("seconds", 20), "interval": opts.get("interval", 0.25)}
        return None


def _invalid(body: dict[str, Any]) -> dict[str, Any] | None:
    """The first field error FastAPI would report for this body, or None."""
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return {"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}
    for side in ("width", "height"):
        value = body.get(side)
        if value is not None and (not isinstance(value, int) or value < 64 or value % 16):
            return {
                "loc": ["body", side],
                "msg": "Input should be a multiple of 16 of at least 64",
                "type": "value_error",
            }
    if body.get("output_format", "jpeg") not in ("jpeg", "png"):
        return {"loc": ["body", "output_format"], "msg": "Input should be 'jpeg' or 'png'", "type": "enum"}
    if not 0 <= body.get("safety_tolerance", 2) <= 5:
        return {"loc": ["body", "safety_tolerance"], "msg": "Input should be between 0 and 5", "type": "range"}
    return None


def _sizes(body: dict[str, Any]) -> tuple[int, int, int]:
    """(width, height) of the image to make and the input image's pixels: an edit keeps its input's size."""
    input_size = (0, 0)
    if body.get("input_image"):
        import base64

        with Image.open(io.BytesIO(base64.b64decode(body["input_image"]))) as image:
            input_size = image.size
    default = input_size if body.get("input_image") else (1024, 1024)
    width, height = body.get("width") or default[0], body.get("height") or default[1]
    return width, height, input_size[0] * input_size[1]


@functools.lru_cache(maxsize=64)
def _image_bytes(size: tuple[int, int], fmt: str, variant: int) -> bytes:
    image = Image.new("RGB", size, (variant * 67 % 256, variant * 151 % 256, 90))
    draw_bars(image, variant)
    out = io.BytesIO()
    image.save(out, format=fmt.upper())
    return out.getvalue()
