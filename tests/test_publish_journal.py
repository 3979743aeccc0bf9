"""The publish journal: settled by the transaction that published, or by recovery when its process died."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import get_solution
from sqlalchemy import event
from sqlmodel import Session, SQLModel
from sqlmodel import select as sql_select

from aixchange_images import batch, cli, journal, pipeline, recovery, review, storage
from aixchange_images.auth import CLI_ACTOR
from aixchange_images.config import Settings, load_settings
from aixchange_images.db import session_scope
from aixchange_images.models import PUBLIC_PREFIX, Candidate, CandidateState, ImageStatus, Publication, utcnow

SMALL = ("--size", "256x256")


@pytest.fixture
def local_settings() -> Settings:
    return load_settings(dalle_image_size="256x256")


def candidates(engine, settings: Settings, solution_id: str, n: int = 1) -> list[int]:
    results, _ = batch.run_batch(
        engine, settings, [solution_id], pipeline.GenerateOptions(candidates=n, use_cache=False, concurrency=1)
    )
    assert all(r.status == "succeeded" for r in results), results
    return [r.candidate_id for r in results]


def approve(engine, settings: Settings, candidate_id: int) -> Publication:
    with session_scope(engine, write=True) as session:
        publication = review.approve(session=session, settings=settings, candidate_id=candidate_id, actor=CLI_ACTOR)
        session.commit()
    return publication


def publications(engine) -> list[Publication]:
    with Session(engine) as session:
        return list(session.exec(sql_select(Publication).order_by(Publication.id)).all())


def published_files(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.publish_dir.iterdir())


def incoming(settings: Settings) -> list[str]:
    return sorted(p.name for p in (settings.external_images_path / ".incoming").iterdir())


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


# -- the transaction's end settles the journal ----------------------------------------------------
def journals(settings: Settings) -> list[str]:
    return [n for n in incoming(settings) if n.endswith(journal.SUFFIX)]


def refuse_publications(session, _context, _instances) -> None:  # type: ignore[no-untyped-def]
    if any(isinstance(obj, Publication) for obj in session.new):
        raise RuntimeError("the database refused the write")


def test_while_the_transaction_is_open_the_file_has_a_journal_and_the_commit_removes_only_the_journal(
    engine, local_settings, make_solutions
):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)

    with session_scope(engine, write=True) as session:
        publication = review.approve(session=session, settings=local_settings, candidate_id=cid, actor=CLI_ACTOR)
        (entry,) = journals(local_settings)
        intent = journal.read(journal.path_for(local_settings, publication.file_name))
        assert entry == publication.file_name + journal.SUFFIX
        assert (intent.solution_id, intent.candidate_id, intent.actor) == (sid, cid, "cli")
        assert (intent.image_url, intent.previous_publication_id, intent.pid) == (
            publication.image_url,
            None,
            os.getpid(),
        )
        session.commit()

    assert published_files(local_settings) == [publication.file_name]
    assert incoming(local_settings) == []


def test_a_failure_after_the_link_and_before_the_commit_leaves_no_file(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)

    with pytest.raises(RuntimeError, match="refused"), session_scope(engine, write=True) as session:
        event.listen(session, "before_flush", refuse_publications)  # _point_at's flush fails after the link
        review.approve(session=session, settings=local_settings, candidate_id=cid, actor=CLI_ACTOR)

    assert published_files(local_settings) == [] and incoming(local_settings) == []
    assert get_solution(engine, sid).image_status == ImageStatus.pending
    assert publications(engine) == []


def test_an_explicit_rollback_removes_the_file_and_the_same_session_can_publish_again(
    engine, local_settings, make_solutions
):
    (sid,) = make_solutions(1)
    first, second = candidates(engine, local_settings, sid, 2)

    with session_scope(engine, write=True) as session:
        review.approve(session=session, settings=local_settings, candidate_id=first, actor=CLI_ACTOR)
        session.rollback()
        assert published_files(local_settings) == [] and journals(local_settings) == []
        kept = review.approve(session=session, settings=local_settings, candidate_id=second, actor=CLI_ACTOR)
        session.commit()

    assert published_files(local_settings) == [kept.file_name] and incoming(local_settings) == []
    assert [p.file_name for p in publications(engine)] == [kept.file_name]


@pytest.mark.parametrize("savepoint", ["released", "rolled back"])
def test_a_savepoint_inside_the_transaction_does_not_settle_the_publication(
    engine, local_settings, make_solutions, savepoint
):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)

    with session_scope(engine, write=True) as session:
        publication = review.approve(session=session, settings=local_settings, candidate_id=cid, actor=CLI_ACTOR)
        nested = session.begin_nested()  # as take_lock does, and an outbox write might
        if savepoint == "released":
            nested.commit()
        else:
            nested.rollback()
        assert published_files(local_settings) == [publication.file_name]
        assert journals(local_settings) == [publication.file_name + journal.SUFFIX]  # still open
        session.commit()

    assert published_files(local_settings) == [publication.file_name] and incoming(local_settings) == []


# -- recovery: what an abandoned journal means, decided under the solution's lock ----------------
def dead_pid() -> int:
    """The pid of a process of ours that has ended and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def leave_journal(settings: Settings, name: str, data: bytes | None, **fields) -> Path:
    """A journal as a process killed after writing it leaves it (the file only if `data` is given)."""
    defaults = {"candidate_state": "pending", "actor": "ada", "previous_publication_id": None}
    intent = journal.Intent(**{**defaults, **fields})
    intent.file_name, intent.image_url = name, PUBLIC_PREFIX + name
    payload = data if data is not None else b"never written"
    intent.sha256, intent.bytes = hashlib.sha256(payload).hexdigest(), len(payload)
    path = journal.path_for(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(intent)), encoding="utf-8")
    if data is not None:
        settings.publish_dir.mkdir(parents=True, exist_ok=True)
        (settings.publish_dir / name).write_bytes(data)
    return path


