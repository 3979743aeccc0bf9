"""The dashboard's two cookie routes: Streamlit's websocket cannot set a cookie and JavaScript may not
touch an HttpOnly one, so these plain HTTP endpoints do (dashboard/server.py mounts them).

- POST /_aix/session  (ticket=...): trade a fresh sign-in's one-time ticket for the session cookie,
  and give the browser its long-lived known-browser cookie the first time.
- POST /_aix/sign-out: end the session named by the cookie and clear it.

Both refuse requests made by another site's pages (Sec-Fetch-Site / Origin), so no other site can
sign a browser in or out.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aixchange_images import sessions
from aixchange_images.config import load_settings
from aixchange_images.db import session_scope
from aixchange_images.engines import get_engine

MAX_BODY = 1024  # a ticket is 43 characters


async def trade_ticket(request: Request) -> Response:
    if not _same_site(request):
        return PlainTextResponse("Refused: the request came from another site.", status_code=403)
    body = await request.body()
    if len(body) > MAX_BODY:
        return PlainTextResponse("That request is too large.", status_code=413)
    ticket = parse_qs(body.decode("utf-8", "replace")).get("ticket", [""])[0]
    browser = request.cookies.get(sessions.BROWSER_COOKIE)
    handed = await run_in_threadpool(_hand_over, ticket, browser)
    if handed is None:
        return PlainTextResponse("That sign-in ticket is spent or expired; sign in again.", status_code=400)
    response = Response(status_code=204)
    _set_cookie(request, response, sessions.SESSION_COOKIE, handed.token, handed.max_age)
    if handed.browser:
        _set_cookie(request, response, sessions.BROWSER_COOKIE, handed.browser, sessions.BROWSER_COOKIE_DAYS * 86400)
    return response


async def sign_out(request: Request) -> Response:
    if not _same_site(request):
        return PlainTextResponse("Refused: the request came from another site.", status_code=403)
    if token := request.cookies.get(sessions.SESSION_COOKIE):
        await run_in_threadpool(_end, token)
    response = Response(status_code=204)
    _set_cookie(request, response, sessions.SESSION_COOKIE, "", 0)
    return response


def _hand_over(ticket: str, browser: str | None) -> sessions.HandedOver | None:
    with session_scope(_engine(), write=True) as session:
        handed = sessions.hand_over(session=session, ticket=ticket, browser=browser)
        session.commit()
    return handed


def _end(token: str) -> None:
    with session_scope(_engine(), write=True) as session:
        sessions.end(session=session, token=token)
        session.commit()


def _engine() -> Engine:
    return get_engine(load_settings())  # one engine per database URL, shared with the pages' runs


def _same_site(request: Request) -> bool:
    """A browser says where a request comes from; a request another site's page made is refused."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


ROUTES = [
    Route("/_aix/session", trade_ticket, methods=["POST"]),
    Route("/_aix/sign-out", sign_out, methods=["POST"]),
]
