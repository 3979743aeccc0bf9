"""Streamlit glue shared by the pages: cached engine and settings, the gate, cards, messages.

The library never imports streamlit; everything Streamlit-specific lives here and in pages/.
"""

from __future__ import annotations

import base64
import html
import io
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import streamlit as st
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session

from aixchange_images import admin, auth, budget, deliveries, recovery, sessions, wording
from aixchange_images.auth import Actor
from aixchange_images.config import Settings, UserError, load_settings
from aixchange_images.db import session_scope
from aixchange_images.engines import get_engine

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent
PAGES = [  # (file, title, icon, permission to see it)
    ("pages/overview.py", "Overview", ":material/dashboard:", "view"),
    ("pages/solutions.py", "Solutions", ":material/inventory_2:", "view"),
    ("pages/solution.py", "Solution", ":material/history:", "view"),
    ("pages/generate.py", "Generate", ":material/auto_awesome:", "generate"),
    ("pages/jobs.py", "Jobs", ":material/work_history:", "view"),
    ("pages/review.py", "Review", ":material/fact_check:", "review"),
    ("pages/metrics.py", "Metrics", ":material/monitoring:", "view"),
    ("pages/prompt_studio.py", "Prompt Studio", ":material/edit_note:", "edit_templates"),
    ("pages/marketplace.py", "Marketplace", ":material/storefront:", "manage"),
    ("pages/settings.py", "Settings", ":material/settings:", "manage"),
]


@st.cache_resource(show_spinner=False)
def base_settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def engine() -> Engine:
    """One engine per server; on a fresh install, announce the one-time set-up token."""
    eng = get_engine(base_settings())
    for done in recovery.recover(eng, base_settings()):  # publications a killed process left half done
        print(f"  {done.sentence()}", file=sys.stderr, flush=True)
    with Session(eng) as session:
        if not auth.has_users(session=session):
            token = auth.setup_token(base_settings())
            path = base_settings().data_dir / auth.SETUP_TOKEN_FILE
            print(
                f"\n  AIXchange Images set-up token: {token}\n  (also in {path}; it creates the first admin)\n",
                file=sys.stderr,
                flush=True,
            )
    return eng


def settings() -> Settings:
    """The environment's settings with the admins' overrides (one small query)."""
    with Session(engine()) as session:
        return admin.effective_settings(session=session, settings=base_settings())


@contextmanager
def db(write: bool = False) -> Iterator[Session]:
    with session_scope(engine(), write=write) as session:
        yield session
    if write:  # an approval, rollback or upload reaches the marketplace's row now, or waits in the outbox
        deliveries.deliver_waiting(engine(), settings())


SIGNED_OUT_NOTICE = "You were signed out (elsewhere, after a while away, or because your account changed)."


def current_actor() -> Actor | None:
    """The signed-in user as the database has them now, from this tab's session or the browser's cookie.

    Checked on every run: a session signed out in another tab, idle or past its end, or whose user was
    disabled or given another role, signs this tab out here.
    """
    remembered: Actor | None = st.session_state.get("actor")
    token = None if remembered or st.session_state.get("signed_out") else browser_cookie(sessions.SESSION_COOKIE)
    if remembered is None and token is None:
        return None
    session_id = remembered.session_id if remembered else None
    fresh = sessions.resume(engine(), base_settings(), session_id=session_id, token=token)
    if fresh is None:
        st.session_state.pop("actor", None)
        st.session_state["signed_out"] = True  # the cookie this tab was opened with is spent too
        st.session_state["clear_cookie"] = token is not None  # a spent cookie is cleared (see gate.cookie_script)
        if remembered is not None:
            st.session_state["signed_out_notice"] = SIGNED_OUT_NOTICE
    elif fresh != remembered:
        st.session_state["actor"] = fresh
    return fresh


def browser_cookie(name: str) -> str | None:
    """A cookie the browser sent when this tab connected (HttpOnly ones too: the server reads them)."""
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) else None


def page_path(path: str) -> str:
    """A page file as Streamlit wants it: absolute, since the main script lives in dashboard/."""
    return str(ROOT / path)


