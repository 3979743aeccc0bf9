"""Prices, cost from usage, estimates before a call, and hard budgets with reservations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from . import calls
from .config import Settings
from .db import take_lock
from .models import Attempt, AttemptStatus, Price, utcnow
from .providers.base import ImageRequest, Model, Provider, Usage
from .wording import money


def seed_prices(*, session: Session, models: list[Model]) -> bool:
    """Insert the list prices of models the table does not know yet; True when it added any."""
    known = set(session.exec(select(Price.model)).all())
    added = False
    for model in models:
        priced = model.text_input_per_m or model.image_input_per_m or model.image_output_per_m
        if priced and model.name not in known:
            known.add(model.name)
            session.add(
                Price(
                    model=model.name,
                    text_input_per_m=model.text_input_per_m,
                    image_input_per_m=model.image_input_per_m,
                    image_output_per_m=model.image_output_per_m,
                    shutdown_date=model.shutdown.isoformat() if model.shutdown else None,
                )
            )
            added = True
    return added


def price_for(*, session: Session, model: str) -> tuple[Price, bool]:
    """The model's price row and whether it is its own; unknown models are charged at the dearest."""
    price = session.get(Price, model)
    if price is not None:
        return price, True
    dearest = session.exec(select(Price).order_by(Price.image_output_per_m.desc())).first()
    if dearest is None:
        return Price(model=model, text_input_per_m=5, image_input_per_m=8, image_output_per_m=32), False
    return dearest, False


def cost_from_usage(price: Price, usage: Usage) -> float:
    """Dollars for one call. Output text tokens are charged at the image rate: never under-count."""
    dollars = (
        usage.input_text_tokens * price.text_input_per_m
        + usage.input_image_tokens * price.image_input_per_m
        + (usage.output_image_tokens + usage.output_text_tokens) * price.image_output_per_m
    ) / 1_000_000
    return max(0.0, round(dollars, 6))  # never a negative bill: it would hand money back to the budget


def estimate_call(*, session: Session, provider: Provider, request: ImageRequest) -> float:
    """What one image is expected to cost before it is asked for."""
    if not provider.paid:
        return 0.0
    price, _ = price_for(session=session, model=request.model)
    return cost_from_usage(price, provider.expected_usage(request))


@dataclass(frozen=True)
class Estimate:
    """What a batch (or a trial, the sum of its sides) is expected to take before it runs."""

    calls: int  # paid calls: a free provider's count none
    paid: bool
    expected_cache_hits: int
    cost_usd: float
    budget_left_usd: float | None  # None: no cap

    @property
    def fits_budget(self) -> bool:
        return self.budget_left_usd is None or self.cost_usd <= self.budget_left_usd + 1e-9

    def __add__(self, other: Estimate) -> Estimate:
        """Two runs against the same budget."""
        return Estimate(
            calls=self.calls + other.calls,
            paid=self.paid or other.paid,
            expected_cache_hits=self.expected_cache_hits + other.expected_cache_hits,
            cost_usd=self.cost_usd + other.cost_usd,
            budget_left_usd=self.budget_left_usd,
        )

    def as_dict(self) -> dict[str, Any]:
        """As `generate --json` reports it."""
        return {
            "calls": self.calls,
            "paid": self.paid,
            "expected_cache_hits": self.expected_cache_hits,
            "estimated_cost_usd": round(self.cost_usd, 6),
            "budget_left_usd": None if self.budget_left_usd is None else round(self.budget_left_usd, 6),
            "fits_budget": self.fits_budget,
        }


