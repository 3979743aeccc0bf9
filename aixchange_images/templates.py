"""Stored prompt templates: immutable versions, the labels that point at them, per-category choices.

Modelled on Langfuse's prompt management: a save never changes a version, it makes the next one;
`production` is what generation uses and moving it is how a team ships or rolls back; `draft`
follows the latest save. Every label move is kept (who, when, from, to) and audited.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from .auth import Actor, audit, require
from .metrics import frame
from .models import (
    CategoryTemplate,
    Solution,
    TemplateLabel,
    TemplateLabelMove,
    TemplateLabelName,
    TemplateVersion,
    utcnow,
)
from .prompts import (
    DEFAULT_TEMPLATE,
    DEFAULT_TEMPLATE_NAME,
    PromptError,
    Template,
    render_template,
    solution_variables,
    validate_template,
)

if TYPE_CHECKING:
    import pandas as pd

LABELS = tuple(label.value for label in TemplateLabelName)
PRODUCTION, DRAFT = TemplateLabelName.production.value, TemplateLabelName.draft.value
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
SEED_NOTE = "Seeded from the marketplace's original prompt, with title, category and no lettering."


def as_template(version: TemplateVersion) -> Template:
    return Template(version.name, version.version, version.body, version.style)


def seed_default(*, session: Session) -> None:
    """`default@1` (the built-in template) labelled production, unless it is there already."""
    if get_version(session=session, name=DEFAULT_TEMPLATE_NAME, version=1) is None:
        session.add(
            TemplateVersion(name=DEFAULT_TEMPLATE_NAME, version=1, body=DEFAULT_TEMPLATE, note=SEED_NOTE, author="seed")
        )
    if session.get(TemplateLabel, (DEFAULT_TEMPLATE_NAME, PRODUCTION)) is None:
        session.add(TemplateLabel(name=DEFAULT_TEMPLATE_NAME, label=PRODUCTION, version=1, moved_by="seed"))
        session.add(
            TemplateLabelMove(name=DEFAULT_TEMPLATE_NAME, label=PRODUCTION, to_version=1, actor="seed", note="initial")
        )


# -- reading -------------------------------------------------------------------------------------
def names(*, session: Session) -> list[str]:
    return list(session.exec(select(TemplateVersion.name).distinct().order_by(TemplateVersion.name)).all())


def get_version(*, session: Session, name: str, version: int) -> TemplateVersion | None:
    query = select(TemplateVersion).where(TemplateVersion.name == name, TemplateVersion.version == version)
    return session.exec(query).first()


def versions(*, session: Session, name: str) -> list[TemplateVersion]:
    """A template's versions, newest first."""
    query = select(TemplateVersion).where(TemplateVersion.name == name)
    return list(session.exec(query.order_by(col(TemplateVersion.version).desc())).all())


def labels(*, session: Session, name: str) -> dict[str, TemplateLabel]:
    """Label -> where it points now, for one template."""
    rows = session.exec(select(TemplateLabel).where(TemplateLabel.name == name)).all()
    return {row.label: row for row in rows}


def all_labels(*, session: Session) -> dict[str, list[str]]:
    """ "name@version" -> the labels on it, for every template (tables mark versions with these)."""
    marks: dict[str, list[str]] = {}
    for row in session.exec(select(TemplateLabel).order_by(col(TemplateLabel.label).desc())).all():
        marks.setdefault(f"{row.name}@{row.version}", []).append(row.label)
    return marks


def label_history(*, session: Session, name: str, limit: int = 100) -> list[TemplateLabelMove]:
    """Who moved which label of a template from where to where, newest first."""
    query = select(TemplateLabelMove).where(TemplateLabelMove.name == name)
    return list(session.exec(query.order_by(col(TemplateLabelMove.id).desc()).limit(limit)).all())


def version_refs(*, session: Session) -> list[str]:
    """Every stored version as "name@version" (name order, newest version first): filter choices."""
    rows = session.exec(
        select(TemplateVersion.name, TemplateVersion.version).order_by(
            TemplateVersion.name, col(TemplateVersion.version).desc()
        )
    ).all()
    return [f"{name}@{version}" for name, version in rows]


