"""Inspections: the automatic checks (`checks`) run on stored candidates, off the generation's critical
path, their verdicts kept, and the candidate auto-approve may publish.

An `Inspector` is a small pool of low-priority threads (niced, so keeping a reply or sending the next
call is never starved by a check) that a run hands each new candidate to. It writes each check's
verdict (`CandidateCheck`) and the candidate's `checked_at`, `flags` and perceptual hash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import checks
from .checks import BLOCKING, Match, Verdict
from .config import Settings
from .db import session_scope
from .models import Attempt, Candidate, CandidateCheck, CandidateState, Solution, utcnow

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)
LIVE = (CandidateState.pending, CandidateState.approved)  # what a new image may be a copy of
NICENESS = 5  # weight 335 against 1024: generation first, yet checks still move on a busy machine
CHECK_THREADS = os.cpu_count() or 2
PICTURES_HELD = 32  # decoded images waiting for their checks (3 MB a 1024x1024); past it, the file is read


def flag_names(flags: str) -> list[str]:
    return flags.split()


def blocked(flags: str) -> bool:
    """Whether a candidate's flags keep auto-approve from publishing it."""
    return any(name in BLOCKING for name in flags.split())


def stored_flags(names: Iterable[str]) -> str:
    """The `flags` column: each name with a space on both sides, so `LIKE '% blank %'` finds it."""
    names = list(names)
    return f" {' '.join(names)} " if names else ""


class HashIndex:
    """The perceptual hashes of every live candidate, for the duplicate check: read once, then added
    to as this process checks new images (256-bit hashes as four 64-bit words, compared with NumPy)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._loaded = False
        self._ids: list[int] = []
        self._solutions: list[str] = []
        self._published: list[bool] = []
        self._words: Any = None

    def _load(self) -> None:
        import numpy as np

        with Session(self.engine) as session:
            rows = session.exec(
                select(Candidate.id, Candidate.solution_id, Candidate.phash, Candidate.state).where(
                    col(Candidate.phash).is_not(None),
                    col(Candidate.state).in_(LIVE),
                    col(Candidate.deleted_at).is_(None),
                )
            ).all()
        self._ids = [r[0] for r in rows]
        self._solutions = [r[1] for r in rows]
        self._published = [r[3] == CandidateState.approved for r in rows]
        self._words = np.array([_words(r[2]) for r in rows], dtype=np.uint64).reshape(-1, 4)
        self._loaded = True

    def nearest(self, phash: str, solution_id: str) -> tuple[int, str, int, bool] | None:
        """(candidate id, solution id, differing bits, published) of the closest image of another solution."""
        import numpy as np

        with self._lock:
            if not self._loaded:
                self._load()
            if not self._ids:
                return None
            distances = np.bitwise_count(self._words ^ np.array(_words(phash), dtype=np.uint64)).sum(axis=1)
            others = np.array([s != solution_id for s in self._solutions])
            if not others.any():
                return None
            distances = np.where(others, distances, checks.HASH_BITS + 1)
            best = int(distances.argmin())
            return self._ids[best], self._solutions[best], int(distances[best]), self._published[best]

    def add(self, candidate_id: int, solution_id: str, phash: str) -> None:
        import numpy as np

        with self._lock:
            if not self._loaded or candidate_id in self._ids[-64:]:
                return  # read with the next load; a re-check of a recent candidate is there already
            self._ids.append(candidate_id)
            self._solutions.append(solution_id)
            self._published.append(False)
            self._words = np.vstack([self._words, np.array([_words(phash)], dtype=np.uint64)])


def _words(phash: str) -> list[int]:
    return [int(phash[i : i + 16], 16) for i in range(0, 64, 16)]


@dataclass
class Outcome:
    """What checking one candidate found: its verdicts, or why it could not be checked."""

    candidate_id: int
    verdicts: list[Verdict]
    problem: str | None = None

    @property
    def flags(self) -> list[str]:
        return [v.name for v in self.verdicts if v.flagged]


def inspect_candidate(
    engine: Engine,
    settings: Settings,
    candidate_id: int,
    index: HashIndex,
    requested: str | None = None,
    picture: Image.Image | None = None,
) -> Outcome:
    """Run the enabled checks on one stored candidate and keep their verdicts (replacing older ones).
    `picture`: the stored file's pixels, decoded already (else the file is read)."""

    with Session(engine) as session:
        candidate = session.get(Candidate, candidate_id)
        if candidate is None:
            return Outcome(candidate_id, [], f"There is no candidate {candidate_id}.")
        solution = session.get(Solution, candidate.solution_id)
        if requested is None and candidate.attempt_id is not None and not candidate.cache_hit:
            requested = session.exec(select(Attempt.size).where(Attempt.id == candidate.attempt_id)).first()
    try:
        image = picture.convert("RGB") if picture is not None else _read(settings, candidate)
    except (OSError, ValueError) as exc:
        return Outcome(candidate_id, [], f"Candidate {candidate_id}'s file could not be read ({exc}).")
    enabled = settings.enabled_checks
    phash = checks.perceptual_hash(image)
    verdicts = []
    for name in enabled:
        if name == "blank":
            verdicts.append(checks.blank(image, settings))
        elif name == "wrong_size":
            verdicts.append(checks.wrong_size(candidate.width, candidate.height, requested, settings))
        elif name == "text_garbled":
            verdicts.append(checks.text_garbled(image, _own_words(solution), settings))
        elif name == "unsafe":
            verdicts.append(checks.unsafe(image, settings))
        elif name == "duplicate":
            verdicts.append(checks.duplicate(_match(engine, index, phash, candidate.solution_id), settings))
    _keep(engine, candidate_id, verdicts, phash)
    index.add(candidate_id, candidate.solution_id, phash)
    return Outcome(candidate_id, verdicts)


