"""Solutions: validation with the marketplace's rules, import, export, search."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from .auth import Actor, audit, require
from .config import UserError
from .models import PLACEHOLDER_URL, PUBLIC_PREFIX, Candidate, ImageStatus, Publication, Solution, utcnow

STATUSES = {"active": "Active", "pending": "Pending", "inactive": "Inactive"}
UPLOADED_SOURCE = "uploaded"  # Candidate.source of an image an admin uploaded (the author's own)
_URL = TypeAdapter(AnyHttpUrl)


class InputError(UserError, ValueError):
    """Input that cannot be used at all (exit 2); the message is one sentence."""


class SolutionRecord(BaseModel):
    """One record of AIXchange bulk-import JSON, checked with the marketplace's zod rules."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", str_strip_whitespace=True)

    id: str | None = Field(default=None, max_length=40)
    title: str = Field(min_length=3, max_length=100)
    description: str = Field(min_length=10, max_length=1000)
    category: str = Field(min_length=2, max_length=100)
    provider: str = Field(min_length=2, max_length=100)
    launch_url: str = Field(alias="launchUrl")
    source_code_url: str | None = Field(default=None, alias="sourceCodeUrl")
    tags: list[str] = Field(min_length=1, max_length=5)
    image_url: str | None = Field(default=None, alias="imageUrl")
    token_cost: int = Field(default=0, ge=0, alias="tokenCost")
    version: str = "1.0.0"
    is_published: bool = Field(default=True, alias="isPublished")
    status: str = "Active"
    rating: float | None = Field(default=None, ge=0, le=5)
    metadata: dict[str, Any] = Field(default_factory=dict)
    author_id: str | None = Field(default=None, alias="authorId")

    @field_validator("launch_url", "source_code_url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value in (None, ""):
            if info.field_name == "launch_url":  # required by the marketplace; only sourceCodeUrl may be empty
                raise ValueError("must be a full http(s) URL")
            return None
        _URL.validate_python(value)
        return value

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        status = STATUSES.get(value.strip().lower())
        if status is None:
            raise ValueError("must be Active, Pending or Inactive")
        return status

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = [t.strip() for t in value if t and t.strip()]
        if not tags:
            raise ValueError("needs at least one non-empty tag")
        return tags

    @property
    def rating_value(self) -> float:
        meta = self.metadata.get("rating") if isinstance(self.metadata, dict) else None
        value = self.rating if self.rating is not None else meta
        try:
            return min(5.0, max(0.0, float(value))) if value is not None else 0.0
        except (TypeError, ValueError):
            return 0.0


def describe_error(exc: ValidationError) -> str:
    """The first problem of a record as one sentence: `launchUrl: must be a URL`."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "record"
    message = first.get("msg", "is invalid").removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = "is required"
    elif "url" in first.get("type", ""):
        message = "must be a full http(s) URL"
    return f"{where}: {message}"


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "updated": self.updated, "errors": self.errors}


def read_records(path: Path) -> list[dict[str, Any]]:
    """Raw records from AIXchange bulk JSON or a CSV with the same columns."""
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file.")
    return parse_records(path.name, path.read_bytes())


def parse_records(name: str, data: bytes) -> list[dict[str, Any]]:
    """Raw records from the bytes of an uploaded `.json` or `.csv` file."""
    text = data.decode("utf-8-sig", errors="replace")
    if name.lower().endswith(".csv"):
        return _records_from_csv(text)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    return records_from_document(document, name)


def records_from_document(document: Any, name: str = "The file") -> list[dict[str, Any]]:
    records = document.get("solutions") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise InputError(f'{name} has no "solutions" list; AIXchange bulk JSON looks like {{"solutions": [...]}}.')
    if not records:
        raise InputError(f"{name} holds no solutions.")
    default_author = document.get("defaultAuthorId")
    out = []
    for record in records:
        if isinstance(record, dict) and default_author and not record.get("authorId"):
            record = {**record, "authorId": default_author}
        out.append(record if isinstance(record, dict) else {"title": str(record)[:60]})
    return out


def _records_from_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "title" not in reader.fieldnames:
        raise InputError("The CSV needs a header row with at least the AIXchange columns title, description, ...")
    records = []
    for row in reader:
        record: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
        if "tags" in record:
            record["tags"] = _split_tags(record["tags"])
        for key in ("isPublished",):
            if key in record:
                record[key] = record[key].strip().lower() in ("1", "true", "yes")
        if "metadata" in record:
            try:
                record["metadata"] = json.loads(record["metadata"])
            except json.JSONDecodeError:
                record["metadata"] = {}
        records.append(record)
    if not records:
        raise InputError("The CSV holds no solutions.")
    return records


def _split_tags(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            return [str(t) for t in json.loads(value)]
        except json.JSONDecodeError:
            pass
    for sep in ("|", ";", ","):
        if sep in value:
            return [t.strip() for t in value.split(sep)]
    return [value]


def status_for_url(image_url: str | None) -> ImageStatus:
    """The status an imageUrl implies on its own; `settled_status` also knows our uploads."""
    if not image_url:
        return ImageStatus.none
    if image_url == PLACEHOLDER_URL:
        return ImageStatus.placeholder
    if image_url.startswith(PUBLIC_PREFIX):
        return ImageStatus.approved
    return ImageStatus.uploaded


def settled_status(*, session: Session, solution: Solution) -> ImageStatus:
    """The status of the image a solution shows now, apart from candidates awaiting review.

    An author's image uploaded here is published under our own `/api/external-images/` prefix,
    so the URL alone would call it approved (and `generate --all` would paint over it): the
    publication that put the URL there says whether it came from an upload.
    """
    url = solution.image_url
    if url and url.startswith(PUBLIC_PREFIX):
        source = session.exec(
            select(Candidate.source)
            .join(Publication, col(Publication.candidate_id) == Candidate.id)
            .where(Publication.solution_id == solution.id, Publication.image_url == url)
            .order_by(col(Publication.active).desc(), col(Publication.id).desc())
        ).first()
        if source == UPLOADED_SOURCE:
            return ImageStatus.uploaded
    return status_for_url(url)


def active_publication(*, session: Session, solution_id: str) -> Publication | None:
    """The publication a solution shows now, if it shows one of ours."""
    query = select(Publication).where(Publication.solution_id == solution_id, col(Publication.active).is_(True))
    return session.exec(query.order_by(col(Publication.id).desc())).first()


def import_records(*, session: Session, records: list[dict[str, Any]], actor: Actor) -> ImportReport:
    """Validate and upsert; by `id` when given, else by title. The caller audits and commits."""
    require(actor, "edit_catalogue")
    report = ImportReport()
    for raw in records:
        try:
            record = SolutionRecord.model_validate(raw)
        except ValidationError as exc:
            report.errors.append({"title": str(raw.get("title") or "(untitled)")[:100], "error": describe_error(exc)})
            continue
        existing = find_existing(session=session, record_id=record.id, title=record.title)
        if existing is None:
            solution = Solution(id=record.id) if record.id else Solution()
            report.imported += 1
        else:
            solution = existing
            report.updated += 1
        apply_record(solution, record, session=session)
        session.add(solution)
        session.flush()
    return report


def find_existing(*, session: Session, record_id: str | None, title: str) -> Solution | None:
    if record_id:
        found = session.get(Solution, record_id)
        if found is not None:
            return found
    return session.exec(select(Solution).where(func.lower(Solution.title) == title.lower())).first()


def apply_record(solution: Solution, record: SolutionRecord, *, session: Session) -> None:
    solution.title = record.title
    solution.description = record.description
    solution.category = record.category
    solution.provider = record.provider
    solution.launch_url = record.launch_url
    solution.source_code_url = record.source_code_url
    solution.tags = record.tags
    solution.token_cost = record.token_cost
    solution.version = record.version
    solution.is_published = record.is_published
    solution.status = record.status
    solution.rating = record.rating_value
    solution.metadata_ = record.metadata
    solution.author_id = record.author_id or solution.author_id
    # A record without an image never wipes one we have (an old export must not undo approvals).
    if record.image_url and record.image_url != solution.image_url:
        solution.image_url = record.image_url
        if solution.image_status != ImageStatus.pending:
            solution.image_status = settled_status(session=session, solution=solution)
    solution.updated_at = utcnow()


def to_record(solution: Solution) -> dict[str, Any]:
    """A solution in the marketplace's bulk JSON shape."""
    record: dict[str, Any] = {
        "id": solution.id,
        "title": solution.title,
        "description": solution.description,
        "category": solution.category,
        "provider": solution.provider,
        "launchUrl": solution.launch_url,
        "tags": solution.tags,
        "imageUrl": solution.image_url,
        "tokenCost": solution.token_cost,
        "version": solution.version,
        "isPublished": solution.is_published,
        "status": solution.status,
        "metadata": {**(solution.metadata_ or {}), "rating": solution.rating},
    }
    if solution.source_code_url:
        record["sourceCodeUrl"] = solution.source_code_url
    if solution.author_id:
        record["authorId"] = solution.author_id
    return record


def export_document(*, session: Session) -> dict[str, Any]:
    solutions = session.exec(select(Solution).order_by(Solution.created_at, Solution.id)).all()
    return {"solutions": [to_record(s) for s in solutions]}


def solution_filter(*, status: str | None = None, category: str | None = None, text: str | None = None) -> list:
    clauses = []
    if status:
        clauses.append(Solution.image_status == status)
    if category:
        clauses.append(Solution.category == category)
    if text and text.strip():
        like = f"%{text.strip().lower()}%"
        clauses.append(
            or_(
                func.lower(Solution.title).like(like),
                func.lower(Solution.description).like(like),
                func.lower(Solution.id) == text.strip().lower(),
            )
        )
    return clauses


def list_solutions(
    *,
    session: Session,
    status: str | None = None,
    category: str | None = None,
    text: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Solution]:
    query = select(Solution).where(*solution_filter(status=status, category=category, text=text))
    query = query.order_by(col(Solution.updated_at).desc(), Solution.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query).all())


