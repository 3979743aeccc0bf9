"""Review: approve (publish), reject with a reason, roll back, upload an image instead."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case
from sqlmodel import Session, col, select

from . import journal, storage
from .auth import Actor, audit, require
from .catalogue import UPLOADED_SOURCE, active_publication, settled_status
from .checks import perceptual_hash
from .config import Settings, UserError
from .db import lock_solution
from .deliveries import enqueue
from .models import (
    NOT_CHOSEN,
    REJECT_REASONS,
    Attempt,
    Candidate,
    CandidateState,
    ImageStatus,
    Publication,
    Solution,
    utcnow,
)


class ReviewError(UserError, ValueError):
    """A review action that cannot be done; one sentence for a person."""


def _candidate(session: Session, candidate_id: int) -> tuple[Candidate, Solution]:
    """The candidate and its solution, read again once this session holds the solution's lock."""
    candidate = session.get(Candidate, candidate_id)
    if candidate is None:
        raise ReviewError(f"There is no candidate {candidate_id}.")
    solution = _locked_solution(session, candidate.solution_id)
    if solution is None:
        raise ReviewError(f"Candidate {candidate_id} belongs to a solution that no longer exists.")
    session.refresh(candidate)  # its state may have changed while we waited for the lock
    return candidate, solution


def _locked_solution(session: Session, solution_id: str) -> Solution | None:
    """Take the solution's review lock, then read the solution as the previous holder left it.

    Two admins acting on one solution at once (or an admin and an auto-approving batch) would
    otherwise both supersede the same publication, or both approve the same candidate.
    """
    lock_solution(session, solution_id)
    solution = session.get(Solution, solution_id)
    if solution is not None:
        session.refresh(solution)
    return solution


def approve(*, session: Session, settings: Settings, candidate_id: int, actor: Actor) -> Publication:
    """Publish a candidate under a new AIXchange file name and point the solution at it."""
    require(actor, "review")
    candidate, solution = _candidate(session, candidate_id)
    if candidate.state == CandidateState.approved:
        raise ReviewError(f"Candidate {candidate_id} is already the published image.")
    try:
        data = storage.read_data_file(settings, candidate.file_path)
    except OSError:
        raise ReviewError(f"Candidate {candidate_id}'s file is gone from the data folder; generate again.") from None
    try:  # always: the marketplace serves the pixels alone, never text chunks, EXIF or appended bytes
        data = storage.convert(data, settings.dalle_image_format)
    except storage.BadImage as exc:
        raise ReviewError(f"Candidate {candidate_id}: {exc}") from None
    intent = journal.bind(session, settings, _intent(session, candidate, actor))  # no orphan if we die before commit
    file_name, url = storage.publish_file(settings, solution.title, data, settings.dalle_image_format, intent=intent)
    return _point_at(session, solution, candidate, file_name, url, len(data), actor)


def _intent(session: Session, candidate: Candidate, actor: Actor) -> journal.Intent:
    """What recovery needs to finish or undo this approval should the process die before the commit."""
    previous = active_publication(session=session, solution_id=candidate.solution_id)
    solution = session.get(Solution, candidate.solution_id)
    return journal.Intent(
        solution_id=candidate.solution_id,
        showed=solution.image_url if solution is not None else None,
        candidate_id=candidate.id,
        candidate_state=candidate.state,
        candidate_sha256=candidate.sha256,
        actor=actor.username,
        previous_publication_id=previous.id if previous is not None else None,
    )