def candidate_bytes(engine, settings: Settings, candidate_id: int) -> bytes:
    with Session(engine) as session:
        return (settings.data_dir / session.get(Candidate, candidate_id).file_path).read_bytes()


def test_recovery_with_no_journal_is_a_glob_and_asks_the_database_nothing(engine, local_settings):
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    assert recovery.recover(engine, local_settings) == []

    assert statements == []


def test_a_journal_whose_publication_was_committed_only_loses_the_journal(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)
    publication = approve(engine, local_settings, cid)
    data = (local_settings.publish_dir / publication.file_name).read_bytes()
    path = leave_journal(local_settings, publication.file_name, None, solution_id=sid, candidate_id=cid, pid=dead_pid())
    before = snapshot(engine)

    (done,) = recovery.recover(engine, local_settings)

    assert (done.file_name, done.outcome) == (publication.file_name, "committed")
    assert not path.exists() and (local_settings.publish_dir / publication.file_name).read_bytes() == data
    assert snapshot(engine) == before


def test_a_journal_without_its_file_leaves_the_candidate_waiting_for_review(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)
    path = leave_journal(local_settings, "x-1.png", None, solution_id=sid, candidate_id=cid, pid=dead_pid())
    before = snapshot(engine)

    (done,) = recovery.recover(engine, local_settings)

    assert done.outcome == "not_linked" and not path.exists()
    assert snapshot(engine) == before  # still pending: as if the approval had never started
    assert get_solution(engine, sid).image_status == ImageStatus.pending


def test_recovery_never_touches_a_file_that_is_not_the_bytes_it_journaled(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)
    path = leave_journal(local_settings, "x-1.png", b"the marketplace's own", solution_id=sid, candidate_id=cid)
    journal_text = json.loads(path.read_text())
    path.write_text(json.dumps({**journal_text, "sha256": "0" * 64, "pid": dead_pid()}))

    (done,) = recovery.recover(engine, local_settings)

    assert done.outcome == "not_linked" and not path.exists()
    assert (local_settings.publish_dir / "x-1.png").read_bytes() == b"the marketplace's own"


def test_a_journal_of_a_transaction_still_open_here_is_left_to_it(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)

    with session_scope(engine, write=True) as session:
        publication = review.approve(session=session, settings=local_settings, candidate_id=cid, actor=CLI_ACTOR)
        assert recovery.recover(engine, local_settings) == []  # e.g. the dashboard's other session
        assert journals(local_settings) == [publication.file_name + journal.SUFFIX]
        session.commit()

    assert published_files(local_settings) == [publication.file_name] and journals(local_settings) == []
    assert get_solution(engine, sid).image_url == publication.image_url


def test_a_journal_this_process_left_behind_is_recovered_though_the_process_lives(
    engine, local_settings, make_solutions
):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)
    name = "x-1.png"
    leave_journal(local_settings, name, candidate_bytes(engine, local_settings, cid), **approving(engine, sid, cid))

    (done,) = recovery.recover(engine, local_settings)  # its pid is ours, its runner ours, but no transaction holds it

    assert done.outcome == "rolled_forward"
    assert get_solution(engine, sid).image_url == PUBLIC_PREFIX + name


def test_a_journal_whose_candidate_id_now_names_another_image_is_undone(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)
    fields = {**approving(engine, sid, cid), "candidate_sha256": "f" * 64}  # an upload rolled back; its id reused
    leave_journal(local_settings, "x-1.png", b"the uploaded image", **fields)

    (done,) = recovery.recover(engine, local_settings)

    assert done.outcome == "removed" and published_files(local_settings) == []
    assert get_candidate(engine, cid).state == CandidateState.pending


def approving(engine, solution_id: str, candidate_id: int) -> dict:
    """The journal fields of an approval of this candidate as it stands."""
    candidate = get_candidate(engine, candidate_id)
    return {
        "solution_id": solution_id,
        "candidate_id": candidate_id,
        "candidate_state": candidate.state,
        "candidate_sha256": candidate.sha256,
    }


