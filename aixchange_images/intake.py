"""Image requests as the marketplace's route took them: which solution, then publish at once or queue for review.

The drop-in service (service.py) turns HTTP into an `Ask` and an `Outcome` back into HTTP; what a
request does lives here. Every image goes through the pipeline as the CLI's do (moderation, budget,
cache, attempt records, approval): published at once by one pool of IMAGE_CONCURRENCY threads here,
or, for review, queued as a generate job for the workers (`aixchange-images worker`).
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import admin, batch, jobs, marketplace, pull
from .auth import SERVICE_ACTOR, Actor, audit
from .config import ConfigError, Settings, UserError
from .db import session_scope, take_lock
from .models import (
    PLACEHOLDER_URL,
    Attempt,
    Candidate,
    ImageStatus,
    Publication,
    Purpose,
    Solution,
    SolutionOrigin,
    new_solution_id,
    utcnow,
)
from .pipeline import GenerateOptions, GenerationResult, RateLimiter
from .provider_registry import chosen, get_provider
from .redaction import redact
from .zod import js_length

log = logging.getLogger(__name__)

DESCRIPTION_REQUIRED = "Description is required"  # the marketplace route's own words, kept exactly
MAX_DESCRIPTION = 1000  # the marketplace's zod rules, in UTF-16 code units
MAX_TITLE = 100
DEFAULT_TITLE = "solution"  # what the marketplace's forms send when the title is still empty
DUPLICATE_WINDOW = timedelta(minutes=10)  # the same request again within it reuses the first one's solution
PLACEHOLDER_FILE = PLACEHOLDER_URL.rsplit("/", 1)[-1]
_SOLUTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_PUBLISHED = (ImageStatus.approved, ImageStatus.uploaded)

UNEXPECTED = "An unexpected error occurred; the card keeps the placeholder image and the error is in the service's log."
SHUTTING_DOWN = "The image service is shutting down; try again in a minute."
NOT_QUEUED = "The image request could not be queued for the workers; the card keeps the placeholder, try again later."
NO_DAILY_CAP = (
    "The image service spends money only under a daily budget (its route has no sign-in); "
    "ask an admin to set IMAGE_BUDGET_DAILY_USD or a daily budget on Settings."
)
# What a failed generation answers, per error kind: our own sentences, never the provider's text.
WHY = {
    "moderation_blocked": "The description was flagged by moderation; reword it and try again.",
    "budget_exceeded": "The image budget is used up for now; the card keeps the placeholder until an admin raises the "
    "budget or the period resets.",
    "rate_limited": "The image provider is limiting our request rate; try again in a minute.",
    "quota_exceeded": "The image provider's quota or billing limit is reached; an administrator must raise it.",
    "timeout": "The image provider did not answer in time; try again later.",
    "connection": "The image provider could not be reached; try again later.",
    "auth": "The image provider refused the service's credentials; an administrator must check the API key.",
    "invalid_request": "The image provider refused this request; reword the description and try again.",
    "model_unavailable": "The configured image model is not available; an administrator must choose a current one.",
    "server_error": "The image provider failed; try again later.",
    "bad_image": "The image provider's reply was not a usable image; try again.",
    "storage": "The image could not be stored; an administrator must check the image folders.",
}


class AskError(UserError, ValueError):
    """A request that cannot be taken; the message is the one sentence its 400 answer carries."""


@dataclass(frozen=True)
class Ask:
    """A checked request: what the marketplace's forms send."""

    description: str
    title: str = DEFAULT_TITLE
    solution_id: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        """What makes two requests the same one (a form that submits twice)."""
        return ("id", self.solution_id) if self.solution_id else ("ask", self.title, self.description)


@dataclass(frozen=True)
class Outcome:
    """What the route answers: an image (the placeholder while one waits for review), or why there is none."""

    solution_id: str | None
    message: str
    image_url: str = PLACEHOLDER_URL
    file_name: str = PLACEHOLDER_FILE
    size: str = ""
    image_format: str = "jpeg"
    error_kind: str | None = None  # None: an answer with an image

    @property
    def ok(self) -> bool:
        return self.error_kind is None