def _point_at(
    session: Session, solution: Solution, candidate: Candidate, file_name: str, url: str, size: int, actor: Actor
) -> Publication:
    previous = active_publication(session=session, solution_id=solution.id)
    if previous is not None:
        previous.active = False
        session.add(previous)
        _set_state(session, previous.candidate_id, CandidateState.superseded)
    publication = Publication(
        solution_id=solution.id,
        candidate_id=candidate.id,
        file_name=file_name,
        image_url=url,
        bytes=size,
        previous_image_url=solution.image_url,
        previous_status=settled_status(session=session, solution=solution),
        published_by=actor.username,
    )
    session.add(publication)
    now = utcnow()
    candidate.state, candidate.reviewed_at, candidate.reviewed_by = CandidateState.approved, now, actor.username
    session.add(candidate)
    for other in _pending(session, solution.id, exclude=candidate.id):
        other.state, other.reject_reason = CandidateState.rejected, NOT_CHOSEN
        other.reviewed_at, other.reviewed_by = now, actor.username
        session.add(other)
    solution.image_url = url
    solution.image_status = ImageStatus.uploaded if candidate.source == UPLOADED_SOURCE else ImageStatus.approved
    solution.updated_at = now
    session.add(solution)
    enqueue(session, solution, reason="upload" if candidate.source == UPLOADED_SOURCE else "approve", by=actor.username)
    audit(session, actor, "image.approve", solution.id, candidate_id=candidate.id, file=file_name)
    session.flush()
    return publication


def reject(*, session: Session, candidate_id: int, reason: str, actor: Actor, note: str | None = None) -> Candidate:
    require(actor, "review")
    key = reason.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in REJECT_REASONS:
        raise ReviewError(f"The reason must be one of: {', '.join(REJECT_REASONS)} (got '{reason}').")
    candidate, solution = _candidate(session, candidate_id)
    if candidate.state != CandidateState.pending:
        raise ReviewError(f"Candidate {candidate_id} is {candidate.state}, not awaiting review.")
    candidate.state, candidate.reject_reason = CandidateState.rejected, key
    candidate.reject_note = (note or "").strip()[:500] or None
    candidate.reviewed_at, candidate.reviewed_by = utcnow(), actor.username
    session.add(candidate)
    session.flush()
    _refresh_status(session, solution)
    audit(
        session, actor, "image.reject", solution.id, candidate_id=candidate.id, reason=key, note=candidate.reject_note
    )
    return candidate


def reject_unchosen(*, session: Session, candidate_id: int, reason: str, actor: Actor) -> Candidate:
    """Close a pending candidate that lost to another (auto-approve's extra candidates)."""
    require(actor, "review")
    candidate, solution = _candidate(session, candidate_id)
    if candidate.state == CandidateState.pending:
        candidate.state, candidate.reject_reason = CandidateState.rejected, reason
        candidate.reviewed_at, candidate.reviewed_by = utcnow(), actor.username
        session.add(candidate)
        session.flush()
        _refresh_status(session, solution)
    return candidate


def rollback(*, session: Session, solution_id: str, actor: Actor) -> Publication:
    """Undo the latest approval: the solution shows what it showed before. Files stay on disk."""
    require(actor, "review")
    solution = _locked_solution(session, solution_id)
    if solution is None:
        raise ReviewError(f"There is no solution {solution_id}.")
    current = active_publication(session=session, solution_id=solution_id)
    if current is None:
        raise ReviewError(f"{solution.title} has no published image of ours to roll back.")
    current.active, current.rolled_back_at, current.rolled_back_by = False, utcnow(), actor.username
    session.add(current)
    _set_state(session, current.candidate_id, CandidateState.rolled_back)
    earlier = session.exec(
        select(Publication)
        .where(
            Publication.solution_id == solution_id,
            Publication.image_url == current.previous_image_url,
            col(Publication.rolled_back_at).is_(None),
            Publication.id != current.id,
        )
        .order_by(col(Publication.id).desc())
    ).first()
    if earlier is not None:
        earlier.active = True
        session.add(earlier)
        _set_state(session, earlier.candidate_id, CandidateState.approved)
    solution.image_url = current.previous_image_url
    session.add(solution)
    _refresh_status(session, solution)
    enqueue(session, solution, reason="rollback", by=actor.username)
    audit(session, actor, "image.rollback", solution_id, file=current.file_name, restored=current.previous_image_url)
    return current


