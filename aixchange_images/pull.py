"""Pull: the marketplace's "Solution" rows into our catalogue, keeping their ids, updating in place.

Rows are taken as they are (null metadata, empty tags, upper-case status, duplicate titles): the
database is the truth, the zod rules are for files. A row's imageUrl becomes ours unless a change of
ours is still on its way there (`deliveries`); the drop-in service's solutions made before their row
existed are joined to it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from .adoption import MARKETPLACE_ACTOR, Requests, adopt
from .auth import Actor, audit, require
from .config import Settings, UserError
from .db import aware, db_now, lock_solution, session_scope
from .deliveries import deliver_waiting, enqueue, image_status, replaced_in_marketplace, url_status
from .leases import live_workers
from .marketplace import configured, run, where
from .models import (
    OPEN_DELIVERIES,
    Delivery,
    DeliveryState,
    ImageStatus,
    Publication,
    Solution,
    SolutionOrigin,
)
from .recovery import recover
from .redaction import redact

# The columns we read, as its Prisma migrations name them (quoted camelCase).
COLUMNS = (
    "id",
    "title",
    "description",
    "category",
    "provider",
    "launchUrl",
    "sourceCodeUrl",
    "tags",
    "version",
    "isPublished",
    "status",
    "tokenCost",
    "rating",
    "metadata",
    "authorId",
    "eventId",
    "imageUrl",
    "createdAt",
    "updatedAt",
)
STATUS_NAMES = {"ACTIVE": "Active", "PENDING": "Pending", "INACTIVE": "Inactive"}
CHUNK = 500
_EMPTY = (ImageStatus.none, ImageStatus.placeholder)
ID_MAX = 40  # models.Solution.id; the marketplace's cuids have 25
log = logging.getLogger(__name__)


@dataclass
class PullReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    adopted: int = 0  # solutions the drop-in service made before their row existed, now joined to it
    errors: list[dict[str, str]] = field(default_factory=list)

    def merge(self, other: PullReport) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.adopted += other.adopted
        self.errors += other.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "adopted": self.adopted,
            "errors": self.errors,
        }


def pull(
    engine: Engine,
    settings: Settings,
    *,
    actor: Actor,
    ids: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PullReport:
    """Read the marketplace's solutions (or just `ids`) into our catalogue, keeping their ids."""
    require(actor, "edit_catalogue")
    with Session(engine) as session:
        read_at = db_now(session)  # the database's clock, as deliveries record theirs
    rows = _read_rows(settings, ids)
    report = PullReport()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        with session_scope(engine, write=True) as session:  # short transactions: others keep writing
            _apply_chunk(session, settings, chunk, read_at, report)
            session.commit()
        if progress:
            progress(start + len(chunk), len(rows))
    with session_scope(engine, write=True) as session:
        audit(session, actor, "marketplace.pull", where(settings), **{**report.as_dict(), "errors": report.errors[:20]})
        session.commit()
    return report


def _read_rows(settings: Settings, ids: list[str] | None) -> list[dict[str, Any]]:
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    query = f'SELECT {names} FROM "Solution"'
    params: dict[str, Any] = {}
    if ids is not None:
        query += " WHERE id = ANY(:ids)"
        params["ids"] = list(ids)

    def read(conn: Connection) -> list[dict[str, Any]]:
        return [dict(row._mapping) for row in conn.execute(text(query + ' ORDER BY "createdAt", id'), params)]

    return run(settings, read, seconds=max(30.0, 6 * settings.marketplace_timeout_seconds))


def _apply_chunk(
    session: Session, settings: Settings, rows: list[dict[str, Any]], read_at: datetime, report: PullReport
) -> None:
    """One chunk in one transaction: new rows and unchanged ones cost no query of their own.

    If the database refuses the chunk, it is applied again row by row, each in a savepoint, so one
    odd row is reported and the others still land.
    """
    tally = PullReport()
    try:
        with session.begin_nested():
            _apply_rows(session, settings, rows, read_at, tally, careful=False)
    except SQLAlchemyError:
        tally = PullReport()
        _apply_rows(session, settings, rows, read_at, tally, careful=True)
    report.merge(tally)


