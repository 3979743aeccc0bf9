"""The drop-in image service: the marketplace's `POST /api/generate-image`, answered as its own route did.

HTTP in, one library call (`intake.Intake.take`), HTTP out. The route has no authentication upstream,
so every request is bounded here (body size, description length, a rate limit per client) and in the
pipeline (moderation, the budget's hard caps). No answer carries a traceback or a secret.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, provider_registry
from .config import ConfigError, Settings
from .engines import get_engine
from .intake import (
    MAX_DESCRIPTION,
    NO_DAILY_CAP,
    UNEXPECTED,
    Ask,
    AskError,
    Intake,
    Outcome,
    make_ask,
    spending_is_bounded,
)
from .models import PLACEHOLDER_URL
from .pull import Schedule
from .redaction import redact

log = logging.getLogger(__name__)
ROUTE = "/api/generate-image"
EXAMPLE = '{"description": "...", "title": "..."}'


# -- the shapes, as the marketplace's route answers (they document /docs and /openapi.json) ------
class GenerateImageRequest(BaseModel):
    """What the marketplace's forms send (field names as the marketplace spells them)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    description: str | None = Field(
        default=None, description=f"What the solution does; required, at most {MAX_DESCRIPTION} UTF-16 code units."
    )
    title: str | None = Field(default=None, description="The solution's title; names the file. Default `solution`.")
    solutionId: str | None = Field(
        default=None,
        description="A marketplace solution id; without it a request solution is made and a pull adopts it.",
    )


class ImageDetails(BaseModel):
    size: str = Field(description="WIDTHxHEIGHT of the image")
    format: str = Field(description="png or jpeg")
    location: str = Field(description="the imageUrl again")


class ImageAnswer(BaseModel):
    """200: the image to store as the solution's imageUrl (the placeholder while one waits for review)."""

    imageUrl: str
    status: Literal["success"] = "success"
    message: str
    filename: str
    details: ImageDetails


class ErrorAnswer(BaseModel):
    """400, 404, 405, 413, 429: the request itself was refused."""

    error: str
    status: Literal["error"] = "error"


class FailureAnswer(ErrorAnswer):
    """500: no image was made; the forms fall back to `defaultImagePath`."""

    details: str
    useDefaultImage: Literal[True] = True
    defaultImagePath: str = PLACEHOLDER_URL


class Health(BaseModel):
    status: Literal["ok", "error"]
    database: Literal["ok", "unreachable"]
    provider: str
    mode: Literal["publish", "review"]


