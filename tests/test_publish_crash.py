"""Publishing killed with SIGKILL exactly between linking its file and committing: no orphan survives.

The real command runs as its own process and is stopped right after the link, at a FIFO that also
tells the test which file it linked (paused_process.py); the test then SIGKILLs it there.
"""

from __future__ import annotations

import pytest
from conftest import app_test, get_solution
from paused_process import kill_after_link
from sqlmodel import Session
from sqlmodel import select as sql_select
from test_publish_journal import approve, candidates, journals, publications, published_files, run_json

from aixchange_images import batch, journal, pipeline, review
from aixchange_images.auth import CLI_ACTOR
from aixchange_images.config import Settings, load_settings
from aixchange_images.db import session_scope
from aixchange_images.models import PUBLIC_PREFIX, AuditEvent, Candidate, CandidateState, ImageStatus

SMALL = ("--size", "256x256")


@pytest.fixture
def local_settings() -> Settings:
    return load_settings(dalle_image_size="256x256")


def assert_orphan_at_kill(engine, settings: Settings, name: str, solution_id: str) -> None:
    """The kill came between link and commit: the file is public, the database never heard of it."""
    assert name in published_files(settings)
    assert name not in {p.file_name for p in publications(engine)}
    assert get_solution(engine, solution_id).image_url != PUBLIC_PREFIX + name
    assert journals(settings) == [name + journal.SUFFIX]


def assert_rolled_forward(engine, settings: Settings, name: str, solution_id: str, candidate_id: int) -> None:
    solution = get_solution(engine, solution_id)
    active = [p for p in publications(engine) if p.solution_id == solution_id and p.active]
    assert [(p.file_name, p.candidate_id) for p in active] == [(name, candidate_id)]
    assert (solution.image_status, solution.image_url) == (ImageStatus.approved, active[0].image_url)
    assert set(published_files(settings)) == {p.file_name for p in publications(engine)}  # no orphan
    assert journals(settings) == []
    assert get_candidate(engine, candidate_id).state == CandidateState.approved
    assert [(e.target, e.detail["file"], e.detail["outcome"]) for e in recovered_events(engine)] == [
        (solution_id, name, "rolled_forward")
    ]


@pytest.mark.parametrize("run", range(3), ids=lambda n: f"kill-{n + 1}")
def test_an_approve_killed_between_link_and_commit_is_rolled_forward_by_the_next_command(
    engine, local_settings, make_solutions, tmp_path, capsys, run
):
    (sid,) = make_solutions(1, title=f"Killed approval {run}")
    (cid,) = candidates(engine, local_settings, sid)

    name = kill_after_link(tmp_path, "approve", str(cid))

    assert_orphan_at_kill(engine, local_settings, name, sid)
    listed = run_json(capsys, "solutions")["solutions"]  # any command recovers first
    assert_rolled_forward(engine, local_settings, name, sid, cid)
    assert [s["image_status"] for s in listed] == [ImageStatus.approved]


def test_a_killed_re_approval_of_an_older_image_is_rolled_forward_over_the_one_it_replaced(
    engine, local_settings, make_solutions, tmp_path, capsys
):
    (sid,) = make_solutions(1)
    first, second = candidates(engine, local_settings, sid, 2)
    approve(engine, local_settings, first)
    replaced = approve(engine, local_settings, second)  # the first is superseded; an admin brings it back

    name = kill_after_link(tmp_path, "approve", str(first))

    assert_orphan_at_kill(engine, local_settings, name, sid)
    run_json(capsys, "stats")
    assert_rolled_forward(engine, local_settings, name, sid, first)
    assert get_candidate(engine, second).state == CandidateState.superseded
    (restored,) = [p for p in publications(engine) if p.file_name == name]
    assert restored.previous_image_url == replaced.image_url  # a rollback would go back to the second


def test_an_auto_approving_run_killed_between_link_and_commit_still_ends_approved(
    engine, local_settings, make_solutions, tmp_path, capsys
):
    killed, other = make_solutions(2)

    name = kill_after_link(tmp_path, "generate", "--solution", killed, "--auto-approve", *SMALL)

    assert_orphan_at_kill(engine, local_settings, name, killed)
    assert get_solution(engine, killed).image_status == ImageStatus.pending  # stuck, and not `--missing`
    (cid,) = [c.id for c in candidates_of(engine, killed)]
    report = run_json(capsys, "generate", "--missing", "--auto-approve", *SMALL)
    assert [r["solution_id"] for r in report["results"]] == [other]  # the killed one is approved, not missing
    assert_rolled_forward(engine, local_settings, name, killed, cid)


