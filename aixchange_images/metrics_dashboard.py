"""The Metrics dashboard's data: metrics' and spending's queries for one scope, run side by side, each
on its own connection (the database works while Python waits), for the parts a page shows."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import metrics, provider_metrics, spending
from .metrics import Scope

PARTS = (
    "head",
    "daily",
    "times",
    "failures",
    "by_model",
    "by_template",
    "storage",
    "largest",
    "totals",
    "providers",
    "month",
    "flags_by_model",
    "flags_by_template",
)
_FROM_BREAKDOWN: dict[str, Callable[[list[tuple]], Any]] = {
    "daily": metrics.daily_of,
    "by_model": lambda breakdown: metrics.spend_of(breakdown, "model"),
    "by_template": lambda breakdown: metrics.spend_of(breakdown, "template"),
}


def gather(
    engine: Engine, scope: Scope, *, parts: Iterable[str] | None = None, workers: int | None = None
) -> dict[str, Any]:
    """Everything the Metrics page draws, or only the `parts` named (a page shows a few at a time): the
    independent queries run side by side, each on its own connection (the database works while Python waits),
    and the daily figures and spend by model and by template come from one pass (`day_breakdown`)."""
    wanted = list(dict.fromkeys(parts if parts is not None else PARTS))
    unknown = set(wanted) - set(PARTS)
    if unknown:
        raise ValueError(f"No dashboard part named {', '.join(sorted(unknown))}; the parts: {', '.join(PARTS)}.")
    needed = {name for name in wanted if name not in _FROM_BREAKDOWN}
    if set(wanted) & _FROM_BREAKDOWN.keys():
        needed.add("breakdown")
    found = _side_by_side(engine, {name: query for name, query in _queries(scope).items() if name in needed}, workers)
    return {
        name: _FROM_BREAKDOWN[name](found["breakdown"]) if name in _FROM_BREAKDOWN else found[name] for name in wanted
    }


def _side_by_side(engine: Engine, queries: dict[str, Callable[[Session], Any]], workers: int | None) -> dict[str, Any]:
    def run(query: Callable[[Session], Any]) -> Any:
        with Session(engine) as session:
            return query(session)

    if len(queries) == 1:  # no pool for a single query
        return {name: run(query) for name, query in queries.items()}
    workers = workers or max(2, min(4, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metrics") as pool:
        futures = {name: pool.submit(run, query) for name, query in queries.items()}
        return {name: future.result() for name, future in futures.items()}


def _queries(scope: Scope) -> dict[str, Callable[[Session], Any]]:
    return {
        "head": lambda s: metrics.headline(session=s, scope=scope),
        "breakdown": lambda s: metrics.day_breakdown(session=s, scope=scope),
        "times": lambda s: metrics.daily_percentiles(session=s, scope=scope),
        "failures": lambda s: metrics.failures_by_kind(session=s, scope=scope),
        "storage": lambda s: metrics.storage_over_time(session=s, since=scope.since),
        "largest": lambda s: metrics.largest_consumers(session=s),
        "totals": lambda s: spending.totals(session=s, scope=scope),
        "providers": lambda s: provider_metrics.provider_totals(session=s, scope=scope),
        "month": lambda s: spending.month_outlook(session=s),
        "flags_by_model": lambda s: metrics.flag_rates(session=s, scope=scope, by="model"),
        "flags_by_template": lambda s: metrics.flag_rates(session=s, scope=scope, by="template"),
    }
