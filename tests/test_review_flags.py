"""Where the automatic checks act in Review: a badge per flag with its sentence, and the queue filtered
and sorted by what the checks found (the library's queries first, then the page)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import app_test, open_page
from PIL import Image
from sqlalchemy import delete
from sqlmodel import Session, col, select

from aixchange_images import batch, inspections, pipeline, queue, review
from aixchange_images.auth import Actor
from aixchange_images.models import Candidate, CandidateCheck, utcnow
from aixchange_images.queue import QueueFilter

ADMIN = Actor("alice", "admin")
MARKED_UP = "The lettering reads **bold** <b>x</b> [click me](http://x/phish) `code`."
SENTENCES = {
    "blank": "The picture is almost flat: its colours vary by 1.2.",
    "duplicate": "It looks like the image of Solution number 9 (3 bits apart).",
    "text_garbled": MARKED_UP,
}


def generate(engine, settings, ids: list[str], candidates: int = 1) -> None:
    opts = pipeline.GenerateOptions(candidates=candidates, concurrency=1)
    results, _ = batch.run_batch(engine, settings, ids, opts)
    assert all(r.status == "succeeded" for r in results), results


def candidate_ids(engine, solution_id: str) -> list[int]:
    with Session(engine) as session:
        query = select(Candidate.id).where(Candidate.solution_id == solution_id).order_by(Candidate.id)
        return list(session.exec(query).all())


def verdict(engine, candidate_id: int, *flags: str, checked: bool = True, minutes_ago: int = 60) -> None:
    """Set a candidate's checks as an inspection leaves them: these flags raised (with their sentences),
    every other check passed; or not checked at all, made `minutes_ago`."""
    now = utcnow()
    with Session(engine) as session:
        session.exec(delete(CandidateCheck).where(col(CandidateCheck.candidate_id) == candidate_id))
        candidate = session.get(Candidate, candidate_id)
        candidate.created_at = now - timedelta(minutes=minutes_ago)
        candidate.checked_at = now if checked else None
        candidate.flags = inspections.stored_flags(flags) if checked else ""
        for name in ("blank", "text_garbled", "duplicate") if checked else ():
            sentence = SENTENCES[name] if name in flags else f"The {name} check found nothing."
            session.add(CandidateCheck(candidate_id=candidate_id, name=name, flagged=name in flags, sentence=sentence))
        session.add(candidate)
        session.commit()


@pytest.fixture
def four(engine, settings, make_solutions) -> list[str]:
    """Four waiting solutions, oldest first: flagged blank, flagged duplicate, passed, not checked."""
    ids = make_solutions(4)
    generate(engine, settings, ids)
    verdict(engine, candidate_ids(engine, ids[0])[0], "blank", minutes_ago=40)
    verdict(engine, candidate_ids(engine, ids[1])[0], "duplicate", minutes_ago=30)
    verdict(engine, candidate_ids(engine, ids[2])[0], minutes_ago=20)
    verdict(engine, candidate_ids(engine, ids[3])[0], checked=False, minutes_ago=10)
    return ids


EVERY = QueueFilter()


def waiting_ids(engine, filters: QueueFilter = EVERY, sort: str = "oldest") -> list[str]:
    with Session(engine) as session:
        return [r.solution.id for r in queue.page(session=session, filters=filters, sort=sort)]


# -- the library ---------------------------------------------------------------------------------------
def test_the_check_filter_keeps_the_solutions_with_a_candidate_it_names(engine, four):
    blank, duplicate, passed, unchecked = four

    assert waiting_ids(engine, QueueFilter(checks="all")) == four
    assert waiting_ids(engine, QueueFilter(checks="flagged")) == [blank, duplicate]
    assert waiting_ids(engine, QueueFilter(checks="unflagged")) == [passed]
    assert waiting_ids(engine, QueueFilter(checks="unchecked")) == [unchecked]
    assert waiting_ids(engine, QueueFilter(checks="blank")) == [blank]
    assert waiting_ids(engine, QueueFilter(checks="duplicate")) == [duplicate]
    assert waiting_ids(engine, QueueFilter(checks="unsafe")) == []
    assert waiting_ids(engine, QueueFilter(flags=("blank", "duplicate"))) == [blank, duplicate]


def test_a_solution_shows_only_its_candidates_the_check_filter_names(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid], candidates=2)
    first, second = candidate_ids(engine, sid)
    verdict(engine, second, "text_garbled")

    with Session(engine) as session:
        garbled = queue.candidates(session=session, solution_id=sid, filters=QueueFilter(checks="text_garbled"))
        rows = queue.page(session=session, filters=QueueFilter())
    assert [c.id for c in garbled] == [second]
    assert [(r.candidates, r.flagged) for r in rows] == [(2, 1)]


def test_flagged_first_and_unflagged_first_order_the_queue(engine, four):
    blank, duplicate, passed, unchecked = four

    assert waiting_ids(engine, sort="oldest") == [blank, duplicate, passed, unchecked]
    assert waiting_ids(engine, sort="flagged") == [blank, duplicate, passed, unchecked]
    assert waiting_ids(engine, sort="unflagged") == [passed, duplicate, unchecked, blank]
    verdict(engine, candidate_ids(engine, duplicate)[0], "duplicate", "blank", minutes_ago=50)  # now the oldest
    assert waiting_ids(engine, sort="flagged") == [duplicate, blank, passed, unchecked]
    with Session(engine) as session:
        place = queue.locate(session=session, solution_id=passed, sort="unflagged")
    assert (place.index, place.previous, place.next) == (0, None, unchecked)


def test_an_unknown_check_filter_is_refused_with_one_sentence(engine):
    with Session(engine) as session, pytest.raises(review.ReviewError) as refused:
        queue.count(session=session, filters=QueueFilter(checks="fuzzy"))
    assert str(refused.value).startswith("Filter the checks by one of: all, flagged, unflagged, unchecked, blank")


def test_findings_put_blocking_flags_first_with_their_sentences(engine, four):
    blank, duplicate, passed, unchecked = four
    ids = [candidate_ids(engine, s)[0] for s in four]
    verdict(engine, ids[1], "duplicate", "blank")
    verdict(engine, ids[3], checked=False, minutes_ago=1)  # made a moment ago: its checks are running
    with Session(engine) as session:
        shown = [session.get(Candidate, i) for i in ids]
        found = inspections.findings(session, shown)

    assert [found[i].state for i in ids] == ["flagged", "flagged", "passed", "running"]
    assert [(f.label, f.blocking, f.sentence) for f in found[ids[1]].flags] == [
        ("Blank", True, SENTENCES["blank"]),
        ("Duplicate", False, SENTENCES["duplicate"]),
    ]
    assert found[ids[2]].flags == [] and found[ids[3]].flags == []
    later = utcnow() + inspections.RUNNING_FOR
    with Session(engine) as session:
        assert inspections.findings(session, [session.get(Candidate, ids[3])], later)[ids[3]].state == "unchecked"


# -- the page --------------------------------------------------------------------------------------------
def badges(at) -> list[str]:
    return [m.value for m in at.markdown if "-badge[" in m.value]


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def queue_buttons(at) -> list[str]:
    return [b.label.split(" · ")[0] for b in at.button if (b.key or "").startswith("open-")]


def test_review_shows_a_badge_per_flag_with_its_sentence_literally(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid], candidates=2)
    first, second = candidate_ids(engine, sid)
    verdict(engine, first, "text_garbled", "duplicate")

    at = open_page("review", ADMIN)

    assert badges(at) == [
        ":red-badge[:material/error: Garbled lettering]",
        ":orange-badge[:material/warning: Duplicate]",
    ]
    from ui import literal  # what the page writes, escaped; it reads back as the sentence itself

    assert literal(MARKED_UP) in captions(at) and literal(SENTENCES["duplicate"]) in captions(at)
    assert not [c for c in captions(at) if "**bold**" in c or "<b>" in c or "](http" in c]  # never markup
    assert ":material/verified: Checks passed" in captions(at)  # the second candidate
    assert [b for b in at.button if b.key == f"open-{sid}"][0].label.endswith(":orange-badge[:material/flag: 1]")


def test_review_says_when_a_candidate_is_not_checked_yet_or_being_checked(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid], candidates=2)
    old, new = candidate_ids(engine, sid)
    verdict(engine, old, checked=False, minutes_ago=60 * 24)
    verdict(engine, new, checked=False, minutes_ago=0)

    at = open_page("review", ADMIN)

    assert ":material/help: Not checked yet." in captions(at)
    assert ":material/hourglass_top: Checks running; they show here once done." in captions(at)
    assert badges(at) == []


def test_the_checks_filter_narrows_the_queue_and_the_sort_orders_it(engine, four):
    blank, duplicate, passed, unchecked = four
    at = open_page("review", ADMIN)
    assert at.selectbox(key="rq-check").value == "all" and at.selectbox(key="rq-sort").value == "oldest"
    assert queue_buttons(at) == [f"Solution number {i}" for i in range(4)]

    at.selectbox(key="rq-check").select("flagged").run()
    assert not at.exception
    assert queue_buttons(at) == ["Solution number 0", "Solution number 1"]
    assert at.caption[0].value.startswith("2 solution(s) wait for review")

    at.selectbox(key="rq-check").select("all").run()
    at.selectbox(key="rq-sort").select("unflagged").run()
    assert queue_buttons(at) == ["Solution number 2", "Solution number 1", "Solution number 3", "Solution number 0"]
    assert at.subheader[0].value == "Solution number 0"  # the solution shown stays while it is in view


def test_a_check_filter_that_matches_nothing_says_so_and_offers_show_all(engine, four):
    at = open_page("review", ADMIN)

    at.selectbox(key="rq-check").select("unsafe").run()

    assert not at.exception
    assert [i.value for i in at.info] == [
        "No candidate waiting here is flagged unsafe. Show all to see the rest of the queue."
    ]
    assert queue_buttons(at) == []
    at.button(key="rq-show-all").click().run()
    assert at.selectbox(key="rq-check").value == "all" and len(queue_buttons(at)) == 4


def test_a_link_opens_the_queue_filtered_and_sorted(engine, four):
    at = app_test(ADMIN)
    at.query_params["check"] = "duplicate"
    at.query_params["sort"] = "flagged"
    at.run()
    at.switch_page("pages/review.py").run()

    assert not at.exception
    assert at.selectbox(key="rq-sort").value == "flagged"
    assert at.selectbox(key="rq-check").value == "duplicate"
    assert queue_buttons(at) == ["Solution number 1"]


def test_check_now_runs_the_checks_on_a_candidate_not_checked_yet(engine, settings, make_solutions, monkeypatch):
    monkeypatch.setenv("CHECKS_ENABLED", "blank")  # the one check this test is about: quick
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    [cid] = candidate_ids(engine, sid)
    verdict(engine, cid, checked=False, minutes_ago=60 * 24)
    with Session(engine) as session:
        path = settings.data_dir / session.get(Candidate, cid).file_path
    Image.new("RGB", (256, 256), (40, 90, 160)).save(path)  # flat: blank
    at = open_page("review", ADMIN)

    at.button(key=f"check-{cid}").click().run()

    assert not at.exception
    assert badges(at) == [":red-badge[:material/error: Blank]"]
    assert [t.value for t in at.toast] == [f"Checked #{cid}."]
    with Session(engine) as session:
        assert session.get(Candidate, cid).flags == " blank "
