"""The publish journal: an intent file beside each published file until its transaction ends.

Publishing links a file into the shared folder before the caller's transaction commits, so a
process killed in between would leave a public file that the database never heard of. Before
the link, `.incoming/<file>.intent.json` records what is being published, by whom, for which
candidate. When the transaction commits only the journal goes; when it rolls back (or the session
closes without a commit) the file goes too; `recovery` settles the journals of processes that died.

It lives on the filesystem, not in the database: on SQLite the caller's transaction already holds
the write lock, so a second committed write from inside it would wait for itself.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from .config import Settings
from .models import PUBLIC_PREFIX, utcnow
from .process import HOST, RUNNER, pid_running

INCOMING = ".incoming"
SUFFIX = ".intent.json"
JOURNAL_MODE = 0o600  # it names a user and a host, and the marketplace serves anything under its folder
STALE_AFTER = timedelta(minutes=15)  # far beyond any approval's transaction; only for owners we cannot check
log = logging.getLogger(__name__)

# Journals this process wrote whose transaction has not ended: any other journal of this process
# belongs to a transaction that ended without settling it (which is a bug), so recovery may take it.
_live: set[str] = set()
_live_lock = threading.Lock()


@dataclass
class Intent:
    """What recovery needs to finish or undo one approval if its process dies before the commit."""

    solution_id: str
    candidate_id: int | None
    candidate_state: str  # as the approval found it: a roll-forward requires that nobody changed it
    actor: str
    previous_publication_id: int | None  # the solution's active publication, which this one replaces
    # The candidate's image: on SQLite a rolled-back row's id is given to the next row, so the id
    # alone may name another candidate by the time recovery looks (an upload's never committed).
    candidate_sha256: str | None = None
    # What the solution showed when the approval began: a change since (a pull took the marketplace's
    # image, an admin kept theirs) means the approval no longer describes the solution.
    showed: str | None = None
    host: str = HOST
    pid: int = field(default_factory=os.getpid)
    runner: str = RUNNER
    created_at: str = field(default_factory=lambda: utcnow().isoformat())
    file_name: str | None = None  # set when a name is claimed
    image_url: str | None = None
    sha256: str | None = None  # of the published bytes: recovery touches only a file that has them
    bytes: int | None = None

    @classmethod
    def from_json(cls, text: str) -> Intent:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def incoming_dir(settings: Settings) -> Path:
    """Where files wait before they are linked into `solutions/` (same disk, never served as images)."""
    return settings.external_images_path / INCOMING


def path_for(settings: Settings, file_name: str) -> Path:
    return incoming_dir(settings) / f"{file_name}{SUFFIX}"


def claim(settings: Settings, intent: Intent, file_name: str) -> bool:
    """Write the journal for publishing `intent` as `file_name`; False if another publisher holds that name.

    The journal appears whole (written aside, fsynced, then linked) and only if no journal of that
    name exists, which reserves the name among our processes before the file is linked.
    """
    intent.file_name, intent.image_url = file_name, PUBLIC_PREFIX + file_name
    with _live_lock:  # live before it exists: recovery in another thread must never take it
        _live.add(file_name)
    target = path_for(settings, file_name)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_synced(tmp, json.dumps(asdict(intent)).encode())
        os.link(tmp, target)
    except FileExistsError:
        _forget(intent)
        return False
    except BaseException:
        _forget(intent)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    sync_folder(target.parent)  # on disk before the published file can be
    return True


def _write_synced(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, JOURNAL_MODE)
    with open(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def sync_folder(folder: Path) -> None:
    """Make a folder's new entries survive a power cut. Best effort: some network and desktop-VM
    mounts refuse to sync a folder, and safety against a killed process does not depend on it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def release(settings: Settings, intent: Intent) -> None:
    """Remove the journal and keep the file: the transaction committed (its publication row now
    speaks for the file), or the claimed name was never linked."""
    if intent.file_name:
        _quietly(path_for(settings, intent.file_name).unlink, missing_ok=True)
    _forget(intent)


def discard(settings: Settings, intent: Intent) -> None:
    """The transaction did not commit: the file it published goes, then its journal."""
    if intent.file_name:
        _quietly((settings.publish_dir / intent.file_name).unlink, missing_ok=True)
    release(settings, intent)


def _forget(intent: Intent) -> None:
    with _live_lock:
        _live.discard(intent.file_name or "")
    intent.file_name = intent.image_url = None


def _quietly(action: Any, **kwargs: Any) -> None:
    """Run from the session's events: a failure must not turn a commit into an error (recovery retries)."""
    try:
        action(**kwargs)
    except OSError as exc:
        log.warning("Could not tidy the publish journal: %s", exc)


# -- the transaction's end settles what it published ---------------------------------------------
_BOUND, _COMMITTED = "aixchange_publish_journal", "aixchange_publish_committed"


def bind(session: Session, settings: Settings, intent: Intent) -> Intent:
    """Settle `intent` when the session's current (outermost) transaction ends.

    Listens for the transaction's end rather than for a rollback: a session closed without a
    commit (how every `with session_scope(...)` ends on an exception) fires no rollback event.
    """
    root = session.get_transaction()
    if root is None:
        raise RuntimeError("Publishing needs the caller's transaction: it is settled when that one ends.")
    if _BOUND not in session.info:
        session.info[_BOUND] = []
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_transaction_end", _after_transaction_end)
    session.info[_BOUND].append((root, settings, intent))
    return intent


def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is None:  # the outermost commit, not a savepoint's release
        session.info[_COMMITTED] = session.get_transaction()


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return  # a savepoint or a flush's subtransaction: the outcome is still open
    committed = session.info.pop(_COMMITTED, None) is transaction
    bound = session.info[_BOUND]
    session.info[_BOUND] = [entry for entry in bound if entry[0] is not transaction]
    for root, settings, intent in bound:
        if root is transaction:
            (release if committed else discard)(settings, intent)


# -- what recovery and clean-up read --------------------------------------------------------------
def waiting(settings: Settings) -> list[Path]:
    """Every journal in the folder, live or not (a glob: cheap when there are none)."""
    folder = incoming_dir(settings)
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def read(path: Path) -> Intent | None:
    """The journal at `path`, or None when it is gone (settled meanwhile) or not one of ours."""
    try:
        return Intent.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("Ignoring %s, which is not a publish journal: %s", path, exc)
        return None


def abandoned(intent: Intent, now: datetime | None = None) -> bool:
    """Whether the process that wrote `intent` can no longer end its transaction."""
    if intent.runner == RUNNER and intent.pid == os.getpid():
        with _live_lock:
            return intent.file_name not in _live
    if intent.host == HOST and not pid_running(intent.pid):
        return True
    # Another machine, or a pid that runs here again (reused, or a namesake in another container):
    # only time can tell, and no approval keeps its transaction open for minutes.
    return (now or utcnow()) - datetime.fromisoformat(intent.created_at) > STALE_AFTER


def candidate_ids(settings: Settings) -> set[int]:
    """Candidates that an unsettled journal may still publish (clean-up keeps their files)."""
    intents = (read(path) for path in waiting(settings))
    return {intent.candidate_id for intent in intents if intent is not None and intent.candidate_id is not None}