def _apply_rows(
    session: Session,
    settings: Settings,
    rows: list[dict[str, Any]],
    read_at: datetime,
    report: PullReport,
    careful: bool,
) -> None:
    ids = [r["id"] for r in rows]
    known = {s.id: s for s in session.exec(select(Solution).where(col(Solution.id).in_(ids)))}
    waiting = set(
        session.exec(
            select(Delivery.solution_id).where(
                col(Delivery.solution_id).in_(ids), col(Delivery.state).in_(OPEN_DELIVERIES)
            )
        )
    )
    requests = Requests(session)
    now = db_now(session)
    for row in rows:
        try:
            fields = _fields(row)
            solution = known.get(row["id"])
            if solution is None and not requests.claims(row) and not careful:
                session.add(_new_solution(settings, row, fields, now))
                report.created += 1
            elif (
                solution is not None
                and _unchanged(solution, fields, row)
                and not (solution.id in waiting or requests.claims(row))
            ):
                report.unchanged += 1
            else:
                with session.begin_nested():
                    _apply_row(session, settings, row, fields, solution, read_at, report, requests)
        except (SQLAlchemyError, ValueError, TypeError, KeyError) as exc:
            title = str(row.get("title") or "")[:100]
            report.errors.append({"id": str(row.get("id")), "title": title, "error": _row_problem(exc)})
    session.flush()


def _unchanged(solution: Solution, fields: dict[str, Any], row: dict[str, Any]) -> bool:
    return (
        solution.origin == SolutionOrigin.marketplace
        and solution.marketplace_url == row["imageUrl"]
        and all(getattr(solution, k) == v for k, v in fields.items())
    )


def _new_solution(settings: Settings, row: dict[str, Any], fields: dict[str, Any], now: datetime) -> Solution:
    theirs = row["imageUrl"]
    return Solution(
        id=row["id"],
        origin=SolutionOrigin.marketplace,
        image_url=theirs,
        marketplace_url=theirs,
        marketplace_synced_at=now,
        image_status=url_status(settings, theirs),
        **fields,
    )


def _row_problem(exc: Exception) -> str:
    return " ".join(str(getattr(exc, "orig", exc)).split())[:300] or type(exc).__name__


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    """A row's values under our names, as the database has them (nothing validated away), unless we
    cannot hold them at all: an id longer than ours, a rating that is not a number."""
    if len(str(row["id"])) > ID_MAX:
        raise ValueError(f"its id is longer than {ID_MAX} characters")
    if not math.isfinite(float(row["rating"])):
        raise ValueError(f"its rating is {row['rating']}, not a number")
    return {
        "title": row["title"],
        "description": row["description"],
        "category": row["category"],
        "provider": row["provider"],
        "launch_url": row["launchUrl"],
        "source_code_url": row["sourceCodeUrl"],
        "tags": list(row["tags"] or []),
        "version": row["version"],
        "is_published": bool(row["isPublished"]),
        "status": STATUS_NAMES.get(str(row["status"]), str(row["status"])),
        "token_cost": int(row["tokenCost"]),
        "rating": float(row["rating"]),
        "metadata_": row["metadata"] if isinstance(row["metadata"], dict) else {},
        "author_id": row["authorId"],
        "event_id": row["eventId"],
    }


def _apply_row(
    session: Session,
    settings: Settings,
    row: dict[str, Any],
    fields: dict[str, Any],
    solution: Solution | None,
    read_at: datetime,
    report: PullReport,
    requests: Requests,
) -> None:
    """A row that is new, changed, or links a solution of ours for the first time."""
    if solution is None:
        _add_row(session, settings, row, fields, report, requests)
        return
    lock_solution(session, solution.id)  # an approval of this solution may be committing right now
    session.refresh(solution)
    request_id = requests.take(row)
    if request_id is not None:
        adopt(session, request_id, solution)
    changed = any(getattr(solution, k) != v for k, v in fields.items())
    first_link = solution.origin != SolutionOrigin.marketplace
    for key, value in fields.items():
        setattr(solution, key, value)
    solution.origin = SolutionOrigin.marketplace
    image_changed = _take_image(session, settings, solution, row["imageUrl"], read_at, first_link)
    session.add(solution)
    if request_id is not None:
        report.adopted += 1
    elif changed or first_link or image_changed:
        report.updated += 1
    else:
        report.unchanged += 1


def _add_row(
    session: Session,
    settings: Settings,
    row: dict[str, Any],
    fields: dict[str, Any],
    report: PullReport,
    requests: Requests,
) -> None:
    solution = _new_solution(settings, row, fields, db_now(session))
    session.add(solution)
    session.flush()
    request_id = requests.take(row)
    if request_id is None:
        report.created += 1
        return
    adopt(session, request_id, solution)
    report.adopted += 1
    solution.image_status = image_status(session, settings, solution)  # its candidates came along