# -- bounds ---------------------------------------------------------------------------------------
def refusal(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorAnswer(error=error).model_dump(), status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` gets 413 before the app sees it, declared or chunked."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:  # h11 has refused one that is not a number
            return await self._too_large(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client went away: nobody to answer
            chunks.append(message.get("body", b""))
            size, more = size + len(chunks[-1]), message.get("more_body", False)
            if size > self.max_bytes:
                return await self._too_large(scope, receive, send)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = refusal(
            413,
            f"The request body is larger than {self.max_bytes:,} bytes; send only description, title and solutionId.",
        )
        await answer(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits as the real one does."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class ClientLimiter:
    """Requests per client: its address, or X-Forwarded-For's client when a trusted proxy sent it."""

    def __init__(self, rate: str):
        self.items = parse_many(rate)
        self.window = MovingWindowRateLimiter(MemoryStorage())

    def check(self, client: str) -> int | None:
        """None when the request may go ahead (it is counted); else the seconds until it may.

        An IPv6 client is its /64: one machine is handed a whole /64 and may rotate through it.
        """
        client = _client_key(client)
        blocked = [item for item in self.items if not self.window.test(item, client)]
        if blocked:
            reset = max(self.window.get_window_stats(item, client).reset_time for item in blocked)
            return max(1, math.ceil(reset - time.time()))
        for item in self.items:
            self.window.hit(item, client)
        return None


def _client_key(client: str) -> str:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    return str(ipaddress.ip_network(f"{address}/64", strict=False)) if address.version == 6 else client


# -- the app ----------------------------------------------------------------------------------------
def parse_request(raw: bytes) -> Ask:
    """The body as the route reads it (JSON whatever the Content-Type); one sentence when it cannot be used."""
    try:
        body = GenerateImageRequest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise AskError(f"The body is not valid JSON ({first['ctx']['error']}); send {EXAMPLE}.") from None
        if not first["loc"]:
            raise AskError(f"The body must be a JSON object such as {EXAMPLE}.") from None
        raise AskError(f"The {first['loc'][0]} must be a string.") from None
    return make_ask(body.description, body.title, body.solutionId)


def answer(outcome: Outcome) -> JSONResponse:
    if outcome.ok:
        details = ImageDetails(size=outcome.size, format=outcome.image_format, location=outcome.image_url)
        body = ImageAnswer(
            imageUrl=outcome.image_url, message=outcome.message, filename=outcome.file_name, details=details
        )
        return JSONResponse(body.model_dump())
    failure = FailureAnswer(error=f"Image generation failed: {outcome.error_kind}", details=outcome.message)
    return JSONResponse(failure.model_dump(), status_code=500)


def unexpected(settings: Settings, what: str) -> JSONResponse:
    """Log the exception being handled (redacted); answer the 500 shape with a sentence that gives nothing away."""
    log.error(redact(f"{what}\n{traceback.format_exc()}", *settings.secrets))
    return JSONResponse(FailureAnswer(error="Internal server error", details=UNEXPECTED).model_dump(), status_code=500)


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": ImageAnswer, "description": "An image: published, or the placeholder while one waits for review"},
    400: {"model": ErrorAnswer, "description": "Missing description, bad JSON, a field too long"},
    413: {"model": ErrorAnswer, "description": "Body larger than SERVICE_MAX_BODY_BYTES"},
    429: {"model": ErrorAnswer, "description": "Over SERVICE_RATE_LIMIT for this client; see Retry-After"},
    500: {"model": FailureAnswer, "description": "No image was made; use defaultImagePath"},
}
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": GenerateImageRequest.model_json_schema()}},
    }
}


def create_app(
    settings: Settings,
    *,
    review: bool = False,
    candidates: int = 1,
    concurrency: int | None = None,
    engine: Engine | None = None,
) -> FastAPI:
    """The service as an ASGI app; `app.state.intake.drain()` waits for its background work."""
    engine = engine if engine is not None else get_engine(settings)
    intake = Intake(engine, settings, review=review, candidates=candidates, concurrency=concurrency)
    limiter = ClientLimiter(settings.service_rate_limit)
    everyone = ClientLimiter(settings.service_total_rate_limit)  # one bucket for all clients

    schedule = Schedule(engine, settings, intake.current_settings)  # keeps the catalogue in step with the marketplace

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        schedule.start()
        yield
        await run_in_threadpool(schedule.close)
        await run_in_threadpool(intake.close)

    app = FastAPI(
        title="AIXchange Images: the drop-in image service",
        version=__version__,
        description="`POST /api/generate-image` as the AIXchange marketplace's own route answers it.",
        lifespan=lifespan,
    )
    app.state.intake, app.state.schedule = intake, schedule
    app.add_middleware(BodyLimit, max_bytes=settings.service_max_body_bytes)
    app.add_exception_handler(HTTPException, _http_error)

    @app.post(ROUTE, response_model=None, responses=_ANSWERS, openapi_extra=_BODY_DOC, summary="Make a card image")
    async def generate_image(request: Request) -> JSONResponse:
        wait = limiter.check(request.client.host if request.client else "unknown")
        if wait is not None:
            error = f"Too many image requests from this client; try again in {wait} seconds."
            return refusal(429, error, {"Retry-After": str(wait)})
        wait = everyone.check("everyone")
        if wait is not None:
            error = f"The image service has had too many requests; try again in {wait} seconds."
            return refusal(429, error, {"Retry-After": str(wait)})
        try:
            ask = parse_request(await request.body())
        except AskError as exc:
            return refusal(400, str(exc))
        try:
            ticket = await run_in_threadpool(intake.take, ask)
            return answer(await asyncio.shield(asyncio.wrap_future(ticket)))
        except Exception:  # noqa: BLE001 - the client gets the 500 shape, the log the (redacted) traceback
            return unexpected(settings, f"{ROUTE} failed")

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}}, summary="Liveness and database")
    async def healthz() -> JSONResponse:
        return await run_in_threadpool(_health, intake)

    return app


def _health(intake: Intake) -> JSONResponse:
    mode = "review" if intake.review else "publish"
    try:
        provider = provider_registry.chosen(intake.current_settings())  # reads the database: the check itself
    except Exception:  # noqa: BLE001 - any failure to read is "unreachable"; the log says why
        log.warning(redact(f"Health check: database unreachable\n{traceback.format_exc()}", *intake.settings.secrets))
        health = Health(
            status="error", database="unreachable", provider=provider_registry.chosen(intake.settings), mode=mode
        )
        return JSONResponse(health.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", database="ok", provider=provider, mode=mode).model_dump())


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    """404, 405 and the like in the route's `{error, status}` shape (405 in its very words)."""
    assert isinstance(exc, HTTPException)
    words = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
    return refusal(exc.status_code, words, exc.headers)


# -- running it -------------------------------------------------------------------------------------
class Server(uvicorn.Server):
    """uvicorn's server, with an event set once it listens (tests and benchmarks wait on it)."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    @property
    def port(self) -> int:
        return self.servers[0].sockets[0].getsockname()[1]


def make_server(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    review: bool = False,
    candidates: int = 1,
    concurrency: int | None = None,
    engine: Engine | None = None,
    log_level: str = "info",
) -> Server:
    """The service on uvicorn; behind a proxy in SERVICE_FORWARDED_ALLOW_IPS the client is X-Forwarded-For's."""
    app = create_app(settings, review=review, candidates=candidates, concurrency=concurrency, engine=engine)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.service_forwarded_allow_ips,
        server_header=False,
        log_level=log_level,
    )
    return Server(config)


def serve(settings: Settings, *, host: str, port: int, review: bool, candidates: int, concurrency: int) -> None:
    """Run until interrupted (the `serve` command)."""
    server = make_server(settings, host=host, port=port, review=review, candidates=candidates, concurrency=concurrency)
    mode = f"review ({candidates} candidate(s) per request)" if review else "publish at once"
    current = server.config.app.state.intake.current_settings()
    if not spending_is_bounded(current):
        raise ConfigError(NO_DAILY_CAP.replace("ask an admin to set", "set"))
    provider = provider_registry.chosen(current)
    print(
        f"POST {ROUTE}: {mode}, provider {provider}, "
        f"{settings.service_rate_limit} per client, bodies up to {settings.service_max_body_bytes:,} bytes.",
        file=sys.stderr,
        flush=True,
    )
    server.run()
