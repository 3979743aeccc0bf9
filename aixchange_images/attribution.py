"""Which provider made a candidate. A candidate records its model, not its provider, and joining every
candidate to its attempt costs a lookup per row; a model that one provider alone has served says
enough, so only the candidates of a model several providers served ask their attempts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from .models import Attempt, Candidate


def model_owners(*, session: Session) -> dict[str, set[str]]:
    """The providers that have served each model (one pass over a covering index: `model || ''`
    keeps SQLite off the model index, which lacks the provider)."""
    model = Attempt.model + ""
    owners: dict[str, set[str]] = {}
    for name, provider in session.exec(select(model, Attempt.provider).group_by(model, Attempt.provider)).all():
        owners.setdefault(name, set()).add(provider)
    return owners


def made_by(*, session: Session, provider: str) -> Any:
    """A clause on Candidate: the candidates `provider` made."""
    owners = model_owners(session=session)
    sole = sorted(m for m, found in owners.items() if found == {provider})
    shared = sorted(m for m, found in owners.items() if provider in found and len(found) > 1)
    if not shared:
        return col(Candidate.model).in_(sole)
    mine = aliased(Attempt)  # its own name: never correlated with an Attempt the outer query joins
    own_attempt = select(mine.id).where(mine.id == Candidate.attempt_id, mine.provider == provider).exists()
    return or_(col(Candidate.model).in_(sole), and_(col(Candidate.model).in_(shared), own_attempt))


def by_provider(
    session: Session, owners: dict[str, set[str]], narrow: Callable[[Any], Any], groups: tuple = (), sums: tuple = ()
) -> list[tuple]:
    """Rows (provider, model, *groups, *sums) of the candidates `narrow` keeps, grouped by provider,
    model and `groups`. `owners` (model -> providers, e.g. from the attempts of the same period)
    gives the provider of a model one provider served; the other models' candidates ask their attempts."""
    query = narrow(select(Candidate.model, *groups, *sums)).group_by(Candidate.model, *groups)
    rows, shared = [], set()
    for model, *rest in session.exec(query).all():
        found = owners.get(model, set())
        if len(found) == 1:
            rows.append((next(iter(found)), model, *rest))
        else:
            shared.add(model)
    if shared:
        joined = narrow(select(Attempt.provider, Candidate.model, *groups, *sums))
        joined = joined.join(Attempt, Attempt.id == Candidate.attempt_id).where(col(Candidate.model).in_(shared))
        rows.extend(tuple(row) for row in session.exec(joined.group_by(Attempt.provider, Candidate.model, *groups)))
    return rows
