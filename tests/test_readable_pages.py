"""Pages people can read, through Streamlit's AppTest: titles not ids, no literal None, plain column
names, money as money, user text shown literally, and the controls a role can use (one behaviour each)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import open_page, open_tab, run_jobs
from sqlmodel import Session
from streamlit.proto.Dataframe_pb2 import Dataframe
from streamlit.testing.v1 import AppTest

from aixchange_images import admin, auth, demo, metrics, templates
from aixchange_images.auth import CLI_ACTOR, Actor
from aixchange_images.config import load_settings
from aixchange_images.models import Solution
from ui import WORD_JOINER

ROOT = Path(__file__).resolve().parents[1]
ALICE, PAT, MIA = Actor("alice", "admin"), Actor("pat", "product"), Actor("mia", "manager")
EVIL = "Evil [click me](http://x/phish) ![px](http://x/track.png)"
RAW_COLUMN_NAMES = {
    "duration_ms",
    "cache_hit",
    "rate_limited",
    "p50_ms",
    "p95_ms",
    "cost_usd",
    "solution_id",
    "imageUrl",
}


def shown(markdown: str) -> str:
    """What a reader sees of Markdown that only escapes characters: the backslashes and the invisible
    word joiners (which keep URLs from turning into links) go."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")


def is_literal(markdown: str, text: str) -> bool:
    """`text` appears, and none of its brackets can start a link or an image."""
    return text in shown(markdown) and "[click me](" not in markdown and "![px](" not in markdown


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def rename(engine, solution_id: str, title: str) -> None:
    with Session(engine) as session:
        solution = session.get(Solution, solution_id)
        solution.title = title
        session.add(solution)
        session.commit()


@pytest.fixture
def demo_data(engine, settings):
    demo.load(engine, settings, solutions=30, generations=150, actor=CLI_ACTOR)


# -- money ---------------------------------------------------------------------------------------
def test_overview_shows_nothing_spent_as_zero_dollars(engine, make_solutions):
    make_solutions(2)
    at = open_page("overview", ALICE)
    assert metric(at, "Spent this month") == "$0"


def test_generate_estimates_a_free_run_at_zero_dollars(engine, make_solutions):
    make_solutions(3)
    at = open_page("generate", ALICE)
    assert metric(at, "Estimated cost") == "$0"


def test_a_product_person_on_an_empty_catalogue_is_not_asked_to_import(engine):
    at = open_page("overview", PAT)
    assert [i.value for i in at.info] == ["No solutions yet: an admin imports the catalogue on **Solutions**."]
    assert not [b for b in at.button if b.label == "Load demo data"]


# -- Solutions -----------------------------------------------------------------------------------
def test_solutions_table_has_plain_column_names_and_no_none_cells(engine, make_solutions):
    make_solutions(3)  # no imageUrl: the old table showed None
    at = open_page("solutions", ALICE)
    table = at.dataframe[0].value
    assert not RAW_COLUMN_NAMES & set(table.columns)
    assert table.drop(columns=["Image"]).notna().all().all()
    assert set(table["Image status"]) == {"No image"}


