"""One solution record as the marketplace sees it: the rules that check it, and the shape we export.

Two kinds of record come in, told apart by `is_marketplace_row`:

- A **file record**: what the marketplace's bulk importer and forms accept, checked with its zod
  schema (`src/lib/schemas/solution.ts`, zod 3) literally: lengths in UTF-16 code units and not
  trimmed, URLs as the WHATWG parser (Node's `new URL()`) takes them, `status` in its exact casing,
  1-5 `tags`, a strict `metadata`, no `null` for an optional field; unknown top-level keys are
  dropped. Hand-written files, CSV and our own exports are file records.
- A **marketplace row**: a raw row of its `"Solution"` table, as its "Download JSON" and its admin
  API hand them out. Every such row carries `createdAt` and `updatedAt` (Prisma returns every
  column), which no file record needs (zod would drop them): a record holding both is a row. It is
  taken as the database has it: no length caps, upper-case `status`, `null` for nullable columns
  (`metadata` null is `{}`, `tags` null is `[]`), empty `tags`; `author`, `_count`, the timestamps
  and the vote counters are ignored. Only structural nonsense (a missing title, a wrong type) is
  refused.

Both kinds may carry our own `id` (zod drops it; we keep it), `version` and `authorId`. Nothing
either kind holds may be unstorable: a NUL character, a lone surrogate, a number beyond a double.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from .config import UserError
from .zod import MAX_INT4, METADATA_KEYS, MISSING, Checked, Reader, is_cuid, js_type, read_solution, shown

if TYPE_CHECKING:
    from .models import Solution

STATUSES = {"active": "Active", "pending": "Pending", "inactive": "Inactive"}  # any casing: the value we store
MAX_DEPTH = 32  # arrays and objects inside a record
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")  # a cuid, or anything shaped as tamely


class InputError(UserError, ValueError):
    """Input that cannot be used at all (exit 2); the message is one sentence."""


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_marketplace_row(raw: Any) -> bool:
    return isinstance(raw, dict) and "createdAt" in raw and "updatedAt" in raw


def check_record(raw: Any) -> Checked:
    """A record of either kind (see the module's docstring), checked by its own rules."""
    return _checked(raw, _check_row if is_marketplace_row(raw) else _file_record)


def check_file_record(raw: Any) -> Checked:
    """The marketplace's zod rules, literally: a record of a bulk file, or of its forms."""
    return _checked(raw, _file_record)


def _file_record(raw: dict[str, Any]) -> Checked:
    reader = Reader(raw)
    read_solution(reader)
    _our_own_keys(reader)
    return reader.checked()


def _checked(raw: Any, rules: Any) -> Checked:
    if not isinstance(raw, dict):
        return Checked({}, [("", f"must be an object, not {js_type(raw)}")])
    problems = unstorable(raw)  # the rules below may take every value as a database could hold it
    return Checked({}, problems) if problems else rules(raw)


def unstorable(value: Any) -> list[tuple[str, str]]:
    """What no database can hold, by path: NUL characters, lone surrogates, numbers beyond a double, deep nesting."""
    problems: list[tuple[str, str]] = []
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack and len(problems) < 3:
        path, item, depth = stack.pop()
        if isinstance(item, dict | list) and depth < MAX_DEPTH:
            stack.extend(reversed(_children(path, item, depth)))
            bad_key = next((key for key in item if _text_problem(key)), None) if isinstance(item, dict) else None
            problem = None if bad_key is None else f"has a key that {_text_problem(bad_key)}"
        else:
            problem = _value_problem(item)
        if problem:
            problems.append((path, problem))
    return problems


def _children(path: str, item: dict[str, Any] | list[Any], depth: int) -> list[tuple[str, Any, int]]:
    pairs = item.items() if isinstance(item, dict) else enumerate(item)
    return [(f"{path}.{key}" if path else str(key), child, depth + 1) for key, child in pairs]


def _value_problem(item: Any) -> str | None:
    if isinstance(item, str):
        return _text_problem(item)
    if isinstance(item, float) and math.isnan(item):
        return "must be a number, not NaN"
    if is_number(item) and abs(item) > 1.7e308:  # a JSON number beyond a double reads as infinite
        return "is a number too large to store"
    if isinstance(item, dict | list):
        return f"nests arrays or objects more than {MAX_DEPTH} levels deep"
    return None


def _text_problem(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    if "\x00" in text:
        return "holds a NUL character, which PostgreSQL cannot store"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone UTF-16 surrogate, which is not text"
    return None


def _our_own_keys(reader: Reader) -> None:
    """`id`, `version` and `authorId`: zod drops them; we keep them (an id is ours to match on)."""
    record_id = reader.raw.get("id")
    if record_id is not None and not (isinstance(record_id, str) and _ID.match(record_id)):
        reader.fail("id", "must be 1 to 40 letters, digits, '-' or '_' (a cuid), starting with a letter or digit")
    elif record_id is not None:
        reader.values["id"] = record_id
    for key, column in (("version", "version"), ("authorId", "author_id")):
        if isinstance(reader.raw.get(key), str):
            reader.values[column] = reader.raw[key]


# -- the marketplace's rows ---------------------------------------------------------------------------
ROW_TEXT = {"title": "title", "description": "description", "category": "category", "provider": "provider"}
ROW_OPTIONAL_TEXT = {"sourceCodeUrl": "source_code_url", "imageUrl": "image_url", "eventId": "event_id"}


def _check_row(raw: dict[str, Any]) -> Checked:
    """A row of the marketplace's table, taken as the database has it."""
    reader = Reader(raw)
    for key, column in ROW_TEXT.items():
        reader.put(column, reader.required(key, str, "a string"))
    reader.put("launch_url", reader.required("launchUrl", str, "a string"))
    for key, column in ROW_OPTIONAL_TEXT.items():
        reader.put(column, reader.typed(key, str, "a string or null", nullable=True))
    tags = reader.typed("tags", list, "an array or null", nullable=True)
    reader.put("tags", [] if tags is None else tags)
    for i, tag in enumerate(tags if isinstance(tags, list) else []):
        if not isinstance(tag, str):
            reader.fail(f"tags.{i}", f"must be a string, not {js_type(tag)}")
    metadata = reader.typed("metadata", dict, "an object or null", nullable=True)
    reader.put("metadata_", {} if metadata is None else metadata)
    _row_scalars(reader)
    _our_own_keys(reader)
    return reader.checked()


def _row_scalars(reader: Reader) -> None:
    status = reader.typed("status", str, "a string")
    if status is not MISSING and status.lower() not in STATUSES:
        reader.fail("status", f"must be ACTIVE, PENDING or INACTIVE, not {shown(status)}")
    elif status is not MISSING:
        reader.put("status", STATUSES[status.lower()])
    cost = reader.typed("tokenCost", (int, float), "a number")
    if cost is not MISSING and (cost != int(cost) or abs(cost) > MAX_INT4):
        reader.fail("tokenCost", f"must be a whole number the marketplace can store, not {cost}")
    elif cost is not MISSING:
        reader.put("token_cost", int(cost))
    rating = reader.typed("rating", (int, float), "a number")
    reader.put("rating", rating if rating is MISSING else float(rating))
    reader.put("is_published", reader.typed("isPublished", bool, "true or false"))


# -- files for the marketplace's importer -------------------------------------------------------------
def validate_document(document: Any) -> list[str]:
    """Every reason the marketplace's importer would refuse this bulk file, by zod path (none: it accepts it)."""
    if not isinstance(document, dict):
        return [f"(file): must be an object, not {js_type(document)}"]
    records = document.get("solutions", MISSING)
    if not isinstance(records, list):
        return [
            "solutions: is required" if records is MISSING else f"solutions: must be an array, not {js_type(records)}"
        ]
    issues = [] if 1 <= len(records) <= 100 else [f"solutions: must hold 1 to 100 records, not {len(records)}"]
    if "defaultAuthorId" in document and not isinstance(document["defaultAuthorId"], str):
        issues.append("defaultAuthorId: must be a string")
    for i, raw in enumerate(records):
        issues.extend(check_file_record(raw).problems(f"solutions.{i}"))
    return issues


def marketplace_record(solution: Solution) -> dict[str, Any]:
    """A solution as the marketplace's importer takes it: no nulls, its casing, only its metadata keys.

    `id`, `version` and `authorId` ride along: zod drops them there, and they let our own import
    update the same solutions instead of matching by title.
    """
    record: dict[str, Any] = {
        "id": solution.id,
        "title": solution.title,
        "description": solution.description,
        "category": solution.category,
        "provider": solution.provider,
        "launchUrl": solution.launch_url,
        "tags": list(solution.tags or []),
        "tokenCost": solution.token_cost,
        "rating": solution.rating,
        "status": STATUSES.get((solution.status or "").lower(), solution.status),
        "isPublished": bool(solution.is_published),
        "version": solution.version,
    }
    optional = {
        "sourceCodeUrl": solution.source_code_url,
        "imageUrl": solution.image_url,
        "eventId": solution.event_id if is_cuid(solution.event_id) else None,
        "authorId": solution.author_id,
        "metadata": {k: v for k, v in (solution.metadata_ or {}).items() if k in METADATA_KEYS},
    }
    record.update({key: value for key, value in optional.items() if value})
    return record