def undo_approval(*, session: Session, publication_id: int, actor: Actor) -> Publication:
    """Take back an approval made a moment ago, while it is still the live image: the solution shows
    what it showed before (through `rollback`) and its candidates wait for review again."""
    require(actor, "review")
    publication = session.get(Publication, publication_id)
    if publication is None:
        raise ReviewError(f"There is no publication {publication_id}.")
    solution = _locked_solution(session, publication.solution_id)
    session.refresh(publication)
    if solution is None or not publication.active:
        raise ReviewError("That approval is no longer the live image, so there is nothing to undo.")
    rollback(session=session, solution_id=solution.id, actor=actor)
    approved = session.get(Candidate, publication.candidate_id) if publication.candidate_id else None
    if approved is not None and approved.source != UPLOADED_SOURCE:
        for candidate in [approved, *_closed_with(session, approved)]:
            candidate.state, candidate.reject_reason = CandidateState.pending, None
            candidate.reviewed_at = candidate.reviewed_by = None
            session.add(candidate)
    _refresh_status(session, solution)
    audit(session, actor, "image.undo", solution.id, candidate_id=publication.candidate_id)
    return publication


def _closed_with(session: Session, approved: Candidate) -> list[Candidate]:
    """The candidates an approval turned down as not chosen (closed at the same instant)."""
    query = select(Candidate).where(
        Candidate.solution_id == approved.solution_id,
        Candidate.state == CandidateState.rejected,
        Candidate.reject_reason == NOT_CHOSEN,
    )
    return [c for c in session.exec(query).all() if c.reviewed_at == approved.reviewed_at]


def reject_all(
    *, session: Session, candidate_ids: list[int], reason: str, actor: Actor, note: str | None = None
) -> list[Candidate]:
    """Reject the candidates a reviewer was shown, all with one reason (Review's X)."""
    if not candidate_ids:
        raise ReviewError("There is no candidate to reject.")
    return [reject(session=session, candidate_id=i, reason=reason, actor=actor, note=note) for i in candidate_ids]


def upload(*, session: Session, settings: Settings, solution_id: str, data: bytes, actor: Actor) -> Publication:
    """Publish an admin-supplied image (the author's own) after checking it really is one."""
    require(actor, "review")
    try:
        info = storage.verify_image(data, max_bytes=storage.MAX_UPLOAD_BYTES, source="upload")
        data, info = storage.normalise_format(data, info)
    except storage.BadImage as exc:
        raise ReviewError(str(exc)) from None
    if _locked_solution(session, solution_id) is None:
        raise ReviewError(f"There is no solution {solution_id}.")
    candidate = storage.keep_candidate(
        settings, solution_id, data, info, source=UPLOADED_SOURCE, template_ref="upload", model="upload"
    )
    # A person chose it, so it is not checked; hashed, it is what the duplicate check compares new images with.
    candidate.phash = perceptual_hash(info.decoded) if info.decoded is not None else None
    session.add(candidate)
    session.flush()
    audit(session, actor, "image.upload", solution_id, candidate_id=candidate.id, bytes=info.bytes)
    return approve(session=session, settings=settings, candidate_id=candidate.id, actor=actor)


def _pending(session: Session, solution_id: str, exclude: int | None = None) -> list[Candidate]:
    query = select(Candidate).where(Candidate.solution_id == solution_id, Candidate.state == CandidateState.pending)
    if exclude is not None:
        query = query.where(Candidate.id != exclude)
    return list(session.exec(query).all())


def _set_state(session: Session, candidate_id: int | None, state: str) -> None:
    if candidate_id is None:
        return
    candidate = session.get(Candidate, candidate_id)
    if candidate is not None:
        candidate.state = state
        session.add(candidate)


