"""The review queue in the library: filters, sorts, paging, neighbours, trials kept apart, bulk approval, undo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect
from sqlmodel import Session, select

from aixchange_images import batch, checks, metrics, migrations, pipeline, queue, review, templates, trials
from aixchange_images.auth import CLI_ACTOR, Actor, PermissionDenied
from aixchange_images.config import load_settings
from aixchange_images.models import (
    NOT_CHOSEN,
    Attempt,
    Candidate,
    Publication,
    Purpose,
    Solution,
    utcnow,
)
from aixchange_images.queue import QueueFilter

PAT = Actor("pat", "product")
MAIN = QueueFilter()  # the main queue: regular candidates only
BOTH = QueueFilter(purpose=None)


def generate(engine, settings, ids: list[str], candidates: int = 1, **options) -> list[pipeline.GenerationResult]:
    opts = pipeline.GenerateOptions(candidates=candidates, concurrency=1, **options)
    results, _ = batch.run_batch(engine, settings, ids, opts)
    assert all(r.status == "succeeded" for r in results), results
    return results


def waiting_ids(engine, filters: QueueFilter = MAIN, sort: str = "oldest", **paging) -> list[str]:
    with Session(engine) as session:
        return [r.solution.id for r in queue.page(session=session, filters=filters, sort=sort, **paging)]


def count(engine, filters: QueueFilter = MAIN) -> int:
    with Session(engine) as session:
        return queue.count(session=session, filters=filters)


def made_at(engine, solution_id: str, minutes_ago: int) -> None:
    """Date a solution's candidates, so the sorts are tested on known times rather than on timing."""
    with Session(engine) as session:
        for candidate in session.exec(select(Candidate).where(Candidate.solution_id == solution_id)).all():
            candidate.created_at = utcnow() - timedelta(minutes=minutes_ago)
            session.add(candidate)
        session.commit()


def candidates_of(engine, solution_id: str) -> list[Candidate]:
    with Session(engine) as session:
        return list(session.exec(select(Candidate).where(Candidate.solution_id == solution_id).order_by(Candidate.id)))


def run_trial(engine, ids: list[str]) -> trials.Trial:
    with Session(engine) as session:
        templates.save_version(session=session, actor=PAT, name="default", body="A blueprint card for {title}.")
        session.commit()
    settings = load_settings(dalle_image_size="256x256")
    return trials.run_trial(
        engine, settings, actor=PAT, refs=("default@1", "default@draft"), solution_ids=ids, provider="local"
    )


# -- trials are kept apart ---------------------------------------------------------------------------
def test_trial_candidates_wait_apart_from_the_main_queue_and_its_counts(engine, settings, make_solutions):
    regular, tried = make_solutions(2)
    generate(engine, settings, [regular])
    run_trial(engine, [tried])

    assert {c.purpose for c in candidates_of(engine, tried)} == {Purpose.trial}
    with Session(engine) as session:
        purposes = set(session.exec(select(Attempt.purpose).where(Attempt.solution_id == tried)).all())
        overview = metrics.overview(session=session)
    assert purposes == {Purpose.trial}
    assert (waiting_ids(engine), count(engine)) == ([regular], 1)
    assert overview["awaiting_review"] == 1
    assert waiting_ids(engine, QueueFilter(purpose=Purpose.trial)) == [tried]
    assert sorted(waiting_ids(engine, BOTH)) == sorted([regular, tried]) and count(engine, BOTH) == 2


def test_a_regular_run_that_reuses_a_waiting_trial_image_brings_it_into_the_queue(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid], purpose=Purpose.trial)
    assert waiting_ids(engine) == []

    [again] = generate(engine, settings, [sid])  # the identical request: a cache hit on the same candidate

    assert again.cache_hit
    assert [(c.state, c.purpose) for c in candidates_of(engine, sid)] == [("pending", Purpose.regular)]
    assert waiting_ids(engine) == [sid]


