"""Bulk files: reading what people and the marketplace hand us, writing what its importer takes, CSV for people.

Reading takes AIXchange bulk JSON (`{"solutions": [...]}`), the marketplace's admin API answer (a
bare array of its rows) and CSV with the same columns. A file that cannot be read as a whole (not
UTF-8, not JSON, NaN, nested beyond reason, a CSV field beyond the csv module's limit, no records)
raises `InputError` with one sentence; a bad record is left for the record rules to name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import secrets
import zipfile
from pathlib import Path
from typing import Any

from .records import MAX_DEPTH, InputError

FILE_MAX_RECORDS = 100  # the marketplace's importer takes 1-100 records a file
JSON_MAX_DEPTH = MAX_DEPTH + 2  # the document and its list hold the records
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def read_bulk(path: Path) -> list[Any]:
    """The raw records of a bulk JSON or CSV file."""
    return parse_bulk(path.name, read_bytes(path))


def read_bytes(path: Path) -> bytes:
    """A bulk file's bytes; one sentence when it is missing or unreadable."""
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"Could not read {path}: {exc.strerror or exc}.") from None


def parse_bulk(name: str, data: bytes) -> list[Any]:
    """The raw records of the bytes of an uploaded `.json` or `.csv` file."""
    text = decode(name, data)
    if name.lower().endswith(".csv"):
        return records_from_csv(name, text)
    return records_from_document(loads(name, text), name)


def decode(name: str, data: bytes) -> str:
    """UTF-8 text (a byte-order mark allowed); anything else is refused, never patched with U+FFFD."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{name} is UTF-16 text; save it as UTF-8 and import it again.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{name} is not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) is invalid."
        ) from None


class _NotJSON(ValueError):
    pass


def _refuse_constant(token: str) -> Any:
    raise _NotJSON(token)


def _number_int(text: str) -> int | float:
    # Python refuses to read integers of more than 4,300 digits (ValueError); any beyond a double's
    # range is infinite here, and the record rules name it as too large.
    if len(text) > 400:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


def loads(name: str, text: str) -> Any:
    """JSON as JSON is: no NaN or Infinity, numbers of any size read without an exception, bounded depth."""
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_int=_number_int)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    except _NotJSON as exc:
        raise InputError(
            f"{name} is not valid JSON: {exc} (line {_line_of_constant(text)}) is not a JSON value."
        ) from None
    except RecursionError:
        raise InputError(f"{name} nests arrays or objects more than {JSON_MAX_DEPTH} levels deep.") from None
    if _depth(document) > JSON_MAX_DEPTH:
        raise InputError(f"{name} nests arrays or objects more than {JSON_MAX_DEPTH} levels deep.")
    return document


def _line_of_constant(text: str) -> int:
    for match in _CONSTANT.finditer(text):
        if match.group(1):
            return text.count("\n", 0, match.start()) + 1
    return 1


def _depth(document: Any) -> int:
    """How deep arrays and objects nest (iteratively: a deep document must not exhaust the stack)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= JSON_MAX_DEPTH:
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def records_from_document(document: Any, name: str = "The file") -> list[Any]:
    """The records of `{"solutions": [...], "defaultAuthorId"?}` or of a bare array (the admin API's answer)."""
    if isinstance(document, list):
        records = document
    elif isinstance(document, dict) and isinstance(document.get("solutions"), list):
        records = document["solutions"]
    else:
        raise InputError(
            f'{name} has no "solutions" list; AIXchange bulk JSON looks like {{"solutions": [...]}} '
            "(or a bare array of the marketplace's rows)."
        )
    if not records:
        raise InputError(f"{name} holds no solutions.")
    author = document.get("defaultAuthorId") if isinstance(document, dict) else None
    if isinstance(author, str) and author:
        records = [{**r, "authorId": author} if isinstance(r, dict) and not r.get("authorId") else r for r in records]
    return records


