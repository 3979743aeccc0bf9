"""The money of one call: reserved before it is made, grown for each retry, settled from its reply.

The budget's rules (caps, the lock, what is committed) are `budget`'s; this is one attempt's
passage through them, so every provider's calls are paid for the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses

from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import budget, calls
from .config import ConfigError, Settings, check_size
from .db import session_scope
from .models import Attempt, utcnow
from .providers.base import OUTPUT_TOKENS_1024, ImageRequest, ImageResult, Provider, ProviderError


class Reservation:
    def __init__(self, engine: Engine, settings: Settings, provider: Provider, attempt: Attempt):
        self.engine, self.settings, self.provider, self.attempt = engine, settings, provider, attempt
        self.per_call = 0.0

    def open(self, request: ImageRequest) -> bool:
        """Store the attempt as running with its estimate reserved; False (stored as over budget) when
        the budgets cannot cover it. A True leaves the call marked in flight until `calls.ended`."""
        attempt = self.attempt
        with session_scope(self.engine, write=True) as session:
            estimate = budget.estimate_call(session=session, provider=self.provider, request=request)
            attempt.started_at = utcnow()
            attempt.deadline_at = attempt.started_at + budget.longest_call(self.settings)
            ok = budget.open_attempt(session=session, settings=self.settings, attempt=attempt, estimate=estimate)
            if ok:  # in flight before anyone can see the row running, so no settle closes a live call
                calls.started(attempt.id)
            try:
                session.commit()
                session.refresh(attempt)
            except BaseException:
                calls.ended(attempt.id)
                raise
        self.per_call = attempt.reserved_usd
        return ok

    def retry(self, _failure: ProviderError) -> bool:
        """A retry is another call that may be billed: reserve for it too, or do not make it."""
        with session_scope(self.engine, write=True) as session:
            ok = budget.extend_reservation(
                session=session, settings=self.settings, attempt=self.attempt, extra=self.per_call
            )
            session.commit()
        return ok

    def settle(self, request: ImageRequest, reply: ImageResult) -> None:
        """Cost as the service reported it, else from the returned usage, else the per-image price of
        what was made; plus the estimate of earlier tries that may have been billed unanswered."""
        attempt = self.attempt
        attempt.request_id, attempt.provider_ms, attempt.retries = reply.request_id, reply.provider_ms, reply.retries
        attempt.cost_usd, attempt.cost_source = self._cost(request, reply)
        self.settle_unanswered(reply.unanswered)

    def settle_unanswered(self, unanswered: int) -> None:
        """Tries that timed out, or answered with usage that makes no sense, may have been billed with no
        usage to trust: charge their estimate."""
        attempt = self.attempt
        if unanswered and self.provider.paid:
            attempt.cost_usd = round(attempt.cost_usd + unanswered * self.per_call, 6)
            attempt.cost_source = "estimate" if attempt.cost_source in (None, "none") else attempt.cost_source

    def _cost(self, request: ImageRequest, reply: ImageResult) -> tuple[float, str]:
        attempt, usage = self.attempt, reply.usage
        if not self.provider.paid:
            return 0.0, "none"
        if usage is not None:
            attempt.input_text_tokens, attempt.input_image_tokens = usage.input_text_tokens, usage.input_image_tokens
            attempt.output_image_tokens, attempt.output_text_tokens = (
                usage.output_image_tokens,
                usage.output_text_tokens,
            )
        if reply.cost_usd is not None:  # the service's own figure (FLUX reports credits)
            return round(max(0.0, reply.cost_usd), 6), "reported"
        with Session(self.engine) as session:
            price, own = budget.price_for(session=session, model=attempt.model)
        if usage is None:  # the per-image price of what was made, where the reply says so
            usage = self.provider.expected_usage(dataclasses.replace(request, **_made(reply, request)))
            return budget.cost_from_usage(price, usage), "per_image" if own else "assumed_price"
        return budget.cost_from_usage(price, usage), "usage" if own else "assumed_price"


def _made(reply: ImageResult, request: ImageRequest) -> dict[str, str]:
    """Size and quality of the image the service made: its word for what was asked as `auto`."""
    size, quality = request.size, request.quality
    if size == "auto" and reply.size:
        with contextlib.suppress(ConfigError):  # not a size we can price: keep the dearest `auto` may be
            size = check_size(reply.size)
    if quality == "auto" and reply.quality in OUTPUT_TOKENS_1024:
        quality = reply.quality
    return {"size": size, "quality": quality}
