"""The yield table: which template versions, and which providers and models, make images reviewers
approve, and what each approved image cost.

Every sum runs in SQL (GROUP BY on covering indexes); pandas only sees a row per version or pair.
Trials' candidates count here once reviewed, like any other, and so do their automatic checks: the
share of checked candidates any check flagged, and the share each check flagged (garbled lettering...).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, cast, func
from sqlmodel import Session, select

from .attribution import by_provider
from .metrics import (
    APPROVED_STATES,
    CHECKED_SUMS,
    FINISHED,
    FLAG_COLUMNS,
    NO_FLAGS,
    Scope,
    checked_in,
    flag_figures,
    flag_readable,
    flags_by,
    frame,
    percent,
    raised_in,
)
from .models import Attempt, AttemptStatus, Candidate, CandidateCheck, CandidateState
from .templates import all_labels, version_refs
from .wording import money

if TYPE_CHECKING:
    import pandas as pd

FIGURE_COLUMNS = [
    "attempts",
    "succeeded",
    "success_rate",
    "spend_usd",
    "candidates",
    "pending",
    "reviewed",
    "approved",
    "rolled_back",
    "approval_rate",
    "cost_per_approved_usd",
    "rejections",
]
YIELD_COLUMNS = ["template", "labels", *FIGURE_COLUMNS, *FLAG_COLUMNS]
PAIR_COLUMNS = ["provider", "model", *FIGURE_COLUMNS[:-1], *FLAG_COLUMNS]  # no rejection reasons per pair


BY_TEMPLATE, BY_PAIR = "template", "pair"  # one row per template version, or per provider and model


def yield_table(
    *, session: Session, since: datetime | None = None, until: datetime | None = None, by: str = BY_TEMPLATE
) -> pd.DataFrame:
    """Per template version (or per provider and model, `by=BY_PAIR`): attempts, success rate, approval
    rate of its candidates, rejection reasons and cost per approved image. Approved counts candidates a
    reviewer approved (live now, superseded later, or rolled back); reviewed adds every rejection,
    `not_chosen` included. The flag columns (metrics.FLAG_COLUMNS) count the candidates checked and the
    shares the checks flagged."""
    attempts = _attempt_figures(session, since, until, by)
    if by == BY_PAIR:
        reviews = _pair_candidate_figures(session, since, until, set(attempts))
        flags = _pair_flag_figures(session, Scope(since=since, until=until), set(attempts))
        keys = sorted(set(attempts) | set(reviews) | set(flags))
        rows = [
            {"provider": p, "model": m, **_yield_row(attempts.get((p, m)), reviews.get((p, m)), flags.get((p, m)))}
            for p, m in keys
        ]
        return frame(rows, PAIR_COLUMNS)
    reviews = _candidate_figures(session, since, until)
    flags = flags_by(session=session, scope=Scope(since=since, until=until), by="template")
    marks = all_labels(session=session)
    refs = list(dict.fromkeys([*version_refs(session=session), *sorted(set(attempts) | set(reviews) | set(flags))]))
    rows = [
        {
            "template": ref,
            "labels": ", ".join(marks.get(ref, [])),
            **_yield_row(attempts.get(ref), reviews.get(ref), flags.get(ref)),
        }
        for ref in refs
    ]
    return frame(rows, YIELD_COLUMNS)


def _yield_row(attempts: tuple | None, states: dict | None, flags: tuple | None) -> dict[str, Any]:
    """One row's figures from its attempts (count, successes, spend), its candidates' states and
    their checks' figures (metrics.FLAG_COLUMNS, None: none checked)."""
    tried, ok, spend = attempts or (0, 0, 0.0)
    states = states or {}
    rejections = {reason: n for (state, reason), n in states.items() if state == CandidateState.rejected}
    approved = sum(n for (state, _), n in states.items() if state in APPROVED_STATES)
    reviewed = approved + sum(rejections.values())
    return {
        "attempts": tried,
        "succeeded": ok,
        "success_rate": ok / tried if tried else None,
        "spend_usd": round(spend, 6),
        "candidates": sum(states.values()),
        "pending": states.get((CandidateState.pending, None), 0),
        "reviewed": reviewed,
        "approved": approved,
        "rolled_back": sum(n for (state, _), n in states.items() if state == CandidateState.rolled_back),
        "approval_rate": approved / reviewed if reviewed else None,
        "cost_per_approved_usd": round(spend / approved, 6) if approved else None,
        "rejections": dict(sorted(rejections.items(), key=lambda kv: -kv[1])),
        **dict(zip(FLAG_COLUMNS, flags or NO_FLAGS, strict=True)),
    }


