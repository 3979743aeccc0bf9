"""The review routine on the dashboard: literal user text, plain error sentences, moving on after an action."""

from __future__ import annotations

import pytest
from conftest import open_page
from sqlmodel import Session, select

from aixchange_images import auth, batch, pipeline, review
from aixchange_images.auth import Actor
from aixchange_images.models import Candidate, CandidateState, Solution

ADMIN = Actor("alice", "admin")
EVIL_TITLE = "Evil [click me](http://x/phish) ![px](http://x/track.png)"
EVIL_URL = "`![px](http://x/track.png)`"
MARKUP = ("](http://x/", "![px]", "[click me]")


def generate(engine, settings, ids: list[str], candidates: int = 1) -> None:
    results, _ = batch.run_batch(engine, settings, ids, pipeline.GenerateOptions(candidates=candidates, concurrency=1))
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
