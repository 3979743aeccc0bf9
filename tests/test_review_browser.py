"""The review routine in a real headless Chromium: keys, literal user text, upload and bulk approval."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import solution_record
from PIL import Image
from sqlmodel import Session, select
from test_browser import CHROMIUM, CHROMIUM_ARGS, _wait_until, idle, streamlit_server
from test_review_routine import EVIL_TITLE, EVIL_URL

from aixchange_images import queue
from aixchange_images.config import load_settings
from aixchange_images.engines import get_engine
from aixchange_images.models import Candidate, Solution

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "browser-pass-123"
pytestmark = pytest.mark.browser


def cli(*args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "aixchange_images", *args],
        input=stdin,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    return done.stdout


def catalogue(tmp_path: Path, records: list[dict], candidates: int = 2) -> None:
    """An admin, these solutions, and `candidates` local images for each, made one after the other."""
    cli("users", "add", "admin", "--role", "admin", stdin=f"{PASSWORD}\n")
    path = tmp_path / "solutions.json"
    path.write_text(json.dumps({"solutions": records}))
    cli("import", str(path))
    ids = [s["id"] for s in json.loads(cli("solutions", "--json"))["solutions"]]
    cli("generate", "--solution", *ids, "--candidates", str(candidates), "--size", "256x256", "--concurrency", "1")


@pytest.fixture
def browser_page():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a rerun that publishes takes a while on a busy machine
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        page.set_default_timeout(30_000)
        yield page
        browser.close()
    expect.set_options(timeout=5_000)  # Playwright's default, for the tests that follow


def open_review(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("textbox", name="Username").fill("admin")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("link", name="Review", exact=True).first.click()
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()


def engine():
    return get_engine(load_settings())  # the server's database (the test's environment)


def queue_titles() -> list[str]:
    with Session(engine()) as session:
        return [row.solution.title for row in queue.page(session=session)]


def states(title: str) -> list[tuple[str, str | None]]:
    with Session(engine()) as session:
        rows = session.exec(
            select(Candidate.state, Candidate.reject_reason)
            .join(Solution, Solution.id == Candidate.solution_id)
            .where(Solution.title == title)
            .order_by(Candidate.id)
        ).all()
    return [tuple(r) for r in rows]


def showing(page, title: str) -> None:
    """The current solution is `title` (its heading), and no key is held by a text box."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    idle(page)
    page.get_by_role("heading", name="Review", exact=True).click()  # keys go to the page, not a box


def test_keys_approve_undo_reject_and_walk_the_queue_but_not_while_typing(tmp_path, browser_page):
    from playwright.sync_api import expect

    titles = ["Alpha card", "Bravo card", "Charlie card", "Delta card"]
    catalogue(tmp_path, [solution_record(i, title=t) for i, t in enumerate(titles)])
    first, second, third, *_ = queue_titles()
    page = browser_page
    with streamlit_server(tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)}) as url:
        open_review(page, url)
        showing(page, first)

        page.keyboard.press("n")
        showing(page, second)
        page.keyboard.press("p")
        showing(page, first)

        page.keyboard.press("2")  # approve the second candidate; the queue moves on
        showing(page, second)
        _wait_until(lambda: states(first) == [("rejected", "not_chosen"), ("approved", None)], 30, "the approval")

        page.keyboard.press("u")  # undo it: the first solution is back, both candidates waiting
        showing(page, first)
        _wait_until(lambda: states(first) == [("pending", None)] * 2, 30, "the undo")

        search = page.get_by_role("textbox", name="Search")
        search.press_sequentially("x1n")  # reject, approve, next: as text in the box, nothing else
        search.press("Enter")
        expect(page.get_by_text("0 solution(s) wait for review.")).to_be_visible()
        assert states(first) == [("pending", None)] * 2
        search.fill("")
        search.press("Enter")
        showing(page, first)

        page.keyboard.press("x")  # reject what is shown, with the reason beside the button (Off-topic)
        showing(page, second)
        _wait_until(lambda: states(first) == [("rejected", "off_topic")] * 2, 30, "the rejection")
        assert states(third) == [("pending", None)] * 2
        page.screenshot(path=str(Path(os.environ.get("SCREENSHOT_DIR") or tmp_path) / "review-keys.png"))


