"""The review routine on the dashboard: literal user text, plain error sentences, moving on after an action."""

from __future__ import annotations

import pytest
from conftest import open_page, run_jobs
from sqlmodel import Session, select

from aixchange_images import auth, batch, pipeline, review
from aixchange_images.auth import Actor
from aixchange_images.config import load_settings
from aixchange_images.models import Attempt, Candidate, CandidateState, Purpose, Solution

ADMIN = Actor("alice", "admin")
EVIL_TITLE = "Evil [click me](http://x/phish) ![px](http://x/track.png)"
EVIL_URL = "`![px](http://x/track.png)`"
MARKUP = ("](http://x/", "![px]", "[click me]")


def generate(engine, settings, ids: list[str], candidates: int = 1, **options) -> None:
    opts = pipeline.GenerateOptions(candidates=candidates, concurrency=1, **options)
    results, _ = batch.run_batch(engine, settings, ids, opts)
    assert all(r.status == "succeeded" for r in results), results


def markdown_texts(at) -> list[str]:
    """Everything on the page that Streamlit renders as markdown: bodies, labels and radio options."""
    kinds = ("markdown", "caption", "subheader", "header", "title", "info", "warning", "error", "success", "toast")
    texts = [e.value for kind in kinds for e in getattr(at, kind)]
    for kind in ("button", "checkbox", "radio", "toggle", "selectbox", "text_input", "multiselect"):
        texts += [w.label for w in getattr(at, kind)]
    texts += [str(o) for r in at.radio for o in r.options]
    texts += [e.label for e in at.expander]
    return texts


# -- defects reproduced first -----------------------------------------------------------------------
def test_review_shows_a_title_and_an_imported_image_url_literally(engine, settings, make_solutions):
    [sid] = make_solutions(1, title=EVIL_TITLE, category="Evil [cat](http://x/phish)", imageUrl=EVIL_URL)
    generate(engine, settings, [sid], candidates=2)
    with Session(engine) as session:
        first = session.exec(select(Candidate).where(Candidate.solution_id == sid)).first()
        review.approve(session=session, settings=settings, candidate_id=first.id, actor=auth.CLI_ACTOR)
        session.commit()
    generate(engine, settings, [sid])  # back in the queue, with a rollback that restores the imported URL

    at = open_page("review", ADMIN)

    texts = markdown_texts(at)
    assert any("click me" in t for t in texts)  # the title is on the page...
    leaks = [t for t in texts if any(m in t for m in MARKUP) or "`![" in t]
    assert not leaks, leaks  # ...but never as link or image markup


