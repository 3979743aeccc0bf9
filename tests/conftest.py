"""Every test gets its own database, data folder and publish folder under tmp_path."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from marketplace_db import Marketplace, start_server  # noqa: E402
from openai_standin import OpenAIStandIn  # noqa: E402
from redis_server import RedisServer  # noqa: E402

from aixchange_images import bulk, catalogue, engines, inspections  # noqa: E402
from aixchange_images.auth import CLI_ACTOR  # noqa: E402
from aixchange_images.config import Settings, load_settings  # noqa: E402
from aixchange_images.models import Solution  # noqa: E402

ENV_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_DEPLOYMENT",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "IMAGE_PROVIDER",
    "IMAGE_MODEL",
    "DALLE_IMAGE_SIZE",
    "DALLE_IMAGE_QUALITY",
    "DALLE_IMAGE_FORMAT",
    "IMAGE_BUDGET_DAILY_USD",
    "IMAGE_BUDGET_MONTHLY_USD",
    "IMAGE_CONCURRENCY",
    "IMAGE_RATE_LIMIT_PER_MINUTE",
    "MARKETPLACE_DATABASE_URL",
    "MARKETPLACE_PULL_MINUTES",
    "SERVICE_RATE_LIMIT",
    "SERVICE_TOTAL_RATE_LIMIT",
    "SERVICE_MAX_BODY_BYTES",
    "SERVICE_FORWARDED_ALLOW_IPS",
    "REDIS_URL",
    *("BFL_API_KEY", "BFL_BASE_URL", "BFL_POLL_SECONDS"),
)
TEST_KEY = "test-key-not-real-0123456789abcdef"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the database, data folder and publish folder at tmp_path; no real key, no .env."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", _database_for(tmp_path))
    monkeypatch.setenv("AIXCHANGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EXTERNAL_IMAGES_PATH", str(tmp_path / "external-images"))
    # The tests make small images (256x256, quick to draw and check); the checks' own tests set 512.
    monkeypatch.setenv("CHECK_MIN_SIDE_PX", "64")
    _clear_streamlit_caches()  # the app caches its engine per server process, i.e. per test run
    yield tmp_path
    inspections.finish()  # a batch returns before its last checks: they end with the test that made them
    engines.dispose_engines()


def _database_for(tmp_path: Path) -> str:
    """A SQLite file per test; with TEST_POSTGRES_URL set, a fresh PostgreSQL database per test instead."""
    server = os.environ.get("TEST_POSTGRES_URL")
    if not server:
        return f"sqlite:///{tmp_path / 'test.db'}"
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(server.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def _clear_streamlit_caches() -> None:
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(scope="session")
def marketplace_server():
    """One PostgreSQL server for the marketplace databases of a test run (password auth over TCP)."""
    server = start_server()
    yield server
    server.__exit__(None, None, None)


@pytest.fixture
def marketplace(marketplace_server, monkeypatch: pytest.MonkeyPatch) -> Marketplace:
    """A fresh marketplace database (its "User" and "Solution" tables), configured as MARKETPLACE_DATABASE_URL."""
    market = Marketplace(marketplace_server)
    monkeypatch.setenv("MARKETPLACE_DATABASE_URL", market.url)
    return market


@pytest.fixture(scope="session")
def redis_server():
    """One redis-server for a test run's job tests (emptied before each test that uses it)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def queue_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The job queue on huey's SQLite storage (the default), then on a real redis-server via REDIS_URL.

    Ask for it before `settings` (or `openai_settings`), which read REDIS_URL when they are made."""
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        server.flush()
        monkeypatch.setenv("REDIS_URL", server.url)
    return request.param


def run_jobs(engine, settings: Settings) -> list[int]:
    """Run every queued or running job to its end in this process, as a worker thread would; their ids."""
    import threading

    from aixchange_images import jobs, runs

    with Session(engine) as session:
        ids = [job.id for job in jobs.recent(session=session, active=True)]
    for job_id in reversed(ids):
        runs.work(engine, settings, job_id, threading.Event())
    return ids


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def engine(settings: Settings):
    return engines.get_engine(settings)


@pytest.fixture
def standin():
    with OpenAIStandIn() as server:
        yield server


@pytest.fixture
def openai_settings(standin: OpenAIStandIn, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings that send the openai provider to the local stand-in with a fake key."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", standin.base_url)
    monkeypatch.setenv("IMAGE_PROVIDER", "openai")
    return load_settings(image_max_retry_wait_seconds=2.0, image_timeout_seconds=5.0)


def pytest_configure(config: pytest.Config) -> None:
    """Browser assertions wait as long as pages may take on a loaded 2-core machine (Playwright's 5 s
    default ran out while a page was still drawing); a wait still ends as soon as the page shows it."""
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)


@pytest.fixture
def browser():
    """A headless Debian Chromium (tests/test_browser.py says how it is started)."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium (make test does it)"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def solution_record(i: int, **overrides) -> dict:
    """A valid AIXchange bulk-import record."""
    record = {
        "title": f"Solution number {i}",
        "description": f"Summarises support tickets number {i} and routes them to the right team.",
        "category": ["Natural Language Processing", "Computer Vision", "Generative AI"][i % 3],
        "provider": "Acme Labs",
        "launchUrl": f"https://example.com/s/{i}",
        "tags": ["support", "nlp"],
    }
    record.update(overrides)
    return record


