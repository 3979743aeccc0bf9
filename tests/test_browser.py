"""End to end in a real headless Chromium: sign in, generate (local provider), approve, see the file."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import solution_record
from sqlmodel import Session, select

from aixchange_images.config import load_settings
from aixchange_images.engines import get_engine
from aixchange_images.launch import DASHBOARD
from aixchange_images.models import Attempt

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)  # polling a condition under a deadline, not standing in for one
    raise AssertionError(f"timed out waiting for {what}")


SCRIPT_IDLE = (
    "document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state') === 'notRunning'"
)


def idle(page) -> None:  # type: ignore[no-untyped-def]
    """Streamlit has finished its run, so no faded copy of an element from the run before is left to match."""
    page.wait_for_function(SCRIPT_IDLE, timeout=60_000)


def _healthy(url: str, path: str = "/_stcore/health") -> bool:
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def server(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "aixchange_images"]
    subprocess.run(
        [*cli, "users", "add", "admin", "--role", "admin"],
        input="browser-pass-123\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    catalogue = tmp_path / "solutions.json"
    catalogue.write_text(
        json.dumps({"solutions": [solution_record(1, title="Vision Quality Inspector", category="Computer Vision")]})
    )
    subprocess.run([*cli, "import", str(catalogue)], env=env, check=True, capture_output=True)
    with streamlit_server(tmp_path, env) as url, worker(tmp_path, env):
        yield url


@contextmanager
def worker(cwd: Path, env: dict[str, str]):
    """`python -m aixchange_images worker` beside the dashboard, as `make run` starts it."""
    with open(cwd / "worker.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aixchange_images", "worker", "--concurrency", "4"],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=60)


@contextmanager
def streamlit_server(cwd: Path, env: dict[str, str], script: Path = DASHBOARD):
    """The dashboard's server (as `up` starts it), or `script`, on a free port of 127.0.0.1, in `cwd`; yields
    its URL once healthy."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = cwd / "streamlit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(script),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until(lambda: _healthy(url) or proc.poll() is not None, 60, "the streamlit server")
            assert proc.poll() is None, log_path.read_text()
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_admin_signs_in_generates_approves_and_the_file_is_published(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium (make test does it)"
    publish = tmp_path / "external-images" / "solutions"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(30_000)

        page.goto(f"{server}/review")  # a page's URL before signing in shows only the sign-in form
        expect(page.get_by_label("Username")).to_be_visible()
        expect(page.get_by_role("heading", name="Review")).to_have_count(0)

        page.get_by_role("textbox", name="Username").fill("admin")
        page.get_by_role("textbox", name="Password").fill("browser-pass-123")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Review")).to_be_visible()  # the link's page, once signed in

        page.get_by_role("link", name="Generate").first.click()
        expect(page.get_by_role("heading", name="Generate")).to_be_visible()
        page.get_by_role("button", name="Generate").click()  # queued; the worker runs it, the page follows it
        expect(page.get_by_text("Job 1 is done.")).to_be_visible(timeout=60_000)
        # the job's end reran the page: its Last run table, built from the job's attempts, took the note's place
        expect(page.get_by_text("Its results are listed here when it ends")).to_have_count(0)
        expect(page.get_by_test_id("stDataFrame")).to_be_visible()

        page.get_by_role("link", name="Review").first.click()
        expect(page.get_by_role("heading", name="Vision Quality Inspector")).to_be_visible()
        page.get_by_role("button", name="Approve").first.click()
        files = _wait_until(lambda: list(publish.glob("vision_quality_inspector-*.png")), 30, "the published file")
        expect(page.get_by_role("button", name="Undo")).to_be_visible()  # the queue moved on; Undo stays
        shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
        page.screenshot(path=str(shots / "review.png"), full_page=True)
        browser.close()
    assert len(files) == 1 and files[0].stat().st_size > 10_000


def test_stop_ends_a_running_job_and_says_how_far_it_got(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    total = 300  # enough that the job is still going when Stop is clicked
    records = {"solutions": [solution_record(i, title=f"Batch solution {i}") for i in range(total)]}
    many = tmp_path / "many.json"
    many.write_text(json.dumps(records))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "aixchange_images", "import", str(many)], env=env, check=True, capture_output=True
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(server)
        page.get_by_role("textbox", name="Username").fill("admin")
        page.get_by_role("textbox", name="Password").fill("browser-pass-123")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Generate").first.click()
        expect(page.get_by_text(f"Missing an image ({total + 1})")).to_be_visible()
        page.get_by_role("button", name="Generate").click()
        # Stop once the worker has got going (a job stopped before its first item ends with nothing made)
        under_way = re.compile(rf"\b[1-9][0-9,]* of {total + 1} done")
        expect(page.get_by_text(under_way).first).to_be_visible()  # here and in the sidebar
        page.get_by_role("button", name="Stop").click()
        stopped = page.get_by_text("Stopped after")
        expect(stopped).to_be_visible()
        reported = int(stopped.inner_text().split("Stopped after ")[1].split(" of ")[0])
        browser.close()

    engine = get_engine(load_settings())  # the server's database, SQLite or PostgreSQL

    def settled() -> list[str] | None:
        with Session(engine) as session:
            statuses = session.exec(select(Attempt.status)).all()
        return None if "running" in statuses else [*statuses, "settled"]  # truthy even with no call made

    made = len(_wait_until(settled, 30, "calls in flight to finish")) - 1
    assert 0 < reported < total + 1
    # the job ends once the calls in flight have finished: it counts every call that was made
    assert reported == made, (reported, made)
    assert made < total + 1  # the rest were never started