def period_starts(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Start of the current UTC day and month: the budget periods."""
    now = now or utcnow()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


_COMMITTED = case((Attempt.status == AttemptStatus.running, Attempt.reserved_usd), else_=Attempt.cost_usd)


def committed_since(*, session: Session, since: datetime) -> float:
    """Money spent or reserved by calls started since `since`."""
    total = session.exec(select(func.coalesce(func.sum(_COMMITTED), 0.0)).where(Attempt.started_at >= since)).one()
    return float(total)


@dataclass(frozen=True)
class BudgetState:
    daily_cap: float | None
    monthly_cap: float | None
    spent_today: float
    spent_month: float
    alert_share: float

    @property
    def left(self) -> float | None:
        """Dollars that may still be committed now; None when no cap is set."""
        lefts = [cap - spent for cap, spent in self._pairs() if cap is not None]
        return max(0.0, min(lefts)) if lefts else None

    @property
    def alerts(self) -> list[str]:
        """One sentence per budget at or past its alert share."""
        out = []
        for name, (cap, spent) in zip(("daily", "monthly"), self._pairs(), strict=True):
            if cap == 0:
                out.append(f"The {name} image budget is $0: every paid call is refused until it is raised.")
            elif cap is not None and spent >= cap * self.alert_share:
                out.append(f"The {name} image budget is {spent / cap:.0%} used ({money(spent)} of {money(cap)}).")
        return out

    def _pairs(self) -> list[tuple[float | None, float]]:
        return [(self.daily_cap, self.spent_today), (self.monthly_cap, self.spent_month)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "daily_cap_usd": self.daily_cap,
            "monthly_cap_usd": self.monthly_cap,
            "spent_today_usd": round(self.spent_today, 6),
            "spent_month_usd": round(self.spent_month, 6),
            "left_usd": None if self.left is None else round(self.left, 6),
            "alerts": self.alerts,
        }


def budget_state(*, session: Session, settings: Settings, now: datetime | None = None) -> BudgetState:
    day, month = period_starts(now)
    return BudgetState(
        daily_cap=settings.image_budget_daily_usd,
        monthly_cap=settings.image_budget_monthly_usd,
        spent_today=committed_since(session=session, since=day),
        spent_month=committed_since(session=session, since=month),
        alert_share=settings.image_budget_alert_share,
    )


def open_attempt(*, session: Session, settings: Settings, attempt: Attempt, estimate: float) -> bool:
    """Insert `attempt` as running with `estimate` reserved, if the budgets can cover it.

    Runs under the `budget` lock, so parallel workers and other processes see each other's
    reservations. When the budget cannot cover it the attempt is stored as failed
    (`budget_exceeded`) and False comes back. The caller commits.
    """
    if estimate > 0 and (settings.image_budget_daily_usd is not None or settings.image_budget_monthly_usd is not None):
        take_lock(session, "budget")
        left = budget_state(session=session, settings=settings).left
        if left is not None and estimate > left + 1e-9:
            attempt.status = AttemptStatus.failed
            attempt.error_kind = "budget_exceeded"
            attempt.error_message = (
                f"The image budget has {money(left, exact=True)} left and this call is estimated at "
                f"{money(estimate, exact=True)}; "
                "raise the budget in Settings or wait for the next period."
            )
            attempt.finished_at = attempt.started_at
            attempt.duration_ms = 0
            session.add(attempt)
            session.flush()
            return False
    attempt.reserved_usd = estimate
    session.add(attempt)
    session.flush()
    return True


def extend_reservation(*, session: Session, settings: Settings, attempt: Attempt, extra: float) -> bool:
    """Reserve `extra` more for a running attempt (a retry is another call), if the budgets cover it."""
    if extra <= 0:
        return True
    if settings.image_budget_daily_usd is not None or settings.image_budget_monthly_usd is not None:
        take_lock(session, "budget")
        left = budget_state(session=session, settings=settings).left
        if left is not None and extra > left + 1e-9:
            return False
    # A row a settle closed meanwhile counts by its cost: grow that too, so the budget sees the retry.
    closed = Attempt.status != AttemptStatus.running
    session.exec(
        update(Attempt)
        .where(Attempt.id == attempt.id)
        .values(
            reserved_usd=Attempt.reserved_usd + extra,
            cost_usd=case((closed, Attempt.cost_usd + extra), else_=Attempt.cost_usd),
        )
    )
    reserved = session.exec(select(Attempt.reserved_usd).where(Attempt.id == attempt.id)).one()
    set_committed_value(attempt, "reserved_usd", reserved)  # as stored: nothing left to flush
    return True


def longest_call(settings: Settings) -> timedelta:
    """How long a live call can hold a reservation: every try timing out, every wait at its longest."""
    tries = settings.image_max_retries + 1
    seconds = settings.image_timeout_seconds * tries + settings.image_max_retry_wait_seconds * (tries - 1)
    return timedelta(seconds=seconds + 60)


def settle_interrupted(*, session: Session, older_than: timedelta | None = None) -> int:
    """Close attempts whose call can no longer be live, charging their reservation (we can't know better).

    A call is over when its process is gone, when it is this process's and no worker holds it,
    or when it is past its deadline (any process, any machine; rows from before deadlines were
    recorded: running longer than `older_than`).
    """
    rows = session.exec(select(Attempt).where(Attempt.status == AttemptStatus.running)).all()
    closed = 0
    now = utcnow()
    for row in rows:
        deadline = row.deadline_at or (row.started_at + older_than if older_than is not None else None)
        stale = deadline is not None and now > deadline
        if stale or not calls.call_alive(row):
            # Only while still running: a call that finished since the read keeps its outcome.
            closed += session.exec(
                update(Attempt)
                .where(Attempt.id == row.id, Attempt.status == AttemptStatus.running)
                .values(
                    status=AttemptStatus.interrupted,
                    error_message="The process making this call stopped before it finished.",
                    cost_usd=Attempt.reserved_usd,
                    cost_source="estimate",
                    finished_at=now,
                )
            ).rowcount
    return closed
