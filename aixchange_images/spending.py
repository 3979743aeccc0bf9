"""What the money bought: totals by model and by template version, and this month against the budget.

Every sum runs in SQL (GROUP BY on covering indexes); pandas only sees a row per model, version or day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Integer, case, cast, func
from sqlmodel import Session, select

from .budget import period_starts
from .metrics import APPROVED, Scope, frame, scoped_candidates
from .models import Attempt, AttemptStatus, Candidate, utcnow
from .wording import money

if TYPE_CHECKING:
    import pandas as pd

HEADERS = {"model": "Model", "template": "Template version"}
TOTAL_COLUMNS = ["attempts", "succeeded", "spend_usd", "approved"]
# What the budget counts: a finished call's cost, a running call's reservation.
COMMITTED = func.coalesce(
    func.sum(case((Attempt.status == AttemptStatus.running, Attempt.reserved_usd), else_=Attempt.cost_usd)), 0.0
)


def totals(*, session: Session, scope: Scope) -> pd.DataFrame:
    """Per model and template version in the scope: attempts, successes, spend and approved images
    (one GROUP BY over attempts, one over candidates; `totals_table` adds them up either way)."""
    # Grouped by `key || ''`: else SQLite walks a key's own index over every row in the table and
    # looks each one up, instead of the period's range of the covering time index (3-4x slower).
    model, template = Attempt.model + "", Attempt.template_ref + ""
    calls = session.exec(
        select(
            model,
            template,
            func.count(),
            func.sum(cast(Attempt.status == AttemptStatus.succeeded, Integer)),
            func.sum(Attempt.cost_usd),
        )
        .where(*scope.clauses())
        .group_by(model, template)
    ).all()
    made_by = (Candidate.model + "", Candidate.template_ref + "")
    query = scoped_candidates(select(*made_by, func.sum(APPROVED)), scope, session).group_by(*made_by)
    approvals = {(m, t): int(n or 0) for m, t, n in session.exec(query).all()}
    rows = [(m, t, int(n), int(ok or 0), float(spend or 0), approvals.get((m, t), 0)) for m, t, n, ok, spend in calls]
    return frame(rows, ["model", "template", *TOTAL_COLUMNS])


def totals_table(totals_frame: pd.DataFrame, by: str = "model") -> pd.DataFrame:
    """`totals` as people read it: dearest first, money as money, rates as percentages."""
    import pandas as pd

    summed = totals_frame.groupby(by, as_index=False)[TOTAL_COLUMNS].sum()
    ordered = summed.sort_values(["spend_usd", "attempts"], ascending=False)
    rows = [
        {
            HEADERS[by]: row[by],
            "Attempts": int(row["attempts"]),
            "Success rate": f"{row['succeeded'] / row['attempts']:.0%}" if row["attempts"] else "—",
            "Spent": money(row["spend_usd"]),
            "Approved images": int(row["approved"]),
            "Per approved image": money(row["spend_usd"] / row["approved"]) if row["approved"] else "—",
        }
        for row in ordered.to_dict("records")
    ]
    columns = [HEADERS[by], "Attempts", "Success rate", "Spent", "Approved images", "Per approved image"]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class MonthOutlook:
    """This UTC month's spend so far (every call, whatever the filters: the budget covers them all)."""

    month_start: date
    today: date
    daily: pd.DataFrame  # day, spend_usd: what each day of the month committed so far

    @property
    def spent(self) -> float:
        return float(self.daily["spend_usd"].sum()) if not self.daily.empty else 0.0

    @property
    def days_elapsed(self) -> int:
        """Days of the month so far, today counted as a whole day."""
        return self.today.day

    @property
    def days_in_month(self) -> int:
        return calendar.monthrange(self.today.year, self.today.month)[1]

    @property
    def forecast(self) -> float:
        """Spend at month end if every day costs what the days so far cost on average."""
        return self.spent / self.days_elapsed * self.days_in_month

    def method(self) -> str:
        """How the forecast is computed, with this month's numbers."""
        return (
            f"Forecast to month end: {money(self.spent)} spent so far ÷ {self.days_elapsed} day(s) elapsed "
            f"(today counts as a whole day) × {self.days_in_month} days in {self.today:%B} = {money(self.forecast)}."
        )

    def against(self, cap: float | None) -> str:
        """One sentence on where the month stands against the monthly budget."""
        if cap is None:
            return f"{money(self.spent)} spent this month; no monthly budget is set."
        if cap == 0:
            return f"{money(self.spent)} spent this month against a $0 budget: paid calls are refused."
        verdict = "over" if self.forecast > cap else "within"
        return (
            f"{money(self.spent)} of the {money(cap)} monthly budget spent ({self.spent / cap:.0%}); "
            f"on this pace the month ends at {money(self.forecast)}, {verdict} budget."
        )


def month_outlook(*, session: Session, now: datetime | None = None) -> MonthOutlook:
    """This month's spend per day, as the budget counts it (finished calls' cost, running ones' reservation)."""
    now = now or utcnow()
    _, month = period_starts(now)
    day = func.date(Attempt.started_at)
    rows = session.exec(
        select(day.label("day"), COMMITTED.label("spend_usd"))
        .where(Attempt.started_at >= month)
        .group_by(day)
        .order_by(day)
    ).all()
    return MonthOutlook(month_start=month.date(), today=now.date(), daily=frame(rows, ["day", "spend_usd"]))