def test_titles_and_urls_are_shown_literally_and_nothing_is_fetched_from_them(tmp_path, browser_page):
    from playwright.sync_api import expect

    catalogue(tmp_path, [solution_record(1, title=EVIL_TITLE, imageUrl=EVIL_URL)])
    [sid] = [s["id"] for s in json.loads(cli("solutions", "--json"))["solutions"]]
    with Session(engine()) as session:
        first = min(session.exec(select(Candidate.id).where(Candidate.solution_id == sid)).all())
    cli("approve", str(first))
    cli("generate", "--solution", sid, "--size", "256x256")  # back in the queue, with a history
    page = browser_page
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.route("http://x/**", lambda route: route.abort())
    with streamlit_server(tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)}) as url:
        open_review(page, url)
        expect(page.get_by_role("heading", name=EVIL_TITLE, exact=True)).to_be_visible()
        expect(page.get_by_role("button", name=f"{EVIL_TITLE} · 1")).to_be_visible()  # the queue's label
        on_review = page.locator("a[href*='x/phish'], img[src*='x/track']").count()

        page.get_by_role("link", name="Its page: history and rollback").click()
        expect(page.get_by_text(f"Rolling back restores {EVIL_URL}.", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name=EVIL_TITLE, exact=True)).to_be_visible()
        on_solution = page.locator("a[href*='x/phish'], img[src*='x/track']").count()
        page.screenshot(path=str(Path(os.environ.get("SCREENSHOT_DIR") or tmp_path) / "solution-literal.png"))

    assert (on_review, on_solution) == (0, 0)
    assert not [u for u in asked if u.startswith("http://x/")]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 90, 160)).save(out, format="PNG")
    return out.getvalue()


def test_upload_moves_on_and_bulk_approval_asks_first(tmp_path, browser_page):
    from playwright.sync_api import expect

    titles = ["Alpha card", "Bravo card", "Charlie card", "Delta card"]
    catalogue(tmp_path, [solution_record(i, title=t) for i, t in enumerate(titles)])
    order = queue_titles()
    page = browser_page
    with streamlit_server(tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)}) as url:
        open_review(page, url)
        showing(page, order[0])

        page.get_by_role("button", name="Upload instead").click()
        page.locator("input[type=file]").set_input_files(
            files=[{"name": "authors-own.png", "mimeType": "image/png", "buffer": png()}]
        )
        page.get_by_role("button", name="Publish upload").click()
        showing(page, order[1])
        with Session(engine()) as session:
            uploaded = session.exec(select(Solution.image_status).where(Solution.title == order[0])).one()
        assert uploaded == "uploaded"

        for title in order[2:]:
            page.get_by_role("checkbox", name=f"Select {title}").check(force=True)
        page.get_by_role("button", name="Approve 2 selected").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("2 solution(s) will be published now")).to_be_visible()
        assert all(s == ("pending", None) for t in order[2:] for s in states(t))  # asked, not done
        dialog.get_by_role("button", name="Approve 2").click()
        expect(page.get_by_text("Approved the first candidate of 2 solution(s).")).to_be_visible()
        assert [states(t) for t in order[2:]] == [[("approved", None), ("rejected", "not_chosen")]] * 2
        showing(page, order[1])


def test_a_flags_badge_and_its_sentence_are_shown_as_plain_text(tmp_path, browser_page):
    from playwright.sync_api import expect
    from test_review_flags import MARKED_UP, SENTENCES, verdict

    catalogue(tmp_path, [solution_record(i, title=t) for i, t in enumerate(["Alpha card", "Bravo card"])])
    with Session(engine()) as session:
        first, second = session.exec(
            select(Candidate.id).join(Solution).where(Solution.title == "Alpha card").order_by(Candidate.id)
        ).all()
    verdict(engine(), first, "text_garbled", "duplicate")
    verdict(engine(), second, "blank")
    page = browser_page
    with streamlit_server(tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)}) as url:
        open_review(page, url)
        showing(page, "Alpha card")
        for label, icon in (("Garbled lettering", "error"), ("Duplicate", "warning"), ("Blank", "error")):
            badge = page.get_by_role("paragraph").filter(has=page.get_by_role("img", name=f"{icon} icon"))
            expect(badge.filter(has_text=label)).to_be_visible()  # blocking: an error badge; duplicate: a caution
        expect(page.get_by_text(MARKED_UP, exact=True)).to_be_visible()  # the sentence as its check wrote it
        expect(page.get_by_text(SENTENCES["duplicate"], exact=True)).to_be_visible()
        markup = page.locator("strong:has-text('bold'), b:text-is('x'), a[href*='x/phish'], code:text-is('code')")
        assert markup.count() == 0
        shot = Path(os.environ.get("REVIEW_FLAGS_PNG") or tmp_path / "review-flags.png")
        page.screenshot(path=str(shot), full_page=True)

        page.get_by_role("combobox", name="Checks").click()
        page.get_by_role("option", name="Wrong size").click()
        expect(page.get_by_text("No candidate waiting here is flagged wrong size.", exact=False)).to_be_visible()
        page.screenshot(path=str(shot.with_stem(f"{shot.stem}-empty")))
        page.get_by_role("button", name="Show all").click()
        showing(page, "Alpha card")
