"""Deliveries: every image change of a marketplace solution, written into its row's "imageUrl".

An approve, rollback, upload or auto-approve writes a `Delivery` (the outbox) in the same transaction
as the change itself. After the commit it is written to the marketplace at once when the marketplace
answers, else by the next command or `marketplace push`: an admin's action never fails because the
marketplace is down, and no delivery is lost. The row is overwritten only while it still holds what
we last saw or delivered there; otherwise theirs is kept and the conflict waits for an admin.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from . import storage
from .auth import Actor, audit, require
from .catalogue import active_publication, settled_status
from .config import ConfigError, Settings, UserError
from .db import lock_solution, session_scope
from .marketplace import MarketplaceError, configured, run_on, session_for, where
from .models import (
    OPEN_DELIVERIES,
    PLACEHOLDER_URL,
    PUBLIC_PREFIX,
    Candidate,
    CandidateState,
    Delivery,
    DeliveryState,
    ImageStatus,
    Publication,
    Solution,
    SolutionOrigin,
    utcnow,
)
from .redaction import redact

log = logging.getLogger(__name__)
QUIET_SECONDS = 30.0  # after the marketplace failed to answer, actions don't wait on it again this long


class DeliveryError(UserError, ValueError):
    """A conflict action that cannot be done; one sentence."""


def enqueue(session: Session, solution: Solution, *, reason: str, by: str) -> Delivery | None:
    """Queue the solution's current imageUrl for its marketplace row (in the caller's transaction).

    Solutions the marketplace does not hold (imported from a file, or made by the drop-in service
    before their row existed) have nothing to deliver to. An older delivery still waiting is replaced.
    """
    if solution.origin != SolutionOrigin.marketplace:
        return None
    session.execute(
        update(Delivery)
        .where(col(Delivery.solution_id) == solution.id, col(Delivery.state).in_(OPEN_DELIVERIES))
        .values(state=DeliveryState.superseded)
    )
    delivery = Delivery(solution_id=solution.id, image_url=solution.image_url, reason=reason, created_by=by)
    session.add(delivery)
    return delivery


# -- writing them ---------------------------------------------------------------------------------
@dataclass
class PushReport:
    written: int = 0
    pending: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "pending": self.pending,
            "conflicts": self.conflicts,
            "errors": self.errors,
            "dry_run": self.dry_run,
        }


def push(engine: Engine, settings: Settings, *, dry_run: bool = False) -> PushReport:
    """Write every waiting delivery, each in its own short transaction; report what is left."""
    report = PushReport(dry_run=dry_run)
    with Session(engine) as session:
        todo = list(
            session.exec(select(Delivery.id).where(Delivery.state == DeliveryState.pending).order_by(Delivery.id))
        )
    if todo:
        _push(engine, settings, todo, report)
    with Session(engine) as session:
        if not dry_run:
            report.pending = _count(session, DeliveryState.pending)
        report.conflicts = conflicts(session=session) + report.conflicts
    return report


def _push(engine: Engine, settings: Settings, todo: list[int], report: PushReport) -> None:
    done: set[int] = set()
    try:
        with session_for(settings) as conn:
            for delivery_id in todo:
                _tally(report, _deliver(engine, settings, conn, delivery_id, report.dry_run))
                done.add(delivery_id)
    except (MarketplaceError, ConfigError) as exc:  # not reachable, or gone mid-way: the rest waits
        report.errors.append({"error": str(exc)})
        report.pending = len(todo) - len(done)
        if not report.dry_run:
            _note_failure(engine, [d for d in todo if d not in done], str(exc))
        _quiet_until[where(settings)] = time.monotonic() + QUIET_SECONDS


def _tally(report: PushReport, outcome: dict[str, Any]) -> None:
    if outcome["state"] == DeliveryState.delivered and outcome.get("written"):
        report.written += 1
    elif outcome["state"] == DeliveryState.failed:
        report.errors.append({"solution_id": outcome["solution_id"], "error": outcome["error"]})
    elif outcome["state"] == DeliveryState.conflict and report.dry_run:
        report.conflicts.append({k: outcome[k] for k in ("solution_id", "ours", "theirs")})


def _deliver(engine: Engine, settings: Settings, conn: Connection, delivery_id: int, dry_run: bool) -> dict[str, Any]:
    """One delivery: under the solution's lock, a conditional UPDATE of the row, then our record of it."""
    with session_scope(engine, write=not dry_run) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        if not dry_run:
            lock_solution(session, delivery.solution_id)
            session.refresh(delivery)
        solution = session.get(Solution, delivery.solution_id)
        if delivery.state != DeliveryState.pending or solution is None:
            return {"state": "skipped"}
        session.refresh(solution)
        ours, seen = delivery.image_url, solution.marketplace_url
        outcome = run_on(settings, conn, lambda c: _write_row(c, delivery.solution_id, ours, seen, dry_run))
        if not dry_run:
            _record(session, delivery, solution, outcome)
            session.commit()
        return outcome


