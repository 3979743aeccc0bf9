"""Solutions: what their images' status is, finding, listing and editing them (bulk files: `bulk`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from .auth import Actor, audit, require
from .models import (
    PLACEHOLDER_URL,
    PUBLIC_PREFIX,
    Candidate,
    ImageStatus,
    Publication,
    Solution,
    SolutionOrigin,
    utcnow,
)
from .records import InputError, check_file_record

UPLOADED_SOURCE = "uploaded"  # Candidate.source of an image an admin uploaded (the author's own)


def status_for_url(image_url: str | None) -> ImageStatus:
    """The status an imageUrl implies when we did not publish it: none, the placeholder, or the
    author's (also a file of the folder someone else wrote: the old route, the marketplace's forms).
    `settled_status` knows ours; a pull also checks that such a file is still there (`deliveries.url_status`)."""
    if not image_url:
        return ImageStatus.none
    if image_url == PLACEHOLDER_URL:
        return ImageStatus.placeholder
    return ImageStatus.uploaded


def settled_status(*, session: Session, solution: Solution) -> ImageStatus:
    """The status of the image a solution shows now, apart from candidates awaiting review.

    Our own images and the authors' share the `/api/external-images/` prefix, so the URL alone cannot
    tell them apart: the publication that put the URL there says whether it is ours, and whether it
    came from an upload (which `generate --all` must leave alone).
    """
    url = solution.image_url
    if url and url.startswith(PUBLIC_PREFIX):
        source = session.exec(
            select(Candidate.source)
            .join(Publication, col(Publication.candidate_id) == Candidate.id)
            .where(Publication.solution_id == solution.id, Publication.image_url == url)
            .order_by(col(Publication.active).desc(), col(Publication.id).desc())
        ).first()
        if source is not None:  # ours: a generated image, or an author's we uploaded
            return ImageStatus.uploaded if source == UPLOADED_SOURCE else ImageStatus.approved
    return status_for_url(url)


def active_publication(*, session: Session, solution_id: str) -> Publication | None:
    """The publication a solution shows now, if it shows one of ours."""
    query = select(Publication).where(Publication.solution_id == solution_id, col(Publication.active).is_(True))
    return session.exec(query.order_by(col(Publication.id).desc())).first()


def find_existing(*, session: Session, record_id: str | None, title: str) -> Solution | None:
    """The solution a record means: by its id when it has one (never by title then), else by title."""
    if record_id:
        return session.get(Solution, record_id)
    return session.exec(select(Solution).where(func.lower(Solution.title) == title.lower())).first()


def apply_record(solution: Solution, values: dict[str, Any], *, session: Session) -> None:
    """Lay a checked record's values (`records.check_record`) over a solution.

    A value the record left out keeps ours; a record without an image never wipes one we have (an
    old export must not undo approvals). Nor does a file change the image of a solution that shows
    one of ours, or of a marketplace row (its image comes from the marketplace or from review, which
    tell the marketplace too; a file would tell nobody).
    """
    for column, value in values.items():
        if column not in ("id", "image_url"):
            setattr(solution, column, value)
    image_url = values.get("image_url")
    if image_url and image_url != solution.image_url and _image_is_ours_to_set(session, solution):
        solution.image_url = image_url
        if solution.image_status != ImageStatus.pending:
            solution.image_status = settled_status(session=session, solution=solution)
    solution.updated_at = utcnow()


def _image_is_ours_to_set(session: Session, solution: Solution) -> bool:
    if solution.origin == SolutionOrigin.marketplace:
        return False
    return active_publication(session=session, solution_id=solution.id) is None


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
    query = query.order_by(*_NEWEST_FIRST).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query).all())


_NEWEST_FIRST = (col(Solution.updated_at).desc(), Solution.id)
SUMMARY_FIELDS = ("id", "title", "category", "image_status", "image_url")


def solution_summaries(*, session: Session, status: str | None = None) -> list[dict[str, Any]]:
    """The `solutions` command's rows, in `list_solutions`' order: five columns read, no whole
    solutions built (a tenth of the time with 10,000 of them)."""
    query = select(*(getattr(Solution, name) for name in SUMMARY_FIELDS)).where(*solution_filter(status=status))
    rows = session.exec(query.order_by(*_NEWEST_FIRST)).all()
    return [dict(zip(SUMMARY_FIELDS, row, strict=True)) for row in rows]


def count_solutions(
    *, session: Session, status: str | None = None, category: str | None = None, text: str | None = None
) -> int:
    query = (
        select(func.count()).select_from(Solution).where(*solution_filter(status=status, category=category, text=text))
    )
    return int(session.exec(query).one())


def titles(*, session: Session, ids: list[str]) -> dict[str, str]:
    """Each solution's title by id (a few queries of 500 ids, whatever the number)."""
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        found.update(session.exec(select(Solution.id, Solution.title).where(col(Solution.id).in_(chunk))).all())
    return found


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
    """Add a solution, or edit one, from the marketplace's field names, checked by its form's rules (zod).

    A field left out keeps its value (an edit form need not carry `metadata`)."""
    require(actor, "edit_catalogue")
    checked = check_file_record(fields)
    if checked.issues:
        first = checked.problems()[0]
        raise InputError(first[0].upper() + first[1:] + ".")
    values = {k: v for k, v in checked.values.items() if k != "id"}
    if solution_id is None:
        clash = find_existing(session=session, record_id=None, title=values["title"])
        if clash is not None:
            raise InputError(f"A solution called {values['title']} exists already; edit that one instead.")
        solution = Solution()
    else:
        solution = session.get(Solution, solution_id)
        if solution is None:
            raise InputError(f"There is no solution {solution_id}.")
    apply_record(solution, values, session=session)
    session.add(solution)
    session.flush()
    audit(session, actor, "solution.add" if solution_id is None else "solution.edit", solution.id, title=solution.title)
    return solution