def yield_readable(table: pd.DataFrame, reasons: dict[str, str]) -> pd.DataFrame:
    """The yield table as people read it: plain column names, money as money, rates as percentages,
    rejection reasons in words (`reasons` maps a reason key to its words), the checks' shares last."""
    import pandas as pd

    if "provider" in table.columns:
        first = {"Provider": table["provider"], "Model": table["model"]}
    else:
        first = {"Template version": table["template"], "Labels": table["labels"]}
    readable = pd.DataFrame(
        {
            **first,
            "Attempts": table["attempts"],
            "Success rate": table["success_rate"].map(percent),
            "Approval rate": table["approval_rate"].map(percent),
            "Per approved image": table["cost_per_approved_usd"].map(money),
            "Reviewed": table["reviewed"],
            "Approved": table["approved"],
            "Awaiting review": table["pending"],
            "Spent": table["spend_usd"].map(money),
        }
    )
    if "rejections" in table.columns:
        readable["Rejection reasons"] = table["rejections"].map(
            lambda found: ", ".join(f"{reasons.get(k, k)} {n}" for k, n in found.items())
        )
    return readable.assign(**flag_readable(table))


def _attempt_figures(session: Session, since: datetime | None, until: datetime | None, by: str) -> dict[Any, tuple]:
    keys = (Attempt.provider, Attempt.model) if by == BY_PAIR else (Attempt.template_ref,)
    # Per pair, `status || ''` lets SQLite read the time index, the one that covers provider, model and cost.
    status = Attempt.status + "" if by == BY_PAIR else Attempt.status
    query = select(
        *keys,
        func.count(),
        func.coalesce(func.sum(cast(Attempt.status == AttemptStatus.succeeded, Integer)), 0),
        func.coalesce(func.sum(Attempt.cost_usd), 0.0),
    ).where(status.in_(FINISHED))
    figures = {}
    for row in session.exec(_made_between(query, Attempt.started_at, since, until).group_by(*keys)).all():
        *key, n, ok, spend = row
        figures[tuple(key) if by == BY_PAIR else key[0]] = (int(n), int(ok), float(spend))
    return figures


def _made_between(query: Any, column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


def _candidate_figures(session: Session, since: datetime | None, until: datetime | None) -> dict[str, dict]:
    """Generated candidates per template version, state and rejection reason."""
    query = select(Candidate.template_ref, Candidate.state, Candidate.reject_reason, func.count()).where(
        Candidate.source == "generated"
    )
    query = _made_between(query, Candidate.created_at, since, until)
    query = query.group_by(Candidate.template_ref, Candidate.state, Candidate.reject_reason)
    figures: dict[str, dict] = {}
    for ref, state, reason, n in session.exec(query).all():
        _count(figures.setdefault(ref, {}), (state, reason if state == CandidateState.rejected else None), n)
    return figures


def _pair_candidate_figures(
    session: Session, since: datetime | None, until: datetime | None, served: set[tuple[str, str]]
) -> dict[tuple, dict]:
    """Generated candidates per provider, model and state (no reasons: the pair view leaves them out);
    `served` (the period's provider and model pairs) tells most candidates' provider by their model."""
    owners = _owners(served)

    def narrow(query: Any) -> Any:
        return _made_between(query.where(Candidate.source == "generated"), Candidate.created_at, since, until)

    figures: dict[tuple, dict] = {}
    for provider, model, state, n in by_provider(session, owners, narrow, (Candidate.state,), (func.count(),)):
        _count(figures.setdefault((provider, model), {}), (state, None), n)
    return figures


def _pair_flag_figures(session: Session, scope: Scope, served: set[tuple[str, str]]) -> dict[tuple, tuple]:
    """The checks' figures (metrics.FLAG_COLUMNS) per provider and model, told apart as
    `_pair_candidate_figures` does."""
    owners = _owners(served)
    checked = by_provider(session, owners, lambda query: checked_in(query, scope, session), (), CHECKED_SUMS)
    raised = by_provider(
        session, owners, lambda query: raised_in(query, scope, session), (CandidateCheck.name,), (func.count(),)
    )
    return flag_figures(
        [((provider, model), *rest) for provider, model, *rest in checked],
        [((provider, model), name, n) for provider, model, name, n in raised],
    )


def _owners(served: set[tuple[str, str]]) -> dict[str, set[str]]:
    """Model -> the providers that served it, from (provider, model) pairs."""
    owners: dict[str, set[str]] = {}
    for provider, model in served:
        owners.setdefault(model, set()).add(provider)
    return owners


def _count(figures: dict, key: tuple, n: int) -> None:
    figures[key] = figures.get(key, 0) + int(n)
