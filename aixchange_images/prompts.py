"""Prompt templates: rendering a solution into the text the image model reads, and the checks
a prompt passes before any call. Stored versions, labels and overrides live in `templates`."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from .config import UserError
from .models import Solution

if TYPE_CHECKING:
    from .providers.base import Provider

# Built on the marketplace's own prompt (aixchange-contract.md), with the title and category that
# make a card distinct, and a request for no lettering (image models garble small text).
# `default@1` is exactly this text, so attempts recorded before Prompt Studio keep their meaning.
DEFAULT_TEMPLATE_NAME = "default"
DEFAULT_TEMPLATE = (
    'Create a professional, modern visualization for an AI solution called "{title}" '
    "(category: {category}) that {description}\n"
    "The image should be clean, minimalist, and suitable for a technology product card. "
    "No text, letters or logos in the image."
)
VARIABLES = ("title", "description", "category", "tags", "provider")
STYLE_VARIABLE = "style"  # where the style block goes; appended on its own line when the text has no {style}
MODEL_PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000}
DEFAULT_PROMPT_LIMIT = 32_000  # GPT image models
SAMPLE_VARIABLES = {
    "title": "Example Solution",
    "description": "summarises support tickets and routes them to the right team.",
    "category": "Natural Language Processing",
    "tags": "support, nlp",
    "provider": "Acme Labs",
}


class PromptError(UserError, ValueError):
    """A template or solution that cannot make a prompt; one sentence for a person."""


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    text: str
    style: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class Subject(Protocol):
    """What a prompt is made of: a Solution, or a row of just its SUBJECT_COLUMNS (estimates read thousands)."""

    id: str
    title: str
    description: str
    category: str
    tags: list[str]
    provider: str


SUBJECT_COLUMNS = (
    Solution.id,
    Solution.title,
    Solution.description,
    Solution.category,
    Solution.tags,
    Solution.provider,
)


def solution_variables(solution: Subject) -> dict[str, Any]:
    description = (solution.description or "").strip()
    # "...that {description}" reads badly with a capital letter after "that".
    if description[:1].isupper() and not description[1:2].isupper():
        description = description[0].lower() + description[1:]
    return {
        "title": solution.title.strip(),
        "description": description,
        "category": solution.category.strip(),
        "tags": ", ".join(solution.tags or []),
        "provider": (solution.provider or "").strip(),
    }


def fields_of(text: str) -> list[str]:
    """The `{name}` fields a template text uses, in order; a malformed text is a PromptError."""
    return list(_fields_of(text))


@lru_cache(maxsize=256)  # a batch renders one template thousands of times
def _fields_of(text: str) -> tuple[str, ...]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise PromptError(f"The template is malformed ({exc}); write a literal brace as {{{{ or }}}}.") from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.strip():
            raise PromptError(
                "The template has an empty {}; name a variable inside it, or write a literal brace as {{ or }}."
            )
        if spec or conversion or not name.isidentifier():
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise PromptError(f"Write variables as a plain {{name}}; {{{shown}}} is not one.")
        names.append(name)
    return tuple(names)


def render_text(text: str, variables: dict[str, Any]) -> str:
    """Fill `{name}` fields with the values as they are (nothing escaped); an unknown name is an error."""
    unknown = sorted({f for f in fields_of(text) if f not in variables})
    if unknown:
        raise PromptError(
            f"The template uses unknown variable {{{unknown[0]}}}; available: {', '.join(sorted(variables))}."
        )
    # format_map never re-reads what it inserts, so braces or quotes in a description stay as written.
    return text.format_map(variables).strip()


def render_template(template: Template, variables: dict[str, Any]) -> str:
    """The template's text with its style block: at `{style}` when the text has one, else on its own line."""
    style = render_text(template.style, variables) if template.style.strip() else ""
    if STYLE_VARIABLE in fields_of(template.text):
        return render_text(template.text, {**variables, STYLE_VARIABLE: style})
    text = render_text(template.text, variables)
    return f"{text}\n{style}" if style else text


def validate_template(text: str, style: str = "") -> None:
    """Refuse a template text that could never render: empty, malformed, or with an unknown variable."""
    if not text.strip():
        raise PromptError("The template text is empty; write the prompt the image model should read.")
    if len(text) + len(style) > DEFAULT_PROMPT_LIMIT:
        raise PromptError(
            f"The template is {len(text) + len(style):,} characters; keep it well under "
            f"the {DEFAULT_PROMPT_LIMIT:,} a prompt may have."
        )
    if STYLE_VARIABLE in fields_of(style):
        raise PromptError("The style block cannot contain {style}; it is what {style} stands for.")
    render_template(Template("check", 0, text, style), SAMPLE_VARIABLES)


def prompt_limit(model: str) -> int:
    return MODEL_PROMPT_LIMITS.get(model, DEFAULT_PROMPT_LIMIT)


def check_prompt(prompt: str, *, model: str, description: str) -> None:
    """Refuse prompts the model would refuse, before any call."""
    if not description.strip():
        raise PromptError("The solution has an empty description; write one before generating an image.")
    limit = prompt_limit(model)
    if len(prompt) > limit:
        raise PromptError(f"The prompt is {len(prompt):,} characters; {model} takes at most {limit:,}.")


@dataclass
class CheckReport:
    """The checks a prompt passes before a call, run on demand (Prompt Studio's "Check" button)."""

    length: int
    limit: int
    problems: list[str] = field(default_factory=list)
    moderation: str = "skipped"  # passed | flagged | error | skipped
    moderation_source: str | None = None
    flagged: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and self.moderation == "passed"


def run_checks(prompt: str, *, model: str, description: str, provider: Provider | None = None) -> CheckReport:
    """Length and description checks, then moderation through `provider` (as generation would run it)."""
    from .providers.base import ProviderError

    report = CheckReport(length=len(prompt), limit=prompt_limit(model))
    try:
        check_prompt(prompt, model=model, description=description)
    except PromptError as exc:
        report.problems.append(str(exc))
    if provider is None:
        return report
    try:
        verdict = provider.moderate(prompt)
    except ProviderError as exc:
        report.moderation, report.moderation_source = "error", provider.name
        report.problems.append(f"The moderation check failed: {exc.message}")
        return report
    report.moderation = "flagged" if verdict.flagged else "passed"
    report.moderation_source, report.flagged = verdict.source, verdict.categories
    if verdict.flagged:
        found = ", ".join(verdict.categories) or "unsafe content"
        report.problems.append(
            f"Moderation flags this prompt ({found}); a generation would fail as moderation_blocked."
        )
    return report
