"""The cookie routes over HTTP: the ticket trade, the cookies' attributes, sign-out, and other sites refused."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from aixchange_images import auth, sessions
from aixchange_images.auth_models import BrowserSession
from dashboard.cookies import ROUTES

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SAME_ORIGIN = {**FORM, "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def client():
    with TestClient(Starlette(routes=ROUTES), base_url="http://dashboard.test") as c:
        yield c


@pytest.fixture
def started(engine, settings) -> sessions.Started:
    with Session(engine) as session:
        user = auth.add_user(
            session=session, actor=auth.CLI_ACTOR, username="alice", password="long enough", role="admin"
        )
        began = sessions.start(session=session, settings=settings, actor=auth.Actor(user.username, user.role, user.id))
        session.commit()
    return began


def set_cookies(response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name, attributes lower-cased."""
    headers = response.headers.get_list("set-cookie")
    return {h.split("=", 1)[0]: h.lower() for h in headers}


def test_a_ticket_is_traded_for_httponly_strict_cookies_once(client, started, engine, settings):
    response = client.post("/_aix/session", content=f"ticket={started.ticket}", headers=SAME_ORIGIN)
    assert response.status_code == 204
    cookies = set_cookies(response)
    assert set(cookies) == {sessions.SESSION_COOKIE, sessions.BROWSER_COOKIE}
    for header in cookies.values():
        assert "httponly" in header and "samesite=strict" in header and "path=/" in header
        assert "secure" not in header  # plain http here (see the https test)
    max_age = int(cookies[sessions.SESSION_COOKIE].split("max-age=")[1].split(";")[0])
    assert abs(max_age - settings.session_max_days * 86400) < 5  # until the session's absolute end
    token = response.cookies[sessions.SESSION_COOKIE]
    assert sessions.resume(engine, settings, token=token) == started.actor
    again = client.post("/_aix/session", content=f"ticket={started.ticket}", headers=SAME_ORIGIN)
    assert again.status_code == 400 and not again.headers.get_list("set-cookie")


def test_over_https_the_cookies_are_secure(started):
    with TestClient(Starlette(routes=ROUTES), base_url="https://dashboard.test") as client:
        response = client.post("/_aix/session", content=f"ticket={started.ticket}", headers=SAME_ORIGIN)
    assert response.status_code == 204
    assert all("; secure" in header for header in set_cookies(response).values())


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "https://evil.example"}],
    ids=["cross-site", "a sibling subdomain", "another origin"],
)
def test_another_sites_page_can_neither_sign_a_browser_in_nor_out(client, started, engine, settings, headers):
    response = client.post("/_aix/session", content=f"ticket={started.ticket}", headers={**FORM, **headers})
    assert response.status_code == 403 and not response.headers.get_list("set-cookie")
    traded = client.post("/_aix/session", content=f"ticket={started.ticket}", headers=SAME_ORIGIN)
    assert traded.status_code == 204  # the refused request spent nothing
    token = traded.cookies[sessions.SESSION_COOKIE]
    client.cookies.clear()
    out = client.post("/_aix/sign-out", headers={**headers, "Cookie": f"{sessions.SESSION_COOKIE}={token}"})
    assert out.status_code == 403
    assert sessions.resume(engine, settings, token=token) is not None


def test_sign_out_ends_the_cookies_session_and_clears_it(client, started, engine):
    traded = client.post("/_aix/session", content=f"ticket={started.ticket}", headers=SAME_ORIGIN)
    token = traded.cookies[sessions.SESSION_COOKIE]
    client.cookies.clear()
    response = client.post("/_aix/sign-out", headers={**SAME_ORIGIN, "Cookie": f"{sessions.SESSION_COOKIE}={token}"})
    assert response.status_code == 204
    assert "max-age=0" in set_cookies(response)[sessions.SESSION_COOKIE]
    with Session(engine) as session:
        assert session.exec(select(BrowserSession)).all() == []


def test_the_browser_keeps_its_known_browser_id_when_it_signs_in_again(client, started, engine, settings):
    first = client.post("/_aix/session", content=f"ticket={started.ticket}", headers=SAME_ORIGIN)
    browser = first.cookies[sessions.BROWSER_COOKIE]
    with Session(engine) as session:
        again = sessions.start(session=session, settings=settings, actor=started.actor)
        session.commit()
    client.cookies.clear()
    cookie = {"Cookie": f"{sessions.BROWSER_COOKIE}={browser}"}
    second = client.post("/_aix/session", content=f"ticket={again.ticket}", headers={**SAME_ORIGIN, **cookie})
    assert second.status_code == 204
    assert set(set_cookies(second)) == {sessions.SESSION_COOKIE}


def test_a_large_body_is_refused(client, started):
    response = client.post("/_aix/session", content="ticket=" + "x" * 5000, headers=SAME_ORIGIN)
    assert response.status_code == 413
