"""Review and publishing: AIXchange file names, never overwriting, rollback, rejection, uploads, roles."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from conftest import get_solution, open_page
from PIL import Image
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, select
from test_reencode import same_picture

from aixchange_images import batch, catalogue, cli, journal, pipeline, review, storage
from aixchange_images.auth import CLI_ACTOR, Actor, PermissionDenied
from aixchange_images.config import Settings, load_settings
from aixchange_images.db import session_scope, take_lock
from aixchange_images.models import (
    PLACEHOLDER_URL,
    PUBLIC_PREFIX,
    AuditEvent,
    Candidate,
    CandidateState,
    ImageStatus,
    Lock,
    Publication,
    Role,
)


@pytest.fixture
def local_settings() -> Settings:
    return load_settings(dalle_image_size="256x256")


def candidates(engine, settings: Settings, solution_id: str, n: int = 1) -> list[int]:
    """n fresh candidates for a solution from the local provider, in variant order."""
    results, _ = batch.run_batch(
        engine, settings, [solution_id], pipeline.GenerateOptions(candidates=n, use_cache=False, concurrency=1)
    )
    assert all(r.status == "succeeded" for r in results), results
    return [r.candidate_id for r in results]


def approve(engine, settings: Settings, candidate_id: int, actor: Actor = CLI_ACTOR) -> Publication:
    with session_scope(engine, write=True) as session:
        publication = review.approve(session=session, settings=settings, candidate_id=candidate_id, actor=actor)
        session.commit()
    return publication


def rollback(engine, solution_id: str, actor: Actor = CLI_ACTOR) -> Publication:
    with session_scope(engine, write=True) as session:
        publication = review.rollback(session=session, solution_id=solution_id, actor=actor)
        session.commit()
    return publication


def reject(engine, candidate_id: int, reason: str, actor: Actor = CLI_ACTOR, note: str | None = None) -> Candidate:
    with session_scope(engine, write=True) as session:
        candidate = review.reject(session=session, candidate_id=candidate_id, reason=reason, actor=actor, note=note)
        session.commit()
    return candidate


def get_candidate(engine, candidate_id: int) -> Candidate:
    with Session(engine) as session:
        return session.get(Candidate, candidate_id)


def published_files(settings: Settings) -> list[str]:
    folder = settings.publish_dir
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def every_file(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.suffix not in (".db", ".db-wal", ".db-shm")}


def snapshot(engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {t.name: sorted(map(repr, conn.execute(t.select()))) for t in SQLModel.metadata.sorted_tables}


def test_approve_publishes_a_new_aixchange_named_file_and_points_the_solution_at_it(
    engine, local_settings, make_solutions
):
    (sid,) = make_solutions(1, title="My AI Tool!")
    (cid,) = candidates(engine, local_settings, sid)
    before_ms = int(time.time() * 1000)

    publication = approve(engine, local_settings, cid)

    after_ms = int(time.time() * 1000)
    match = re.fullmatch(r"my_ai_tool-(\d{13})\.png", publication.file_name)
    assert match and before_ms <= int(match[1]) <= after_ms
    assert published_files(local_settings) == [publication.file_name]
    assert publication.image_url == f"/api/external-images/solutions/{publication.file_name}"
    published = (local_settings.publish_dir / publication.file_name).read_bytes()
    candidate = get_candidate(engine, cid)
    assert same_picture(published, (local_settings.data_dir / candidate.file_path).read_bytes())  # re-encoded
    assert candidate.state == CandidateState.approved and candidate.reviewed_by == "cli"
    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (publication.image_url, ImageStatus.approved)
    assert not any((local_settings.external_images_path / ".incoming").iterdir())


def test_approving_again_never_overwrites_a_published_file(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    first_id, second_id = candidates(engine, local_settings, sid, 2)
    first = approve(engine, local_settings, first_id)
    first_bytes = (local_settings.publish_dir / first.file_name).read_bytes()

    second = approve(engine, local_settings, second_id)
    third = approve(engine, local_settings, first_id)  # back to the first picture: still a new name

    assert len({first.file_name, second.file_name, third.file_name}) == 3
    assert published_files(local_settings) == sorted([first.file_name, second.file_name, third.file_name])
    assert (local_settings.publish_dir / first.file_name).read_bytes() == first_bytes
    assert (local_settings.publish_dir / second.file_name).read_bytes() != first_bytes
    assert get_solution(engine, sid).image_url == third.image_url
    assert get_candidate(engine, second_id).state == CandidateState.superseded


def test_publishing_within_one_millisecond_still_gets_a_new_name_each_time(local_settings):
    payloads = [_png(red) for red in range(6)]  # different bytes: an overwrite would show

    names = [storage.publish_file(local_settings, "Same Title", data, "png", intent=unbound())[0] for data in payloads]

    assert len(set(names)) == 6
    assert all(re.fullmatch(r"same_title-\d{13}\.png", name) for name in names)
    for name, data in zip(names, payloads, strict=True):
        assert (local_settings.publish_dir / name).read_bytes() == data


def unbound() -> journal.Intent:
    """A journal entry for publishing outside any transaction (nothing will settle it)."""
    return journal.Intent(
        solution_id="none", candidate_id=None, candidate_state="pending", actor="test", previous_publication_id=None
    )


def _png(red: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (red, 0, 0)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("../../etc/passwd", "etc_passwd"),
        ("My AI Tool!", "my_ai_tool"),
        ("..\\..\\Windows\\System32", "windows_system32"),
        ("/abs/olute", "abs_olute"),
        ("!!!", "solution"),
    ],
)
def test_a_title_never_takes_a_published_file_outside_the_folder(
    engine, local_settings, make_solutions, tmp_path, title, slug
):
    (sid,) = make_solutions(1, title=title)
    (cid,) = candidates(engine, local_settings, sid)
    before = every_file(tmp_path)

    publication = approve(engine, local_settings, cid)

    assert re.fullmatch(rf"{slug}-\d{{13}}\.png", publication.file_name)
    added = set(every_file(tmp_path)) - set(before)
    assert added == {local_settings.publish_dir / publication.file_name}
    assert all(every_file(tmp_path)[path] == data for path, data in before.items())
    assert not Path("/etc/passwd.png").exists() and not (tmp_path.parent / "etc").exists()


def test_jpeg_format_publishes_jpg_files_with_jpeg_bytes(engine, local_settings, make_solutions, monkeypatch):
    (sid,) = make_solutions(1, title="My AI Tool!")
    (cid,) = candidates(engine, local_settings, sid)  # stored as PNG
    monkeypatch.setenv("DALLE_IMAGE_FORMAT", "jpeg")
    jpeg_settings = load_settings(dalle_image_size="256x256")

    publication = approve(engine, jpeg_settings, cid)

    assert re.fullmatch(r"my_ai_tool-\d{13}\.jpg", publication.file_name)
    data = (jpeg_settings.publish_dir / publication.file_name).read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("JPEG", (256, 256))


def test_rollback_restores_the_previous_image_and_then_the_one_before(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1, imageUrl=PLACEHOLDER_URL)
    first_id, second_id = candidates(engine, local_settings, sid, 2)
    first = approve(engine, local_settings, first_id)
    second = approve(engine, local_settings, second_id)

    rollback(engine, sid)

    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (first.image_url, ImageStatus.approved)
    assert get_candidate(engine, first_id).state == CandidateState.approved
    assert get_candidate(engine, second_id).state == CandidateState.rolled_back

    rollback(engine, sid)

    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (PLACEHOLDER_URL, ImageStatus.placeholder)
    with Session(engine) as session:
        assert catalogue.missing_ids(session=session) == [sid]
    assert published_files(local_settings) == sorted([first.file_name, second.file_name])  # files stay
    with pytest.raises(review.ReviewError, match="no published image"):
        rollback(engine, sid)


def test_reject_records_the_reason_for_the_template_figures(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)

    rejected = reject(engine, cid, "Off-topic", note="Shows a cat, not support tickets.")

    stored = get_candidate(engine, cid)
    assert (stored.state, stored.reject_reason, stored.reject_note) == (
        CandidateState.rejected,
        "off_topic",
        "Shows a cat, not support tickets.",
    )
    assert rejected.reviewed_by == "cli" and stored.reviewed_at is not None
    assert get_solution(engine, sid).image_status == ImageStatus.none  # nothing left to review
    with Session(engine) as session:
        (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == "image.reject")).all()
    assert event.detail["reason"] == "off_topic"


def test_reject_with_an_unknown_reason_changes_nothing(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (cid,) = candidates(engine, local_settings, sid)
    before = snapshot(engine)

    with pytest.raises(review.ReviewError, match="off_topic"):
        reject(engine, cid, "ugly")

    assert snapshot(engine) == before


def test_auto_approve_publishes_the_first_good_candidate(engine, openai_settings, standin, make_solutions):
    (sid,) = make_solutions(1, title="My AI Tool!")
    standin.enqueue("garbage_image")  # the first candidate's reply is no image

    results, summary = batch.run_batch(
        engine, openai_settings, [sid], pipeline.GenerateOptions(candidates=3, auto_approve=True, concurrency=1)
    )

    assert [(r.status, r.error_kind) for r in results] == [
        ("failed", "bad_image"),
        ("succeeded", None),
        ("succeeded", None),
    ]
    good = results[1]
    assert summary["published"] == 1 and good.published_url is not None and results[2].published_url is None
    (file_name,) = published_files(openai_settings)
    assert good.published_url == PUBLIC_PREFIX + file_name and re.fullmatch(r"my_ai_tool-\d{13}\.png", file_name)
    assert get_solution(engine, sid).image_url == good.published_url
    assert get_candidate(engine, good.candidate_id).state == CandidateState.approved
    with Session(engine) as session:
        (publication,) = session.exec(select(Publication)).all()
    assert (publication.candidate_id, publication.previous_image_url) == (good.candidate_id, PLACEHOLDER_URL)


def test_upload_refuses_a_file_that_is_not_an_image(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    before = snapshot(engine)

    for data in (b"", b"%PDF-1.7 not an image", b"GIF89a" + b"\x00" * 64, _png(1)[:40]):
        with session_scope(engine, write=True) as session, pytest.raises(review.ReviewError):
            review.upload(session=session, settings=local_settings, solution_id=sid, data=data, actor=CLI_ACTOR)

    assert snapshot(engine) == before
    assert published_files(local_settings) == []


def test_upload_of_a_real_image_publishes_it_as_the_authors_own(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    with session_scope(engine, write=True) as session:
        publication = review.upload(
            session=session, settings=local_settings, solution_id=sid, data=_png(200), actor=CLI_ACTOR
        )
        session.commit()

    assert published_files(local_settings) == [publication.file_name]
    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (publication.image_url, ImageStatus.uploaded)


@pytest.mark.parametrize("role", [Role.manager, Role.product])
@pytest.mark.parametrize("action", ["approve", "reject", "rollback", "upload"])
def test_only_admins_may_approve_reject_roll_back_or_upload(engine, local_settings, make_solutions, role, action):
    (sid,) = make_solutions(1)
    first_id, second_id = candidates(engine, local_settings, sid, 2)
    approve(engine, local_settings, first_id)
    before, files = snapshot(engine), published_files(local_settings)
    actor = Actor("pat", role)
    attempts = {
        "approve": lambda: approve(engine, local_settings, second_id, actor),
        "reject": lambda: reject(engine, second_id, "off_topic", actor),
        "rollback": lambda: rollback(engine, sid, actor),
        "upload": lambda: _upload(engine, local_settings, sid, actor),
    }

    with pytest.raises(PermissionDenied, match="admin"):
        attempts[action]()

    assert snapshot(engine) == before
    assert published_files(local_settings) == files


def _upload(engine, settings: Settings, solution_id: str, actor: Actor) -> None:
    with session_scope(engine, write=True) as session:
        review.upload(session=session, settings=settings, solution_id=solution_id, data=_png(9), actor=actor)
        session.commit()


# -- an author's upload stays theirs --------------------------------------------------------------
def upload(engine, settings: Settings, solution_id: str, data: bytes) -> Publication:
    with session_scope(engine, write=True) as session:
        publication = review.upload(
            session=session, settings=settings, solution_id=solution_id, data=data, actor=CLI_ACTOR
        )
        session.commit()
    return publication


def generated_for(capsys: pytest.CaptureFixture[str], *which: str) -> list[str]:
    """The solutions the real `generate` command makes images for (the local provider, small)."""
    code = cli.main(["generate", *which, "--size", "256x256", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0, payload
    return [r["solution_id"] for r in payload["results"]]


def test_an_uploaded_image_stays_uploaded_after_a_later_candidate_is_rejected(
    engine, local_settings, make_solutions, capsys
):
    sid, other = make_solutions(2)
    uploaded = upload(engine, local_settings, sid, _png(200))
    (cid,) = candidates(engine, local_settings, sid)  # someone generates for it anyway
    assert get_solution(engine, sid).image_status == ImageStatus.pending

    reject(engine, cid, "off_brand")

    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (uploaded.image_url, ImageStatus.uploaded)
    assert generated_for(capsys, "--all") == [other]  # regenerating everything leaves the author's image
    assert generated_for(capsys, "--missing") == []
    assert get_solution(engine, sid).image_status == ImageStatus.uploaded
    assert published_files(local_settings) == [uploaded.file_name]


def test_regenerating_everything_leaves_an_author_image_alone_while_a_candidate_for_it_waits(
    engine, local_settings, make_solutions, capsys
):
    sid, other = make_solutions(2)
    upload(engine, local_settings, sid, _png(200))
    candidates(engine, local_settings, sid)  # waiting for review: the status reads pending
    assert get_solution(engine, sid).image_status == ImageStatus.pending

    assert generated_for(capsys, "--all") == [other]
    at = open_page("generate", Actor("alice", "admin"))
    assert "All except uploaded (1)" in at.radio[0].options


def test_rolling_back_to_an_uploaded_image_marks_it_uploaded_again(engine, local_settings, make_solutions, capsys):
    (sid,) = make_solutions(1)
    uploaded = upload(engine, local_settings, sid, _png(200))
    (cid,) = candidates(engine, local_settings, sid)
    approve(engine, local_settings, cid)
    assert get_solution(engine, sid).image_status == ImageStatus.approved

    rollback(engine, sid)

    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (uploaded.image_url, ImageStatus.uploaded)
    assert generated_for(capsys, "--all") == []


def _cmyk_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("CMYK", (64, 48), (0, 200, 255, 10)).save(out, format="JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize("publish_format", ["png", "jpeg"])
def test_an_uploaded_cmyk_jpeg_is_published_in_rgb(engine, make_solutions, monkeypatch, publish_format):
    monkeypatch.setenv("DALLE_IMAGE_FORMAT", publish_format)
    settings = load_settings(dalle_image_size="256x256")
    (sid,) = make_solutions(1)

    publication = upload(engine, settings, sid, _cmyk_jpeg())

    with Image.open(settings.publish_dir / publication.file_name) as image:
        assert (image.format.lower(), image.mode, image.size) == (publish_format, "RGB", (64, 48))
        red, green, blue = image.getpixel((32, 24))
    assert red > 200 and blue < 60  # the colours survive: CMYK (0, 200, 255, 10) is an orange-red
    assert get_solution(engine, sid).image_status == ImageStatus.uploaded


# -- one review action at a time per solution ----------------------------------------------------
def lock_counter(engine, solution_id: str) -> int:
    with Session(engine) as session:
        lock = session.get(Lock, f"solution:{solution_id}")
        return lock.counter if lock is not None else 0


def published_with_a_candidate_waiting(engine, local_settings, make_solutions) -> tuple[str, int]:
    """A solution with a published image and a second candidate awaiting review: every action applies."""
    (sid,) = make_solutions(1)
    (first_id,) = candidates(engine, local_settings, sid)
    approve(engine, local_settings, first_id)
    (second_id,) = candidates(engine, local_settings, sid)
    return sid, second_id


@pytest.mark.parametrize("action", ["approve", "reject", "rollback", "upload"])
def test_every_review_action_takes_the_solutions_lock(engine, local_settings, make_solutions, action):
    sid, second_id = published_with_a_candidate_waiting(engine, local_settings, make_solutions)
    before = lock_counter(engine, sid)
    actions = {
        "approve": lambda: approve(engine, local_settings, second_id),
        "reject": lambda: reject(engine, second_id, "off_topic"),
        "rollback": lambda: rollback(engine, sid),
        "upload": lambda: upload(engine, local_settings, sid, _png(3)),
    }

    actions[action]()

    assert lock_counter(engine, sid) > before


@pytest.mark.skipif(not os.environ.get("TEST_POSTGRES_URL"), reason="row locks that wait need PostgreSQL")
@pytest.mark.parametrize("action", ["approve", "reject", "rollback", "upload"])
def test_a_review_action_waits_while_another_holds_the_solutions_lock(engine, local_settings, make_solutions, action):
    sid, second_id = published_with_a_candidate_waiting(engine, local_settings, make_solutions)
    before = snapshot(engine)
    actions = {
        "approve": lambda s: review.approve(
            session=s, settings=local_settings, candidate_id=second_id, actor=CLI_ACTOR
        ),
        "reject": lambda s: review.reject(session=s, candidate_id=second_id, reason="off_topic", actor=CLI_ACTOR),
        "rollback": lambda s: review.rollback(session=s, solution_id=sid, actor=CLI_ACTOR),
        "upload": lambda s: review.upload(
            session=s, settings=local_settings, solution_id=sid, data=_png(3), actor=CLI_ACTOR
        ),
    }

    with session_scope(engine, write=True) as holder:
        take_lock(holder, f"solution:{sid}")  # another admin, mid-action on the same solution
        with session_scope(engine, write=True) as session, pytest.raises(OperationalError, match="lock timeout"):
            session.execute(text("SET LOCAL lock_timeout = '300ms'"))
            actions[action](session)
        holder.rollback()

    assert snapshot(engine) == before