def guard(permission: str = "view") -> Actor:
    """A page's first line: stop with a clear message unless the user may be here."""
    actor = current_actor()
    if actor is None:
        st.warning("Sign in to use AIXchange Images.")
        st.stop()
    if not actor.can(permission):
        st.error(f"Your role ({actor.role}) does not give access to this page.")
        st.stop()
    budget_banner(actor)
    return actor


def budget_banner(actor: Actor) -> None:
    if actor.role not in ("admin", "manager"):
        return
    with Session(engine()) as session:
        state = budget.budget_state(session=session, settings=settings())
    for alert in state.alerts:
        st.warning(literal(alert), icon=":material/savings:")


# Every ASCII punctuation character may be backslash-escaped in CommonMark, and then reads as itself:
# no link, image, emphasis, code, heading, list, HTML, `$` maths, `:red[...]`, `:material/...:` or
# emoji. Streamlit still turns URLs, www. names and e-mail addresses whose domain has a dot into links
# after that (GFM's autolinks), so an invisible word joiner (U+2060) goes where such a link would start.
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_AUTOLINK_STARTS = re.compile(r"(?i)(?<=://)(?=[\w-]+\.)|(?<=www)(?=\.)|(?=@[\w-]+\.)")
WORD_JOINER = "\u2060"


def literal(text: object) -> str:
    """`text` exactly as written (on one line), for any Streamlit element that reads Markdown
    (st.markdown, st.caption, st.error, st.toast, labels...): what people typed never becomes a link
    or an image. Titles, categories, reasons, notes and URLs come from people and other systems."""
    one_line = " ".join(str(text if text is not None else "").split())
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _AUTOLINK_STARTS.sub(WORD_JOINER, one_line))


def md(template: str, *values: object) -> str:
    """Markdown `template` with each `{}` filled by a value shown literally: `md("Editing **{}**", title)`."""
    return template.format(*(literal(v) for v in values))


def read(action: Callable[[], T]) -> T | None:
    """A read that may refuse (a template that does not render, a check that cannot run): its user
    error is one sentence on the page, shown literally; nothing is cleared or toasted."""
    try:
        return action()
    except UserError as exc:
        st.error(literal(wording.plain_error(str(exc))), icon=":material/error:")
        return None


def failure_line(title: str, kind: str | None, error: str | None) -> None:
    """One failed generation while a batch runs: the solution's title and why, in words."""
    why = ": ".join(part for part in (wording.error_kind(kind), wording.plain_error(error)) if part)
    st.markdown(":red[✗] " + md("{} — {}", title, why))


def attempt(action: Callable[[], T], success: str | None = None) -> T | None:
    """Run a library action; a user error becomes one sentence on the page, nothing else.

    Both sentences are shown literally: an error may quote a title or a file name."""
    try:
        result = action()
    except UserError as exc:
        st.error(literal(wording.plain_error(str(exc))), icon=":material/error:")
        return None
    st.cache_data.clear()
    if success:
        st.toast(literal(success), icon=":material/check_circle:")
    return result


@st.cache_data(show_spinner=False, max_entries=2000)
def thumb_uri(data_dir: str, rel_path: str | None, edge: int = 96) -> str | None:
    """A small data: URI of a stored thumbnail for tables (made once per file, then cached)."""
    if not rel_path:
        return None
    path = Path(data_dir) / rel_path
    try:
        with Image.open(path) as img:
            img.thumbnail((edge, edge))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def thumb_bytes(rel_path: str | None) -> bytes | None:
    if not rel_path:
        return None
    try:
        return (base_settings().data_dir / rel_path).read_bytes()
    except OSError:
        return None


# The marketplace's SolutionCard shows the title first, then the image in a `w-full h-48` box with
# object-cover (about 350x192 in its three-column grid), then the category chip.
CARD_ASPECT = "350 / 192"