def count_solutions(
    *, session: Session, status: str | None = None, category: str | None = None, text: str | None = None
) -> int:
    query = (
        select(func.count()).select_from(Solution).where(*solution_filter(status=status, category=category, text=text))
    )
    return int(session.exec(query).one())


def categories(*, session: Session) -> list[str]:
    return list(session.exec(select(Solution.category).distinct().order_by(Solution.category)).all())


def missing_ids(*, session: Session) -> list[str]:
    query = select(Solution.id).where(col(Solution.image_status).in_([ImageStatus.none, ImageStatus.placeholder]))
    return list(session.exec(query.order_by(Solution.created_at, Solution.id)).all())


def regenerable_ids(*, session: Session) -> list[str]:
    """Every solution except those showing their author's own image (`generate --all`): also while a
    generated candidate for one of them waits for review and its status reads pending."""
    showing_upload = (
        select(Publication.solution_id)
        .join(Candidate, col(Candidate.id) == Publication.candidate_id)
        .where(col(Publication.active).is_(True), Candidate.source == UPLOADED_SOURCE)
    )
    query = select(Solution.id).where(
        Solution.image_status != ImageStatus.uploaded, col(Solution.id).not_in(showing_upload)
    )
    return list(session.exec(query.order_by(Solution.created_at, Solution.id)).all())


def status_counts(*, session: Session) -> dict[str, int]:
    rows = session.exec(select(Solution.image_status, func.count()).group_by(Solution.image_status)).all()
    counts = {s.value: 0 for s in ImageStatus}
    counts.update({status: int(n) for status, n in rows})
    return counts


def save_solution(
    *, session: Session, actor: Actor, fields: dict[str, Any], solution_id: str | None = None
) -> Solution:
    """Add a solution, or edit one, from the marketplace's field names; validated like an import."""
    require(actor, "edit_catalogue")
    try:
        record = SolutionRecord.model_validate(fields)
    except ValidationError as exc:
        raise InputError(describe_error(exc).capitalize() + ".") from None
    if solution_id is None:
        clash = find_existing(session=session, record_id=None, title=record.title)
        if clash is not None:
            raise InputError(f"A solution called {record.title} exists already; edit that one instead.")
        solution = Solution()
    else:
        solution = session.get(Solution, solution_id)
        if solution is None:
            raise InputError(f"There is no solution {solution_id}.")
    apply_record(solution, record, session=session)
    session.add(solution)
    session.flush()
    audit(session, actor, "solution.add" if solution_id is None else "solution.edit", solution.id, title=solution.title)
    return solution