OWNERS = {
    "this process, transaction open": {},
    "this process, transaction over": {},
    "a process gone from this host": {"runner": "elsewhere"},
    "a process alive on this host": {"runner": "elsewhere", "pid": os.getppid()},
    "a process on another machine": {"runner": "elsewhere", "host": "another-host", "pid": os.getppid()},
}


@pytest.mark.parametrize(
    ("owner", "minutes_ago", "abandoned"),
    [
        ("this process, transaction open", 60, False),
        ("this process, transaction over", 0, True),
        ("a process gone from this host", 0, True),
        ("a process alive on this host", 0, False),
        ("a process alive on this host", 16, True),  # a reused pid, or a namesake in another container
        ("a process on another machine", 0, False),
        ("a process on another machine", 16, True),
    ],
)
def test_a_journal_is_abandoned_only_when_its_process_cannot_end_its_transaction(
    local_settings, owner, minutes_ago, abandoned
):
    intent = journal.Intent(
        solution_id="s", candidate_id=1, candidate_state="pending", actor="ada", previous_publication_id=None
    )
    for key, value in OWNERS[owner].items():
        setattr(intent, key, value)
    if owner == "a process gone from this host":
        intent.pid = dead_pid()
    intent.created_at = (utcnow() - timedelta(minutes=minutes_ago)).isoformat()
    journal.incoming_dir(local_settings).mkdir(parents=True)
    assert journal.claim(local_settings, intent, "x-1.png")
    if owner != "this process, transaction open":
        journal.release(local_settings, intent)
        intent.file_name = "x-1.png"

    try:
        assert journal.abandoned(intent) is abandoned
    finally:
        journal.release(local_settings, intent)


def test_clean_up_keeps_the_files_of_a_candidate_that_a_journal_may_still_publish(
    engine, local_settings, make_solutions
):
    (sid,) = make_solutions(1)
    first, second = candidates(engine, local_settings, sid, 2)
    approve(engine, local_settings, first)
    latest = approve(engine, local_settings, second)  # the first is superseded: clean-up may take its files
    first_file = local_settings.data_dir / get_candidate(engine, first).file_path
    intent = journal.Intent(
        solution_id=sid,
        candidate_id=first,
        candidate_state=CandidateState.superseded,
        actor="ada",
        previous_publication_id=latest.id,
    )
    assert journal.claim(local_settings, intent, "x-1.png")  # an admin is publishing the first one again

    kept = clean_up(engine, local_settings)
    journal.release(local_settings, intent)
    freed = clean_up(engine, local_settings)

    assert kept["candidates"] == 0 and freed["candidates"] == 1
    assert not first_file.exists()


def clean_up(engine, settings: Settings) -> dict:
    with session_scope(engine, write=True) as session:
        report = review.clean_up(session=session, settings=settings, actor=CLI_ACTOR, older_than_days=0)
        session.commit()
    return report


def get_candidate(engine, candidate_id: int) -> Candidate:
    with Session(engine) as session:
        return session.get(Candidate, candidate_id)


def snapshot(engine) -> dict[str, list[str]]:
    """Every table but the locks (recovery takes the solution's lock, which counts)."""
    with engine.connect() as conn:
        return {
            t.name: sorted(map(repr, conn.execute(t.select())))
            for t in SQLModel.metadata.sorted_tables
            if t.name != "lock"
        }


# -- choosing a name: never over a file, never over another publisher's claim --------------------
def unbound(solution_id: str = "s") -> journal.Intent:
    return journal.Intent(
        solution_id=solution_id, candidate_id=None, candidate_state="pending", actor="ada", previous_publication_id=None
    )


def test_a_name_taken_by_a_file_moves_on_a_millisecond_and_leaves_no_claim_behind(local_settings, monkeypatch):
    monkeypatch.setattr(storage.time, "time", lambda: 1_700_000_000.0)
    local_settings.publish_dir.mkdir(parents=True)
    (local_settings.publish_dir / "same-1700000000000.png").write_bytes(b"the marketplace's own")
    intent = unbound()

    name, _ = storage.publish_file(local_settings, "Same", b"ours", "png", intent=intent)

    assert name == "same-1700000000001.png"
    assert journals(local_settings) == [name + journal.SUFFIX]
    assert (local_settings.publish_dir / "same-1700000000000.png").read_bytes() == b"the marketplace's own"
    journal.release(local_settings, intent)


def test_a_name_another_publisher_has_claimed_is_left_to_it(local_settings, monkeypatch):
    monkeypatch.setattr(storage.time, "time", lambda: 1_700_000_000.0)
    theirs = leave_journal(local_settings, "same-1700000000000.png", None, solution_id="other", candidate_id=7)
    before = theirs.read_bytes()
    intent = unbound()

    name, _ = storage.publish_file(local_settings, "Same", b"ours", "png", intent=intent)

    assert name == "same-1700000000001.png"
    assert theirs.read_bytes() == before
    assert published_files(local_settings) == [name]
    journal.release(local_settings, intent)
