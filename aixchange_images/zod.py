"""The marketplace's zod schema of a solution (`src/lib/schemas/solution.ts`, zod 3), read literally.

Lengths are JavaScript's (UTF-16 code units) and never trimmed; a URL is what the WHATWG parser
takes (zod's `.url()` is `new URL()`); `.optional()` allows a key left out, never `null`; enums are
case-sensitive; `metadata` is strict (only its four keys), its inner objects are not. One problem is
one sentence under zod's path (`metadata.apiEndpoints.0.method: is required`). `records` adds what
is ours on top: the marketplace's rows, our own `id`, values no database can hold.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, NamedTuple

import ada_url

STATUSES = ("Active", "Pending", "Inactive")  # zod's enum: exactly these
TEXT_LIMITS = {"title": (3, 100), "description": (10, 1000), "category": (2, 100), "provider": (2, 100)}
METADATA_KEYS = ("resourceConfig", "apiEndpoints", "documentation", "customFields")
RESOURCE_KEYS = ("cpu", "memory", "gpu", "storage")
MAX_INT4 = 2**31 - 1  # the marketplace's integer columns (tokenCost): zod takes any number, its database does not
_CUID = re.compile(r"^c[^\s-]{8,}$", re.IGNORECASE)  # zod 3's cuid check
MISSING: Any = object()  # a key the record left out


class Checked(NamedTuple):
    """A record's values in our column names (a key left out: keep what we have), or its problems."""

    values: dict[str, Any]
    issues: list[tuple[str, str]]  # (path inside the record, one sentence without its full stop)

    def problems(self, prefix: str = "") -> list[str]:
        """Each problem as `path: message`, the path under `prefix` (say `solutions.3`)."""
        return [f"{'.'.join(p for p in (prefix, path) if p) or 'record'}: {message}" for path, message in self.issues]


def js_type(value: Any) -> str:
    """The JSON name of a value's type, as an error message says it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names = {str: "a string", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def printable(text: str) -> str:
    """Text of the input safe to print and store: lone surrogates and NULs written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def shown(value: Any) -> str:
    """A value of the input quoted in a message: strings quoted and cut short, others by their type."""
    if not isinstance(value, str):
        return js_type(value)
    text = printable(value)
    return f"'{text[:40]}…'" if len(text) > 40 else f"'{text}'"


def js_length(text: str) -> int:
    """The length JavaScript gives a string: UTF-16 code units, so an emoji counts 2."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def is_url(value: str) -> bool:
    """Whether the WHATWG URL parser (zod's `.url()`, Node's `new URL()`) accepts the string."""
    try:
        return bool(ada_url.check_url(value)) and _punycode_ok(ada_url.parse_url(value)["hostname"])
    except (UnicodeError, ValueError):
        return False


def _punycode_ok(host: str) -> bool:
    """Node's URL parser refuses an `xn--` label that does not decode to a domain's letters; ada's
    Python build accepts some (`xn--a.com`), and one such URL would make the marketplace refuse a whole
    file."""
    for label in host.split("."):
        if label[:4].lower() == "xn--":
            try:
                decoded = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                return False
            if not decoded or any(unicodedata.category(ch).startswith("C") for ch in decoded):
                return False  # controls, unassigned and private code points are no domain's letters
    return True


def is_cuid(value: Any) -> bool:
    return isinstance(value, str) and bool(_CUID.match(value))


class Reader:
    """One record's fields read by rule into our column names; a problem is one sentence under its path."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.values: dict[str, Any] = {}
        self.issues: list[tuple[str, str]] = []

    def fail(self, path: str, message: str) -> None:
        self.issues.append((path, message))

    def typed(self, key: str, kind: type | tuple[type, ...], noun: str, *, nullable: bool = False) -> Any:
        """The field when it has the type (None when null is allowed), else MISSING (with a problem if present)."""
        value = self.raw.get(key, MISSING)
        if value is MISSING or (value is None and nullable):
            return value
        if isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool):
            return value
        self.fail(key, f"must be {noun}, not {js_type(value)}")
        return MISSING

    def required(self, key: str, kind: type, noun: str) -> Any:
        if key not in self.raw:
            self.fail(key, "is required")
            return MISSING
        return self.typed(key, kind, noun)

    def put(self, column: str, value: Any) -> None:
        if value is not MISSING:
            self.values[column] = value

    def checked(self) -> Checked:
        return Checked(self.values if not self.issues else {}, self.issues)


def read_solution(reader: Reader) -> None:
    """Read a record's fields by zod's rules into the reader (our column names)."""
    for key, (low, high) in TEXT_LIMITS.items():
        reader.put(key, _bounded_text(reader, key, low, high))
    reader.put("launch_url", _file_url(reader, "launchUrl", required=True))
    reader.put("source_code_url", _file_url(reader, "sourceCodeUrl", required=False))
    reader.put("token_cost", _token_cost(reader, reader.typed("tokenCost", (int, float), "a number")))
    reader.put("rating", _rating(reader, reader.typed("rating", (int, float), "a number")))
    reader.put("status", _file_status(reader))
    reader.put("tags", _file_tags(reader))
    reader.put("image_url", reader.typed("imageUrl", str, "a string"))
    reader.put("event_id", _event_id(reader))
    reader.put("is_published", _default(reader.typed("isPublished", bool, "true or false"), True))
    metadata = reader.raw.get("metadata", MISSING)
    reader.put("metadata_", MISSING if metadata is MISSING else check_metadata(metadata, reader))