# -- CSV --------------------------------------------------------------------------------------------
CSV_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
CSV_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def records_from_csv(name: str, text: str) -> list[dict[str, Any]]:
    """Records from a CSV with the bulk JSON's column names; an empty cell is a field left out."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if not reader.fieldnames or "title" not in reader.fieldnames:
            raise InputError(f"{name} needs a header row with at least the AIXchange columns title, description, ...")
        records = [_csv_record(row) for row in reader]
    except csv.Error as exc:
        limit = csv.field_size_limit()
        reason = f"a field is longer than {limit:,} characters" if "field limit" in str(exc) else str(exc)
        line = reader.reader.line_num  # DictReader's own count stops at the last good row
        raise InputError(f"{name} line {line} cannot be read as CSV: {reason}.") from None
    if not records:
        raise InputError(f"{name} holds no solutions.")
    return records


def _csv_record(row: dict[str | None, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {k: v for k, v in row.items() if isinstance(k, str) and k and v not in (None, "")}
    if "tags" in record:
        record["tags"] = _split_tags(record["tags"])
    if "isPublished" in record:
        record["isPublished"] = CSV_BOOLEANS.get(record["isPublished"].strip().lower(), record["isPublished"])
    for key in ("tokenCost", "rating"):
        if key in record and CSV_NUMBER.match(record[key].strip()):
            record[key] = _csv_number(record[key].strip())
    if "metadata" in record:
        with contextlib.suppress(InputError):  # else left as text: the record rules say it must be an object
            record["metadata"] = loads("metadata", record["metadata"])
    return record


def _csv_number(text: str) -> int | float:
    return _number_int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _split_tags(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            found = loads("tags", value)
        except InputError:
            found = None
        if isinstance(found, list):
            return found
    for sep in ("|", ";", ","):
        if sep in value:
            return [t.strip() for t in value.split(sep)]
    return [value]


# -- writing ----------------------------------------------------------------------------------------
def export_parts(records: list[dict[str, Any]], file_name: str) -> list[tuple[str, bytes]]:
    """Bulk files of at most 100 records: `file_name` itself when all fit, else NAME-001.json, NAME-002.json, ..."""
    chunks = [records[i : i + FILE_MAX_RECORDS] for i in range(0, len(records), FILE_MAX_RECORDS)]
    stem, suffix = Path(file_name).stem, Path(file_name).suffix or ".json"
    names = [file_name] if len(chunks) == 1 else [f"{stem}-{n:03d}{suffix}" for n in range(1, len(chunks) + 1)]
    return [(name, _document_bytes(chunk)) for name, chunk in zip(names, chunks, strict=True)]


def _document_bytes(records: list[dict[str, Any]]) -> bytes:
    return (json.dumps({"solutions": records}, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_parts(parts: list[tuple[str, bytes]], folder: Path) -> list[Path]:
    """Write every part into `folder`, each whole or not at all (a temporary file renamed into place)."""
    written: list[tuple[Path, Path]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in parts:
            temporary = folder / f".{name}.{secrets.token_hex(4)}.tmp"  # made as any new file is (umask)
            written.append((temporary, folder / name))
            with open(temporary, "xb") as out:
                out.write(data)
        for temporary, target in written:
            temporary.replace(target)
    except OSError as exc:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        raise InputError(f"Could not write into {folder}: {exc.strerror or exc}.") from None
    return [target for _, target in written]


def stale_parts(folder: Path, file_name: str, written: list[Path]) -> list[Path]:
    """Files of an earlier export of `file_name` that this one did not rewrite (left alone, but worth a word)."""
    stem, suffix = Path(file_name).stem, Path(file_name).suffix or ".json"
    pattern = re.compile(rf"^{re.escape(stem)}(-\d{{3,}})?{re.escape(suffix)}$")
    found = folder.iterdir() if folder.is_dir() else ()
    return sorted(p for p in found if pattern.match(p.name) and p not in written and p.is_file())


def zip_parts(parts: list[tuple[str, bytes]]) -> bytes:
    """The parts in one zip, for a single download."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts:
            archive.writestr(name, data)
    return out.getvalue()


def neutralise_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, made plain text with a leading `'` (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_csv(frame: Any) -> str:
    """A pandas DataFrame as CSV for people: formula-looking cells neutralised."""
    return frame.map(neutralise_cell).to_csv(index=False)