def _read(settings: Settings, candidate: Candidate) -> Image.Image:
    from PIL import Image

    with Image.open(settings.data_dir / candidate.file_path) as opened:
        opened.draft("RGB", (2048, 2048))
        return opened.convert("RGB")


def _own_words(solution: Solution | None) -> set[str]:
    if solution is None:
        return set()
    parts = [solution.title, solution.description, solution.category, solution.provider, *(solution.tags or [])]
    text = " ".join(str(p) for p in parts if p)
    return checks.known_words(text)


def _match(engine: Engine, index: HashIndex, phash: str, solution_id: str) -> Match | None:
    found = index.nearest(phash, solution_id)
    if found is None:
        return None
    candidate_id, other, distance, published = found
    with Session(engine) as session:
        title = session.exec(select(Solution.title).where(Solution.id == other)).first() or other
    return Match(candidate_id, other, title, distance, published)


def _keep(engine: Engine, candidate_id: int, verdicts: list[Verdict], phash: str) -> None:
    now = utcnow()
    with session_scope(engine, write=True) as session:
        candidate = session.get(Candidate, candidate_id)
        if candidate is None:
            return  # deleted meanwhile
        session.exec(delete(CandidateCheck).where(col(CandidateCheck.candidate_id) == candidate_id))
        for v in verdicts:
            session.add(
                CandidateCheck(
                    candidate_id=candidate_id,
                    name=v.name,
                    flagged=v.flagged,
                    score=v.score,
                    sentence=v.sentence,
                    evidence=v.evidence,
                    checked_at=now,
                )
            )
        candidate.checked_at, candidate.phash = now, phash
        candidate.flags = stored_flags(v.name for v in verdicts if v.flagged)
        session.add(candidate)
        session.commit()


def _lower_priority() -> None:
    """A check thread yields the CPU to generation (Linux nices threads one by one; its tesseract too)."""
    with contextlib.suppress(AttributeError, OSError):  # another system: the threads run at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


_threads: ThreadPoolExecutor | None = None
_warmed: set[str] = set()
_threads_lock = threading.Lock()


def _check_threads() -> ThreadPoolExecutor:
    """The process's check threads, a core each, shared by its runs: each thread's tesseract and the
    loaded models stay for the next run. Python joins them at exit, so a command ends once they are done."""
    global _threads
    with _threads_lock:
        if _threads is None:
            _threads = ThreadPoolExecutor(CHECK_THREADS, "checks", initializer=_lower_priority)
        return _threads


def _warm(names: tuple[str, ...], barrier: threading.Barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=5)  # one per thread: each loads its own tesseract
    try:
        checks.warm(names)
    except Exception:  # noqa: BLE001 - a check that cannot load says so on its first image
        log.debug("Warming the checks failed", exc_info=True)


