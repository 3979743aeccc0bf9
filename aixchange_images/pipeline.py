"""Generation: one solution's attempt from prompt to stored candidate, and parallel batches."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session

from . import cache, calls, storage
from .auth import CLI_ACTOR, Actor, require
from .config import ConfigError, Settings, check_size
from .db import session_scope
from .inspections import Inspector, pick
from .models import (
    NOT_CHOSEN,
    PLACEHOLDER_URL,
    Attempt,
    AttemptStatus,
    CandidateState,
    ImageStatus,
    Purpose,
    Solution,
    utcnow,
)
from .process import HOST, RUNNER
from .prompts import (
    PromptError,
    Subject,
    Template,
    check_prompt,
    render_template,
    solution_variables,
)
from .provider_registry import chosen, get_provider
from .providers.base import (
    ImageRequest,
    ImageResult,
    Provider,
    ProviderError,
)
from .redaction import redact
from .reservations import Reservation
from .templates import resolve as resolve_template

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


@dataclass
class GenerateOptions:
    """What a batch asks for; None means the configured default."""

    provider: str | None = None
    model: str | None = None
    size: str | None = None
    quality: str | None = None
    output_format: str | None = None
    template: str | None = None
    candidates: int = 1
    use_cache: bool = True
    auto_approve: bool = False
    concurrency: int | None = None
    actor: Actor = CLI_ACTOR
    purpose: str = Purpose.regular  # Purpose.trial for Prompt Studio's trials: their candidates wait apart
    batch_id: str | None = None  # chosen by the caller to find the run's candidates later (Review's ?batch=)


@dataclass
class Plan:
    """Options resolved against the settings: exactly what each call will send."""

    provider: Provider
    model: str
    size: str
    quality: str
    output_format: str
    options: GenerateOptions
    batch_id: str = field(default_factory=lambda: new_batch_id())

    def request(self, prompt: str, variant: int = 0, subject: dict[str, Any] | None = None) -> ImageRequest:
        """What one call of this plan sends."""
        return ImageRequest(
            prompt=prompt,
            model=self.model,
            size=self.size,
            quality=self.quality,
            output_format=self.output_format,
            variant=variant,
            subject=subject or {},
        )


@dataclass(frozen=True)
class Request:
    """What one attempt will ask for, before any row exists: what estimates are made of."""

    solution_id: str
    variant: int
    template_ref: str | None
    prompt: str
    key: str  # request_key: the cache's identity of the request
    problem: str | None = None  # why the prompt cannot be sent, in one sentence


@dataclass
class GenerationResult:
    solution_id: str
    status: str  # succeeded | failed
    error_kind: str | None = None
    candidate_id: int | None = None
    cost_usd: float = 0.0
    duration_ms: int = 0
    cache_hit: bool = False
    error: str | None = None
    attempt_id: int | None = None
    published_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, attempt: Attempt, published_url: str | None = None) -> GenerationResult:
        """What a finished attempt made, as a batch reports it."""
        return cls(
            solution_id=attempt.solution_id,
            status="succeeded" if attempt.status == AttemptStatus.succeeded else "failed",
            error_kind=attempt.error_kind,
            candidate_id=attempt.candidate_id,
            cost_usd=round(attempt.cost_usd, 6),
            duration_ms=attempt.duration_ms or 0,
            cache_hit=attempt.cache_hit,
            error=attempt.error_message,
            attempt_id=attempt.id,
            published_url=published_url,
        )


def new_batch_id() -> str:
    return uuid.uuid4().hex[:12]


def make_plan(settings: Settings, options: GenerateOptions) -> Plan:
    """Resolve provider, model, size, quality and format; bad values fail with one sentence."""
    require(options.actor, "generate")
    provider = get_provider(options.provider or chosen(settings), settings)
    quality = (options.quality or settings.dalle_image_quality).lower()
    override = settings.with_overrides({"dalle_image_quality": quality}) if options.quality else settings
    if options.auto_approve:
        require(options.actor, "review")
    if not 1 <= options.candidates <= 10:
        raise ConfigError("The number of candidates per solution must be between 1 and 10.")
    model = options.model or (settings.image_model if provider.serves(settings.image_model) else provider.default_model)
    if not provider.serves(model):
        known = ", ".join(provider.current_models(date.today()))
        raise ConfigError(f"The {provider.name} provider has no model '{model}'; choose one of: {known}.")
    return Plan(
        provider=provider,
        model=model,
        size=check_size(options.size or settings.dalle_image_size),
        quality=override.dalle_image_quality,
        output_format=(options.output_format or settings.dalle_image_format).replace("jpg", "jpeg"),
        options=options,
        batch_id=options.batch_id or new_batch_id(),
    )


SPENT = (CandidateState.rejected, CandidateState.rolled_back, CandidateState.superseded)


def request_key(plan: Plan, prompt: str, variant: int, changing: str | None = None) -> str:
    """Identity of a request for the cache: same key, same kind of image. A refine's key holds the
    digest of the image it changes (`changing`)."""
    parts = (plan.provider.name, plan.model, plan.size, plan.quality, plan.output_format, prompt, str(variant))
    return hashlib.sha256("\x1f".join(parts + ((f"edit:{changing}",) if changing else ())).encode()).hexdigest()


class Stopped(Exception):  # noqa: N818 - a state, not an error
    """The run was stopped before this attempt made its call: nothing is recorded for it."""


class RateLimiter:
    """At most `per_minute` calls in any sliding minute, shared by a batch's workers."""

    def __init__(self, per_minute: int | None, stop: threading.Event | None = None):
        self.per_minute = per_minute
        self.stop = stop or threading.Event()
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        """Wait for a slot; False when the batch was stopped meanwhile."""
        if not self.per_minute:
            return not self.stop.is_set()
        while True:
            with self._lock:
                now = time.monotonic()
                while self._times and now - self._times[0] >= 60:
                    self._times.popleft()
                if len(self._times) < self.per_minute:
                    self._times.append(now)
                    return True
                wait = 60 - (now - self._times[0])
            if self.stop.wait(wait):
                return False