def spending_is_bounded(settings: Settings) -> bool:
    """The unauthenticated route spends with a paid provider only under a daily cap."""
    return settings.image_budget_daily_usd is not None or not get_provider(chosen(settings), settings).paid


def make_ask(description: str | None, title: str | None = None, solution_id: str | None = None) -> Ask:
    """Check a request with the marketplace's rules; bad input raises AskError with one sentence."""
    if description is None or not description.strip():
        raise AskError(DESCRIPTION_REQUIRED)
    _check_text("description", description, MAX_DESCRIPTION)
    title = title if title and title.strip() else DEFAULT_TITLE
    _check_text("title", title, MAX_TITLE)
    if solution_id and not _SOLUTION_ID.match(solution_id):
        raise AskError("The solutionId must be 1-40 letters, digits, '-' or '_', as the marketplace's ids are.")
    return Ask(description, title, solution_id or None)


def _check_text(name: str, value: str, limit: int) -> None:
    length = js_length(value)
    if length > limit:
        raise AskError(f"The {name} is {length:,} characters long; the marketplace allows at most {limit:,}.")
    if "\x00" in value:
        raise AskError(f"The {name} contains a NUL character; remove it.")


def _done(outcome: Outcome) -> Future[Outcome]:
    future: Future[Outcome] = Future()
    future.set_result(outcome)
    return future


