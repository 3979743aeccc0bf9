"""The dashboard through Streamlit's AppTest: the gate, roles, and one real behaviour per page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import app_test as app
from conftest import open_page, open_tab, run_jobs, stored_actor
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from aixchange_images import auth, batch, demo, throttle
from aixchange_images.auth import Actor
from aixchange_images.config import load_settings
from aixchange_images.models import AuditEvent, Candidate, CandidateState, Solution, User, utcnow

ROOT = Path(__file__).resolve().parents[1]


def shown(markdown: str) -> str:
    """Markdown that ui.literal escaped, as a reader sees it."""
    return re.sub(r"\\(.)", r"\1", markdown)


APP = str(ROOT / "app.py")
ALL_PAGES = [
    "overview",
    "solutions",
    "solution",
    "generate",
    "jobs",
    "review",
    "metrics",
    "prompt_studio",
    "marketplace",
    "settings",
]


def add_user(engine, username="alice", password="correct horse", role="admin"):
    with Session(engine) as session:
        auth.add_user(session=session, actor=auth.CLI_ACTOR, username=username, password=password, role=role)
        session.commit()


@pytest.fixture
def demo_data(engine, settings):
    demo.load(engine, settings, solutions=30, generations=150, actor=auth.CLI_ACTOR)


# -- the gate ------------------------------------------------------------------------------------
def test_signed_out_visitor_sees_only_the_sign_in_form(engine):
    add_user(engine)
    at = app()
    at.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert any(b.label == "Sign in" for b in at.button)
    assert [t.value for t in at.title] == ["AIXchange Images"]


@pytest.mark.parametrize("page", ALL_PAGES)
def test_no_page_is_registered_while_signed_out(engine, page):
    add_user(engine)
    at = app()
    at.run()
    # Signed out, every page's URL shows the sign-in form and no page file is registered, so none can
    # be switched to (tests/test_browser_sessions.py checks the same through direct URLs).
    with pytest.raises(ValueError, match="Could not find a navigation page") as refused:
        at.switch_page(f"pages/{page}.py")
    assert ".py" not in str(refused.value).split("Known pages:")[1]
    assert [t.value for t in at.title] == ["AIXchange Images"]


@pytest.mark.parametrize("page", ALL_PAGES)
def test_a_page_file_run_on_its_own_stops_at_its_guard(engine, page):
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert any("Sign in" in w.value for w in at.warning)
    assert not at.title


def test_signing_in_with_the_right_password_opens_the_overview(engine):
    add_user(engine)
    at = app()
    at.run()
    at.text_input[0].input("alice")
    at.text_input[1].input("correct horse")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["actor"] == Actor("alice", "admin", user_id=1)
    assert "Overview" in [t.value for t in at.title]


def sign_in_refusal(at: AppTest, username: str, password: str) -> str:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    assert not at.exception
    assert "actor" not in at.session_state
    [error] = at.error
    return error.value


def test_a_wrong_password_and_an_unknown_name_get_the_same_sentence(engine):
    add_user(engine)
    at = app()
    at.run()
    wrong = sign_in_refusal(at, "alice", "wrong password")
    assert wrong == "The username or password is wrong, or too many attempts were made; try again."
    assert sign_in_refusal(at, "nobody", "wrong password") == wrong


def test_a_throttled_address_is_refused_the_same_way_even_with_the_right_password(engine):
    add_user(engine)
    with Session(engine) as session:  # ten failures from this address (AppTest connects as 'local') a moment ago
        for _ in range(10):
            throttle.record_failure(session=session, keys=[throttle.client_key("local")], now=utcnow())
        session.commit()
    at = app()
    at.run()
    sentence = r"The username or password is wrong, or too many attempts were made; try again in \d+ seconds\."
    assert re.fullmatch(sentence, sign_in_refusal(at, "alice", "correct horse"))
    assert re.fullmatch(sentence, sign_in_refusal(at, "nobody", "any password"))


def test_first_run_needs_the_setup_token_to_create_the_admin(engine, settings):
    at = app()
    at.run()
    assert [t.label for t in at.text_input] == ["Set-up token", "Username", "Password"]
    token = (settings.data_dir / auth.SETUP_TOKEN_FILE).read_text().strip()
    at.text_input[0].input("not-the-token")
    at.text_input[1].input("root")
    at.text_input[2].input("long enough password")
    at.button[0].click().run()
    assert any("set-up token is wrong" in shown(e.value) for e in at.error)
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []
    at.text_input[0].input(token)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["actor"] == Actor("root", "admin", user_id=1)
    assert not (settings.data_dir / auth.SETUP_TOKEN_FILE).exists()


def test_a_manager_sees_no_generate_review_or_settings_controls(engine, demo_data):
    at = open_page("overview", Actor("mia", "manager"))
    assert not [b for b in at.button if b.label in ("Approve", "Generate", "Save defaults", "Load demo data")]
    for page in ("generate", "review", "settings"):  # not routed for the role: their URLs say so instead
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"pages/{page}.py")
    guarded = AppTest.from_file(str(ROOT / "pages" / "review.py"), default_timeout=30)
    guarded.session_state["actor"] = stored_actor(Actor("mia", "manager"))
    guarded.run()
    assert any("does not give access" in e.value for e in guarded.error)
    assert not [b for b in guarded.button if b.label == "Approve"]


# -- one behaviour per page ------------------------------------------------------------------------
def test_overview_offers_demo_data_on_an_empty_catalogue_and_loads_it(engine):
    at = open_page("overview", Actor("alice", "admin"))
    assert any("No solutions yet" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Load demo data").click().run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert "Missing an image" in labels and "Awaiting review" in labels
    with Session(engine) as session:
        assert len(session.exec(select(Solution.id)).all()) == 120


def test_solutions_page_lists_a_page_of_the_catalogue_with_thumbnails(engine, demo_data):
    at = open_page("solutions", Actor("mia", "manager"))
    frame = at.dataframe[0].value
    assert len(frame) == 25
    assert frame["Image"].notna().any()
    assert frame["Image"].dropna().iloc[0].startswith("data:image/jpeg;base64,")
    assert not [t for t in at.tabs if t.label == "Import / export"]  # managers read only


def test_solutions_import_reports_each_invalid_record(engine):
    at = open_page("solutions", Actor("alice", "admin"))
    assert any(t.label == "Import / export" for t in at.tabs)
    # AppTest cannot drive st.file_uploader; the importer behind it is tested in test_catalogue.


def test_generate_queues_a_job_that_a_worker_runs_with_the_local_provider(engine, make_solutions):
    ids = make_solutions(3)
    at = open_page("generate", Actor("alice", "admin"))
    assert [m.value for m in at.metric][:3] == ["3", "0", "$0"]
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception
    assert any("0 of 3 done" in p.proto.text for p in at.get("progress"))  # its live progress, queued
    with Session(engine) as session:
        assert session.exec(select(Candidate)).all() == []  # queued for a worker, not run in the page
    run_jobs(engine, load_settings())
    with Session(engine) as session:
        stored = session.exec(select(Candidate.solution_id)).all()
    assert sorted(stored) == sorted(ids)


def test_generate_does_not_redo_its_estimate_on_every_rerun(engine, make_solutions, monkeypatch):
    make_solutions(3)
    made = []
    estimate_batch = batch.estimate_batch
    monkeypatch.setattr(batch, "estimate_batch", lambda *args: made.append(args) or estimate_batch(*args))
    at = open_page("generate", Actor("alice", "admin"))

    at.run()
    next(s for s in at.selectbox if s.label == "Quality").select("high").run()

    assert not at.exception
    assert [m.value for m in at.metric][:3] == ["3", "0", "$0"]
    assert [options.quality for _, _, _, options in made] == ["medium", "high"]  # once per choice of options


def test_review_approve_publishes_the_candidate(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    at = open_page("generate", Actor("alice", "admin"))
    next(b for b in at.button if b.label == "Generate").click().run()
    run_jobs(engine, load_settings())  # the worker's part
    at.switch_page("pages/review.py").run()
    assert not at.exception
    next(b for b in at.button if b.label == "Approve").click().run()
    assert not at.exception
    with Session(engine) as session:
        solution = session.get(Solution, sid)
        actions = session.exec(select(AuditEvent.action)).all()
    assert solution.image_status == "approved"
    published = list((settings.publish_dir).iterdir())
    assert [p.name for p in published] == [solution.image_url.rsplit("/", 1)[1]]
    assert "image.approve" in actions


def test_review_reject_records_the_reason(engine, make_solutions):
    [sid] = make_solutions(1)
    at = open_page("generate", Actor("alice", "admin"))
    next(b for b in at.button if b.label == "Generate").click().run()
    run_jobs(engine, load_settings())  # the worker's part
    at.switch_page("pages/review.py").run()
    at.selectbox(key=next(s.key for s in at.selectbox if s.key and s.key.startswith("reason-"))).select("off_brand")
    next(b for b in at.button if b.label == "Reject candidate").click().run()
    assert not at.exception
    with Session(engine) as session:
        candidate = session.exec(select(Candidate).where(Candidate.solution_id == sid)).one()
    assert candidate.state == CandidateState.rejected and candidate.reject_reason == "off_brand"


def test_metrics_page_shows_headline_figures_and_charts(engine, demo_data):
    at = open_page("metrics", Actor("mia", "manager"))
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["Spent", "Approved and published", "Per approved image", "Spent on rejected images"]
    assert {"Attempts", "Success rate", "Typical time", "Slowest 5% take", "Saved by the cache"} <= set(labels)
    assert int(next(m.value for m in at.metric if m.label == "Attempts").replace(",", "")) > 0
    titles = chart_titles(at)
    for tab in ("Attempts and time", "Totals", "Storage"):
        titles |= chart_titles(open_tab(at, "metrics-tab", tab))
    assert titles == {
        "Spend so far this month, the forecast to its end, and the monthly budget",
        "Spend per day by model",
        "Spend per day by template version",
        "Money the cache saved",
        "Attempts and success rate",
        "Why attempts failed",
        "Generation time (paid calls that succeeded)",
        "Space on disk",
        "Spend by provider",
    }


def chart_titles(at) -> set[str]:  # type: ignore[no-untyped-def]
    return {json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")}


def test_metrics_page_queries_and_draws_only_the_open_tab(engine, demo_data):
    at = open_page("metrics", Actor("mia", "manager"))
    assert [t.label for t in at.tabs][:4] == ["Spend per day", "Attempts and time", "Totals", "Storage"]
    assert len(at.get("plotly_chart")) == 4 and not at.dataframe  # this month's chart and the first tab's three
    open_tab(at, "metrics-tab", "Totals")
    assert chart_titles(at) - {"Spend so far this month, the forecast to its end, and the monthly budget"} == {
        "Spend by provider"
    }
    assert len(at.get("plotly_chart")) == 2 and len(at.dataframe) == 3


def test_prompt_studio_previews_the_rendered_prompt(engine, make_solutions):
    make_solutions(2)
    at = open_page("prompt_studio", Actor("pat", "product"))
    assert "Support tickets number" in at.text_area[0].value or "support tickets number" in at.text_area[0].value


def test_settings_adds_a_user_and_audits_a_budget_change(engine):
    at = open_page("settings", Actor("alice", "admin"))
    name_box = next(t for t in at.text_input if t.label == "New username")
    name_box.input("mia")
    next(t for t in at.text_input if t.label == "Initial password").input("manager pass")
    next(b for b in at.button if b.label == "Add user").click().run()
    assert not at.exception
    daily = next(n for n in at.number_input if n.label.startswith("Daily budget"))
    daily.set_value(5.0)
    next(b for b in at.button if b.label == "Save defaults").click().run()
    assert not at.exception
    with Session(engine) as session:
        users = {u.username: u.role for u in session.exec(select(User)).all()}
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "settings.change")).all()
    assert users == {"alice": "admin", "mia": "manager"}  # alice is the admin signed in
    assert any(e.target == "image_budget_daily_usd" and e.detail["new"] == 5.0 for e in events)


def test_generate_warns_about_a_model_that_is_shut_down(engine, make_solutions, monkeypatch):
    monkeypatch.setenv("IMAGE_MODEL", "gpt-image-1")
    monkeypatch.setenv("IMAGE_PROVIDER", "openai")
    make_solutions(1)
    at = open_page("generate", Actor("alice", "admin"))
    assert any("gpt-image-1 was shut down on 2026-10-23" in shown(w.value) for w in at.warning)


@pytest.mark.parametrize(("provider", "variable"), [("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")])
def test_generate_says_which_variable_a_provider_lacks_and_queues_nothing(engine, make_solutions, provider, variable):
    make_solutions(1)
    at = open_page("generate", Actor("alice", "admin"))
    assert [b.label for b in at.button if b.label == "Generate"]  # with the local provider it may run
    next(s for s in at.selectbox if s.label == "Provider").set_value(provider).run()

    assert any(f"The {provider} provider cannot run here: {variable} is not set" in shown(e.value) for e in at.error)
    assert not [b for b in at.button if b.label == "Generate"]


@pytest.mark.parametrize(
    ("variable", "value", "shown_instead", "never_shown"),
    [
        ("OPENAI_API_KEY", "fake-key-abcdefghijklmnopqrstuvwxyz0123", "ready", ["abcdefghijklmnop", "fake-key"]),
        (
            "OPENAI_BASE_URL",
            "https://user:hunter2-secret@proxy.example.com:8443/v1",
            "https://proxy.example.com:8443/v1",
            ["hunter2", "user:"],
        ),
    ],
)
def test_settings_never_shows_a_secret(engine, monkeypatch, variable, value, shown_instead, never_shown):
    monkeypatch.setenv(variable, value)
    at = open_page("settings", Actor("alice", "admin"))
    (providers,) = [t.value for t in at.dataframe if "Provider" in t.value.columns]
    openai = providers[providers["Provider"] == "OpenAI"].iloc[0]
    shown = " ".join([*(m.value for m in at.markdown), *(t.value.to_string() for t in at.dataframe)])
    assert shown_instead in (openai["Ready"], openai["Address"])
    assert not [secret for secret in never_shown if secret in shown]