def _write_row(conn: Connection, solution_id: str, ours: str | None, seen: str | None, dry_run: bool) -> dict:
    """Set the row's imageUrl to ours if it still holds what we last saw; else say what it holds.

    Runs inside one marketplace transaction (`run_on`).
    """
    outcome: dict[str, Any] = {"solution_id": solution_id, "ours": ours, "written": False}
    if ours != seen and not dry_run:
        written = conn.execute(
            text(
                'UPDATE "Solution" SET "imageUrl" = :ours, "updatedAt" = :now '
                'WHERE id = :id AND "imageUrl" IS NOT DISTINCT FROM :seen RETURNING id'
            ),
            {"ours": ours, "now": _prisma_now(), "id": solution_id, "seen": seen},
        ).first()
        if written is not None:
            return {**outcome, "state": DeliveryState.delivered, "written": True}
    row = conn.execute(text('SELECT "imageUrl" FROM "Solution" WHERE id = :id'), {"id": solution_id}).first()
    if row is None:
        return {**outcome, "state": DeliveryState.failed, "error": f"The marketplace has no solution {solution_id}."}
    theirs = row[0]
    if theirs == ours:
        return {**outcome, "state": DeliveryState.delivered}
    if dry_run and theirs == seen:
        return {**outcome, "state": DeliveryState.delivered, "written": True}  # would be written
    return {**outcome, "state": DeliveryState.conflict, "theirs": theirs}


def _prisma_now() -> datetime:
    """Now as Prisma stores "updatedAt": UTC wall time in a timestamp(3) without a zone."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _record(session: Session, delivery: Delivery, solution: Solution, outcome: dict[str, Any]) -> None:
    now = utcnow()
    delivery.state, delivery.tries, delivery.last_tried_at = outcome["state"], delivery.tries + 1, now
    if outcome["state"] == DeliveryState.delivered:
        delivery.delivered_at, delivery.last_error = now, None
        solution.marketplace_url, solution.marketplace_synced_at = delivery.image_url, now
        session.add(solution)
    elif outcome["state"] == DeliveryState.conflict:
        delivery.theirs = outcome["theirs"]
        delivery.last_error = "The marketplace's image changed since we last saw it."
    else:
        delivery.last_error = outcome.get("error")
    session.add(delivery)


def _note_failure(engine: Engine, ids: list[int], message: str) -> None:
    with session_scope(engine, write=True) as session:
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), Delivery.state == DeliveryState.pending)
            .values(tries=Delivery.tries + 1, last_tried_at=utcnow(), last_error=message[:500])
        )
        session.commit()


_quiet_until: dict[str, float] = {}  # marketplace -> until when actions don't wait on it
_push_lock = threading.Lock()


def deliver_waiting(engine: Engine, settings: Settings) -> PushReport | None:
    """After an action: deliver what waits, unless the marketplace failed to answer moments ago.

    Never raises: a delivery that cannot be made now stays in the outbox for the next command.
    """
    if not configured(settings) or time.monotonic() < _quiet_until.get(where(settings), 0.0):
        return None
    with Session(engine) as session:
        if not _count(session, DeliveryState.pending):
            return None
    if not _push_lock.acquire(blocking=False):
        return None  # this process is pushing already: it takes what waits, or the next command does
    try:
        return push(engine, settings)
    except Exception as exc:  # noqa: BLE001 - an admin's action must never fail because of the marketplace
        log.error(redact(f"Delivering to the marketplace failed: {exc}", *settings.secrets))
        return None
    finally:
        _push_lock.release()


def _count(session: Session, state: str) -> int:
    return int(session.exec(select(func.count()).select_from(Delivery).where(Delivery.state == state)).one())


# -- conflicts ------------------------------------------------------------------------------------
def conflicts(*, session: Session, solution_id: str | None = None) -> list[dict[str, Any]]:
    """Open conflicts (of one solution): what we wanted the row to show, and what it shows instead."""
    query = (
        select(Delivery, Solution.title)
        .join(Solution, col(Solution.id) == Delivery.solution_id)
        .where(Delivery.state == DeliveryState.conflict)
    )
    if solution_id is not None:
        query = query.where(Delivery.solution_id == solution_id)
    rows = session.exec(query.order_by(Delivery.id)).all()
    thumbs = _thumbnails(session, [d.image_url for d, _ in rows if d.image_url])
    return [
        {
            "solution_id": d.solution_id,
            "title": title,
            "ours": d.image_url,
            "theirs": d.theirs,
            "delivery_id": d.id,
            "found_at": d.last_tried_at,
            "ours_thumb": thumbs.get(d.image_url or ""),
        }
        for d, title in rows
    ]


def _thumbnails(session: Session, urls: list[str]) -> dict[str, str]:
    """The thumbnails (paths in the data folder) of images we published under these URLs."""
    if not urls:
        return {}
    return dict(
        session.exec(
            select(Publication.image_url, Candidate.thumb_path)
            .join(Candidate, col(Candidate.id) == Publication.candidate_id)
            .where(col(Publication.image_url).in_(urls))
        ).all()
    )


def waiting(*, session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """Deliveries not written yet, and those the marketplace has no row for, newest first."""
    rows = session.exec(
        select(Delivery, Solution.title)
        .join(Solution, col(Solution.id) == Delivery.solution_id)
        .where(col(Delivery.state).in_((DeliveryState.pending, DeliveryState.failed)))
        .order_by(col(Delivery.id).desc())
        .limit(limit)
    ).all()
    return [
        {
            "solution_id": d.solution_id,
            "title": title,
            "image_url": d.image_url,
            "state": d.state,
            "since": d.created_at,
            "tries": d.tries,
            "last_error": d.last_error,
        }
        for d, title in rows
    ]


def _conflict(session: Session, delivery_id: int) -> tuple[Delivery, Solution]:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise DeliveryError(f"There is no delivery {delivery_id}.")
    lock_solution(session, delivery.solution_id)
    session.refresh(delivery)
    if delivery.state != DeliveryState.conflict:
        raise DeliveryError(f"The marketplace conflict {delivery_id} was already settled ({delivery.state}).")
    solution = session.get(Solution, delivery.solution_id)
    assert solution is not None  # deliveries belong to solutions (foreign key)
    session.refresh(solution)
    return delivery, solution


def keep_theirs(*, session: Session, settings: Settings, delivery_id: int, actor: Actor) -> Delivery:
    """Settle a conflict for the marketplace's image: ours stops being the published one here."""
    require(actor, "review")
    delivery, solution = _conflict(session, delivery_id)
    solution.image_url = solution.marketplace_url = delivery.theirs
    solution.marketplace_synced_at = utcnow()
    ours = active_publication(session=session, solution_id=solution.id)
    if ours is not None and ours.image_url != delivery.theirs:
        replaced_in_marketplace(session, ours)
    solution.image_status = image_status(session, settings, solution)
    session.add(solution)
    delivery.state, delivery.resolved_by = DeliveryState.kept_theirs, actor.username
    session.add(delivery)
    audit(session, actor, "marketplace.keep_theirs", solution.id, theirs=delivery.theirs, ours=delivery.image_url)
    return delivery


