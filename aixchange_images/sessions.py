"""Browser sessions: what keeps a dashboard user signed in across reloads and tabs, and what ends it.

A browser holds only random ids (256 bits): the session id and a long-lived known-browser id, both in
HttpOnly cookies that the dashboard's server sets (see dashboard/server.py). The database holds only
their SHA-256, with each session's idle and absolute expiry, checked on every run. Sign-in happens
over Streamlit's websocket, which cannot set a cookie: it starts a session with a one-time ticket
(hashed here too, valid for two minutes) that the page trades for the cookie over plain HTTP.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Executable, delete, false, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from . import throttle
from .auth import Actor, AuthError, audit, check_password, user_named, user_with_email
from .auth_models import BrowserSession, KnownBrowser
from .config import Settings
from .db import session_scope
from .models import User, utcnow

SESSION_COOKIE = "aix_session"
BROWSER_COOKIE = "aix_browser"
BROWSER_COOKIE_DAYS = 365
TICKET_LIFETIME = timedelta(minutes=2)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often
SIGN_IN_FORM = Actor("sign-in", "manager")  # who the audit log says throttled a name


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits


@dataclass(frozen=True)
class Started:
    actor: Actor  # carries the new session's id
    ticket: str  # trade it for the cookie: POST /_aix/session


@dataclass(frozen=True)
class HandedOver:
    token: str  # the session cookie's value
    max_age: int  # seconds until the session's absolute end
    browser: str | None  # a new known-browser id to set, or None to keep the browser's own


def refusal(wait: int) -> str:
    """The one sentence for every refused sign-in: unknown name, wrong password, disabled, or waiting."""
    when = f" in {wait} second{'s' if wait != 1 else ''}" if wait > 0 else ""
    return f"The username or password is wrong, or too many attempts were made; try again{when}."


def sign_in(
    *,
    session: Session,
    settings: Settings,
    username: str,
    password: str,
    client: str,
    browser: str | None = None,
    now: datetime | None = None,
) -> Started:
    """Check a password sign-in under the throttles and start a session; the caller commits either way.

    A browser the user signed in from before counts its failures alone, so nobody else's failures
    (from any address, against this name) can keep the user out. Any other browser counts against
    its client address and the typed name. Refusals raise AuthError with `refusal(wait)`.
    """
    now = now or utcnow()
    user = user_named(session, username)
    trusted = user is not None and browser_known(session=session, browser=browser, user_id=user.id)
    keys = [throttle.browser_key(digest(browser or ""))] if trusted else []
    keys = keys or [throttle.client_key(client), throttle.account_key(username)]
    if wait := throttle.wait_seconds(session=session, keys=keys, now=now):
        raise AuthError(refusal(wait))
    if not check_password(user, password) or user is None or user.disabled:
        wait = throttle.record_failure(session=session, keys=keys, now=now)
        if user is not None and wait and not trusted:
            audit(session, SIGN_IN_FORM, "user.throttled", user.username, client=client, wait=wait)
        raise AuthError(refusal(wait))
    throttle.clear(session=session, keys=keys[-1:])  # the browser's or the name's count; never the address's
    user.last_login_at = now
    session.add(user)
    return start(session=session, settings=settings, actor=Actor(user.username, user.role, user.id), now=now)


SSO_REFUSED = "No user of AIXchange Images signs in with that identity; ask an admin to add you."


def sign_in_external(
    *, session: Session, settings: Settings, email: str | None, verified: bool | None, now: datetime | None = None
) -> Started:
    """Start a session for a single sign-on identity: the provider's email names the user (never one it
    says is unverified). Unknown or disabled: AuthError(SSO_REFUSED). The caller commits."""
    now = now or utcnow()
    user = user_with_email(session, email) if email and verified is not False else None
    if user is None or user.disabled:
        raise AuthError(SSO_REFUSED)
    user.last_login_at = now
    session.add(user)
    actor = Actor(user.username, user.role, user.id)
    return start(session=session, settings=settings, actor=actor, method="oidc", now=now)


def start(
    *, session: Session, settings: Settings, actor: Actor, method: str = "password", now: datetime | None = None
) -> Started:
    """A new session for a user who just proved who they are. The caller commits."""
    now = now or utcnow()
    ticket = new_secret()
    row = BrowserSession(
        user_id=actor.user_id,
        ticket_hash=digest(ticket),
        ticket_expires_at=now + TICKET_LIFETIME,
        method=method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=settings.session_max_days),
    )
    session.add(row)
    session.flush()
    _forget_expired(session, settings, now)
    return Started(replace(actor, session_id=row.id), ticket)


def hand_over(
    *, session: Session, ticket: str, browser: str | None = None, now: datetime | None = None
) -> HandedOver | None:
    """Trade a session's one-time ticket for its cookie id (once, within its lifetime). The caller commits."""
    now = now or utcnow()
    token = new_secret()
    claimed = session.execute(
        update(BrowserSession)
        .where(col(BrowserSession.ticket_hash) == digest(ticket), col(BrowserSession.ticket_expires_at) > now)
        .values(ticket_hash=None, ticket_expires_at=None, token_hash=digest(token))
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.exec(select(BrowserSession).where(BrowserSession.token_hash == digest(token))).one()
    known = browser if browser and _browser_exists(session, digest(browser)) else None
    browser_id = known or new_secret()
    _remember_browser(session, digest(browser_id), row.user_id, now)
    row.browser_hash = digest(browser_id)
    session.add(row)
    return HandedOver(token, int((row.expires_at - now).total_seconds()), None if known else browser_id)


def resume(
    engine: Engine,
    settings: Settings,
    *,
    session_id: int | None = None,
    token: str | None = None,
    now: datetime | None = None,
) -> Actor | None:
    """The signed-in user behind a session (by its id, or a cookie's value) as the database has them now.

    None when the session is unknown, idle or past its end, or its user is disabled or gone; such a
    session is deleted. A live one's last_seen_at moves on (at most once a minute). Reads in one
    transaction and writes, when it must, in a short one of its own (a page run seldom writes).
    """
    now = now or utcnow()
    with Session(engine) as session:
        row = _find(session, session_id, token)
        if row is None:
            return None
        user = session.get(User, row.user_id)
    idle = timedelta(hours=settings.session_idle_hours)
    if user is None or user.disabled or now >= row.expires_at or now >= row.last_seen_at + idle:
        _write(engine, delete(BrowserSession).where(col(BrowserSession.id) == row.id))
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        _write(engine, update(BrowserSession).where(col(BrowserSession.id) == row.id).values(last_seen_at=now))
    return Actor(user.username, user.role, user.id, session_id=row.id)


def _write(engine: Engine, statement: Executable) -> None:
    with session_scope(engine, write=True) as session:
        session.execute(statement)
        session.commit()


def end(*, session: Session, session_id: int | None = None, token: str | None = None) -> int:
    """Sign out: this session and every other of its user from the same browser. The caller commits."""
    row = _find(session, session_id, token)
    if row is None:
        return 0
    same_browser = col(BrowserSession.browser_hash) == row.browser_hash if row.browser_hash else false()
    result = session.execute(
        delete(BrowserSession).where(
            or_(col(BrowserSession.id) == row.id, (col(BrowserSession.user_id) == row.user_id) & same_browser)
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def browser_known(*, session: Session, browser: str | None, user_id: int | None) -> bool:
    """Whether this browser id is one `user_id` signed in from before."""
    if not browser or user_id is None:
        return False
    return session.get(KnownBrowser, (digest(browser), user_id)) is not None


def known_browser_hashes(*, session: Session, user_id: int) -> list[str]:
    return list(session.exec(select(KnownBrowser.token_hash).where(KnownBrowser.user_id == user_id)).all())


def _find(session: Session, session_id: int | None, token: str | None) -> BrowserSession | None:
    if session_id is not None:
        return session.get(BrowserSession, session_id)
    if token:
        return session.exec(select(BrowserSession).where(BrowserSession.token_hash == digest(token))).first()
    return None


def _browser_exists(session: Session, browser_hash: str) -> bool:
    return session.exec(select(KnownBrowser.user_id).where(KnownBrowser.token_hash == browser_hash)).first() is not None


def _remember_browser(session: Session, browser_hash: str, user_id: int, now: datetime) -> None:
    row = session.get(KnownBrowser, (browser_hash, user_id)) or KnownBrowser(
        token_hash=browser_hash, user_id=user_id, created_at=now
    )
    row.last_used_at = now
    session.add(row)


def _forget_expired(session: Session, settings: Settings, now: datetime) -> None:
    """Sessions past their end or idle limit, and tickets never traded, go (signing in is a fine moment)."""
    idle = timedelta(hours=settings.session_idle_hours)
    session.execute(
        delete(BrowserSession).where(
            or_(
                col(BrowserSession.expires_at) <= now,
                col(BrowserSession.last_seen_at) <= now - idle,
            )
        )
    )
