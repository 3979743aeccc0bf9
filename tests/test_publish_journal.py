"""A publication killed or failed between linking its file and committing leaves no orphan."""

from __future__ import annotations

import json
import os

import pytest
from conftest import get_solution
from sqlalchemy import event
from sqlmodel import Session
from sqlmodel import select as sql_select

from aixchange_images import batch, cli, journal, pipeline, review
from aixchange_images.auth import CLI_ACTOR
from aixchange_images.config import Settings, load_settings
from aixchange_images.db import session_scope
from aixchange_images.models import ImageStatus, Publication

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