def use_ours(*, session: Session, delivery_id: int, actor: Actor) -> Delivery:
    """Settle a conflict for our image: it goes out again, over the value the marketplace has now."""
    require(actor, "review")
    delivery, solution = _conflict(session, delivery_id)
    solution.marketplace_url = delivery.theirs  # seen now: the next write may replace exactly that
    session.add(solution)
    delivery.state, delivery.resolved_by = DeliveryState.pending, actor.username
    session.add(delivery)
    audit(session, actor, "marketplace.use_ours", solution.id, theirs=delivery.theirs, ours=delivery.image_url)
    return delivery


# -- what a marketplace imageUrl means here -------------------------------------------------------
def replaced_in_marketplace(session: Session, publication: Publication) -> None:
    """The marketplace shows another image now: our publication is no longer live (its file stays)."""
    publication.active = False
    session.add(publication)
    candidate = session.get(Candidate, publication.candidate_id) if publication.candidate_id else None
    if candidate is not None and candidate.state == CandidateState.approved:
        candidate.state = CandidateState.superseded
        session.add(candidate)


def image_status(session: Session, settings: Settings, solution: Solution) -> ImageStatus:
    """The status an imageUrl from the marketplace implies: ours, the author's, or a dangling file.

    Pending while candidates await review. `/api/external-images/solutions/…` that we did not publish
    is the author's while its file is in the folder, and no image at all (so `--missing` takes it)
    when the file is gone.
    """
    pending = select(func.count()).select_from(Candidate)
    if session.exec(
        pending.where(Candidate.solution_id == solution.id, Candidate.state == CandidateState.pending)
    ).one():
        return ImageStatus.pending
    url = solution.image_url
    if url and url.startswith(PUBLIC_PREFIX) and not _published_here(session, solution.id, url):
        return url_status(settings, url)
    return settled_status(session=session, solution=solution)


def url_status(settings: Settings, url: str | None) -> ImageStatus:
    """What an imageUrl we did not publish means: nothing, the placeholder, the author's image, or a
    file of the folder that is gone (no image at all)."""
    if not url:
        return ImageStatus.none
    if url == PLACEHOLDER_URL:
        return ImageStatus.placeholder
    if url.startswith(PUBLIC_PREFIX):
        path = storage.published_path(settings, url)
        return ImageStatus.uploaded if path is not None and path.is_file() else ImageStatus.none
    return ImageStatus.uploaded


def _published_here(session: Session, solution_id: str, url: str) -> bool:
    query = select(Publication.id).where(Publication.solution_id == solution_id, Publication.image_url == url)
    return session.exec(query.limit(1)).first() is not None
