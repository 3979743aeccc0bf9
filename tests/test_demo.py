"""Demo data: who may load it, and that the catalogue keeps working normally afterwards."""

from __future__ import annotations

import pytest
from conftest import solution_record
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from aixchange_images import batch, bulk, catalogue, demo, pipeline, review
from aixchange_images.auth import CLI_ACTOR, Actor, PermissionDenied
from aixchange_images.config import load_settings
from aixchange_images.db import session_scope
from aixchange_images.models import Attempt, AuditEvent, Candidate, Publication, Role


def test_after_demo_data_every_table_it_filled_takes_new_rows(engine):
    """The bulk load writes explicit ids; PostgreSQL's sequences must then move past them."""
    settings = load_settings(dalle_image_size="256x256")
    loaded = demo.load(engine, settings, solutions=12, generations=40, actor=CLI_ACTOR)
    assert loaded["attempts"] == 40 and loaded["candidates"] > 0 and loaded["publications"] > 0
    with Session(engine) as session:
        highest = {model: session.exec(select(func.max(model.id))).one() for model in (Attempt, Candidate, Publication)}

    with session_scope(engine, write=True) as session:
        report = bulk.import_records(session=session, records=[solution_record(900)], actor=CLI_ACTOR)
        session.commit()
    assert report.imported == 1
    (sid,) = [s.id for s in catalogue.list_solutions(session=Session(engine), text="Solution number 900")]
    (result,), _ = batch.run_batch(engine, settings, [sid], pipeline.GenerateOptions())  # an attempt and a candidate
    assert result.status == "succeeded", result.error
    with session_scope(engine, write=True) as session:
        publication = review.approve(
            session=session, settings=settings, candidate_id=result.candidate_id, actor=CLI_ACTOR
        )
        session.commit()

    assert result.attempt_id > highest[Attempt]
    assert result.candidate_id > highest[Candidate]
    assert publication.id > highest[Publication]


@pytest.mark.parametrize("role", [Role.manager, Role.product])
def test_only_admins_may_load_demo_data(engine, settings, role):
    with engine.connect() as conn:
        before = {t.name: sorted(map(repr, conn.execute(t.select()))) for t in SQLModel.metadata.sorted_tables}

    with pytest.raises(PermissionDenied, match="admin"):
        demo.load(engine, settings, solutions=5, generations=10, actor=Actor("pat", role))

    with engine.connect() as conn:
        after = {t.name: sorted(map(repr, conn.execute(t.select()))) for t in SQLModel.metadata.sorted_tables}
    assert after == before
    assert not settings.data_dir.exists() or not any(settings.data_dir.rglob("*.png"))  # nothing drawn either


def test_loading_demo_data_is_audited(engine):
    demo.load(engine, load_settings(dalle_image_size="256x256"), solutions=3, generations=5, actor=CLI_ACTOR)

    with Session(engine) as session:
        (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == "catalogue.demo_data")).all()
    assert (event.actor, event.detail["solutions"]) == ("cli", 3)
