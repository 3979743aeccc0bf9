"""The solution page through AppTest: a deep link, the history, rollback (asking first when it leaves no image)."""

from __future__ import annotations

from conftest import app_test, get_solution, open_page
from sqlmodel import Session, select
from test_review_routine import EVIL_TITLE, EVIL_URL, MARKUP, generate, markdown_texts

from aixchange_images import review
from aixchange_images.auth import CLI_ACTOR, Actor
from aixchange_images.models import PLACEHOLDER_URL, Candidate, Publication

ADMIN = Actor("alice", "admin")


def approve_first(engine, settings, solution_id: str) -> Publication:
    with Session(engine, expire_on_commit=False) as session:
        first = session.exec(select(Candidate).where(Candidate.solution_id == solution_id)).first()
        publication = review.approve(session=session, settings=settings, candidate_id=first.id, actor=CLI_ACTOR)
        session.commit()
    return publication


def solution_page(solution_id: str | None, actor: Actor = ADMIN):
    """The app on /solution?id=<solution_id>."""
    at = app_test(actor)
    if solution_id is not None:
        at.query_params["id"] = solution_id
    at.run()
    at.switch_page("pages/solution.py").run()
    assert not at.exception, at.exception
    return at


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_a_deep_link_shows_the_solution_its_live_image_and_history(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid], candidates=2)
    publication = approve_first(engine, settings, sid)

    at = solution_page(sid)

    assert at.subheader[0].value == "Solution number 0"
    shown = [t.value for t in at.text]
    assert any(t.startswith(f"Live: {publication.image_url}, since ") for t in shown)
    assert "Rolling back restores no image." in shown
    history = next(d for d in at.dataframe).value
    assert history["file"].tolist() == [publication.file_name] and history["live"].tolist() == [True]
    assert len([h for h in at.get("html")]) >= 3  # the card and both candidates


def test_a_title_and_an_imported_image_url_are_shown_literally(engine, settings, make_solutions):
    [sid] = make_solutions(1, title=EVIL_TITLE, category="Evil [cat](http://x/phish)", imageUrl=EVIL_URL)
    generate(engine, settings, [sid], candidates=2)
    approve_first(engine, settings, sid)

    at = solution_page(sid)

    assert f"Rolling back restores {EVIL_URL}." in [t.value for t in at.text]  # as written, in plain text
    leaks = [t for t in markdown_texts(at) if any(m in t for m in MARKUP) or "`![" in t]
    assert not leaks, leaks


def test_rolling_back_to_no_image_asks_first(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    publication = approve_first(engine, settings, sid)
    at = solution_page(sid)

    button(at, "Roll back").click().run()
    assert not at.exception
    assert any("will show no image until another image is approved" in t.value for t in at.text)
    assert get_solution(engine, sid).image_url == publication.image_url  # nothing yet

    button(at, "Roll back to no image").click().run()

    assert not at.exception
    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (None, "none")
    assert [t.value for t in at.toast] == ["Rolled back."]


def test_cancel_leaves_the_image_live(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    publication = approve_first(engine, settings, sid)
    at = solution_page(sid)
    button(at, "Roll back").click().run()

    button(at, "Cancel").click().run()

    assert not at.exception
    assert get_solution(engine, sid).image_url == publication.image_url
    assert not [b for b in at.button if b.label == "Roll back to no image"]  # the dialog is closed


def test_rolling_back_to_an_earlier_image_needs_no_confirmation(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    first = approve_first(engine, settings, sid)
    generate(engine, settings, [sid], use_cache=False)
    with Session(engine) as session:
        newer = session.exec(select(Candidate).where(Candidate.state == "pending")).one()
        review.approve(session=session, settings=settings, candidate_id=newer.id, actor=CLI_ACTOR)
        session.commit()
    at = solution_page(sid)

    button(at, "Roll back").click().run()

    assert not at.exception
    assert get_solution(engine, sid).image_url == first.image_url


def test_the_placeholder_counts_as_no_image(engine, settings, make_solutions):
    [sid] = make_solutions(1, imageUrl=PLACEHOLDER_URL)
    generate(engine, settings, [sid])
    approve_first(engine, settings, sid)
    at = solution_page(sid)

    button(at, "Roll back").click().run()

    assert any("will show the placeholder" in t.value for t in at.text)


def test_a_manager_sees_the_history_but_cannot_roll_back(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    approve_first(engine, settings, sid)

    at = solution_page(sid, Actor("mia", "manager"))

    assert any(t.value.startswith("Live: ") for t in at.text)
    assert not [b for b in at.button if b.label == "Roll back"]


def test_without_an_id_the_page_finds_a_solution(engine, make_solutions):
    ids = make_solutions(3)
    at = solution_page(None)
    at.text_input[0].input("number 2").run()

    next(b for b in at.button if b.key == f"find-{ids[2]}").click().run()

    assert not at.exception
    assert at.query_params["id"] == [ids[2]] or at.query_params["id"] == ids[2]
    assert at.subheader[0].value == "Solution number 2"


def test_an_unknown_id_says_so_in_one_sentence(engine):
    at = solution_page("no-such-solution")
    assert [e.value for e in at.error] == ["There is no solution no\\-such\\-solution\\."]


def test_solutions_links_a_selected_row_to_its_page(engine, make_solutions):
    [sid] = make_solutions(1)
    at = app_test(ADMIN)
    at.session_state["solutions-table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.switch_page("pages/solutions.py").run()

    assert not at.exception
    link = next(p for p in at.page_link if "history and rollback" in p.proto.label)
    assert link.proto.query_string == f"id={sid}"


def test_review_links_the_current_solution_to_its_page(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    at = open_page("review", ADMIN)
    link = next(p for p in at.page_link if "history and rollback" in p.proto.label)
    assert link.proto.query_string == f"id={sid}"


def test_the_marketplace_delivery_state_and_a_conflict_are_on_the_page(engine, marketplace):
    from test_marketplace_pages import _conflict

    sid, ours = _conflict(engine, marketplace)

    at = solution_page(sid)

    assert any("The marketplace shows another image" in w.value for w in at.warning)
    deliveries = at.dataframe[0].value  # the marketplace's table comes before the published history
    assert deliveries[["state", "imageUrl", "for"]].values.tolist() == [["conflict", ours, "approve"]]
    next(b for b in at.button if b.label == "Use ours").click().run()
    assert not at.exception
    assert marketplace.image_url(sid) == ours