def test_a_batch_finishes_a_killed_approval_before_it_starts(engine, local_settings, make_solutions, tmp_path):
    killed, other = make_solutions(2)
    (cid,) = candidates(engine, local_settings, killed)
    name = kill_after_link(tmp_path, "approve", str(cid))

    batch.run_batch(engine, local_settings, [other], pipeline.GenerateOptions(concurrency=1))  # the dashboard's way

    assert_rolled_forward(engine, local_settings, name, killed, cid)


def test_the_dashboard_finishes_a_killed_approval_when_it_starts(engine, local_settings, make_solutions, tmp_path):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)
    name = kill_after_link(tmp_path, "approve", str(cid))

    at = app_test()
    at.run()

    assert not at.exception
    assert_rolled_forward(engine, local_settings, name, sid, cid)


@pytest.mark.parametrize("meanwhile", ["rejected", "another approved", "rolled back"])
def test_a_killed_approval_that_others_overtook_is_undone_and_cleanup_runs(
    engine, local_settings, make_solutions, tmp_path, capsys, meanwhile
):
    (sid,) = make_solutions(1)
    (shown,) = candidates(engine, local_settings, sid)
    approve(engine, local_settings, shown)
    killed, rival = candidates(engine, local_settings, sid, 2)
    name = kill_after_link(tmp_path, "approve", str(killed))
    assert_orphan_at_kill(engine, local_settings, name, sid)
    with session_scope(engine, write=True) as session:  # the process is gone: its locks went with it
        if meanwhile == "rejected":
            review.reject(session=session, candidate_id=killed, reason="off_topic", actor=CLI_ACTOR)
        elif meanwhile == "another approved":
            review.approve(session=session, settings=local_settings, candidate_id=rival, actor=CLI_ACTOR)
        else:
            review.rollback(session=session, solution_id=sid, actor=CLI_ACTOR)
        session.commit()
    before = (get_solution(engine, sid).model_dump(), [p.model_dump() for p in publications(engine)])

    report = run_json(capsys, "cleanup", "--older-than", "0")

    assert name not in published_files(local_settings) and journals(local_settings) == []
    assert set(published_files(local_settings)) == {p.file_name for p in publications(engine)}
    assert (get_solution(engine, sid).model_dump(), [p.model_dump() for p in publications(engine)]) == before
    assert [e.detail["outcome"] for e in recovered_events(engine)] == ["removed"]
    assert report["dry_run"] is False


def test_a_killed_approval_of_a_candidate_rejected_meanwhile_is_generated_again_by_missing(
    engine, local_settings, make_solutions, tmp_path, capsys
):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)
    name = kill_after_link(tmp_path, "approve", str(cid))
    with session_scope(engine, write=True) as session:
        review.reject(session=session, candidate_id=cid, reason="off_topic", actor=CLI_ACTOR)
        session.commit()
    assert get_solution(engine, sid).image_status in (ImageStatus.none, ImageStatus.placeholder)
    assert name in published_files(local_settings)

    report = run_json(capsys, "generate", "--missing", *SMALL)

    assert [r["solution_id"] for r in report["results"]] == [sid]
    assert published_files(local_settings) == [] and journals(local_settings) == []


def candidates_of(engine, solution_id: str) -> list[Candidate]:
    with Session(engine) as session:
        return list(session.exec(sql_select(Candidate).where(Candidate.solution_id == solution_id)).all())


def get_candidate(engine, candidate_id: int) -> Candidate:
    with Session(engine) as session:
        return session.get(Candidate, candidate_id)


def recovered_events(engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(sql_select(AuditEvent).where(AuditEvent.action == "image.recovered")).all())


def test_a_rolled_forward_approval_reaches_the_marketplace_row(engine, marketplace, tmp_path, capsys):
    sid = marketplace.add_solution(imageUrl=None)
    run_json(capsys, "marketplace", "pull")
    (result,) = run_json(capsys, "generate", "--solution", sid, *SMALL)["results"]

    name = kill_after_link(tmp_path, "approve", str(result["candidate_id"]))

    assert marketplace.image_url(sid) is None
    run_json(capsys, "solutions")  # recovers first; delivers what waits after
    assert marketplace.image_url(sid) == PUBLIC_PREFIX + name
