"""The drop-in service's own solutions, joined to the marketplace rows they were made for.

The marketplace's forms call the image route before they save a solution, and never send its id,
so the service makes a solution of its own (origin `request`). A pull joins it to its row: the row
that shows the image it published (the service's default mode, exact), or else the row with its
title saved after the request, showing no image yet (review mode, its candidates waiting).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from .auth import Actor, audit
from .db import aware
from .models import (
    PLACEHOLDER_URL,
    Attempt,
    AttemptStatus,
    Candidate,
    Delivery,
    Publication,
    Solution,
    SolutionOrigin,
)

CLOCK_SLACK = timedelta(minutes=10)  # the marketplace's clock and ours may disagree this much
MARKETPLACE_ACTOR = Actor("marketplace", "admin")


class Requests:
    """The service's solutions waiting for their row (a handful, read once a chunk).

    One with a call still running is left for the next pull: its image would land on a solution
    that no longer exists.
    """

    def __init__(self, session: Session):
        request = col(Solution.origin) == SolutionOrigin.request
        busy = select(Attempt.solution_id).where(Attempt.status == AttemptStatus.running)
        ready = request & col(Solution.id).not_in(busy)
        published = session.exec(
            select(Publication.image_url, Publication.solution_id)
            .join(Solution, col(Solution.id) == Publication.solution_id)
            .where(ready)
        ).all()
        self.by_url = dict(published)
        self.by_title: dict[str, list[tuple[str, datetime]]] = {}
        done = set(self.by_url.values())
        for sid, title, made in session.exec(
            select(Solution.id, Solution.title, Solution.created_at).where(ready).order_by(Solution.created_at)
        ):
            if sid not in done:
                self.by_title.setdefault(_title_key(title), []).append((sid, aware(made)))

    def claims(self, row: dict[str, Any]) -> bool:
        return row["imageUrl"] in self.by_url or bool(self.by_title.get(_title_key(row["title"])))

    def take(self, row: dict[str, Any]) -> str | None:
        """The request solution this row stands for, if any (it is then taken out of the waiting)."""
        if row["imageUrl"] in self.by_url:
            return self.by_url.pop(row["imageUrl"])
        if row["imageUrl"] not in (None, PLACEHOLDER_URL):
            return None
        saved = aware(row["updatedAt"])  # Prisma's client writes it, in UTC (createdAt is the server's clock)
        waiting = self.by_title.get(_title_key(row["title"]), [])
        for i, (_, made) in enumerate(waiting):
            if saved >= made - CLOCK_SLACK:  # the row was saved after the request was made
                return waiting.pop(i)[0]
        return None


def _title_key(title: Any) -> str:
    return " ".join(str(title).split()).lower()


def adopt(session: Session, request_id: str, solution: Solution) -> None:
    """Move everything the service made for `request_id` onto the marketplace's row, then drop it."""
    for model in (Candidate, Attempt, Publication, Delivery):
        session.execute(
            model.__table__.update()  # type: ignore[attr-defined]
            .where(model.__table__.c.solution_id == request_id)  # type: ignore[attr-defined]
            .values(solution_id=solution.id)
        )
    session.execute(Solution.__table__.delete().where(Solution.__table__.c.id == request_id))  # type: ignore[attr-defined]
    session.flush()
    audit(session, MARKETPLACE_ACTOR, "marketplace.adopt", solution.id, request=request_id)