def card(title: str, category: str, thumb_rel: str | None, footer: str = "") -> None:
    """A candidate as the marketplace card shows it, cropped the same way."""
    uri = thumb_uri(str(base_settings().data_dir), thumb_rel, 480)
    box = f"width:100%;aspect-ratio:{CARD_ASPECT};border-radius:8px;border:1px solid #e5e7eb;display:block"
    image = (
        f'<img src="{uri}" alt="" style="{box};object-fit:cover">'
        if uri
        else f'<div style="{box};background:#e5e7eb;display:flex;align-items:center;justify-content:center;'
        'color:#6b7280">no image</div>'
    )
    st.html(
        '<div style="border:1px solid #e5e7eb;border-radius:12px;padding:14px;background:#fff;'
        'box-shadow:0 1px 3px rgba(0,0,0,.06)">'
        f'<div style="font-weight:600;font-size:1.05rem;color:#4f46e5;margin-bottom:10px">{html.escape(title)}</div>'
        f'{image}<div style="margin-top:10px;font-size:.8rem;color:#6b7280">Category: '
        f'<span style="background:#eef2ff;color:#4f46e5;padding:1px 6px;border-radius:4px">{html.escape(category)}'
        f'</span></div><div style="font-size:.78rem;color:#6b7280;margin-top:6px">{html.escape(footer)}</div></div>'
    )


money = wording.money  # one way to write an amount everywhere: $0, <$0.01, $0.04, $12.50, $1,234


def page_link(path: str, label: str, icon: str | None = None, query_params: dict[str, str] | None = None) -> None:
    """A link to a page the user may open (with `?key=value` for a deep link); nothing for pages
    their role cannot see. The label is markdown: pass user text through `literal`."""
    actor: Actor | None = st.session_state.get("actor")  # the page's guard has just reloaded it
    permission = next((p for f, _, _, p in PAGES if f == path), "view")
    if actor is not None and actor.can(permission):
        st.page_link(page_path(path), label=label, icon=icon, query_params=query_params)


def pager(key: str, total: int, size: int, narrow: bool = True) -> int:
    """A page picker for a table; returns the offset. `narrow` keeps it small in a wide layout."""
    pages = max(1, -(-total // size))
    if pages == 1:
        return 0
    column = st.columns([1, 4])[0] if narrow else st.container()
    page = column.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1, step=1, key=key)
    return (int(page) - 1) * size


def write(action: Callable[[Session], T], success: str | None = None) -> T | None:
    """Run one library action in a write transaction and commit it; a user error becomes one sentence."""

    def run() -> T:
        with db(write=True) as session:
            out = action(session)
            session.commit()
            return out

    return attempt(run, success)


def conflict_panel(conflict: dict, actor: Actor) -> None:
    """A marketplace conflict: the image we meant the card to show, the one it shows, and the way out.

    Their URL is shown as text, never loaded: it may point anywhere.
    """
    with st.container(border=True):
        st.text(conflict["title"])
        ours, theirs = st.columns(2)
        ours.caption("Ours (approved here)")
        if thumb := thumb_bytes(conflict.get("ours_thumb")):
            ours.image(thumb, width=240)
        ours.text(conflict["ours"] or "no image")
        theirs.caption("The marketplace's now")
        theirs.text(conflict["theirs"] or "no image")
        if not actor.can("review"):
            return
        keep, use = st.columns(2)
        key = conflict["delivery_id"]
        if keep.button("Keep theirs", key=f"keep-theirs-{key}", width="stretch"):
            done = write(
                lambda s: deliveries.keep_theirs(session=s, settings=settings(), delivery_id=key, actor=actor),
                "Kept the marketplace's image.",
            )
            if done is not None:
                st.rerun()
        if use.button("Use ours", key=f"use-ours-{key}", type="primary", width="stretch"):
            done = write(lambda s: deliveries.use_ours(session=s, delivery_id=key, actor=actor), "Sent ours.")
            if done is not None:
                st.rerun()


# -- a message that outlives the rerun an action ends with -----------------------------------------
def flash(message: str) -> None:
    """Show `message` as a toast on the next run (an action's st.rerun would swallow it now)."""
    st.session_state["flash"] = message


def show_flash() -> None:
    if message := st.session_state.pop("flash", None):
        st.toast(message, icon=":material/check_circle:")