# -- filters ---------------------------------------------------------------------------------------
def test_text_and_category_filters_narrow_the_queue(engine, settings, make_solutions):
    ids = make_solutions(3)  # categories cycle: NLP, Computer Vision, Generative AI
    generate(engine, settings, ids)

    assert waiting_ids(engine, QueueFilter(text="number 1")) == [ids[1]]
    assert waiting_ids(engine, QueueFilter(text="SUPPORT TICKETS NUMBER 2")) == [ids[2]]  # the description
    assert waiting_ids(engine, QueueFilter(category="Computer Vision")) == [ids[1]]
    assert waiting_ids(engine, QueueFilter(text="nothing like it")) == []


def test_model_and_template_filters_pick_candidates_and_count_only_those(engine, settings, make_solutions):
    a, b = make_solutions(2)
    generate(engine, settings, [a, b])
    with Session(engine) as session:
        templates.save_version(session=session, actor=PAT, name="default", body="A card for {title}.")
        session.commit()
    generate(engine, settings, [b], template="default@2")

    with Session(engine) as session:
        rows = queue.page(session=session, filters=QueueFilter(template="default@2"))
        offered = queue.choices(session=session)
    assert [(r.solution.id, r.candidates) for r in rows] == [(b, 1)]
    assert waiting_ids(engine, QueueFilter(template="default@1")) == [a, b]
    assert waiting_ids(engine, QueueFilter(model="local-card")) == [a, b]
    assert waiting_ids(engine, QueueFilter(model="gpt-image-2")) == []
    assert offered["templates"] == ["default@1", "default@2"] and offered["models"] == ["local-card"]
    assert offered["categories"] == ["Computer Vision", "Natural Language Processing"]


def test_the_run_filter_finds_a_runs_candidates_also_when_the_cache_served_them(engine, settings, make_solutions):
    a, b = make_solutions(2)
    generate(engine, settings, [a], batch_id="first-run")
    generate(engine, settings, [a, b], batch_id="second-run")  # a: the same pending candidate, from the cache

    assert waiting_ids(engine, QueueFilter(batch="first-run")) == [a]
    assert waiting_ids(engine, QueueFilter(batch="second-run")) == [a, b]
    assert waiting_ids(engine, QueueFilter(batch="no-such-run")) == []


def test_the_flag_filter_matches_nothing_while_no_candidate_is_flagged(engine, settings, make_solutions):
    generate(engine, settings, make_solutions(2))

    assert queue.FLAGS == checks.LABELS
    assert waiting_ids(engine, QueueFilter(flags=("text_in_image",))) == []
    assert count(engine, QueueFilter(flags=())) == 2


# -- sorts, paging, neighbours ----------------------------------------------------------------------
@pytest.fixture
def three_waiting(engine, settings, make_solutions) -> list[str]:
    """Solution 0 waiting longest with one candidate, 1 newest with three, 2 in between with two."""
    ids = make_solutions(3)
    for sid, n, minutes in zip(ids, (1, 3, 2), (30, 10, 20), strict=True):
        generate(engine, settings, [sid], candidates=n)
        made_at(engine, sid, minutes)
    return ids


@pytest.mark.parametrize(
    ("sort", "order"), [("oldest", [0, 2, 1]), ("newest", [1, 2, 0]), ("most", [1, 2, 0]), ("title", [0, 1, 2])]
)
def test_the_queue_sorts(engine, three_waiting, sort, order):
    assert waiting_ids(engine, sort=sort) == [three_waiting[i] for i in order]


def test_an_unknown_sort_is_refused_with_one_sentence(engine):
    with Session(engine) as session, pytest.raises(ValueError, match="Sort the queue by one of: oldest, newest"):
        queue.page(session=session, sort="random")


def test_the_queue_is_paged_in_sql(engine, three_waiting):
    ids = three_waiting
    assert waiting_ids(engine, offset=0, limit=2) == [ids[0], ids[2]]
    assert waiting_ids(engine, offset=2, limit=2) == [ids[1]]