class Inspector:
    """A run's checks on the process's check threads: `submit` a new candidate, `wait` for some,
    `close` at the end."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine, self.settings = engine, settings
        self.index = HashIndex(engine)
        self._futures: dict[int, Future[Outcome]] = {}
        self._lock = threading.Lock()
        _live.add(self)

    def warm(self) -> None:
        """Load what the checks need (the word list, the detector, each thread's tesseract, the hashes)
        now, while the run's first calls are out: not when its first image is in. Once per process."""
        threads = _check_threads()
        threads.submit(self.index.nearest, "0" * 64, "")
        names = self.settings.enabled_checks
        with _threads_lock:
            if ",".join(names) in _warmed:
                return
            _warmed.add(",".join(names))
        barrier = threading.Barrier(CHECK_THREADS)
        for _ in range(CHECK_THREADS):
            threads.submit(_warm, names, barrier)

    def submit(
        self, candidate_id: int, requested: str | None = None, picture: Image.Image | None = None
    ) -> Future[Outcome]:
        """Check the candidate on the check threads. `picture`, its pixels as decoded already, saves
        reading and decoding the file again, while few enough are waiting (PICTURES_HELD)."""
        with self._lock:
            found = self._futures.get(candidate_id)
            if found is not None:
                return found
            future = _check_threads().submit(self._inspect, candidate_id, requested, _hold(picture))
            self._futures[candidate_id] = future
            return future

    def _inspect(self, candidate_id: int, requested: str | None, picture: Image.Image | None) -> Outcome:
        try:
            return inspect_candidate(self.engine, self.settings, candidate_id, self.index, requested, picture)
        except Exception as exc:  # noqa: BLE001 - a check's surprise leaves the candidate unchecked, for a person
            log.exception("The checks of candidate %s failed", candidate_id)
            return Outcome(candidate_id, [], f"The checks failed unexpectedly ({type(exc).__name__}).")
        finally:
            if picture is not None:
                _pictures.release()

    def wait(self, candidate_ids: Iterable[int]) -> list[Outcome]:
        with self._lock:
            futures = [self._futures[c] for c in candidate_ids if c in self._futures]
        return [f.result() for f in futures]

    def close(self, wait: bool = True) -> None:
        """The run is over: `wait` for the checks it handed in (else they finish in the background)."""
        if wait:
            for future in self.futures():
                future.result()

    def futures(self) -> list[Future[Outcome]]:
        with self._lock:
            return list(self._futures.values())


_live: weakref.WeakSet[Inspector] = weakref.WeakSet()  # every run's inspector, for `finish`
_pictures = threading.BoundedSemaphore(PICTURES_HELD)


def _hold(picture: Image.Image | None) -> Image.Image | None:
    """The picture, if one more may wait in memory for its checks; else None (its file is read then)."""
    return picture if picture is not None and _pictures.acquire(blocking=False) else None


def unfinished() -> int:
    """Checks handed in by this process's runs and not done yet (a batch returns before its last ones)."""
    return sum(not f.done() for inspector in list(_live) for f in inspector.futures())


def finish() -> None:
    """Wait for every check this process's runs handed in: before a command exits, or a test ends."""
    for inspector in list(_live):
        for future in inspector.futures():
            future.result()


def check_again(
    engine: Engine,
    settings: Settings,
    candidate_ids: list[int],
    progress: Callable[[int, int, Outcome], None] | None = None,
) -> list[Outcome]:
    """Run the checks again on stored candidates, in parallel, reporting each as it is done."""
    inspector = Inspector(engine, settings)
    outcomes: list[Outcome] = []
    try:
        for future in _as_done([inspector.submit(c) for c in candidate_ids]):
            outcomes.append(future.result())
            if progress:
                progress(len(outcomes), len(candidate_ids), outcomes[-1])
    finally:
        inspector.close()
    return outcomes


def _as_done(futures: list[Future[Outcome]]) -> Iterable[Future[Outcome]]:
    from concurrent.futures import as_completed

    return as_completed(futures)


def stored_candidates(session: Session, solution_ids: list[str] | None = None) -> list[int]:
    """The candidates whose files are kept (all, or these solutions'), oldest first."""
    query = select(Candidate.id).where(col(Candidate.deleted_at).is_(None)).order_by(col(Candidate.id))
    if solution_ids is not None:
        query = query.where(col(Candidate.solution_id).in_(solution_ids))
    return [c for c in session.exec(query).all() if c is not None]


def pick(session: Session, candidate_ids: list[int], checked: bool = True) -> int | None:
    """The candidate auto-approve publishes among these: checked, pending, with no blocking flag; one with
    no flag at all before one that only looks like another solution's, then the first made. None when
    every one is flagged (or unchecked): a person decides. With every check turned off (`checked`
    False) an unchecked candidate may be published, as before the checks existed."""
    rows = session.exec(
        select(Candidate.id, Candidate.flags, Candidate.checked_at).where(
            col(Candidate.id).in_(candidate_ids), Candidate.state == CandidateState.pending
        )
    ).all()
    fit = [
        (bool(flags.strip()), cid) for cid, flags, at in rows if (at is not None or not checked) and not blocked(flags)
    ]
    return min(fit)[1] if fit else None


def verdicts(session: Session, candidate_ids: list[int]) -> dict[int, list[CandidateCheck]]:
    """Each candidate's kept verdicts, in the checks' order."""
    found: dict[int, list[CandidateCheck]] = {c: [] for c in candidate_ids}
    order = {name: i for i, name in enumerate(checks.NAMES)}
    for i in range(0, len(candidate_ids), 500):
        rows = session.exec(
            select(CandidateCheck).where(col(CandidateCheck.candidate_id).in_(candidate_ids[i : i + 500]))
        )
        for row in rows.all():
            found[row.candidate_id].append(row)
    for rows in found.values():
        rows.sort(key=lambda r: order.get(r.name, 99))
    return found


def as_json(candidate: Candidate, rows: list[CandidateCheck]) -> dict[str, Any]:
    """A candidate's `flags` and `checks` as `candidates --json` gives them."""
    return {
        "flags": flag_names(candidate.flags),
        "checked_at": candidate.checked_at.isoformat() if candidate.checked_at else None,
        "checks": {
            r.name: {"flagged": r.flagged, "score": r.score, "sentence": r.sentence, "evidence": r.evidence}
            for r in rows
        },
    }


def unchecked(session: Session) -> int:
    """Stored candidates the checks have not seen (made before they existed, or while they were off)."""
    query = (
        select(func.count())
        .select_from(Candidate)
        .where(col(Candidate.checked_at).is_(None), col(Candidate.deleted_at).is_(None))
    )
    return int(session.exec(query).one())


# -- what Review shows of a candidate's checks ------------------------------------------------------
RUNNING_FOR = timedelta(minutes=5)  # an unchecked candidate this new is most likely being checked now


@dataclass(frozen=True)
class Finding:
    """One raised flag as a person reads it: the check's plain name, whether it blocks, its sentence."""

    name: str
    label: str
    blocking: bool
    sentence: str


@dataclass(frozen=True)
class Findings:
    """A candidate's checks at a glance. `state`: flagged, passed, running (made a moment ago and not
    checked yet), unchecked, or none (checked while every check was switched off)."""

    state: str
    flags: list[Finding]


def findings(session: Session, candidates: list[Candidate], now: datetime | None = None) -> dict[int, Findings]:
    """What each candidate's checks found, blocking flags first, each with the sentence its check wrote."""
    now = now or utcnow()
    rows = verdicts(session, [c.id for c in candidates if c.id is not None])
    found: dict[int, Findings] = {}
    for candidate in candidates:
        if candidate.id is None:
            continue
        kept = rows.get(candidate.id, [])
        found[candidate.id] = Findings(_state(candidate, kept, now), _raised(candidate, kept))
    return found


def _raised(candidate: Candidate, rows: list[CandidateCheck]) -> list[Finding]:
    sentences = {r.name: r.sentence for r in rows if r.flagged}
    names = [n for n in checks.NAMES if n in sentences or n in flag_names(candidate.flags)]
    raised = [Finding(n, checks.LABELS[n], n in BLOCKING, sentences.get(n, "")) for n in names]
    return sorted(raised, key=lambda f: not f.blocking)


def _state(candidate: Candidate, rows: list[CandidateCheck], now: datetime) -> str:
    if candidate.checked_at is None:
        made = candidate.created_at
        made = made if made.tzinfo else made.replace(tzinfo=UTC)  # SQLite gives its UTC times back naive
        return "running" if now - made < RUNNING_FOR else "unchecked"
    if candidate.flags.strip():
        return "flagged"
    return "passed" if rows else "none"