def version_table(*, session: Session, name: str) -> pd.DataFrame:
    """A template's versions, newest first, with the labels on each."""
    marks = all_labels(session=session)
    rows = [
        {
            "version": v.version,
            "labels": ", ".join(marks.get(v.ref, [])),
            "author": v.author,
            "saved": v.created_at,
            "note": v.note,
            "characters": len(display_text(v)),
        }
        for v in versions(session=session, name=name)
    ]
    return frame(rows, ["version", "labels", "author", "saved", "note", "characters"])


def label_moves_table(*, session: Session, name: str, limit: int = 100) -> pd.DataFrame:
    rows = [
        {
            "when": m.at,
            "label": m.label,
            "from": f"v{m.from_version}" if m.from_version else "—",
            "to": f"v{m.to_version}",
            "by": m.actor,
            "note": m.note,
        }
        for m in label_history(session=session, name=name, limit=limit)
    ]
    return frame(rows, ["when", "label", "from", "to", "by", "note"])


def category_table(*, session: Session) -> pd.DataFrame:
    """Each category override with the version it uses now."""
    rows = session.exec(select(CategoryTemplate).order_by(CategoryTemplate.category)).all()
    data = [
        {
            "category": row.category,
            "template": row.template,
            "uses now": _production_ref(session, row.template),
            "set by": row.set_by,
            "set": row.set_at,
        }
        for row in rows
    ]
    return frame(data, ["category", "template", "uses now", "set by", "set"])


def _production_ref(session: Session, name: str) -> str:
    pointer = session.get(TemplateLabel, (name, PRODUCTION))
    return f"{name}@{pointer.version}" if pointer else "—"


def category_templates(*, session: Session) -> dict[str, str]:
    """Category -> the template whose production version it uses instead of `default`'s."""
    rows = session.exec(select(CategoryTemplate).order_by(CategoryTemplate.category)).all()
    return {row.category: row.template for row in rows}


def parse_ref(ref: str) -> tuple[str, str | None]:
    """ "NAME", "NAME@VERSION" or "NAME@LABEL" -> (name, version or label or None)."""
    name, _, pin = ref.strip().partition("@")
    return name.strip().lower(), (pin.strip() or None) if pin else None


def resolve(*, session: Session, ref: str | None = None, category: str | None = None) -> Template:
    """The version `ref` names; without a ref, the production version for `category` (else of default)."""
    if not ref or not ref.strip():
        override = session.get(CategoryTemplate, category) if category else None
        ref = override.template if override is not None else DEFAULT_TEMPLATE_NAME
    name, pin = parse_ref(ref)
    known = names(session=session)
    if name not in known:
        raise PromptError(f"There is no prompt template '{name}'; the templates are: {', '.join(known) or 'none'}.")
    if pin is None or pin.lower() in LABELS:
        label = (pin or PRODUCTION).lower()
        pointer = session.get(TemplateLabel, (name, label))
        if pointer is None:
            raise PromptError(
                f"Template {name} has no {label} version yet; give a version as {name}@N or move "
                f"the {label} label in Prompt Studio."
            )
        pin = str(pointer.version)
    if not pin.isdigit():
        raise PromptError(f"'{ref}' is not NAME@VERSION: the version is a number, or the label production or draft.")
    found = get_version(session=session, name=name, version=int(pin))
    if found is None:
        latest = versions(session=session, name=name)[0].version
        raise PromptError(f"Template {name} has no version {pin}; its versions are 1 to {latest}.")
    return as_template(found)


def render(*, session: Session, solution: Solution, ref: str | None = None) -> tuple[Template, str]:
    """The template `ref` names (else the one for the solution's category) and the prompt it makes."""
    template = resolve(session=session, ref=ref, category=solution.category)
    return template, render_template(template, solution_variables(solution))


def display_text(version: TemplateVersion | Template) -> str:
    """The text a person compares: the template, then its style block if it has one."""
    body = version.body if isinstance(version, TemplateVersion) else version.text
    return body + (f"\n\n[style]\n{version.style}" if version.style.strip() else "")


def diff(*, session: Session, old: str, new: str) -> str:
    """A unified diff between any two versions ("name@version" each); empty when they read the same."""
    a, b = resolve(session=session, ref=old), resolve(session=session, ref=new)
    lines = difflib.unified_diff(
        display_text(a).splitlines(), display_text(b).splitlines(), fromfile=a.ref, tofile=b.ref, lineterm=""
    )
    return "\n".join(lines)


