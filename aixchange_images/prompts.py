"""Prompt templates: rendering a solution into the text the image model reads."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from .models import Solution

# Built on the marketplace's own prompt (aixchange-contract.md), with the title and category that
# make a card distinct, and a request for no lettering (image models garble small text).
DEFAULT_TEMPLATE_NAME = "default"
DEFAULT_TEMPLATE = (
    'Create a professional, modern visualization for an AI solution called "{title}" '
    "(category: {category}) that {description}\n"
    "The image should be clean, minimalist, and suitable for a technology product card. "
    "No text, letters or logos in the image."
)
VARIABLES = ("title", "description", "category", "tags", "provider")
MODEL_PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000}
DEFAULT_PROMPT_LIMIT = 32_000


class PromptError(ValueError):
    """A template or solution that cannot make a prompt; one sentence for a person."""


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    text: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def solution_variables(solution: Solution) -> dict[str, Any]:
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


def render_text(text: str, variables: dict[str, Any]) -> str:
    """Fill `{name}` fields; an unknown name is an error that names it."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise PromptError(f"The template is malformed: {exc}; write a literal brace as {{{{ or }}}}.") from None
    unknown = sorted({f for f in fields if f.split(".")[0].split("[")[0] not in variables})
    if unknown:
        raise PromptError(
            f"The template uses unknown variable {{{unknown[0]}}}; available: {', '.join(sorted(variables))}."
        )
    return text.format_map(variables).strip()


def check_prompt(prompt: str, *, model: str, description: str) -> None:
    """Refuse prompts the model would refuse, before any call."""
    if not description.strip():
        raise PromptError("The solution has an empty description; write one before generating an image.")
    limit = MODEL_PROMPT_LIMITS.get(model, DEFAULT_PROMPT_LIMIT)
    if len(prompt) > limit:
        raise PromptError(f"The prompt is {len(prompt):,} characters; {model} takes at most {limit:,}.")


def resolve_template(*, session: Session, ref: str | None = None, category: str | None = None) -> Template:
    """The template for `ref` (NAME or NAME@VERSION), else the production one.

    Versioned templates stored in the database arrive with Prompt Studio; until then the default
    template is version 1 of `default` and the only one.
    """
    del session, category  # the seam Prompt Studio fills
    if ref in (None, "", DEFAULT_TEMPLATE_NAME, f"{DEFAULT_TEMPLATE_NAME}@1"):
        return Template(DEFAULT_TEMPLATE_NAME, 1, DEFAULT_TEMPLATE)
    raise PromptError(f"No prompt template '{ref}'; the available one is {DEFAULT_TEMPLATE_NAME}@1.")


def render(*, session: Session, solution: Solution, ref: str | None = None) -> tuple[Template, str]:
    template = resolve_template(session=session, ref=ref, category=solution.category)
    return template, render_text(template.text, solution_variables(solution))
