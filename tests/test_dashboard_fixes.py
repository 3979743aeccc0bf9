"""Reviewed dashboard defects: a fresh actor on every run, user changes, settings, prices, edits, prompts."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import app_test, open_page, run_jobs, stored_actor
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from aixchange_images import admin, auth, provider_registry
from aixchange_images.auth import Actor
from aixchange_images.config import ConfigError, UserError, load_settings
from aixchange_images.models import Price, Setting, Solution, User

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse"


def add_user(engine, username: str, role: str) -> None:
    with Session(engine) as session:
        auth.add_user(session=session, actor=auth.CLI_ACTOR, username=username, password=PASSWORD, role=role)
        session.commit()


def signed_in(username: str) -> AppTest:
    """The app after `username` signed in through the real form."""
    at = app_test()
    at.run()
    at.text_input[0].input(username)
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["actor"].username == username
    return at


def user(engine, username: str) -> User:
    with Session(engine) as session:
        return session.exec(select(User).where(User.username == username)).one()


# -- 1. the signed-in actor is read from the database on every run ----------------------------------
def remembered(engine, username: str, role: str) -> AppTest:
    """The app with `username` signed in as `role` (what sign-in leaves in the session), not yet run."""
    return app_test(Actor(username, role, user_id=user(engine, username).id))


def test_a_user_disabled_while_signed_in_is_signed_out_on_the_next_run(engine):
    add_user(engine, "alice", "admin")
    add_user(engine, "bob", "admin")
    with Session(engine) as session:
        auth.set_disabled(session=session, actor=auth.CLI_ACTOR, username="bob", disabled=True)
        session.commit()
    at = remembered(engine, "bob", "admin")
    at.run()
    assert not at.exception
    assert "actor" not in at.session_state
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert any("You were signed out" in w.value for w in at.warning)


def test_a_user_deleted_while_signed_in_is_signed_out_on_the_next_run(engine):
    add_user(engine, "alice", "admin")
    add_user(engine, "bob", "product")
    at = remembered(engine, "bob", "product")
    with Session(engine) as session:
        session.delete(session.exec(select(User).where(User.username == "bob")).one())
        session.commit()
    at.run()
    assert not at.exception
    assert "actor" not in at.session_state
    assert any(b.label == "Sign in" for b in at.button)


def test_a_demoted_admin_is_signed_out_and_signs_in_again_into_the_new_roles_pages(engine):
    add_user(engine, "alice", "admin")
    add_user(engine, "bob", "admin")
    at = remembered(engine, "bob", "admin")
    at.run()
    with Session(engine) as session:
        auth.set_role(session=session, actor=auth.CLI_ACTOR, username="bob", role="manager")
        session.commit()
    at.run()
    assert not at.exception
    assert "actor" not in at.session_state and any(b.label == "Sign in" for b in at.button)
    at = signed_in("bob")
    assert at.session_state["actor"].role == "manager"
    assert any("(manager)" in c.value for c in at.sidebar.caption)
    with pytest.raises(ValueError, match="Known pages") as refused:
        at.switch_page("pages/settings.py")
    known = str(refused.value).split("Known pages:")[1]
    assert "metrics.py" in known and "settings.py" not in known and "review.py" not in known


def test_a_user_signed_in_through_the_form_is_remembered_with_their_id(engine):
    add_user(engine, "alice", "admin")
    at = signed_in("alice")
    assert at.session_state["actor"] == Actor("alice", "admin", user_id=user(engine, "alice").id)


def test_a_page_guard_uses_the_role_in_the_database_not_the_one_remembered(engine):
    add_user(engine, "alice", "admin")
    add_user(engine, "bob", "manager")
    bob = user(engine, "bob")
    page = AppTest.from_file(str(ROOT / "pages" / "settings.py"), default_timeout=30)
    signed = stored_actor(Actor("bob", "manager", user_id=bob.id))
    page.session_state["actor"] = replace(signed, role="admin")  # remembered from before a demotion
    page.run()
    assert not page.exception
    assert any("(manager) does not give access" in e.value for e in page.error)
    assert not page.title


def test_load_actor_refuses_a_disabled_missing_or_replaced_user(engine):
    add_user(engine, "alice", "admin")
    add_user(engine, "mia", "manager")
    mia = user(engine, "mia")
    remembered = Actor("mia", "admin", mia.id)  # a role from before a change
    with Session(engine) as session:
        assert auth.load_actor(session=session, actor=remembered) == Actor("mia", "manager", mia.id)
        assert auth.load_actor(session=session, actor=Actor("mia", "manager", mia.id + 100)) is None
        assert auth.load_actor(session=session, actor=Actor("mia", "manager")) is None  # no id: nobody
        # the id now names someone else (SQLite hands out a deleted highest id again)
        assert auth.load_actor(session=session, actor=Actor("mallory", "manager", mia.id)) is None
        auth.set_disabled(session=session, actor=auth.CLI_ACTOR, username="mia", disabled=True)
        session.flush()
        assert auth.load_actor(session=session, actor=remembered) is None


# -- 2. role and access are separate actions --------------------------------------------------------
def settings_page_as_alice(engine) -> AppTest:
    add_user(engine, "alice", "admin")
    add_user(engine, "mia", "manager")
    at = signed_in("alice")
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    return at


def test_disabling_a_manager_leaves_their_role_manager(engine):
    at = settings_page_as_alice(engine)
    at.selectbox(key="change-user").select("mia").run()
    assert at.selectbox(key="role-of-mia").value == "manager"  # starts from the user's current role
    next(b for b in at.button if b.label == "Disable user").click().run()
    assert not at.exception
    mia = user(engine, "mia")
    assert mia.disabled and mia.role == "manager"
    assert any(b.label == "Enable user" for b in at.button)


def test_saving_a_role_leaves_the_user_enabled(engine):
    at = settings_page_as_alice(engine)
    at.selectbox(key="change-user").select("mia").run()
    at.selectbox(key="role-of-mia").select("product").run()
    next(b for b in at.button if b.label == "Save role").click().run()
    assert not at.exception
    mia = user(engine, "mia")
    assert mia.role == "product" and not mia.disabled


# -- 3. Save defaults stores only what changed ---------------------------------------------------------
def test_save_defaults_stores_only_the_changed_field(engine):
    at = open_page("settings", Actor("alice", "admin"))
    next(n for n in at.number_input if n.label.startswith("Daily budget")).set_value(5.0)
    next(b for b in at.button if b.label == "Save defaults").click().run()
    assert not at.exception
    with Session(engine) as session:
        assert admin.overrides(session=session) == {"image_budget_daily_usd": 5.0}


def test_save_defaults_without_a_change_stores_nothing(engine):
    at = open_page("settings", Actor("alice", "admin"))
    next(b for b in at.button if b.label == "Save defaults").click().run()
    assert not at.exception
    assert any("Nothing changed" in i.value for i in at.info)
    with Session(engine) as session:
        assert session.exec(select(Setting)).all() == []


def test_changed_settings_compares_with_the_provider_in_use(settings):
    values = {"image_provider": provider_registry.chosen(settings), "image_concurrency": settings.image_concurrency + 1}
    assert admin.changed_settings(settings=settings, values=values) == {
        "image_concurrency": settings.image_concurrency + 1
    }


# -- 4. prices: empty, NaN, negative or infinite cells change nothing ----------------------------------
@pytest.mark.parametrize("bad", [None, math.nan, -1.0, math.inf, -math.inf, "abc"])
def test_set_price_refuses_a_price_that_is_not_a_finite_number_of_zero_or_more(engine, bad):
    with Session(engine) as session:
        admin.set_price(
            session=session, actor=auth.CLI_ACTOR, model="m1", text_input=1.0, image_input=2.0, image_output=3.0
        )
        session.commit()
        with pytest.raises(ConfigError, match=r"^The image output price of m1 must be a number of 0 or more, not "):
            admin.set_price(
                session=session, actor=auth.CLI_ACTOR, model="m1", text_input=1.0, image_input=2.0, image_output=bad
            )
        session.rollback()
        price = session.get(Price, "m1")
    assert (price.text_input_per_m, price.image_input_per_m, price.image_output_per_m) == (1.0, 2.0, 3.0)
    assert issubclass(ConfigError, UserError)


def test_the_price_editor_refuses_an_emptied_cell_with_one_sentence(engine):
    with Session(engine) as session:
        admin.set_price(
            session=session, actor=auth.CLI_ACTOR, model="m1", text_input=1.0, image_input=2.0, image_output=3.0
        )
        session.commit()
    at = open_page("settings", Actor("alice", "admin"))
    row = next(d for d in at.dataframe if d.key == "prices").value["model"].tolist().index("m1")
    at.session_state["prices"] = {"edited_rows": {row: {"image out": None}}, "added_rows": [], "deleted_rows": []}
    at.run()
    next(b for b in at.button if b.label == "Save prices").click().run()
    assert not at.exception
    shown = [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]  # ui.literal escapes Markdown
    assert any("image output price of m1 must be a number of 0 or more, not empty" in e for e in shown)
    with Session(engine) as session:
        assert session.get(Price, "m1").image_output_per_m == 3.0


# -- 5. editing a solution keeps the fields the form does not show ---------------------------------------
def test_editing_a_solution_keeps_published_flag_source_code_url_and_metadata(engine, make_solutions):
    [sid] = make_solutions(
        1,
        isPublished=False,
        sourceCodeUrl="https://example.com/code",
        metadata={"customFields": {"team": "support"}},
        status="Pending",
        tokenCost=7,
        version="2.1.0",
    )
    at = app_test(Actor("alice", "admin"))
    at.session_state["solutions-table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.switch_page("pages/solutions.py").run()
    assert not at.exception
    title = next(t for t in at.text_input if t.label == "Title")
    assert title.value == "Solution number 0"  # the form edits the selected solution
    title.input("Solution number 0, renamed")
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception
    with Session(engine) as session:
        solution = session.get(Solution, sid)
    assert solution.title == "Solution number 0, renamed"
    assert solution.is_published is False
    assert solution.source_code_url == "https://example.com/code"
    assert solution.metadata_["customFields"] == {"team": "support"}
    assert (solution.status, solution.token_cost, solution.version) == ("Pending", 7, "2.1.0")


# -- 6. prompts are shown as written, not as markdown ---------------------------------------------------
def test_review_shows_the_prompt_literally(engine, make_solutions):
    make_solutions(1, description="Routes **urgent** tickets to the _right_ team.")
    at = open_page("generate", Actor("alice", "admin"))
    next(b for b in at.button if b.label == "Generate").click().run()
    run_jobs(engine, load_settings())  # the worker's part
    at.switch_page("pages/review.py").run()
    assert not at.exception
    assert any("**urgent**" in c.value and "_right_" in c.value for c in at.code)
    assert not any("urgent" in m.value for m in at.markdown)
