"""Review's Refine box: a child candidate appears beside its parent, with its lineage shown literally."""

from __future__ import annotations

import re

from conftest import ROOT, open_page, stored_actor
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from aixchange_images import batch, pipeline
from aixchange_images.auth import Actor
from aixchange_images.models import Candidate

ADMIN = Actor("alice", "admin")


def shown(markdown: str) -> str:
    """Markdown that ui.literal escaped, as a reader sees it."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")  # and the word joiner against autolinks


def one_candidate(engine, settings, make_solutions) -> int:
    (sid,) = make_solutions(1)
    (result,), _ = batch.run_batch(engine, settings, [sid], pipeline.GenerateOptions(size="256x256"))
    return result.candidate_id


def refine_in_review(at, candidate_id: int, instruction: str):
    at.text_input(key=f"refine-text-{candidate_id}").input(instruction)
    at.button(key=f"refine-{candidate_id}").click().run()
    assert not at.exception, at.exception
    return at


def test_the_refine_box_makes_a_child_shown_next_to_its_parent_with_its_lineage(engine, settings, make_solutions):
    parent = one_candidate(engine, settings, make_solutions)
    at = open_page("review", ADMIN)
    assert at.selectbox(key=f"refine-with-{parent}").options == ["local"]

    refine_in_review(at, parent, "make it **teal** [now](https://example.com)")

    with Session(engine) as session:
        child = session.exec(select(Candidate).where(Candidate.parent_id == parent)).one()
    assert child.instruction == "make it **teal** [now](https://example.com)"
    captions = [c.value for c in at.caption]
    lineage = next(c for c in captions if "Refined from" in c)
    assert shown(lineage) == f"Refined from #{parent}: 'make it **teal** [now](https://example.com)'"
    assert "\\*\\*teal" in lineage  # escaped: no bold, no link
    approve_keys = [b.key for b in at.button if b.label == "Approve"]
    assert approve_keys == [f"approve-{parent}", f"approve-{child.id}"]  # the child right after its parent


def test_an_instruction_the_local_provider_cannot_do_shows_one_sentence(engine, settings, make_solutions):
    parent = one_candidate(engine, settings, make_solutions)
    at = open_page("review", ADMIN)

    refine_in_review(at, parent, "make it pop")

    assert any("understands none of this instruction" in shown(e.value) for e in at.error)
    with Session(engine) as session:
        assert len(session.exec(select(Candidate)).all()) == 1


def test_a_manager_gets_no_refine_box(engine, settings, make_solutions):
    one_candidate(engine, settings, make_solutions)
    page = AppTest.from_file(str(ROOT / "pages" / "review.py"), default_timeout=30)
    page.session_state["actor"] = stored_actor(Actor("mia", "manager"))
    page.run()
    assert any("does not give access" in e.value for e in page.error)
    assert not [b for b in page.button if b.label == "Refine candidate"]
