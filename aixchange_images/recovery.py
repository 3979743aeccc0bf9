"""Recovery: settle the publish journals of processes that died between linking a file and committing.

Each abandoned journal is settled under its solution's review lock, with the database as the
judge of what happened:
- a publication row has the file: the commit happened; only the journal goes (`committed`);
- the file is not there (killed before the link), or is not the bytes we wrote: the journal goes
  and the candidate stays as it was, as if the approval had never started (`not_linked`);
- nobody acted on the candidate or the solution since: the approval is finished with the file
  already in place, so an auto-approving run killed at that instant still ends approved
  (`rolled_forward`);
- otherwise (the candidate was rejected or approved meanwhile, the solution moved on, the
  candidate's transaction never committed): the orphan file goes (`removed`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from . import journal, review
from .auth import Actor, audit
from .catalogue import active_publication
from .config import Settings
from .db import session_scope
from .models import Candidate, CandidateState, Publication, Role, Solution

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovered:
    file_name: str
    solution_id: str
    outcome: str  # committed | not_linked | rolled_forward | removed

    def sentence(self) -> str:
        said = {
            "committed": "had been committed; its journal was removed",
            "not_linked": "never reached the publish folder; nothing was published",
            "rolled_forward": "was finished: the solution now shows it",
            "removed": "was undone: the solution had moved on, so the file was removed",
        }
        return f"An interrupted publication of {self.file_name} ({self.solution_id}) {said[self.outcome]}."


def recover(engine: Engine, settings: Settings) -> list[Recovered]:
    """Settle every journal whose process is gone; a glob and nothing more when there are none."""
    done = []
    for path in journal.waiting(settings):
        intent = journal.read(path)
        if intent is None or intent.file_name is None or not journal.abandoned(intent):
            continue
        try:
            outcome = _settle(engine, settings, path, intent.solution_id)
        except OSError as exc:  # one journal we cannot settle must not stop every command: say so, go on
            log.warning("Could not settle the publish journal %s: %s", path.name, exc)
            continue
        if outcome is not None:
            log.info(outcome.sentence())  # the caller says it where its user looks; the audit log keeps it
            done.append(outcome)
    return done


def _settle(engine: Engine, settings: Settings, path: Path, solution_id: str) -> Recovered | None:
    with session_scope(engine, write=True) as session:
        solution = review._locked_solution(session, solution_id)
        intent = journal.read(path)  # again, under the lock: another recovery may have settled it meanwhile
        if intent is None or intent.file_name is None:
            return None
        outcome = _outcome(session, settings, intent, solution)
        if outcome == "rolled_forward":
            _roll_forward(session, settings, intent, solution)
        elif outcome == "removed":
            (settings.publish_dir / intent.file_name).unlink(missing_ok=True)
        if outcome in ("rolled_forward", "removed"):
            audit(session, _actor(intent), "image.recovered", intent.solution_id, **_detail(intent, outcome))
        session.commit()
    path.unlink(missing_ok=True)  # last: a crash before here leaves the journal, and the next run says `committed`
    return Recovered(intent.file_name, intent.solution_id, outcome)


def _outcome(session: Session, settings: Settings, intent: journal.Intent, solution: Solution | None) -> str:
    if session.exec(select(Publication.id).where(Publication.file_name == intent.file_name)).first() is not None:
        return "committed"
    if not _ours(settings, intent):
        return "not_linked"
    candidate = session.get(Candidate, intent.candidate_id) if intent.candidate_id is not None else None
    if solution is None or candidate is None:
        return "removed"
    session.refresh(candidate)
    active = active_publication(session=session, solution_id=solution.id)
    same = (candidate.solution_id, candidate.sha256) == (solution.id, intent.candidate_sha256)
    unchanged = candidate.state == intent.candidate_state != CandidateState.approved
    moved_on = (active.id if active is not None else None) != intent.previous_publication_id
    moved_on = moved_on or solution.image_url != intent.showed
    return "rolled_forward" if same and unchanged and not moved_on else "removed"


def _ours(settings: Settings, intent: journal.Intent) -> bool:
    """Whether the published file is there and holds the bytes the journal recorded (never touch another's)."""
    try:
        data = (settings.publish_dir / str(intent.file_name)).read_bytes()
    except FileNotFoundError:
        return False
    return len(data) == intent.bytes and hashlib.sha256(data).hexdigest() == intent.sha256


def _roll_forward(session: Session, settings: Settings, intent: journal.Intent, solution: Solution | None) -> None:
    candidate = session.get(Candidate, intent.candidate_id)
    assert solution is not None and candidate is not None and intent.file_name and intent.image_url
    review._point_at(
        session, solution, candidate, intent.file_name, intent.image_url, intent.bytes or 0, _actor(intent)
    )


def _actor(intent: journal.Intent) -> Actor:
    """Whoever started the approval: only admins get that far (review requires it)."""
    return Actor(intent.actor, Role.admin)


def _detail(intent: journal.Intent, outcome: str) -> dict:
    return {
        "file": intent.file_name,
        "outcome": outcome,
        "candidate_id": intent.candidate_id,
        "interrupted": {"host": intent.host, "pid": intent.pid, "at": intent.created_at},
    }