def _take_image(
    session: Session, settings: Settings, solution: Solution, theirs: str | None, read_at: datetime, first_link: bool
) -> bool:
    """Bring the row's imageUrl into our solution unless a change of ours is still on its way there.

    Returns whether our solution's image changed.
    """
    if _ours_on_the_way(session, solution, theirs):
        return False
    if solution.marketplace_synced_at is not None and aware(solution.marketplace_synced_at) > read_at:
        return False  # a delivery landed after we read the row: what we read is older than what is there
    live = list(
        session.exec(
            select(Publication).where(Publication.solution_id == solution.id, col(Publication.active).is_(True))
        )
    )
    if first_link and solution.image_url != theirs and solution.image_url in {p.image_url for p in live}:
        _send_ours_on_linking(session, settings, solution, theirs)
        return False
    changed = solution.image_url != theirs
    solution.image_url, solution.marketplace_url, solution.marketplace_synced_at = theirs, theirs, db_now(session)
    for publication in live:
        if publication.image_url != theirs:
            replaced_in_marketplace(session, publication)
    solution.image_status = image_status(session, settings, solution)
    return changed


def _ours_on_the_way(session: Session, solution: Solution, theirs: str | None) -> bool:
    """A delivery of ours still open: the push decides (a conflict meanwhile learns what the row holds)."""
    delivery = session.exec(
        select(Delivery).where(Delivery.solution_id == solution.id, col(Delivery.state).in_(OPEN_DELIVERIES))
    ).first()
    if delivery is None:
        return False
    if delivery.state == DeliveryState.conflict and theirs == delivery.image_url:  # they took ours after all
        delivery.state, delivery.delivered_at = DeliveryState.delivered, db_now(session)
        solution.marketplace_url, solution.marketplace_synced_at = theirs, delivery.delivered_at
    elif delivery.state == DeliveryState.conflict:
        delivery.theirs = theirs
    session.add(delivery)
    return True


def _send_ours_on_linking(session: Session, settings: Settings, solution: Solution, theirs: str | None) -> None:
    """An image approved here before the solution was linked goes to its row, unless the row shows an
    image it did not show when ours was approved (the author's, meanwhile): then an admin decides."""
    first = session.exec(
        select(Publication).where(Publication.solution_id == solution.id).order_by(col(Publication.id))
    ).first()
    solution.marketplace_url, solution.marketplace_synced_at = theirs, db_now(session)
    delivery = enqueue(session, solution, reason="link", by=MARKETPLACE_ACTOR.username)
    replaced = first.previous_image_url if first is not None else None
    if delivery is not None and theirs != replaced and url_status(settings, theirs) not in _EMPTY:
        delivery.state, delivery.theirs = DeliveryState.conflict, theirs


# -- on a schedule ---------------------------------------------------------------------------------


class Schedule:
    """Pull, then deliver what waits, at start and every `MARKETPLACE_PULL_MINUTES` (the `serve` process
    runs it). A round that fails is logged and the next one tries again.

    While a worker is alive the pull is its job (the `marketplace_pull` schedule, set in Settings):
    these rounds are skipped, so the marketplace is never pulled twice over."""

    def __init__(self, engine: Engine, base: Settings, current: Callable[[], Settings]):
        """`base` (the environment) decides whether and how often; `current` (with the dashboard's
        overrides, read from the database) is what each round runs with."""
        self.engine, self.base, self.settings = engine, base, current
        self.stop = threading.Event()
        self.first_round = threading.Event()  # set once the first round is over (tests wait on it)
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        minutes = self.base.marketplace_pull_minutes
        if not configured(self.base) or minutes <= 0:
            return False
        self._thread = threading.Thread(target=self._run, args=(minutes * 60,), name="marketplace-pull", daemon=True)
        self._thread.start()
        return True

    def close(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join()

    def _worker_pulls(self) -> bool:
        with Session(self.engine) as session:
            return bool(live_workers(session))

    def _run(self, seconds: float) -> None:
        while not self.stop.is_set():
            self.round()
            self.first_round.set()
            self.stop.wait(seconds)

    def round(self) -> None:
        settings = self.base
        try:
            if self._worker_pulls():
                log.info("Marketplace pull: left to the worker (its schedule is set in Settings).")
                return
            settings = self.settings()
            recover(self.engine, settings)  # an approval a killed process left half-done, before its row is read
            report = pull(self.engine, settings, actor=MARKETPLACE_ACTOR)
            deliver_waiting(self.engine, settings)
            log.info("Marketplace pull: %s", {k: v for k, v in report.as_dict().items() if k != "errors"})
        except UserError as exc:
            log.warning("Marketplace pull skipped: %s", exc)
        except Exception as exc:  # noqa: BLE001 - the schedule goes on; the log says what broke
            log.error(redact(f"Marketplace pull failed: {exc}", *settings.secrets))
