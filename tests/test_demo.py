"""Demo data: who may load it, and that the catalogue keeps working normally afterwards."""

from __future__ import annotations

import hashlib

import pytest
from conftest import solution_record
from PIL import Image
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select
from test_reencode import same_picture

from aixchange_images import batch, bulk, catalogue, demo, demo_history, metrics, pipeline, review
from aixchange_images.auth import CLI_ACTOR, Actor, PermissionDenied
from aixchange_images.config import load_settings
from aixchange_images.db import session_scope
from aixchange_images.models import (
    PUBLIC_PREFIX,
    Attempt,
    AuditEvent,
    Candidate,
    ImageStatus,
    Publication,
    Role,
    Solution,
)
from aixchange_images.providers.base import ImageRequest
from aixchange_images.providers.local import LocalProvider


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


# -- the demo tells the truth ----------------------------------------------------------------------
@pytest.fixture
def loaded(engine, settings):
    demo.load(engine, settings, solutions=40, generations=240, actor=CLI_ACTOR)
    return settings


def files_under(folder) -> dict:
    return {p: p.stat().st_size for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def test_each_approved_demo_solution_shows_its_own_card(engine, loaded):
    with Session(engine) as session:
        approved = session.exec(select(Solution).where(Solution.image_status == ImageStatus.approved)).all()
        assert len(approved) >= 10
        shown = {}
        for solution in approved:
            (publication,) = session.exec(
                select(Publication).where(Publication.solution_id == solution.id, col(Publication.active).is_(True))
            ).all()
            candidate = session.get(Candidate, publication.candidate_id)
            attempt = session.get(Attempt, candidate.attempt_id)
            published = loaded.publish_dir / publication.file_name
            assert solution.image_url == PUBLIC_PREFIX + publication.file_name and published.is_file()
            assert candidate.solution_id == solution.id and candidate.state == "approved"
            # Drawn by the local provider for this solution: the same request draws the same bytes.
            request = ImageRequest(
                attempt.prompt, attempt.model, attempt.size, attempt.quality, attempt.output_format,
                variant=attempt.variant, subject=pipeline_subject(solution),
            )  # fmt: skip
            assert same_picture(published.read_bytes(), LocalProvider(loaded).generate(request).data)
            shown[solution.id] = hashlib.sha256(published.read_bytes()).hexdigest()
    assert len(set(shown.values())) == len(shown)  # no two solutions share a card


def pipeline_subject(solution: Solution) -> dict:
    return {
        "title": solution.title,
        "description": solution.description,
        "category": solution.category,
        "tags": list(solution.tags or []),
        "provider": solution.provider or "",
    }


def test_demo_storage_figure_equals_the_bytes_of_the_files_on_disk(engine, loaded):
    on_disk = files_under(loaded.candidates_dir) | files_under(loaded.publish_dir)
    with Session(engine) as session:
        assert metrics.storage_bytes(session=session) == sum(on_disk.values()) > 0
        stored = session.exec(select(Candidate).where(col(Candidate.deleted_at).is_(None))).all()
    assert {loaded.data_dir / c.file_path for c in stored} == set(files_under(loaded.candidates_dir))


def test_every_stored_demo_image_names_the_provider_that_really_drew_it(engine, loaded):
    with Session(engine) as session:
        stored = session.exec(select(Candidate).where(col(Candidate.deleted_at).is_(None))).all()
        assert stored
        for candidate in stored:
            attempt = session.get(Attempt, candidate.attempt_id)
            assert (attempt.provider, attempt.model, candidate.model) == ("local", "local-card", "local-card")
            assert attempt.cost_usd == candidate.cost_usd == 0.0
            path = loaded.data_dir / candidate.file_path
            assert attempt.bytes == candidate.bytes == path.stat().st_size
            with Image.open(path) as image:
                assert f"{image.width}x{image.height}" == attempt.size == f"{candidate.width}x{candidate.height}"
        paid = session.exec(select(Attempt).where(Attempt.provider == "openai", Attempt.status == "succeeded")).all()
        assert paid  # the synthetic paid history is still there, with no stored image
        for attempt in paid:
            candidate = session.get(Candidate, attempt.candidate_id)
            assert candidate.deleted_at is not None and not (loaded.data_dir / candidate.file_path).exists()


def test_past_the_drawing_budget_approved_solutions_get_no_image_rather_than_another_card(
    engine, settings, monkeypatch
):
    monkeypatch.setattr(demo_history, "DRAWN_APPROVED", 3)
    demo.load(engine, settings, solutions=30, generations=150, actor=CLI_ACTOR)
    with Session(engine) as session:
        statuses = [s.image_status for s in session.exec(select(Solution)).all()]
        publications = session.exec(select(Publication)).all()
    assert statuses.count(ImageStatus.approved) == 3 == len(publications)
    assert len({p.file_name for p in publications}) == 3