def _default(value: Any, default: Any) -> Any:
    return default if value is MISSING else value


def _bounded_text(reader: Reader, key: str, low: int, high: int) -> Any:
    value = reader.required(key, str, "a string")
    if value is MISSING:
        return value
    length = js_length(value)
    counted = " (JavaScript counts an emoji as 2)" if length != len(value) else ""
    if length < low:
        reader.fail(key, f"must be at least {low} characters long, not {length}{counted}")
    elif length > high:
        reader.fail(key, f"must be at most {high} characters long, not {length}{counted}")
    return value


def _file_url(reader: Reader, key: str, *, required: bool) -> Any:
    value = reader.required(key, str, "a string") if required else reader.typed(key, str, "a string")
    if value is MISSING or is_url(value) or (value == "" and not required):
        return value
    reader.fail(key, "must be a URL" if required else "must be a URL or empty")
    return MISSING


def _token_cost(reader: Reader, value: Any) -> Any:
    if value is MISSING:
        return 0 if "tokenCost" not in reader.raw else value
    if value < 0:
        reader.fail("tokenCost", f"must be 0 or more, not {value}")
    elif value > MAX_INT4:
        reader.fail("tokenCost", f"must be at most {MAX_INT4} (the marketplace stores an integer)")
    elif value != int(value):
        reader.fail("tokenCost", f"must be a whole number (the marketplace stores an integer), not {value}")
    else:
        return int(value)
    return MISSING


def _rating(reader: Reader, value: Any) -> Any:
    if value is MISSING:
        return 0.0 if "rating" not in reader.raw else value
    if not 0 <= value <= 5:
        reader.fail("rating", f"must be between 0 and 5, not {value}")
        return MISSING
    return float(value)


def _file_status(reader: Reader) -> Any:
    value = reader.raw.get("status", "Active")
    if value in STATUSES:
        return value
    reader.fail("status", f"must be exactly Active, Pending or Inactive, not {shown(value)}")
    return MISSING


def _file_tags(reader: Reader) -> Any:
    tags = reader.required("tags", list, "an array")
    if tags is MISSING:
        return tags
    if not 1 <= len(tags) <= 5:
        reader.fail("tags", f"must hold 1 to 5 tags, not {len(tags)}")
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            reader.fail(f"tags.{i}", f"must be a string, not {js_type(tag)}")
    return list(tags)


def _event_id(reader: Reader) -> Any:
    value = reader.typed("eventId", str, "a string")
    if value is MISSING or is_cuid(value):
        return value
    reader.fail("eventId", "must be a cuid (the id of one of the marketplace's events)")
    return MISSING


def check_metadata(value: Any, reader: Reader) -> Any:
    """zod's strict metadata: only its four keys; their own unknown inner keys are dropped."""
    if not isinstance(value, dict):
        reader.fail("metadata", f"must be an object, not {js_type(value)}")
        return MISSING
    unknown = [key for key in value if key not in METADATA_KEYS]
    if unknown:
        reader.fail("metadata", "unrecognized key " + ", ".join(shown(key) for key in unknown[:5]))
    parts = {
        "resourceConfig": _resource_config,
        "apiEndpoints": _api_endpoints,
        "documentation": _documentation,
        "customFields": _custom_fields,
    }
    return {key: read(value[key], reader) for key, read in parts.items() if key in value}


def _object(value: Any, path: str, reader: Reader) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    reader.fail(path, f"must be an object, not {js_type(value)}")
    return None


def _strings(value: dict[str, Any], keys: tuple[str, ...], path: str, reader: Reader) -> dict[str, str]:
    """The optional string keys of an inner object (others dropped, as zod does)."""
    for key in keys:
        if key in value and not isinstance(value[key], str):
            reader.fail(f"{path}.{key}", f"must be a string, not {js_type(value[key])}")
    return {key: value[key] for key in keys if key in value}


def _resource_config(value: Any, reader: Reader) -> Any:
    found = _object(value, "metadata.resourceConfig", reader)
    return None if found is None else _strings(found, RESOURCE_KEYS, "metadata.resourceConfig", reader)


def _api_endpoints(value: Any, reader: Reader) -> Any:
    if not isinstance(value, list):
        reader.fail("metadata.apiEndpoints", f"must be an array, not {js_type(value)}")
        return None
    endpoints = []
    for i, item in enumerate(value):
        path = f"metadata.apiEndpoints.{i}"
        found = _object(item, path, reader)
        if found is None:
            continue
        for key in ("path", "method"):
            if key not in found:
                reader.fail(f"{path}.{key}", "is required")
        endpoints.append(_strings(found, ("path", "method", "description"), path, reader))
    return endpoints


def _documentation(value: Any, reader: Reader) -> Any:
    found = _object(value, "metadata.documentation", reader)
    if found is None:
        return None
    documentation = _strings(found, ("format", "url"), "metadata.documentation", reader)
    if isinstance(documentation.get("url"), str) and not is_url(documentation["url"]):
        reader.fail("metadata.documentation.url", "must be a URL")
    return documentation


def _custom_fields(value: Any, reader: Reader) -> Any:
    return _object(value, "metadata.customFields", reader)