def _refresh_status(session: Session, solution: Solution) -> None:
    """Pending while a candidate awaits review, else what its image is (an upload stays uploaded)."""
    session.flush()
    if _pending(session, solution.id):
        solution.image_status = ImageStatus.pending
    else:
        solution.image_status = settled_status(session=session, solution=solution)
    solution.updated_at = utcnow()
    session.add(solution)


def candidates_for(*, session: Session, solution_id: str, states: tuple[str, ...] | None = None) -> list[Candidate]:
    query = select(Candidate).where(Candidate.solution_id == solution_id)
    if states:
        query = query.where(col(Candidate.state).in_(states))
    return list(session.exec(query.order_by(col(Candidate.id).desc())).all())


def publications_for(*, session: Session, solution_id: str) -> list[Publication]:
    query = select(Publication).where(Publication.solution_id == solution_id)
    return list(session.exec(query.order_by(col(Publication.id).desc())).all())


def attempt_for(*, session: Session, candidate: Candidate) -> Attempt | None:
    return session.get(Attempt, candidate.attempt_id) if candidate.attempt_id else None


def thumbnails_for(*, session: Session, solution_ids: list[str]) -> dict[str, str]:
    """Each solution's thumbnail (relative path): its published candidate, else its newest one."""
    if not solution_ids:
        return {}
    rank = case(
        (Candidate.state == CandidateState.approved, 0), (Candidate.state == CandidateState.pending, 1), else_=2
    )
    rows = session.exec(
        select(Candidate.solution_id, Candidate.thumb_path)
        .where(col(Candidate.solution_id).in_(solution_ids), Candidate.state != CandidateState.rejected)
        .order_by(Candidate.solution_id, rank, col(Candidate.id).desc())
    ).all()
    thumbs: dict[str, str] = {}
    for solution_id, thumb in rows:
        thumbs.setdefault(solution_id, thumb)
    return thumbs


def clean_up(
    *, session: Session, settings: Settings, actor: Actor, older_than_days: int, dry_run: bool = False
) -> dict:
    """Delete the files of rejected and superseded candidates older than N days; returns what was freed.

    Published files are never touched (they live in the publish folder, and rollback restores them),
    and a file that a cache hit still shares with a live candidate stays.
    """
    require(actor, "manage")
    if older_than_days < 0:
        raise ReviewError("The age for a clean-up must be 0 days or more.")
    cutoff = utcnow() - timedelta(days=older_than_days)
    done = (CandidateState.rejected, CandidateState.superseded)
    doomed = session.exec(
        select(Candidate).where(
            col(Candidate.state).in_(done), Candidate.created_at < cutoff, col(Candidate.deleted_at).is_(None)
        )
    ).all()
    paths = {c.file_path for c in doomed}
    publishing = journal.candidate_ids(settings)  # an interrupted approval may still be finished with them
    kept = (
        set(
            session.exec(
                select(Candidate.file_path).where(
                    col(Candidate.file_path).in_(paths), col(Candidate.state).not_in(done)
                )
            ).all()
        )
        if paths
        else set()
    ) | {c.file_path for c in doomed if c.id in publishing}
    freed, files, now = 0, 0, utcnow()
    seen: set[str] = set()  # a cache hit's copy shares its source's files: count them once, dry run or not
    for candidate in doomed:
        if candidate.file_path in kept:
            continue
        for rel in {candidate.file_path, candidate.thumb_path} - seen:
            seen.add(rel)
            path = settings.data_dir / rel
            if path.is_file():
                freed += path.stat().st_size
                files += 1
                if not dry_run:
                    path.unlink()
        if not dry_run:
            candidate.deleted_at = now
            session.add(candidate)
    if not dry_run:
        audit(session, actor, "storage.cleanup", None, older_than_days=older_than_days, files=files, bytes=freed)
    return {
        "candidates": len(doomed) - sum(c.file_path in kept for c in doomed),
        "files": files,
        "freed_bytes": freed,
        "dry_run": dry_run,
    }
