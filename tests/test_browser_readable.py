"""User text in a real headless Chromium: a title (or a model name) written as Markdown or HTML shows
literally on Solutions and Metrics, never becomes a link, and never makes the browser fetch anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import solution_record
from sqlmodel import Session, select
from test_browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server

from aixchange_images.config import load_settings
from aixchange_images.engines import get_engine
from aixchange_images.models import Attempt, AttemptStatus, utcnow
from ui import WORD_JOINER

ROOT = Path(__file__).resolve().parents[1]
EVIL = "Evil [click me](http://x/phish) ![px](http://x/track.png)"
EVIL_MODEL = '<a href="http://x/phish">Evil model</a><img src="http://x/track.png">'
PASSWORD = "browser-pass-123"

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "aixchange_images"]
    for name, role in (("admin", "admin"), ("mia", "manager")):
        subprocess.run(
            [*cli, "users", "add", name, "--role", role], input=f"{PASSWORD}\n", text=True, env=env, check=True
        )
    catalogue = tmp_path / "solutions.json"
    catalogue.write_text(json.dumps({"solutions": [solution_record(1, title=EVIL)]}))
    subprocess.run([*cli, "import", str(catalogue)], env=env, check=True, capture_output=True)
    subprocess.run([*cli, "generate", "--missing"], env=env, check=True, capture_output=True)
    paid_call_by_a_hostile_model_name()
    with streamlit_server(tmp_path, env) as url:
        yield url


def paid_call_by_a_hostile_model_name() -> None:
    """An attempt whose model (typed by an admin in Settings) is HTML: it shows in legends and tables."""
    engine = get_engine(load_settings())
    with Session(engine) as session:
        sid = session.exec(select(Attempt.solution_id)).first()
        now = utcnow()
        session.add(
            Attempt(
                solution_id=sid,
                provider="openai",
                model=EVIL_MODEL,
                size="1024x1024",
                quality="medium",
                prompt="a card",
                request_key="hostile",
                status=AttemptStatus.succeeded,
                started_at=now - timedelta(minutes=5),
                finished_at=now,
                duration_ms=1200,
                cost_usd=0.5,
            )
        )
        session.commit()


def sign_in(page, url: str, username: str) -> None:  # noqa: ANN001 - a Playwright page
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def open_page(page, title: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.get_by_role("link", name=title).first.click()
    expect(page.get_by_role("heading", name=title).first).to_be_visible()


def nothing_live(page, requested: list[str]) -> None:  # noqa: ANN001
    """No link to the phishing URL anywhere (HTML or SVG), and the browser asked x for nothing."""
    assert page.locator('a[href^="http://x/"], a[*|href^="http://x/"], img[src^="http://x/"]').count() == 0
    assert [u for u in requested if u.startswith("http://x/")] == []


def test_a_markdown_title_shows_literally_on_solutions(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        page.set_default_timeout(30_000)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        sign_in(page, server, "admin")
        open_page(page, "Solutions")
        table = page.get_by_test_id("stDataFrame").first
        expect(table.get_by_role("gridcell", name=EVIL, exact=True, include_hidden=True)).to_have_count(1)
        select_first_row(page, table)

        page.get_by_role("tab", name="Add or edit").click()
        assert as_read(page.get_by_text("Editing Evil")) == f"Editing {EVIL} (selected on Browse)."
        page.get_by_role("tab", name="Upload image").click()
        assert as_read(page.get_by_text("Upload an image for Evil")).startswith(f"Upload an image for {EVIL}. It is")

        nothing_live(page, requested)
        browser.close()


def as_read(locator) -> str:  # noqa: ANN001 - a Playwright locator
    """The text a person reads there (the invisible word joiners that keep URLs from linking go)."""
    from playwright.sync_api import expect

    expect(locator).to_be_visible(timeout=30_000)  # the page may still be drawing on a loaded machine
    return locator.inner_text().replace(WORD_JOINER, "").strip()


def select_first_row(page, table) -> None:  # noqa: ANN001
    """Tick the first row's checkbox (the grid is drawn on a canvas: click where it is)."""
    from playwright.sync_api import expect

    box = table.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 32)  # the selection column, the middle of row one
    expect(page.get_by_role("button", name="Generate for 1 selected")).to_be_visible()


def test_a_markdown_title_and_an_html_model_name_show_literally_on_metrics(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 2600})
        page.set_default_timeout(30_000)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        sign_in(page, server, "mia")
        open_page(page, "Metrics")
        expect(page.get_by_role("heading", name="What we spent and what it bought")).to_be_visible()
        legend = page.locator(".legendtext", has_text="Evil model")
        expect(legend).to_have_count(1, timeout=30_000)  # plotly.js loads on the page's first chart
        assert legend.text_content() == EVIL_MODEL  # the tags as text
        page.get_by_role("tab", name="Storage", exact=True).click()  # the largest files, by solution title
        largest = page.get_by_test_id("stDataFrame").last
        expect(largest.get_by_role("gridcell", name=EVIL, exact=True, include_hidden=True)).to_have_count(
            1, timeout=30_000
        )

        nothing_live(page, requested)
        browser.close()


def test_ui_literal_shows_every_kind_of_markup_as_written(tmp_path):
    from literal_app import SAMPLES
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with streamlit_server(tmp_path, env, ROOT / "tests" / "literal_app.py") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1600})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url)
        for number, sample in enumerate(SAMPLES):
            for kind in ("markdown", "caption", "error"):
                assert as_read(page.get_by_text(f"{kind} {number}: ").first) == f"{kind} {number}: {sample}"
        markup = page.locator('[data-testid="stMarkdownContainer"] :is(a, img, h1, h2, em, strong, code, del, ol, ul)')
        assert markup.count() == 0, markup.first.evaluate("e => e.outerHTML")
        assert [u for u in requested if "x.example" in u or u.startswith("http://x/")] == []
        browser.close()