def test_a_managers_selection_only_opens_the_solutions_page(engine, make_solutions):
    make_solutions(2)
    at = open_page("solutions", MIA)
    assert list(at.dataframe[0].proto.selection_mode) == [Dataframe.SelectionMode.SINGLE_ROW]
    assert [c.value for c in at.caption if "Select" in c.value] == ["Select a row to open its page: its image history."]

    at.session_state["solutions-table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()

    assert not at.exception
    links = at.main.get("page_link")  # (the sidebar's link to Jobs is on every page)
    assert [link.label for link in links] == ["Open its page: its image history"]
    assert not [b for b in at.button if "Generate" in b.label]


def test_a_product_person_is_not_told_they_can_edit_solutions(engine, make_solutions):
    make_solutions(2)
    at = open_page("solutions", PAT)
    assert at.dataframe[0].proto.selection_mode  # rows can go to Generate
    hints = [c.value for c in at.caption if "Select rows" in c.value]
    assert hints and not any("edit" in h for h in hints)


def test_the_edit_tab_shows_a_markdown_title_literally(engine, make_solutions):
    [sid] = make_solutions(1)
    rename(engine, sid, EVIL)
    at = open_page("solutions", ALICE)
    at.session_state["solutions-table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    editing = next(c.value for c in at.caption if "Editing" in c.value)
    assert is_literal(editing, EVIL)


def test_the_upload_tab_shows_a_markdown_title_literally(engine, make_solutions):
    [sid] = make_solutions(1)
    rename(engine, sid, EVIL)
    at = open_page("solutions", ALICE)
    at.session_state["solutions-table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    upload = next(m.value for m in at.markdown if "Upload an image for" in m.value)
    assert is_literal(upload, EVIL)


# -- Generate --------------------------------------------------------------------------------------
def test_generates_last_run_lists_titles_and_thumbnails_in_plain_columns(engine, make_solutions):
    make_solutions(2)
    at = open_page("generate", ALICE)
    button(at, "Generate").click().run()
    assert not at.exception
    run_jobs(engine, load_settings())  # the worker's part; the page's live progress reruns it when the job ends
    at.run()
    table = at.dataframe[0].value
    assert not RAW_COLUMN_NAMES & set(table.columns)
    assert sorted(table["Solution"]) == ["Solution number 0", "Solution number 1"]
    assert all(uri.startswith("data:image/jpeg;base64,") for uri in table["Image"])
    assert table.notna().all().all()


def test_a_failure_is_reported_by_title_and_reason_in_words(engine, make_solutions):
    make_solutions(1, description="Shows gore from crime scenes to train forensic investigators.")
    at = open_page("generate", ALICE)
    button(at, "Generate").click().run()
    assert not at.exception
    run_jobs(engine, load_settings())
    at.run()
    line = next(shown(m.value) for m in at.markdown if "✗" in m.value)
    assert line.startswith(":red[✗] Solution number 0 — Blocked by moderation: ")
    assert at.dataframe[0].value.loc[0, "Result"] == "Failed: blocked by moderation"


# -- Metrics ---------------------------------------------------------------------------------------
def test_metrics_puts_what_was_spent_and_what_it_bought_first(engine, demo_data):
    at = open_page("metrics", MIA)
    assert [m.label for m in at.metric][:3] == ["Spent", "Approved and published", "Per approved image"]


def test_metrics_success_rate_axis_never_reads_above_100_percent(engine, demo_data):
    at = open_tab(open_page("metrics", MIA), "metrics-tab", "Attempts and time")
    chart = next(c for c in at.get("plotly_chart") if "success" in c.proto.spec.lower())
    spec = json.loads(chart.proto.spec)
    axis = spec["layout"]["yaxis2"]
    assert axis["tickformat"] == ".0%" and max(axis["tickvals"]) == 1


def test_metrics_has_totals_by_model_and_by_template_version(engine, demo_data):
    at = open_tab(open_page("metrics", MIA), "metrics-tab", "Totals")
    headers = [list(d.value.columns) for d in at.dataframe]
    assert ["Model", "Attempts", "Success rate", "Spent", "Approved images", "Per approved image"] in headers
    assert any(h[0] == "Template version" for h in headers)


def test_metrics_this_month_shows_the_forecast_and_how_it_is_computed(engine, demo_data, monkeypatch):
    monkeypatch.setenv("IMAGE_BUDGET_MONTHLY_USD", "50")
    at = open_page("metrics", MIA)
    assert "Forecast to month end" in [m.label for m in at.metric]
    assert any("spent so far ÷" in shown(c.value) for c in at.caption)


def test_metrics_offers_this_month_and_a_custom_range(engine, demo_data):
    at = open_page("metrics", MIA)
    period = at.get("button_group")[0]
    assert period.options == ["Last 7 days", "Last 30 days", "Last 90 days", "This month", "Custom"]

    thirty_days = metric(at, "Attempts")
    period.set_value("custom").run()
    today = date.today()
    at.date_input[0].set_value((today - timedelta(days=10), today)).run()

    assert not at.exception
    scope = metrics.period_scope("custom", start=today - timedelta(days=10), end=today)
    with Session(engine) as session:
        expected = metrics.headline(session=session, scope=scope)["attempts"]
    assert metric(at, "Attempts") == f"{expected:,}" != thirty_days


# -- Prompt Studio ---------------------------------------------------------------------------------
def test_after_saving_the_editor_shows_the_new_version_and_the_diff_compares_it(engine, make_solutions):
    make_solutions(1)
    at = open_page("prompt_studio", PAT)
    button(at, "Edit as a new version").click().run()
    next(t for t in at.text_area if t.label == "Template text").input("A blueprint card for {title}.").run()
    button(at, "Save as new version").click().run()
    assert not at.exception
    assert at.selectbox(key="ps_view").value == 2
    assert at.code[0].value == "A blueprint card for {title}."
    assert (at.selectbox(key="ps_diff_a").value, at.selectbox(key="ps_diff_b").value) == ("default@1", "default@2")


def test_version_choices_are_short_enough_not_to_be_cut_off(engine):
    with Session(engine) as session:
        templates.save_version(session=session, actor=PAT, name="default", body="A card for {title}.", note="x" * 300)
        session.commit()
    at = open_page("prompt_studio", PAT)
    assert all(len(option) <= 40 for option in at.selectbox(key="ps_view").options)


# -- Settings: the audit log -----------------------------------------------------------------------
def test_the_audit_log_reads_as_sentences(engine):
    with Session(engine) as session:
        admin.save_overrides(
            session=session, settings=load_settings(), actor=CLI_ACTOR, changes={"image_budget_daily_usd": 5.0}
        )
        auth.add_user(session=session, actor=CLI_ACTOR, username="mia", password="manager pass", role="manager")
        session.commit()
    at = open_page("settings", ALICE)
    log = next(d.value for d in at.dataframe if "What happened" in d.value.columns)
    assert "cli changed the daily budget from the server's setting to $5" in list(log["What happened"])
    assert "cli added the user mia as a manager" in list(log["What happened"])


def test_the_users_table_says_never_instead_of_none(engine):
    at = open_page("settings", ALICE)
    users = at.dataframe[0].value
    assert users.notna().all().all()


# -- errors --------------------------------------------------------------------------------------
def _raises_a_user_error_quoting_a_title() -> None:
    import ui
    from aixchange_images.config import UserError

    def fail() -> None:
        raise UserError("The title Evil [click me](http://x/phish) ![px](http://x/track.png) is taken (OSError).")

    ui.attempt(fail)


def test_an_error_quoting_user_text_is_shown_literally_without_class_names(engine):
    at = AppTest.from_function(_raises_a_user_error_quoting_a_title, default_timeout=30)
    at.run()
    assert not at.exception
    message = at.error[0].value
    assert is_literal(message, EVIL) and "OSError" not in message


@pytest.mark.parametrize(
    ("actor", "pages"),
    [
        (ALICE, ["overview", "solutions", "generate", "jobs", "metrics", "prompt_studio", "marketplace", "settings"]),
        (PAT, ["overview", "solutions", "generate", "jobs", "metrics", "prompt_studio"]),
        (MIA, ["overview", "solutions", "jobs", "metrics"]),
    ],
)
def test_every_page_a_role_sees_runs_on_demo_data(engine, demo_data, actor, pages):
    at = open_page("overview", actor)
    for page in pages:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert at.title