@pytest.fixture
def make_solutions(engine):
    """Insert n valid solutions through the real importer; returns their ids in order."""

    def make(n: int, **overrides) -> list[str]:
        records = [solution_record(i, **overrides) for i in range(n)]
        with Session(engine) as session:
            report = bulk.import_records(session=session, records=records, actor=CLI_ACTOR)
            assert not report.errors, report.errors
            session.commit()
            by_title = {s.title: s.id for s in catalogue.list_solutions(session=session)}
        return [by_title[r["title"]] for r in records]

    return make


def get_solution(engine, solution_id: str) -> Solution:
    with Session(engine) as session:
        return session.get(Solution, solution_id)


MAIN_SCRIPT = ROOT / "dashboard" / "main.py"  # what the server runs: it routes every run through app.py


def app_test(actor=None):
    """The dashboard in Streamlit's AppTest, signed in as `actor` (an auth.Actor) when given."""
    at = DashboardTest(MAIN_SCRIPT, default_timeout=60)
    if actor is not None:
        at.session_state["actor"] = stored_actor(actor)
    return at


def _dashboard_test_class():  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    class DashboardTest(AppTest):
        """AppTest of the server's main script; `switch_page("pages/x.py")` names page files from the repository root."""

        def switch_page(self, page_path: str) -> AppTest:
            return super().switch_page(str(ROOT / page_path))

    return DashboardTest


DashboardTest = _dashboard_test_class()


def stored_actor(actor):  # type: ignore[no-untyped-def]
    """`actor` as sign-in leaves it: backed by a user row (made here if missing) and a browser session,
    so the app's every-run check sees a real user signed in, as it does in the browser."""
    from dataclasses import replace

    from sqlmodel import select

    from aixchange_images import sessions
    from aixchange_images.models import User

    settings = load_settings()
    with Session(engines.get_engine(settings)) as session:
        user = session.get(User, actor.user_id) if actor.user_id is not None else None
        user = user or session.exec(select(User).where(User.username == actor.username)).first()
        if user is None:
            user = User(username=actor.username, password_hash="not-a-hash: signed in by the test", role=actor.role)
            session.add(user)
            session.flush()
        signed = sessions.start(
            session=session, settings=settings, actor=replace(actor, user_id=user.id, role=user.role)
        )
        session.commit()
        return signed.actor


def open_page(name: str, actor=None):
    """Run the app, switch to pages/<name>.py and check it raised nothing."""
    at = app_test(actor)
    at.run()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def open_tab(at, key: str, label: str):  # type: ignore[no-untyped-def]
    """Open the tab `label` of the tabs keyed `key` that run only when open (st.tabs on_change="rerun")."""
    at.session_state[key] = label
    at.run()
    assert not at.exception, at.exception
    return at
