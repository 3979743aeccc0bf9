"""Bulk import and export of the catalogue: records into the database in short chunks, solutions out as records.

An import checks every record first (`records.check_record`), then writes the good ones in chunks
of `CHUNK_SIZE`, each in its own short write transaction, so another writer (a `generate`, an
approval) waits at most one chunk. A record with an `id` is that solution: updated in place, or
created with that id, never merged into another by title; a record without one is matched by
title. Should the database still refuse one row, its chunk is written again one savepoint per
record, so one bad row costs only itself (on PostgreSQL it would otherwise abort the transaction).
Imports never touch the marketplace link (`origin`, `marketplace_url`, `marketplace_synced_at`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic_core import PydanticUndefined
from sqlalchemy import func, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, col, select

from .auth import Actor, audit, require
from .catalogue import apply_record, status_for_url
from .db import session_scope
from .models import Solution, utcnow
from .records import check_file_record, check_record, marketplace_record
from .zod import printable

CHUNK_SIZE = 500
Progress = Callable[[int, int], None]  # (records written so far, records to write)


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "updated": self.updated, "errors": self.errors}


class _Item(NamedTuple):
    """A record that passed its rules: its values in our column names."""

    values: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.values.get("title", ""))[:100]


def check_records(records: list[Any]) -> tuple[list[_Item], list[dict[str, str]]]:
    """The records that pass their rules, and one `{"title", "error"}` for each that does not."""
    items, errors = [], []
    for position, raw in enumerate(records):
        checked = check_record(raw)
        if checked.issues:
            errors.append({"title": _title_of(raw, position), "error": "; ".join(checked.problems())})
        else:
            items.append(_Item(checked.values))
    return items, errors


def _title_of(raw: Any, position: int) -> str:
    """The title to name a refused record by, printable and storable (lone surrogates and NULs escaped)."""
    title = raw.get("title") if isinstance(raw, dict) else None
    if not isinstance(title, str) or not title:
        return f"(record {position + 1})"
    return printable(title[:100])


def import_records(*, session: Session, records: list[Any], actor: Actor) -> ImportReport:
    """Check and upsert records in the caller's session and transaction (the caller audits and commits)."""
    require(actor, "edit_catalogue")
    items, errors = check_records(records)
    report = ImportReport(errors=errors)
    for start in range(0, len(items), CHUNK_SIZE):
        created, updated = _store(session, items[start : start + CHUNK_SIZE])
        report.imported, report.updated = report.imported + created, report.updated + updated
    return report