# -- writing (the caller commits) ----------------------------------------------------------------
def save_version(
    *, session: Session, actor: Actor, name: str, body: str, style: str = "", note: str = ""
) -> TemplateVersion:
    """A new immutable version of `name` (a new template when the name is new); `draft` moves to it.

    A brand-new template's first version is also its production version: nothing uses it until a
    category is pointed at it or someone asks for it by name.
    """
    require(actor, "edit_templates")
    name = name.strip().lower()
    if not NAME_PATTERN.fullmatch(name):
        raise PromptError(
            "A template name is 1-40 lower-case letters, digits, '-' or '_', starting with a letter or digit."
        )
    body, style = body.strip(), style.strip()
    validate_template(body, style)
    latest = session.exec(select(func.max(TemplateVersion.version)).where(TemplateVersion.name == name)).one()
    if latest is not None:
        current = get_version(session=session, name=name, version=latest)
        if current is not None and (current.body, current.style) == (body, style):
            raise PromptError(f"This is the same text as {current.ref}; change something before saving.")
    version = TemplateVersion(
        name=name, version=(latest or 0) + 1, body=body, style=style, note=note.strip()[:500], author=actor.username
    )
    try:
        with session.begin_nested():  # a save racing this one took the number: only this insert is undone
            session.add(version)
    except IntegrityError:
        raise PromptError(f"Someone saved {name}@{version.version} a moment ago; reload and save again.") from None
    audit(session, actor, "template.save", version.ref, note=version.note)
    _point(session, actor, name, DRAFT, version.version, "saved")
    if latest is None:
        _point(session, actor, name, PRODUCTION, version.version, "first version of a new template")
    return version


def move_label(*, session: Session, actor: Actor, name: str, label: str, version: int, note: str = "") -> TemplateLabel:
    """Point `label` of template `name` at `version`: moving production ships or rolls back."""
    require(actor, "edit_templates")
    label = label.strip().lower()
    if label not in LABELS:
        raise PromptError(f"The label must be one of: {', '.join(LABELS)} (got '{label}').")
    target = get_version(session=session, name=name, version=version)
    if target is None:
        raise PromptError(f"There is no template version {name}@{version}.")
    pointer = session.get(TemplateLabel, (name, label))
    if pointer is not None and pointer.version == version:
        raise PromptError(f"{label} already points at {target.ref}.")
    return _point(session, actor, name, label, version, note.strip()[:500])


def _point(session: Session, actor: Actor, name: str, label: str, version: int, note: str) -> TemplateLabel:
    pointer = session.get(TemplateLabel, (name, label))
    before = pointer.version if pointer is not None else None
    if pointer is None:
        pointer = TemplateLabel(name=name, label=label, version=version, moved_by=actor.username)
    pointer.version, pointer.moved_by, pointer.moved_at = version, actor.username, utcnow()
    session.add(pointer)
    session.add(
        TemplateLabelMove(
            name=name, label=label, from_version=before, to_version=version, actor=actor.username, note=note
        )
    )
    audit(session, actor, "template.label", name, label=label, from_version=before, to_version=version, note=note)
    session.flush()
    return pointer


def set_category_template(*, session: Session, actor: Actor, category: str, template: str | None) -> str:
    """Make `category` use `template`'s production version; None (or default) puts it back on default.
    Returns the template the category uses now."""
    require(actor, "edit_templates")
    category = category.strip()
    if not category:
        raise PromptError("Choose a category.")
    if template is not None:
        template, pin = parse_ref(template)
        if pin is not None:
            raise PromptError(
                "A category uses a template's production version; give the name only, then move "
                "its production label to choose the version."
            )
    current = session.get(CategoryTemplate, category)
    previous = current.template if current is not None else None
    if template is None or template == DEFAULT_TEMPLATE_NAME:
        if current is not None:
            session.delete(current)
    else:
        resolve(session=session, ref=template)  # an unknown template, or one with no production, fails here
        current = current or CategoryTemplate(category=category, template=template, set_by=actor.username)
        current.template, current.set_by, current.set_at = template, actor.username, utcnow()
        session.add(current)
    audit(session, actor, "template.category", category, old=previous, new=template)
    session.flush()
    return template or DEFAULT_TEMPLATE_NAME
