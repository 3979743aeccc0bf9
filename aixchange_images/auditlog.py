"""The audit log as sentences: who did what to which solution, template, user or setting.

One writer per action family (the part of the action before the dot); an action a writer does not
know, or a family nobody wrote for yet, falls back to a plain generic sentence. Solution titles
for a page of events come from one query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from .admin import audit_log
from .auth import Actor, require
from .models import NOT_CHOSEN, REJECT_REASONS, AuditEvent, Solution
from .wording import megabytes, money

SOLUTION_ACTIONS = ("image.", "solution.", "marketplace.keep_theirs", "marketplace.use_ours", "marketplace.adopt")
ROLE_WORDS = {"admin": "an admin", "product": "a product team member", "manager": "a manager"}
SETTING_WORDS = {
    "image_provider": "the default provider",
    "image_model": "the default model",
    "dalle_image_size": "the default image size",
    "dalle_image_quality": "the default quality",
    "dalle_image_format": "the published file format",
    "image_budget_daily_usd": "the daily budget",
    "image_budget_monthly_usd": "the monthly budget",
    "image_budget_alert_share": "the budget alert threshold",
    "image_concurrency": "the number of parallel calls",
    "image_rate_limit_per_minute": "the cap on calls per minute",
    "cleanup_after_days": "the clean-up age",
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    who: str
    sentence: str


def entries(*, session: Session, actor: Actor, offset: int = 0, limit: int = 100) -> list[Entry]:
    """A page of the audit log, newest first, each event as a sentence (admins only)."""
    events = audit_log(session=session, actor=actor, offset=offset, limit=limit)
    titles = solution_titles(session=session, events=events)
    return [Entry(at=e.at, who=e.actor, sentence=sentence(e, titles)) for e in events]


def count(*, session: Session, actor: Actor) -> int:
    """How many events the log holds (admins only)."""
    require(actor, "manage")
    return int(session.exec(select(func.count()).select_from(AuditEvent)).one())


def solution_titles(*, session: Session, events: list[AuditEvent]) -> dict[str, str]:
    """Titles of the solutions these events name, in one query."""
    ids = {e.target for e in events if e.target and e.action.startswith(SOLUTION_ACTIONS)}
    if not ids:
        return {}
    rows = session.exec(select(Solution.id, Solution.title).where(col(Solution.id).in_(ids))).all()
    return dict(rows)


def sentence(event: AuditEvent, titles: dict[str, str]) -> str:
    """What happened, in words; falls back to a generic sentence for actions no writer knows."""
    family, _, verb = event.action.partition(".")
    writer = WRITERS.get(family)
    said = writer(_Said(event, titles), verb) if writer else None
    return said or generic(_Said(event, titles))


@dataclass(frozen=True)
class _Said:
    """An event with its words at hand."""

    event: AuditEvent
    titles: dict[str, str]

    @property
    def who(self) -> str:
        return self.event.actor

    @property
    def target(self) -> str:
        return self.event.target or ""

    @property
    def title(self) -> str:
        """The solution's title now, else the one recorded, else its id."""
        found = self.titles.get(self.target) or self.get("title")
        return str(found) if found else f"solution {self.target}"

    def get(self, key: str, default: Any = None) -> Any:
        return (self.event.detail or {}).get(key, default)


def image(s: _Said, verb: str) -> str | None:
    candidate = f" (candidate {s.get('candidate_id')})" if s.get("candidate_id") is not None else ""
    if verb == "approve":
        return f"{s.who} approved a new image for {s.title}{candidate}"
    if verb == "reject":
        reason = s.get("reason")
        words = "not chosen" if reason == NOT_CHOSEN else REJECT_REASONS.get(reason, reason or "no reason").lower()
        note = f" ({s.get('note')})" if s.get("note") else ""
        return f"{s.who} rejected an image for {s.title}{candidate}: {words}{note}"
    if verb == "rollback":
        to = "its previous image" if s.get("restored") else "no image"
        return f"{s.who} rolled {s.title} back to {to}"
    if verb == "undo":
        return f"{s.who} undid the approval of a new image for {s.title}{candidate}: it waits for review again"
    if verb == "upload":
        return f"{s.who} uploaded the author's own image for {s.title} ({megabytes(s.get('bytes'))})"
    if verb == "recovered":
        if s.get("outcome") == "rolled_forward":
            return f"{s.who}'s interrupted approval of a new image for {s.title}{candidate} was finished"
        return f"{s.who}'s interrupted approval for {s.title} was undone: the solution had moved on"
    return None


def solution(s: _Said, verb: str) -> str | None:
    if verb == "add":
        how = " through the image service" if s.get("origin") == "request" else ""
        return f"{s.who} added the solution {s.title}{how}"
    if verb == "edit":
        return f"{s.who} edited the {s.get('field')} of {s.title}" if s.get("field") else f"{s.who} edited {s.title}"
    return None


def catalogue(s: _Said, verb: str) -> str | None:
    if verb == "import":
        counts = f"{s.get('imported', 0)} new, {s.get('updated', 0)} updated, {s.get('refused', 0)} refused"
        return f"{s.who} imported {s.target or 'a file'}: {counts}"
    if verb == "demo_data":
        return f"{s.who} loaded demo data: {s.get('solutions', 0):,} solutions, {s.get('attempts', 0):,} attempts"
    return None


def setting_value(key: str, value: Any) -> str:
    """A setting's value as people say it; None is the server's own setting."""
    if value is None:
        return "the server's setting"
    if key.startswith("image_budget_") and key.endswith("_usd"):
        return money(value)
    if key == "image_budget_alert_share":
        return f"{float(value):.0%}"
    return str(value)