def test_locate_gives_a_solutions_place_and_neighbours_in_the_chosen_order(engine, three_waiting):
    ids = three_waiting
    with Session(engine) as session:
        middle = queue.locate(session=session, solution_id=ids[2])
        first = queue.locate(session=session, solution_id=ids[0], sort="oldest")
        last_by_title = queue.locate(session=session, solution_id=ids[2], sort="title")
        elsewhere = queue.locate(session=session, solution_id="not-in-the-queue")
    assert middle == queue.Place(1, ids[0], ids[1])
    assert first == queue.Place(0, None, ids[2])
    assert last_by_title == queue.Place(2, ids[1], None)
    assert elsewhere == queue.Place(None, None, None)


def test_the_view_keeps_the_current_solution_while_it_is_in_it_else_shows_the_first(engine, three_waiting):
    ids = three_waiting
    with Session(engine) as session:
        kept = queue.view(session=session, filters=MAIN, sort="oldest", current=ids[2])
        gone = queue.view(session=session, filters=QueueFilter(text="number 1"), sort="oldest", current=ids[2])
        empty = queue.view(session=session, filters=QueueFilter(text="nothing"), sort="oldest", current=ids[2])
    assert (kept.total, kept.current, kept.place) == (3, ids[2], queue.Place(1, ids[0], ids[1]))
    assert (gone.total, gone.current, gone.place) == (1, ids[1], queue.Place(0, None, None))
    assert (empty.total, empty.current, empty.place) == (0, None, queue.Place(None, None, None))


def test_the_view_counts_the_trials_it_keeps_apart(engine, settings, make_solutions):
    regular, tried = make_solutions(2)
    generate(engine, settings, [regular])
    generate(engine, settings, [tried], purpose=Purpose.trial)
    with Session(engine) as session:
        main = queue.view(session=session, filters=MAIN, sort="oldest", current=None)
        both = queue.view(session=session, filters=BOTH, sort="oldest", current=None)
    assert (main.total, main.trials_apart) == (1, 1)
    assert (both.total, both.trials_apart) == (2, 0)


def test_candidates_come_in_the_order_they_were_made(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid], candidates=3)
    with Session(engine) as session:
        shown = queue.candidates(session=session, solution_id=sid)
    assert [c.id for c in shown] == sorted(c.id for c in shown) and len(shown) == 3


# -- bulk approval --------------------------------------------------------------------------------------
def test_bulk_approve_publishes_each_first_candidate_and_reports_a_failure_in_one_sentence(
    engine, settings, make_solutions
):
    ids = make_solutions(3)
    generate(engine, settings, ids, candidates=2)
    broken = candidates_of(engine, ids[1])[0]
    (settings.data_dir / broken.file_path).unlink()  # its file is gone: that one cannot be published
    seen = []

    outcome = queue.approve_first(
        engine, settings, ids, actor=CLI_ACTOR, progress=lambda done, total: seen.append((done, total))
    )

    assert outcome.approved == [ids[0], ids[2]]
    assert outcome.failed == {ids[1]: f"Candidate {broken.id}'s file is gone from the data folder; generate again."}
    assert seen == [(1, 3), (2, 3), (3, 3)]
    for sid in (ids[0], ids[2]):
        first, second = candidates_of(engine, sid)
        assert (first.state, second.state, second.reject_reason) == ("approved", "rejected", NOT_CHOSEN)
    assert [c.state for c in candidates_of(engine, ids[1])] == ["pending", "pending"]  # its transaction undone
    assert waiting_ids(engine) == [ids[1]]


def test_bulk_approve_skips_a_solution_with_nothing_waiting_any_more(engine, settings, make_solutions):
    a, b = make_solutions(2)
    generate(engine, settings, [a])

    outcome = queue.approve_first(engine, settings, [a, b], actor=CLI_ACTOR)

    assert outcome.approved == [a]
    assert outcome.failed == {b: "Solution number 1 has no candidate waiting for review any more."}


