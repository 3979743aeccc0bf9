"""Sessions and links in a real headless Chromium: reload, new tab, sign-out everywhere, deep links."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select
from test_browser import _wait_until, streamlit_server

from aixchange_images import sessions, throttle
from aixchange_images.auth_models import BrowserSession
from aixchange_images.db import session_scope
from aixchange_images.models import utcnow

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "browser-pass-123"

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "aixchange_images", "users", "add", "admin", "--role", "admin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    with streamlit_server(tmp_path, env) as url:
        yield url


def new_tab(context, url: str):
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    return page


def sign_in(page, username: str = "admin", password: str = PASSWORD) -> None:
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def cookies_handed_over(context) -> dict:
    """Wait until the browser holds both of our cookies: the page trades its ticket for them in a fetch that
    may finish after the first page has drawn, and a reload or a new tab before then would not be signed in."""

    def both() -> dict | None:  # Streamlit's own XSRF cookie may come first: wait for ours
        cookies = {c["name"]: c for c in context.cookies()}
        return cookies if {sessions.SESSION_COOKIE, sessions.BROWSER_COOKIE} <= set(cookies) else None

    return _wait_until(both, 30, "the session's cookies")


def expect_sign_in_form(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)


def test_a_reload_keeps_the_user_signed_in(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context()
    page = new_tab(context, server)
    sign_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    cookies_handed_over(context)
    page.reload()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("textbox", name="Username")).to_have_count(0)


def test_a_new_tab_of_the_same_browser_is_signed_in_and_lands_on_its_link(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context()
    first = new_tab(context, server)
    sign_in(first)
    expect(first.get_by_role("heading", name="Overview")).to_be_visible()
    cookies_handed_over(context)
    second = new_tab(context, f"{server}/metrics")
    expect(second.get_by_role("heading", name="Metrics")).to_be_visible()
    expect(second.get_by_text("Page not found")).to_have_count(0)


def test_a_deep_link_while_signed_out_shows_the_form_then_lands_on_its_page(server, browser):
    from playwright.sync_api import expect

    page = new_tab(browser.new_context(), f"{server}/review")
    expect_sign_in_form(page)
    expect(page.get_by_role("heading", name="Review")).to_have_count(0)
    sign_in(page)
    expect(page.get_by_role("heading", name="Review")).to_be_visible()
    assert page.url.rstrip("/").endswith("/review")
    expect(page.get_by_text("Page not found")).to_have_count(0)


def test_signing_out_in_one_tab_signs_out_the_other_at_its_next_interaction(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context()
    first = new_tab(context, server)
    sign_in(first)
    expect(first.get_by_role("heading", name="Overview")).to_be_visible()
    cookies_handed_over(context)
    second = new_tab(context, server)
    expect(second.get_by_role("heading", name="Overview")).to_be_visible()

    second.get_by_role("button", name="Sign out").click()
    expect_sign_in_form(second)
    first.get_by_role("link", name="Metrics").first.click()  # the other tab's next interaction
    expect_sign_in_form(first)
    expect(first.get_by_role("heading", name="Metrics")).to_have_count(0)
    third = new_tab(context, server)  # and the browser holds nothing that signs it in again
    expect_sign_in_form(third)
    _wait_until(lambda: sessions.SESSION_COOKIE not in {c["name"] for c in context.cookies()}, 30, "the cookie to go")


def test_a_wrong_password_and_an_unknown_user_get_the_same_sentence(server, browser):
    from playwright.sync_api import expect

    page = new_tab(browser.new_context(), server)
    sign_in(page, password="not the password")
    wrong = page.get_by_text("The username or password is wrong")
    expect(wrong).to_be_visible()
    said_for_wrong = wrong.inner_text()
    sign_in(page, username="nobody-here")
    expect(wrong).to_be_visible()
    assert wrong.inner_text() == said_for_wrong


@pytest.mark.parametrize("attempt", range(3))
def test_the_first_request_to_a_fresh_server_may_be_a_deep_link(tmp_path, browser, attempt):
    """Streamlit's old pages/ discovery must never serve a page file, whatever the first URL."""
    from playwright.sync_api import expect

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "aixchange_images", "users", "add", "admin", "--role", "admin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    with streamlit_server(tmp_path, env) as url:
        page = new_tab(browser.new_context(), f"{url}/settings")
        expect_sign_in_form(page)
        expect(page.get_by_text("Sign in to use AIXchange Images")).to_have_count(0)  # no page guard ran
        expect(page.get_by_role("link", name="overview")).to_have_count(0)  # no file-named page list
        sign_in(page)
        expect(page.get_by_role("heading", name="Settings")).to_be_visible()


def test_the_browser_holds_only_httponly_strict_cookies_that_scripts_cannot_read(server, browser, engine):
    from playwright.sync_api import expect

    context = browser.new_context()
    page = new_tab(context, server)
    sign_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    cookies = cookies_handed_over(context)
    session_cookie = cookies[sessions.SESSION_COOKIE]
    for cookie in (session_cookie, cookies[sessions.BROWSER_COOKIE]):
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    readable = page.evaluate("document.cookie")  # out of any script's reach (Streamlit's own XSRF cookie is not)
    assert sessions.SESSION_COOKIE not in readable and sessions.BROWSER_COOKIE not in readable
    with Session(engine) as session:
        [row] = session.exec(select(BrowserSession)).all()
    assert row.token_hash == sessions.digest(session_cookie["value"])
    assert session_cookie["value"][:8] not in repr(row.model_dump())


def test_strangers_failures_never_keep_the_admin_out_of_their_own_browser(server, browser, engine):
    from playwright.sync_api import expect

    own = browser.new_context()
    page = new_tab(own, server)
    sign_in(page)
    cookies_handed_over(own)  # the browser cookie that later lets its owner past the strangers' lock
    page.get_by_role("button", name="Sign out").click()
    expect_sign_in_form(page)
    with session_scope(engine, write=True) as session:  # strangers on every address (all are 'local' here) failed
        keys = [throttle.client_key("local"), throttle.account_key("admin")]
        for _ in range(12):
            throttle.record_failure(session=session, keys=keys, now=utcnow())
        session.commit()

    stranger = new_tab(browser.new_context(), server)
    sign_in(stranger)
    expect(stranger.get_by_text("too many attempts were made; try again in")).to_be_visible()
    later = new_tab(own, server)  # the admin comes back to the browser they signed in from before
    sign_in(later)
    expect(later.get_by_role("heading", name="Overview")).to_be_visible()