class Generator:
    """Runs attempts for one plan; shared by the batch's worker threads.

    Every attempt, a new image or a refine, passes the same steps (`run`): its prompt was made, the
    cache, the model is current, moderation, the rate limit, the budget's reservation, the call, its
    charge, keeping the image, auto-approval. Each step may end the attempt; what it made is recorded.
    """

    def __init__(self, engine: Engine, settings: Settings, plan: Plan, stop: threading.Event | None = None):
        self.engine = engine
        self.settings = settings
        self.plan = plan
        self.stop = stop or threading.Event()
        self.limiter = RateLimiter(settings.image_rate_limit_per_minute, self.stop)
        self.concurrency = plan.options.concurrency or settings.image_concurrency
        # Unbounded unless a batch runs more workers than calls (`bound_calls`); a job's calls are
        # bounded by its worker's threads.
        self.slots: contextlib.AbstractContextManager = contextlib.nullcontext()
        self.keepers: contextlib.AbstractContextManager = contextlib.nullcontext()
        self._publish_lock = threading.Lock()
        self._made: dict[str, list[int]] = {}  # solution id -> the candidates auto-approve chooses among
        self._urls: dict[int, str] = {}  # candidate id -> imageUrl, for auto-approved ones
        self._inspector: Inspector | None = None
        self._templates: dict[tuple[str | None, str], Template] = {}
        self._secrets = settings.secrets  # only to redact them from messages

    def bound_calls(self) -> None:
        """At most `concurrency` provider calls in flight, and replies kept a core at a time, however
        many workers share this generator: the batch's extra workers keep replies meanwhile."""
        self.slots = threading.BoundedSemaphore(self.concurrency)
        self.keepers = threading.BoundedSemaphore(os.cpu_count() or 2)

    @property
    def inspector(self) -> Inspector:
        """The run's check threads, started with its first new image."""
        with self._publish_lock:
            if self._inspector is None:
                self._inspector = Inspector(self.engine, self.settings)
            return self._inspector

    def close(self, wait: bool = True) -> None:
        """The end of the run: its check threads end once the images it made are checked; `wait` for them."""
        if self._inspector is not None:
            self._inspector.close(wait)

    def published_url(self, candidate_id: int | None) -> str | None:
        return self._urls.get(candidate_id or -1)

    # -- one attempt -------------------------------------------------------------------------
    def generate(self, solution_id: str, variant: int) -> GenerationResult:
        """A new image for a solution, from its prompt template."""
        return self.guarded(solution_id, lambda started: self._generate(solution_id, variant, started))

    def guarded(self, solution_id: str, attempt: Callable[[float], GenerationResult]) -> GenerationResult:
        """Run one attempt; a surprise is recorded, not raised, and a solution left with no image
        gets the placeholder."""
        started = time.perf_counter()
        try:
            result = attempt(started)
        except Stopped:
            raise
        except Exception as exc:  # noqa: BLE001 - one solution's surprise must not end the batch
            message = self._surprise(f"Generation failed unexpectedly for {solution_id}", exc)
            result = GenerationResult(solution_id, "failed", "server_error", error=message[:1000])
        if result.status == "failed":
            self._give_placeholder(solution_id)
        return result

    def _generate(self, solution_id: str, variant: int, started: float) -> GenerationResult:
        with Session(self.engine, expire_on_commit=False) as session:
            solution = session.get(Solution, solution_id)
            if solution is None:
                return GenerationResult(
                    solution_id, "failed", "invalid_request", error=f"No solution with id {solution_id}."
                )
            attempt = self._new_attempt(session, solution, variant)
        subject = {
            "title": solution.title,
            "description": solution.description,
            "category": solution.category,
            "tags": list(solution.tags or []),
            "provider": solution.provider or "",
        }
        return self.run(attempt, self.plan.request(attempt.prompt, variant, subject), started)

    def run(self, attempt: Attempt, request: ImageRequest, started: float, **kept: Any) -> GenerationResult:
        """The steps of one attempt, in order. A request with an image is a refine (`provider.edit`);
        `kept` are the new candidate's own fields (a refine's parent and instruction)."""
        if attempt.status == AttemptStatus.failed:  # the prompt could not be made
            return self._store(attempt, started)
        if self.plan.options.use_cache and (served := self._from_cache(attempt, started)) is not None:
            return served
        if self._retired(attempt) or not self._moderate(attempt):  # moderation: while waiting for a slot
            return self._store(attempt, started)
        queued = time.perf_counter()
        with self.slots:  # image calls in flight stay at the concurrency; keeping a reply overlaps the next
            started += time.perf_counter() - queued  # waiting for a slot is not generation time
            reply = self._called(attempt, request, started)
        if isinstance(reply, GenerationResult):
            return reply
        queued = time.perf_counter()
        with self.keepers:  # a core each: a freed slot's next call is not starved of the CPU
            started += time.perf_counter() - queued
            return self._keep_image(attempt, reply, started, kept)

    def _called(self, attempt: Attempt, request: ImageRequest, started: float) -> ImageResult | GenerationResult:
        """The rate limit, the reservation and the call: the reply, or how the attempt ended."""
        if self.stop.is_set():
            raise Stopped  # waited for a call slot while the run was stopped: nothing was asked
        if not self.limiter.acquire():  # before the reservation: a reservation is held only by a call
            raise Stopped
        money = Reservation(self.engine, self.settings, self.plan.provider, attempt)
        if not money.open(request):
            return self._result(attempt)  # stored as over budget by the reservation
        try:
            reply = self._call(attempt, request, money)
        finally:
            calls.ended(attempt.id)
        return self._store(attempt, started) if reply is None else reply

    def _render(self, session: Session, solution: Subject) -> tuple[Template, str]:
        """The prompt for a solution; each (template, category) is resolved once per batch."""
        key = (self.plan.options.template, solution.category)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = resolve_template(session=session, ref=key[0], category=key[1])
        return template, render_template(template, solution_variables(solution))

    def prepare(self, session: Session, solution: Subject, variant: int) -> Request:
        """The prompt and cache key one attempt would use, or why it cannot be made (cheap: no row)."""
        try:
            template, prompt = self._render(session, solution)
            check_prompt(prompt, model=self.plan.model, description=solution.description)
        except PromptError as exc:
            return Request(solution.id, variant, None, "", request_key(self.plan, "", variant), str(exc))
        return Request(solution.id, variant, template.ref, prompt, request_key(self.plan, prompt, variant))

    def _new_attempt(self, session: Session, solution: Solution, variant: int) -> Attempt:
        request = self.prepare(session, solution, variant)
        attempt = self.new_attempt(solution.id, request.prompt, variant, request.key, request.template_ref)
        if request.problem is not None:
            self._fail(attempt, "invalid_request", request.problem)
        return attempt

    def new_attempt(
        self, solution_id: str, prompt: str, variant: int, key: str, template_ref: str | None, **fields: Any
    ) -> Attempt:
        """An attempt of this plan, not stored yet."""
        plan = self.plan
        return Attempt(
            solution_id=solution_id,
            batch_id=plan.batch_id,
            purpose=plan.options.purpose,
            actor=plan.options.actor.username,
            provider=plan.provider.name,
            model=plan.model,
            size=plan.size,
            quality=plan.quality,
            output_format=plan.output_format,
            template_ref=template_ref,
            prompt=prompt,
            variant=variant,
            request_key=key,
            pid=os.getpid(),
            host=HOST,
            runner=RUNNER,
            **fields,
        )

    def _from_cache(self, attempt: Attempt, started: float) -> GenerationResult | None:
        """Reuse an identical earlier success at $0: a new candidate, or the same pending one."""
        with session_scope(self.engine, write=True) as session:
            candidate = cache.serve(session, attempt, lambda c: (self.settings.data_dir / c.file_path).is_file())
            if candidate is None:
                return None
            self._finish(attempt, started, AttemptStatus.succeeded)
            session.add(attempt)
            if candidate.state == CandidateState.pending:
                _mark_pending(session, attempt.solution_id)
            session.commit()
        if candidate.state == CandidateState.pending:
            self._inspect(attempt, candidate.id, None if candidate.checked_at is None else "checked")
        return self._result(attempt)

    def _retired(self, attempt: Attempt) -> bool:
        """A model past its shutdown date fails here, before the moderation call or any other."""
        retired = self.plan.provider.retired(attempt.model, date.today())
        if retired is not None:
            self._fail(attempt, "model_unavailable", retired)
        return retired is not None

    def _moderate(self, attempt: Attempt) -> bool:
        try:
            verdict = self.plan.provider.moderate(attempt.prompt)
        except ProviderError as exc:
            attempt.moderation = "error"
            self._fail(attempt, exc.kind, f"The moderation check failed: {exc.message}")
            return False
        attempt.moderation = "flagged" if verdict.flagged else "passed"
        if verdict.flagged:
            found = ", ".join(verdict.categories) or "unsafe content"
            self._fail(
                attempt,
                "moderation_blocked",
                f"The prompt was flagged by moderation ({found}); reword the "
                + ("instruction." if attempt.parent_id is not None else "description."),
            )
            return False
        return True

    def _call(self, attempt: Attempt, request: ImageRequest, money: Reservation) -> ImageResult | None:
        """The provider's reply, charged; None when the call failed (recorded on the attempt)."""
        provider = self.plan.provider
        call = provider.edit if request.image is not None else provider.generate
        try:
            reply = call(request, before_retry=money.retry)
        except ProviderError as exc:
            attempt.request_id, attempt.retries = exc.request_id, exc.retries
            self._fail(attempt, exc.kind, exc.message)
            money.settle_unanswered(exc.unanswered)
            return None
        except Exception as exc:  # noqa: BLE001 - a provider bug must still leave a record
            self._fail(attempt, "server_error", redact(f"The provider failed unexpectedly: {exc}", *self._secrets))
            return None
        money.settle(request, reply)
        return reply

    def _keep_image(
        self, attempt: Attempt, reply: ImageResult, started: float, kept: dict[str, Any]
    ) -> GenerationResult:
        try:
            data, info = storage.servable_reply(reply.data, size=attempt.size)
            candidate = storage.keep_candidate(
                self.settings,
                attempt.solution_id,
                data,
                info,
                attempt_id=attempt.id,
                template_ref=attempt.template_ref,
                model=attempt.model,
                provider=attempt.provider,
                cost_usd=attempt.cost_usd,
                purpose=attempt.purpose,
                **kept,
            )
        except storage.BadImage as exc:
            self._fail(attempt, "bad_image", str(exc))
            return self._store(attempt, started)
        except storage.StorageError as exc:
            self._fail(attempt, "storage", str(exc))
            return self._store(attempt, started)
        except Exception as exc:  # noqa: BLE001 - the call is paid for: record it whatever went wrong
            self._fail(
                attempt, "storage", self._surprise(f"The image for {attempt.solution_id} could not be kept", exc)
            )
            return self._store(attempt, started)
        attempt.bytes = candidate.bytes
        self._finish(attempt, started, AttemptStatus.succeeded)
        with session_scope(self.engine, write=True) as session:
            session.add(candidate)
            session.flush()
            attempt.candidate_id = candidate.id
            _write_outcome(session, attempt)
            _mark_pending(session, attempt.solution_id)
            session.commit()
        # The checks take the pixels decoded to verify the reply, when the file stored is the reply itself
        # (a converted one, WebP to PNG or CMYK to RGB, may hold other pixels: its file is read).
        self._inspect(attempt, candidate.id, attempt.size, info.decoded if data is reply.data else None)
        return self._result(attempt)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _surprise(self, what: str, exc: Exception) -> str:
        """Log the exception being handled with its traceback; one sentence for the record. No secret in either."""
        log.error(redact(f"{what}\n{traceback.format_exc()}", *self._secrets))
        return redact(f"{what} ({type(exc).__name__}: {exc}).", *self._secrets)

    def _fail(self, attempt: Attempt, kind: str, message: str) -> None:
        attempt.status, attempt.error_kind, attempt.error_message = AttemptStatus.failed, kind, message[:1000]

    def _finish(self, attempt: Attempt, started: float, status: str) -> None:
        attempt.status = status
        attempt.finished_at = utcnow()
        attempt.duration_ms = int((time.perf_counter() - started) * 1000)

    def _store(self, attempt: Attempt, started: float) -> GenerationResult:
        """Write a finished (usually failed) attempt; a reservation is released by its status."""
        self._finish(
            attempt, started, attempt.status if attempt.status != AttemptStatus.running else AttemptStatus.failed
        )
        with session_scope(self.engine, write=True) as session:
            _write_outcome(session, attempt)
            session.commit()
        return self._result(attempt)

    def _result(self, attempt: Attempt) -> GenerationResult:
        return GenerationResult.of(attempt, self._urls.get(attempt.candidate_id or -1))

    def _give_placeholder(self, solution_id: str) -> None:
        """A solution with no image gets the placeholder so its card still renders."""
        with session_scope(self.engine, write=True) as session:
            solution = session.get(Solution, solution_id)
            if solution is not None and solution.image_status == ImageStatus.none:
                solution.image_url, solution.image_status = PLACEHOLDER_URL, ImageStatus.placeholder
                solution.updated_at = utcnow()
                session.add(solution)
                session.commit()

    def _inspect(
        self, attempt: Attempt, candidate_id: int | None, requested: str | None, picture: Image.Image | None = None
    ) -> None:
        """Hand a new candidate to the check threads (off the critical path); note it for auto-approve.
        `requested` is the size asked for, or "checked" for a cached candidate checked already; `picture`,
        its pixels as decoded already (the checks then need not read and decode the file again)."""
        if candidate_id is None:
            return
        if self.plan.options.auto_approve:
            with self._publish_lock:
                self._made.setdefault(attempt.solution_id, []).append(candidate_id)
        if requested != "checked" and self.settings.enabled_checks:
            self.inspector.submit(candidate_id, requested, picture)

    def settle(self, solution_id: str) -> str | None:
        """After a solution's last attempt of the run: with auto-approve, wait for its new candidates'
        checks and publish the best one no blocking flag holds back (`inspections.pick`); the others
        are closed as not chosen. With every candidate flagged, all wait in Review for a person.
        Returns the imageUrl published, if any."""
        with self._publish_lock:
            made = self._made.pop(solution_id, [])
        if not made:
            return None
        from .deliveries import deliver_waiting
        from .review import ReviewError, approve, reject_unchosen  # loaded only when a batch auto-approves

        self.inspector.wait(made)
        actor = self.plan.options.actor
        with session_scope(self.engine, write=True) as session:
            winner = pick(session, made, checked=bool(self.settings.enabled_checks))
            if winner is None:
                return None
            try:
                publication = approve(session=session, settings=self.settings, candidate_id=winner, actor=actor)
            except ReviewError as exc:  # e.g. its file was cleaned up meanwhile: a person decides
                log.warning(redact(f"Auto-approve left {solution_id} for review: {exc}", *self._secrets))
                return None
            for other in made:
                if other != winner:  # nobody will review the ones that lost
                    reject_unchosen(session=session, candidate_id=other, reason=NOT_CHOSEN, actor=actor)
            session.commit()
        self._urls[winner] = publication.image_url
        deliver_waiting(self.engine, self.settings)  # the marketplace row shows it now, or the outbox keeps it
        return publication.image_url


# What a finished call knows better than anyone: written whole, even over a settle that closed the
# row meanwhile (it could not tell a slow call from a dead one).
_OUTCOME = ("status", "error_kind", "error_message", "cost_usd", "cost_source", "finished_at", "duration_ms")


def _write_outcome(session: Session, attempt: Attempt) -> None:
    session.add(attempt)
    if attempt.id is not None:
        for name in _OUTCOME:
            flag_modified(attempt, name)


def _mark_pending(session: Session, solution_id: str) -> None:
    solution = session.get(Solution, solution_id)
    if solution is not None:
        solution.image_status = ImageStatus.pending
        solution.updated_at = utcnow()
        session.add(solution)