def test_bulk_approve_needs_the_review_role(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    with pytest.raises(PermissionDenied):
        queue.approve_first(engine, settings, [sid], actor=PAT)
    assert waiting_ids(engine) == [sid]


# -- undo and reject all ---------------------------------------------------------------------------------
def approve(engine, settings, candidate_id: int) -> Publication:
    with Session(engine, expire_on_commit=False) as session:
        publication = review.approve(session=session, settings=settings, candidate_id=candidate_id, actor=CLI_ACTOR)
        session.commit()
    return publication


def undo(engine, publication_id: int) -> None:
    with Session(engine) as session:
        review.undo_approval(session=session, publication_id=publication_id, actor=CLI_ACTOR)
        session.commit()


def test_undo_puts_the_image_back_and_the_candidates_back_in_the_queue(engine, settings, make_solutions):
    [sid] = make_solutions(1, imageUrl="/api/external-images/solutions/authors-own.png")
    generate(engine, settings, [sid], candidates=3)
    chosen = candidates_of(engine, sid)[1]
    publication = approve(engine, settings, chosen.id)

    undo(engine, publication.id)

    with Session(engine) as session:
        solution = session.get(Solution, sid)
        stored = session.get(Publication, publication.id)
    assert solution.image_url == "/api/external-images/solutions/authors-own.png"
    assert solution.image_status == "pending"
    assert [(c.state, c.reject_reason, c.reviewed_by) for c in candidates_of(engine, sid)] == [
        ("pending", None, None)
    ] * 3
    assert (stored.active, stored.rolled_back_by) == (False, "cli")
    assert waiting_ids(engine) == [sid]


def test_undo_leaves_earlier_rejections_alone(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid], candidates=2)
    turned_down, chosen = candidates_of(engine, sid)
    with Session(engine) as session:
        review.reject(session=session, candidate_id=turned_down.id, reason="off_brand", actor=CLI_ACTOR)
        session.commit()
    publication = approve(engine, settings, chosen.id)

    undo(engine, publication.id)

    assert [(c.state, c.reject_reason) for c in candidates_of(engine, sid)] == [
        ("rejected", "off_brand"),
        ("pending", None),
    ]


def test_undo_is_refused_once_the_approval_is_no_longer_the_live_image(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    first = approve(engine, settings, candidates_of(engine, sid)[0].id)
    generate(engine, settings, [sid], use_cache=False)
    approve(engine, settings, candidates_of(engine, sid)[1].id)  # a later approval replaced it

    with Session(engine) as session, pytest.raises(review.ReviewError, match="no longer the live image"):
        review.undo_approval(session=session, publication_id=first.id, actor=CLI_ACTOR)


def test_reject_all_rejects_each_shown_candidate_with_the_reason(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid], candidates=2)
    shown = [c.id for c in candidates_of(engine, sid)]
    with Session(engine) as session:
        review.reject_all(session=session, candidate_ids=shown, reason="off_topic", actor=CLI_ACTOR)
        session.commit()

    assert [(c.state, c.reject_reason) for c in candidates_of(engine, sid)] == [("rejected", "off_topic")] * 2
    assert waiting_ids(engine) == []


# -- the migration ---------------------------------------------------------------------------------------
def test_a_database_from_before_trials_were_marked_gains_the_purpose_as_regular(engine, settings, make_solutions):
    [sid] = make_solutions(1)
    generate(engine, settings, [sid])
    with engine.begin() as conn:  # the tables as migration 9 left them
        conn.exec_driver_sql("DROP INDEX ix_candidate_queue")
        for table in ("attempt", "candidate"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN purpose")
        conn.exec_driver_sql("DELETE FROM schemamigration WHERE version = 10")

    assert migrations.migrate(engine) == [10]
    assert "ix_candidate_queue" in {i["name"] for i in inspect(engine).get_indexes("candidate")}
    assert [c.purpose for c in candidates_of(engine, sid)] == [Purpose.regular]
    assert waiting_ids(engine) == [sid]