def settings(s: _Said, verb: str) -> str | None:
    if verb != "change":
        return None
    key = s.target
    old, new = setting_value(key, s.get("old")), setting_value(key, s.get("new"))
    return f"{s.who} changed {SETTING_WORDS.get(key, key)} from {old} to {new}"


def _prices(values: Any) -> str:
    text_in, image_in, image_out = values
    return (
        f"{money(text_in, exact=True)} text in, {money(image_in, exact=True)} image in, "
        f"{money(image_out, exact=True)} image out per 1M tokens"
    )


def price(s: _Said, verb: str) -> str | None:
    if verb != "change":
        return None
    if s.get("old") is None:
        return f"{s.who} set the price of {s.target}: {_prices(s.get('new'))}"
    return f"{s.who} changed the price of {s.target} from {_prices(s.get('old'))} to {_prices(s.get('new'))}"


def user(s: _Said, verb: str) -> str | None:
    if verb == "email":
        new = s.get("new")
        return (
            f"{s.who} set {s.target}'s single sign-on email to {new}"
            if new
            else (f"{s.who} removed {s.target}'s single sign-on email")
        )
    if verb == "throttled":
        return (
            f"Failed sign-ins as {s.target} from {s.get('client') or 'an unknown address'}: "
            f"a new browser now waits {s.get('wait', 0):,} s before trying again"
        )
    said = {
        "add": f"{s.who} added the user {s.target} as {ROLE_WORDS.get(s.get('role'), s.get('role'))}",
        "role": f"{s.who} changed {s.target}'s role from {s.get('old')} to {s.get('new')}",
        "disable": f"{s.who} disabled the user {s.target}",
        "enable": f"{s.who} enabled the user {s.target}",
        "unlock": f"{s.who} unlocked the user {s.target}",
    }
    return said.get(verb)


def template(s: _Said, verb: str) -> str | None:
    note = f": {s.get('note')}" if s.get("note") else ""
    if verb == "save":
        return f"{s.who} saved the template version {s.target}{note}"
    if verb == "label":
        was = f" from v{s.get('from_version')}" if s.get("from_version") else ""
        return f"{s.who} moved {s.target}'s {s.get('label')} label{was} to v{s.get('to_version')}{note}"
    if verb == "category":
        now = s.get("new") or "default"
        return f"{s.who} set {s.target} to use the {now} template (it used {s.get('old') or 'default'})"
    return None


def marketplace(s: _Said, verb: str) -> str | None:
    if verb == "pull":
        counts = f"{s.get('created', 0)} new, {s.get('updated', 0)} updated, {s.get('unchanged', 0)} unchanged"
        problems = f", {len(s.get('errors') or [])} with problems" if s.get("errors") else ""
        return f"{s.who} pulled the marketplace's solutions ({s.target}): {counts}{problems}"
    said = {
        "adopt": f"The image service's solution {s.title} was joined to its marketplace row",
        "keep_theirs": f"{s.who} kept the marketplace's own image for {s.title}",
        "use_ours": f"{s.who} sent our image for {s.title} to the marketplace, replacing theirs",
    }
    return said.get(verb)


def storage(s: _Said, verb: str) -> str | None:
    if verb != "cleanup":
        return None
    return (
        f"{s.who} deleted {s.get('files', 0):,} file(s) of candidates older than {s.get('older_than_days')} days, "
        f"freeing {megabytes(s.get('bytes'))}"
    )


SCHEDULE_WORDS = {
    "nightly_generate": "the nightly generation of missing images (published without review)",
    "marketplace_pull": "the scheduled marketplace pull",
}


def _every(values: dict[str, Any]) -> str:
    """A schedule's timing as people say it: "every day at 02:00 UTC", "every 15 minutes"."""
    every, offset = int(values.get("every_minutes") or 1440), int(values.get("offset_minutes") or 0)
    at = f"{offset // 60:02d}:{offset % 60:02d} UTC"
    if every == 1440:
        return f"every day at {at}"
    if every % 1440 == 0:
        spoken = f"every {every // 1440} days"
    elif every % 60 == 0:
        spoken = "every hour" if every == 60 else f"every {every // 60} hours"
    else:
        spoken = "every minute" if every == 1 else f"every {every} minutes"
    return f"{spoken} from {at}" if offset else spoken


def schedule(s: _Said, verb: str) -> str | None:
    old, new = s.get("old"), s.get("new")
    if verb != "change" or not isinstance(old, dict) or not isinstance(new, dict):
        return None
    name = SCHEDULE_WORDS.get(s.target, f"the schedule {s.target}")
    if not new.get("enabled"):
        return f"{s.who} turned off {name}" if old.get("enabled") else f"{s.who} set {name} to {_every(new)}, still off"
    if not old.get("enabled"):
        return f"{s.who} turned on {name}: {_every(new)}"
    return f"{s.who} changed {name} from {_every(old)} to {_every(new)}"


def generic(s: _Said) -> str:
    """Any other action: who, what (the action's name in words), on what, with its simple details."""
    what = s.event.action.replace(".", " ").replace("_", " ")
    on = f" ({s.title if s.event.action.startswith(SOLUTION_ACTIONS) else s.target})" if s.target else ""
    details = [
        f"{k.replace('_', ' ')} {v}" for k, v in (s.event.detail or {}).items() if isinstance(v, str | int | float)
    ]
    return f"{s.who}: {what}{on}" + (f"; {', '.join(details)}" if details else "")


WRITERS: dict[str, Callable[[_Said, str], str | None]] = {
    "image": image,
    "solution": solution,
    "catalogue": catalogue,
    "settings": settings,
    "price": price,
    "user": user,
    "template": template,
    "marketplace": marketplace,
    "storage": storage,
    "schedule": schedule,
}