class Intake:
    """Takes image requests and owns the worker pool that makes their images.

    By default a request's image is generated and published before it is answered (the old route's
    behaviour); with `review` it is answered with the placeholder at once and a generate job makes
    its candidates, which wait in Review. A solution that already shows a published image, or has images waiting for review,
    is answered as it stands: an unauthenticated request never replaces a curated image.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        review: bool = False,
        candidates: int = 1,
        concurrency: int | None = None,
        actor: Actor = SERVICE_ACTOR,
    ):
        if not 1 <= candidates <= 10:
            raise ConfigError("The number of candidates per request must be between 1 and 10.")
        self.engine, self.settings, self.actor = engine, settings, actor
        self.review, self.candidates = review, candidates if review else 1
        workers = concurrency or settings.image_concurrency
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="intake")
        self._stop = threading.Event()
        # One limiter for every request: each runs its own batch, whose own limiter would see one call.
        self._limiter = RateLimiter(settings.image_rate_limit_per_minute, self._stop)
        self._lock = threading.RLock()  # a done callback may run at once, inside `take`
        self._running: dict[tuple[str, ...], Future[Outcome]] = {}
        self._work: set[Future[Outcome]] = set()

    def current_settings(self) -> Settings:
        """The environment's settings with the dashboard's overrides as they are now (budgets, provider...)."""
        with Session(self.engine) as session:
            return admin.effective_settings(session=session, settings=self.settings)

    def take(self, ask: Ask) -> Future[Outcome]:
        """Answer a request: a finished future when nothing is to be made first, else the generation's."""
        # An id we could not find here or in the marketplace may be anyone's: its images wait for a person.
        review = self.review or (ask.solution_id is not None and not self._look_up(ask.solution_id))
        with self._lock:
            running = self._running.get(ask.key)
            if running is not None:  # the same request is being made: share its answer, make nothing twice
                return _done(self._queued(None)) if review else running
            settings = self.current_settings()
            if not spending_is_bounded(settings):
                return _done(Outcome(None, NO_DAILY_CAP, error_kind="budget_exceeded"))
            with session_scope(self.engine, write=True) as session:
                solution = self._solution_for(session, ask)
                standing = self._standing(session, solution, settings, review)
                session.commit()
            if standing is not None:
                return _done(standing)
            if review:
                return _done(self._enqueue(settings, solution))
            future = self._pool.submit(self._generate, solution.id)
            self._running[ask.key] = future
            self._work.add(future)
            future.add_done_callback(lambda done: self._forget(ask.key, done))
        return future

    def _look_up(self, solution_id: str) -> bool:
        """Whether we know the solution: ours already, or a marketplace row we read now (its image and
        text then count, not the request's)."""
        if self._known(solution_id):
            return True
        settings = self.current_settings()
        if not marketplace.configured(settings):
            return False
        try:
            pull.pull(self.engine, settings, actor=self.actor, ids=[solution_id])
        except UserError as exc:  # the marketplace is down: a request solution stands in, a later pull joins it
            log.warning("Could not read solution %s from the marketplace: %s", solution_id, exc)
        return self._known(solution_id)

    def _known(self, solution_id: str) -> bool:
        with Session(self.engine) as session:
            solution = session.get(Solution, solution_id)
            return solution is not None and solution.origin != SolutionOrigin.request

    def _forget(self, key: tuple[str, ...], future: Future[Outcome]) -> None:
        with self._lock:
            if self._running.get(key) is future:
                del self._running[key]
            self._work.discard(future)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for every generation taken so far (publish mode's; review's are jobs); False on timeout."""
        with self._lock:
            work = list(self._work)
        return not wait(work, timeout).not_done

    def close(self) -> None:
        """Stop: calls in flight finish and are recorded; work not started answers that the service is stopping."""
        self._stop.set()
        self._pool.shutdown(wait=True)

    # -- which solution ------------------------------------------------------------------------
    def _solution_for(self, session: Session, ask: Ask) -> Solution:
        """Ours when the id is known (our catalogue is the truth), else a request solution (a pull adopts it)."""
        take_lock(session, "service:requests")  # several service processes: one solution per double submit
        if ask.solution_id:
            solution = session.get(Solution, ask.solution_id)
            if solution is None:
                return self._new_solution(session, ask, ask.solution_id)
            if not solution.description.strip():  # ours is empty: the request's is all there is to draw from
                solution.description, solution.updated_at = ask.description, utcnow()
                session.add(solution)
                audit(session, self.actor, "solution.edit", solution.id, field="description")
            return solution
        recent = session.exec(
            select(Solution)
            .where(
                Solution.origin == SolutionOrigin.request,
                Solution.title == ask.title,
                Solution.description == ask.description,
                Solution.created_at >= utcnow() - DUPLICATE_WINDOW,
            )
            .order_by(col(Solution.created_at).desc())
        ).first()
        return recent if recent is not None else self._new_solution(session, ask, None)

    def _new_solution(self, session: Session, ask: Ask, solution_id: str | None) -> Solution:
        solution = Solution(
            id=solution_id or new_solution_id(),
            title=ask.title,
            description=ask.description,
            category="Other",
            provider="Unknown",
            launch_url="",
            tags=[],
            origin=SolutionOrigin.request,
        )
        session.add(solution)
        session.flush()
        audit(session, self.actor, "solution.add", solution.id, title=solution.title, origin=SolutionOrigin.request)
        return solution

    def _standing(self, session: Session, solution: Solution, settings: Settings, review: bool) -> Outcome | None:
        """The answer for a solution that needs nothing made: it shows a published image, or images await
        review (or, for review, a job will make them)."""
        if solution.image_status in _PUBLISHED:
            return _published(session, solution, settings, "The solution already has a published image.")
        if solution.image_status == ImageStatus.pending or (
            review and jobs.waiting_for(session=session, solution_id=solution.id)  # queued, not made yet
        ):
            return self._queued(settings, solution)
        return None

    def _queued(self, settings: Settings | None, solution: Solution | None = None) -> Outcome:
        """The answer while images wait for an admin: the image the card shows now, usually the placeholder."""
        url = solution.image_url if solution is not None and solution.image_url else PLACEHOLDER_URL
        return Outcome(
            solution_id=solution.id if solution is not None else None,
            message="The image will appear on the card after an admin approves it in AIXchange Images.",
            image_url=url,
            file_name=url.rsplit("/", 1)[-1],
            size=(settings or self.settings).dalle_image_size,
            image_format=_format_of(url, "jpeg"),
        )

    def _enqueue(self, settings: Settings, solution: Solution) -> Outcome:
        """Queue the candidates as a generate job, as Generate does; the placeholder answers meanwhile."""
        options = GenerateOptions(actor=self.actor, candidates=self.candidates, purpose=Purpose.regular)
        try:
            jobs.enqueue_generate(self.engine, settings, [solution.id], options)
        except UserError as exc:  # the queue is unreachable, the settings refuse: the log says which
            log.error(redact(f"Could not queue images for {solution.id}: {exc}", *self.settings.secrets))
            return Outcome(solution.id, NOT_QUEUED, error_kind="server_error")
        return self._queued(settings, solution)

    # -- making the image (on the pool) ----------------------------------------------------------
    def _generate(self, solution_id: str) -> Outcome:
        try:
            if self._stop.is_set() or not all(self._limiter.acquire() for _ in range(self.candidates)):
                return Outcome(solution_id, SHUTTING_DOWN, error_kind="server_error")
            settings = self.current_settings()
            options = GenerateOptions(auto_approve=True, actor=self.actor, candidates=self.candidates, concurrency=1)
            results, _ = batch.run_batch(self.engine, settings, [solution_id], options, stop=self._stop)
            return self._outcome(solution_id, results, settings)
        except Exception:  # noqa: BLE001 - the request gets a sentence; the log gets the traceback
            log.error(
                redact(f"Image request for {solution_id} failed\n{traceback.format_exc()}", *self.settings.secrets)
            )
            return Outcome(solution_id, UNEXPECTED, error_kind="server_error")

    def _outcome(self, solution_id: str, results: list[GenerationResult], settings: Settings) -> Outcome:
        if not results:
            return Outcome(solution_id, SHUTTING_DOWN, error_kind="server_error")
        if results[0].status == "failed":
            kind = results[0].error_kind or "server_error"
            return Outcome(solution_id, self._why(results[0], kind), error_kind=kind)
        with Session(self.engine) as session:
            solution = session.get(Solution, solution_id)
            if solution is not None and solution.image_status in _PUBLISHED:
                return _published(session, solution, settings, "Image generated and saved successfully")
            if solution is not None and solution.image_status == ImageStatus.pending:
                return self._queued(settings, solution)  # an automatic check held it back for a person
        return Outcome(solution_id, UNEXPECTED, error_kind="server_error")

    def _why(self, result: GenerationResult, kind: str) -> str:
        """One sentence for the public: ours for every kind; the record's own only where we wrote it
        (the moderation verdict, a prompt refused before anything was sent)."""
        with Session(self.engine) as session:
            attempt = session.get(Attempt, result.attempt_id) if result.attempt_id else None
        ours = attempt is not None and (
            attempt.moderation == "flagged" or (kind == "invalid_request" and attempt.moderation is None)
        )
        if ours and result.error:
            return redact(result.error, *self.settings.secrets)
        return WHY.get(kind, UNEXPECTED)


def _published(session: Session, solution: Solution, settings: Settings, message: str) -> Outcome:
    """The answer naming the image a solution shows, with the size of the candidate behind it."""
    url = solution.image_url or PLACEHOLDER_URL
    made = session.exec(
        select(Candidate.width, Candidate.height)
        .join(Publication, col(Publication.candidate_id) == Candidate.id)
        .where(Publication.solution_id == solution.id, Publication.image_url == url)
        .order_by(col(Publication.id).desc())
    ).first()
    return Outcome(
        solution_id=solution.id,
        message=message,
        image_url=url,
        file_name=url.rsplit("/", 1)[-1],
        size=f"{made[0]}x{made[1]}" if made else settings.dalle_image_size,
        image_format=_format_of(url, settings.dalle_image_format),
    )


def _format_of(url: str, default: str) -> str:
    ext = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
    return {"jpg": "jpeg", "jpeg": "jpeg", "png": "png"}.get(ext, default)