def test_an_upload_that_is_not_an_image_gets_a_plain_sentence(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    with Session(engine) as session, pytest.raises(review.ReviewError) as refused:
        review.upload(session=session, settings=settings, solution_id=sid, data=b"GIF89a not really", actor=ADMIN)
    message = str(refused.value)
    assert message == "The uploaded file is not an image we can read: upload a PNG, JPEG or WebP file."


def test_a_provider_reply_that_is_not_an_image_gets_a_plain_sentence(engine, openai_settings, standin, make_solutions):
    [sid] = make_solutions(1)
    standin.enqueue("garbage_image")
    [result], _ = batch.run_batch(engine, openai_settings, [sid], pipeline.GenerateOptions())
    assert result.error_kind == "bad_image"
    assert result.error == "The provider's reply is not an image we can read."


def test_after_approve_the_review_page_shows_the_next_solution(engine, settings, make_solutions):
    ids = make_solutions(3)
    generate(engine, settings, ids)

    at = open_page("review", ADMIN)
    assert at.subheader[0].value.startswith("Solution number 0")
    next(b for b in at.button if b.label == "Approve").click().run()

    assert not at.exception
    assert at.session_state["review_solution"] == ids[1]
    assert at.subheader[0].value.startswith("Solution number 1")
    with Session(engine) as session:
        assert session.get(Solution, ids[0]).image_status == "approved"
        assert session.exec(select(Candidate.state).where(Candidate.solution_id == ids[0])).one() == (
            CandidateState.approved
        )


# -- moving through the queue ----------------------------------------------------------------------
def states(engine, solution_id: str) -> list[str]:
    with Session(engine) as session:
        query = select(Candidate.state).where(Candidate.solution_id == solution_id).order_by(Candidate.id)
        return list(session.exec(query).all())


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def shown_title(at) -> str:
    return at.subheader[0].value


def test_reject_all_rejects_what_is_shown_with_the_chosen_reason_and_moves_on(engine, settings, make_solutions):
    ids = make_solutions(2)
    generate(engine, settings, ids, candidates=2)
    at = open_page("review", ADMIN)
    at.selectbox(key="rq-reason").select("text_artefacts").run()

    button(at, "Reject all 2").click().run()

    assert not at.exception
    assert shown_title(at) == "Solution number 1"
    with Session(engine) as session:
        rejected = session.exec(select(Candidate.reject_reason).where(Candidate.solution_id == ids[0])).all()
    assert rejected == ["text_artefacts", "text_artefacts"]
    assert [t.value for t in at.toast] == ["Rejected 2."]


def test_rejecting_one_of_several_candidates_stays_on_the_solution(engine, settings, make_solutions):
    ids = make_solutions(2)
    generate(engine, settings, ids, candidates=2)
    at = open_page("review", ADMIN)

    next(b for b in at.button if b.label == "Reject candidate").click().run()

    assert not at.exception
    assert shown_title(at) == "Solution number 0"
    assert states(engine, ids[0]) == ["rejected", "pending"]


def test_next_and_previous_walk_the_queue_in_its_order(engine, settings, make_solutions):
    ids = make_solutions(3)
    generate(engine, settings, ids)
    at = open_page("review", ADMIN)
    assert button(at, "Previous").disabled

    button(at, "Next").click().run()
    button(at, "Next").click().run()
    assert shown_title(at) == "Solution number 2" and button(at, "Next").disabled
    button(at, "Previous").click().run()

    assert not at.exception
    assert shown_title(at) == "Solution number 1"
    assert "2 of 3" in at.caption[-1].value or any("2 of 3" in c.value for c in at.caption)


def test_undo_after_an_approval_puts_the_solution_back_and_shows_it_again(engine, settings, make_solutions):
    ids = make_solutions(2)
    generate(engine, settings, ids, candidates=2)
    at = open_page("review", ADMIN)
    button(at, "Approve").click().run()
    assert shown_title(at) == "Solution number 1"
    assert "Published Solution number 0." in [t.value for t in at.text]

    button(at, "Undo").click().run()

    assert not at.exception
    assert shown_title(at) == "Solution number 0"
    assert states(engine, ids[0]) == ["pending", "pending"]
    assert not [b for b in at.button if b.label == "Undo"]  # one undo per approval


def test_bulk_approve_asks_first_then_approves_each_selected_solution(engine, settings, make_solutions):
    ids = make_solutions(3)
    generate(engine, settings, ids, candidates=2)
    at = open_page("review", ADMIN)
    for sid in ids[:2]:
        at.checkbox(key=f"pick-0-{sid}").check()
    at.run()

    button(at, "Approve 2 selected").click().run()
    assert not at.exception
    assert states(engine, ids[0]) == ["pending", "pending"]  # the dialog asks first
    assert any("2 solution(s) will be published now" in m.value for m in at.markdown)

    button(at, "Approve 2").click().run()

    assert not at.exception
    assert [states(engine, sid) for sid in ids] == [["approved", "rejected"]] * 2 + [["pending", "pending"]]
    assert any("Approved the first candidate of 2 solution(s)." in s.value for s in at.success)
    assert shown_title(at) == "Solution number 2"
    assert not [c for c in at.checkbox if c.value]  # the ticks are cleared


# -- filters and views --------------------------------------------------------------------------------
def listed(at) -> list[str]:
    return [b.label for b in at.button if b.key and b.key.startswith("open-")]


def test_the_search_narrows_the_queue(engine, settings, make_solutions):
    generate(engine, settings, make_solutions(3))
    at = open_page("review", ADMIN)
    assert len(listed(at)) == 3

    at.text_input(key="rq-text").input("number 2").run()

    assert not at.exception
    assert listed(at) == [ui_literal("Solution number 2 · 1")]
    assert shown_title(at) == "Solution number 2"


def test_a_run_link_opens_the_queue_on_that_runs_candidates(engine, settings, make_solutions):
    a, b = make_solutions(2)
    generate(engine, settings, [a])
    generate(engine, settings, [b], batch_id="the-run")
    at = open_page("review", ADMIN)
    at.query_params["batch"] = "the-run"
    at.run()

    assert not at.exception
    assert listed(at) == [ui_literal("Solution number 1 · 1")]
    assert any("one Generate run" in i.value for i in at.info)
    button(at, "Show the whole queue").click().run()
    assert len(listed(at)) == 2


def test_generates_review_link_carries_the_runs_id(engine, make_solutions):
    [sid] = make_solutions(1)
    at = open_page("generate", ADMIN)
    button(at, "Generate").click().run()
    run_jobs(engine, load_settings())  # the worker's part

    link = next(p for p in at.page_link if p.proto.label == "Review the new candidates")
    run = link.proto.query_string.removeprefix("batch=")
    with Session(engine) as session:
        assert session.exec(select(Attempt.batch_id).where(Attempt.solution_id == sid)).one() == run


def test_trial_candidates_are_kept_apart_unless_asked_for(engine, settings, make_solutions):
    regular, tried = make_solutions(2)
    generate(engine, settings, [regular])
    generate(engine, settings, [tried], purpose=Purpose.trial)
    at = open_page("review", ADMIN)
    assert listed(at) == [ui_literal("Solution number 0 · 1")]
    assert any("1 with Prompt Studio trial candidates are kept apart" in c.value for c in at.caption)

    at.radio(key="rq-show").set_value("trial").run()

    assert not at.exception
    assert listed(at) == [ui_literal("Solution number 1 · 1")]
    assert "trial" in " ".join(h.value for h in at.get("html") if hasattr(h, "value"))  # the card says so


def ui_literal(text: str) -> str:
    import ui

    return ui.literal(text)
