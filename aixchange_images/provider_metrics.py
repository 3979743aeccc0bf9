"""Metrics per provider: what each was asked, how often it succeeded, how long a paid call typically
took, what it cost and what each approved image cost. Every sum runs in SQL over covering indexes;
pandas only sees a row per provider."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, cast, func
from sqlmodel import Session, select

from .attribution import by_provider
from .metrics import APPROVED, PAID_SUCCESS, Scope, frame, percentile, scoped_candidates
from .models import Attempt, AttemptStatus
from .wording import money, seconds

if TYPE_CHECKING:
    import pandas as pd

PROVIDER_COLUMNS = [
    "provider",
    "attempts",
    "succeeded",
    "success_rate",
    "p50_ms",
    "spend_usd",
    "approved",
    "cost_per_approved_usd",
]


def provider_totals(*, session: Session, scope: Scope) -> pd.DataFrame:
    """Per provider in the scope: attempts, success rate, p50 time of paid calls, spend, approved
    images and cost per approved image; dearest first."""
    calls = session.exec(
        select(
            Attempt.provider,
            Attempt.model,
            func.count(),
            func.coalesce(func.sum(cast(Attempt.status == AttemptStatus.succeeded, Integer)), 0),
            func.coalesce(func.sum(Attempt.cost_usd), 0.0),
            func.coalesce(func.sum(cast(PAID_SUCCESS, Integer)), 0),
        )
        .where(*scope.clauses())
        .group_by(Attempt.provider, Attempt.model)
    ).all()
    sums: dict[str, list] = {}
    owners: dict[str, set[str]] = {}
    for provider, model, *figures in calls:
        owners.setdefault(model, set()).add(provider)
        total = sums.setdefault(provider, [0, 0, 0.0, 0])
        for i, value in enumerate(figures):
            total[i] += value or 0

    def narrow(query: Any) -> Any:
        return scoped_candidates(query, scope, session)

    approved: dict[str, int] = {}
    for provider, _, n in by_provider(session, owners, narrow, sums=(func.sum(APPROVED),)):
        approved[provider] = approved.get(provider, 0) + int(n or 0)
    rows = []
    for provider, (n, ok, spend, timed) in sorted(sums.items(), key=lambda kv: (-kv[1][2], -kv[1][0], kv[0])):
        made = approved.get(provider, 0)
        p50 = percentile(session, replace(scope, provider=provider), int(timed), 0.50)
        rows.append(
            (
                provider,
                n,
                ok,
                ok / n if n else None,
                p50,
                round(spend, 6),
                made,
                round(spend / made, 6) if made else None,
            )
        )
    return frame(rows, PROVIDER_COLUMNS)


def provider_table(totals: pd.DataFrame) -> pd.DataFrame:
    """`provider_totals` as people read it: money as money, rates as percentages, time in seconds."""
    import pandas as pd

    return pd.DataFrame(
        {
            "Provider": totals["provider"],
            "Attempts": totals["attempts"],
            "Success rate": totals["success_rate"].map(lambda rate: "—" if pd.isna(rate) else f"{rate:.0%}"),
            "Typical time": totals["p50_ms"].map(seconds),
            "Spent": totals["spend_usd"].map(money),
            "Approved images": totals["approved"],
            "Per approved image": totals["cost_per_approved_usd"].map(money),
        }
    )