def import_bulk(
    engine: Engine,
    records: list[Any],
    *,
    actor: Actor,
    source: str,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ImportReport:
    """Check every record, then write the good ones a chunk per short transaction; audited once per file."""
    require(actor, "edit_catalogue")
    items, errors = check_records(records)
    report = ImportReport(errors=errors)
    for start in range(0, len(items), chunk_size):
        began = time.monotonic()
        _write_chunk(engine, items[start : start + chunk_size], report)
        held = time.monotonic() - began
        if progress is not None:
            progress(min(start + chunk_size, len(items)), len(items))
        if start + chunk_size < len(items):
            _let_others_write(engine, held=held)
    _audit(engine, actor, source, report)
    return report


def _audit(engine: Engine, actor: Actor, source: str, report: ImportReport) -> None:
    """One event per file, with the first errors (a file of 10,000 bad records must not make a huge row)."""
    detail = {"imported": report.imported, "updated": report.updated, "refused": len(report.errors)}
    with session_scope(engine, write=True) as session:
        audit(session, actor, "catalogue.import", source, **detail, errors=report.errors[:20])
        session.commit()


def _let_others_write(engine: Engine, *, held: float) -> None:
    """Pause between chunks on SQLite, as long as the last one held the write lock (at most 0.1 s).

    SQLite keeps no queue for its write lock: a writer waiting in its busy handler retries every
    100 ms or so and would miss the instant between two chunks, waiting out the whole import. With
    the lock free half the time it gets in within a retry or two. PostgreSQL locks rows: no pause.
    """
    if engine.dialect.name == "sqlite":
        time.sleep(min(held, 0.1))


def _write_chunk(engine: Engine, items: list[_Item], report: ImportReport) -> None:
    try:
        with session_scope(engine, write=True) as session:
            created, updated = _store(session, items)
            session.commit()
    except DBAPIError as exc:
        if isinstance(exc, OperationalError):  # the database itself is in trouble, not one row
            raise
        created, updated = _store_one_by_one(engine, items, report)
    report.imported, report.updated = report.imported + created, report.updated + updated


def _store_one_by_one(engine: Engine, items: list[_Item], report: ImportReport) -> tuple[int, int]:
    """The chunk again, a savepoint per record: a row the database refuses is reported, the rest stored."""
    created = updated = 0
    with session_scope(engine, write=True) as session:
        for item in items:
            try:
                with session.begin_nested():
                    one_created, one_updated = _store(session, [item])
            except DBAPIError as exc:
                if isinstance(exc, OperationalError):
                    raise
                reason = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else type(exc).__name__
                report.errors.append({"title": item.title, "error": f"record: the database refused it ({reason})"})
                continue
            created, updated = created + one_created, updated + one_updated
        session.commit()
    return created, updated


Target = Solution | dict[str, Any]  # a solution in the database, or the row of one this chunk creates


def _field(target: Target, name: str) -> Any:
    return target[name] if isinstance(target, dict) else getattr(target, name)


class _Known:
    """The solutions a chunk's records mean, found with two queries, kept current as the chunk is applied."""

    def __init__(self, session: Session, items: list[_Item]) -> None:
        ids = {item.values["id"] for item in items if "id" in item.values}
        titles = {item.values["title"].lower() for item in items if "id" not in item.values}
        found = session.exec(select(Solution).where(col(Solution.id).in_(ids))).all() if ids else []
        self.by_id: dict[str, Target] = {s.id: s for s in found}
        self.by_title: dict[str, Target] = {}
        if titles:
            query = select(Solution).where(func.lower(Solution.title).in_(titles))
            for solution in session.exec(query.order_by(Solution.created_at, Solution.id)):
                self.by_title.setdefault(solution.title.lower(), solution)

    def find(self, values: dict[str, Any]) -> Target | None:
        if "id" in values:
            return self.by_id.get(values["id"])
        return self.by_title.get(values["title"].lower())

    def remember(self, target: Target, old_title: str | None) -> None:
        self.by_id[_field(target, "id")] = target
        if old_title is not None and self.by_title.get(old_title.lower()) is target:
            del self.by_title[old_title.lower()]
        self.by_title.setdefault(_field(target, "title").lower(), target)


def _store(session: Session, items: list[_Item]) -> tuple[int, int]:
    """Create or update the solution of each item; returns (created, updated). Flushed, not committed.

    New solutions go in as one multi-row INSERT of plain rows: building 10,000 models would take
    seconds, all of them inside the write transaction.
    """
    known = _Known(session, items)
    new_rows: list[dict[str, Any]] = []
    with session.no_autoflush:
        for item in items:
            target = known.find(item.values)
            old_title = None if target is None else _field(target, "title")
            if target is None:
                target = _row_defaults()
                new_rows.append(target)
            if isinstance(target, dict):
                _apply_to_row(target, item.values)
            else:
                apply_record(target, item.values, session=session)
            known.remember(target, old_title)
    if new_rows:
        session.execute(insert(Solution), new_rows)
    session.flush()
    return len(new_rows), len(items) - len(new_rows)


def _row_defaults() -> dict[str, Any]:
    """Every column of a new solution with its default (the model's factories take no arguments)."""
    row = {}
    for name, info in Solution.model_fields.items():
        if info.default_factory is not None:
            row[name] = info.default_factory()  # type: ignore[call-arg]
        elif info.default is not PydanticUndefined:
            row[name] = info.default
    return row


def _apply_to_row(row: dict[str, Any], values: dict[str, Any]) -> None:
    """`catalogue.apply_record` for a solution not in the database yet (no publication can exist)."""
    row.update((column, value) for column, value in values.items() if column != "image_url")
    image_url = values.get("image_url")
    if image_url and image_url != row["image_url"]:
        row["image_url"], row["image_status"] = image_url, status_for_url(image_url)
    row["updated_at"] = utcnow()


# -- export -----------------------------------------------------------------------------------------
@dataclass
class Export:
    records: list[dict[str, Any]]  # each one the marketplace's importer accepts
    refused: list[dict[str, str]]  # {"id", "title", "error"}: what it would refuse, and why


def export_records(*, session: Session) -> Export:
    """Every solution as the marketplace's importer takes it, each checked by its rules before it is written."""
    export = Export([], [])
    for solution in session.exec(select(Solution).order_by(Solution.created_at, Solution.id)):
        record = marketplace_record(solution)
        checked = check_file_record(record)
        if checked.issues:
            export.refused.append({"id": solution.id, "title": solution.title, "error": "; ".join(checked.problems())})
        else:
            export.records.append(record)
    return export
