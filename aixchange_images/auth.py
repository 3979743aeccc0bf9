"""Users, passwords, roles and what each role may do; the audit log."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from . import throttle
from .auth_models import BrowserSession, KnownBrowser
from .config import Settings, UserError
from .db import take_lock
from .models import AuditEvent, Role, User, utcnow

SETUP_TOKEN_FILE = "setup-token"
_EMAIL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.@_+-")

# What each role may do (product.md's table); every service function checks it.
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset({Role.admin, Role.product, Role.manager}),
    "generate": frozenset({Role.admin, Role.product}),
    "edit_templates": frozenset({Role.admin, Role.product}),
    "review": frozenset({Role.admin}),  # approve, reject, roll back, upload, publish
    "edit_catalogue": frozenset({Role.admin}),
    "manage": frozenset({Role.admin}),  # settings, budgets, prices, users, audit log
}
_hasher = PasswordHasher()


class PermissionDenied(UserError, PermissionError):
    """The actor's role may not do this; the message says who may."""


class AuthError(UserError, ValueError):
    """Sign-in or user management refused; one sentence for a person."""


@dataclass(frozen=True)
class Actor:
    username: str
    role: str
    user_id: int | None = None  # the User row behind a signed-in actor; None for the CLI and set-up
    session_id: int | None = field(default=None, compare=False)  # the browser session that signed them in

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS.get(permission, frozenset())


CLI_ACTOR = Actor("cli", Role.admin)  # whoever has a shell on the server is its administrator
# The drop-in image service: publishes like the marketplace's route did (its operator chose to run it).
SERVICE_ACTOR = Actor("service", Role.admin)

_ACTIONS = {
    "generate": "generate images",
    "edit_templates": "edit prompt templates",
    "review": "approve, reject, roll back or upload images",
    "edit_catalogue": "change the catalogue",
    "manage": "change settings, budgets, prices or users",
}


def require(actor: Actor, permission: str) -> None:
    if not actor.can(permission):
        allowed = " or ".join(sorted(PERMISSIONS[permission]))
        raise PermissionDenied(
            f"The {actor.role} role may not {_ACTIONS.get(permission, permission)}; ask an {allowed}."
        )


def audit(session: Session, actor: Actor, action: str, target: str | None = None, **detail: Any) -> None:
    session.add(AuditEvent(actor=actor.username, action=action, target=target, detail=detail))


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise AuthError("The password must be at least 8 characters long.")


def add_user(
    *, session: Session, actor: Actor, username: str, password: str, role: str, email: str | None = None
) -> User:
    """A new user; `email`, when given, is the identity single sign-on signs them in with."""
    require(actor, "manage")
    username = username.strip()
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise AuthError("A username is 1-64 letters, digits, '.', '-' or '_'.")
    if role not in Role.__members__:
        raise AuthError(f"The role must be admin, product or manager, not '{role}'.")
    _check_password(password)
    if session.exec(select(User).where(func.lower(User.username) == username.lower())).first():
        raise AuthError(f"A user called {username} exists already.")
    user = User(username=username, password_hash=_hasher.hash(password), role=role, email=_email(session, email))
    session.add(user)
    audit(session, actor, "user.add", username, role=role, email=user.email)
    session.flush()
    return user


def set_email(*, session: Session, actor: Actor, username: str, email: str | None) -> User:
    """The email single sign-on maps to this user (blank: none); a change ends their sessions."""
    require(actor, "manage")
    user = _get_user(session, username)
    new = _email(session, email, owner=user.id)
    if new != user.email:
        audit(session, actor, "user.email", username, old=user.email, new=new)
        end_sessions(session, user.id)
        user.email = new
        session.add(user)
    return user


def user_with_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def _email(session: Session, email: str | None, owner: int | None = None) -> str | None:
    email = (email or "").strip().lower()
    if not email:
        return None
    local, at, domain = email.partition("@")
    if len(email) > 254 or not (local and at and "." in domain) or "@" in domain or not _EMAIL_CHARS.issuperset(email):
        raise AuthError("An email is name@domain.example (letters, digits and . _ + - only), at most 254 characters.")
    holder = session.exec(select(User.id).where(User.email == email)).first()
    if holder is not None and holder != owner:
        raise AuthError("Another user has that email already.")
    return email


def list_users(*, session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.username)).all())


def set_role(*, session: Session, actor: Actor, username: str, role: str) -> User:
    require(actor, "manage")
    take_lock(session, "users")  # two admins demoting each other must not leave none
    user = _get_user(session, username)
    if role not in Role.__members__:
        raise AuthError(f"The role must be admin, product or manager, not '{role}'.")
    if user.role == Role.admin and role != Role.admin and _admin_count(session) <= 1:
        raise AuthError("That is the last admin; make another user admin first.")
    audit(session, actor, "user.role", username, old=user.role, new=role)
    if role != user.role:
        end_sessions(session, user.id)  # they sign in again, into what the new role may see
    user.role = role
    session.add(user)
    return user


def set_disabled(*, session: Session, actor: Actor, username: str, disabled: bool) -> User:
    require(actor, "manage")
    take_lock(session, "users")  # two admins demoting each other must not leave none
    user = _get_user(session, username)
    if disabled and user.role == Role.admin and _admin_count(session) <= 1:
        raise AuthError("That is the last admin; make another user admin first.")
    user.disabled = disabled
    session.add(user)
    if disabled:
        end_sessions(session, user.id)
    audit(session, actor, "user.disable" if disabled else "user.enable", username)
    return user


def _get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise AuthError(f"There is no user called {username}.")
    return user


def _admin_count(session: Session) -> int:
    query = select(func.count()).select_from(User).where(User.role == Role.admin, col(User.disabled).is_(False))
    return int(session.exec(query).one())


def check_password(user: User | None, password: str) -> bool:
    """Whether `password` is this user's. With no user it spends the same time on a dummy hash, so
    the time taken never tells whether a username exists."""
    try:
        return _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def user_named(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username.strip())).first()


def unlock(*, session: Session, actor: Actor, username: str) -> int:
    """Forget a user's failed sign-ins (their name's and their known browsers' waits); audited.

    Returns how many throttles were counting. Addresses that failed stay throttled."""
    require(actor, "manage")
    user = _get_user(session, username)
    keys = [throttle.account_key(user.username)]
    browsers = session.exec(select(KnownBrowser.token_hash).where(KnownBrowser.user_id == user.id)).all()
    keys += [throttle.browser_key(b) for b in browsers]
    cleared = throttle.clear(session=session, keys=keys)
    audit(session, actor, "user.unlock", user.username, cleared=cleared)
    return cleared


def account_wait(*, session: Session, username: str, now: datetime | None = None) -> int:
    """Seconds before a new browser may try this username again (0: now)."""
    return throttle.wait_seconds(session=session, keys=[throttle.account_key(username)], now=now or utcnow())


def end_sessions(session: Session, user_id: int | None) -> int:
    """Sign a user out everywhere (their role changed, they were disabled or removed)."""
    result = session.execute(delete(BrowserSession).where(col(BrowserSession.user_id) == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def load_actor(*, session: Session, actor: Actor) -> Actor | None:
    """A signed-in actor as the database has them now (one primary-key lookup); None when disabled,
    deleted, or the id now belongs to someone else (SQLite reuses the highest id after a delete)."""
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None or user.disabled or user.username != actor.username:
        return None
    return Actor(user.username, user.role, user.id)


def has_users(*, session: Session) -> bool:
    return session.exec(select(User.id).limit(1)).first() is not None


def setup_token(settings: Settings) -> str:
    """The one-time token that lets the first admin be created from the browser (Jenkins-style)."""
    path = settings.data_dir / SETUP_TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def claim_setup(*, session: Session, settings: Settings, token: str, username: str, password: str) -> Actor:
    """Create the first admin when `token` matches the setup token; the token is then spent."""
    if has_users(session=session):
        raise AuthError("Set-up is finished: an admin exists already. Sign in instead.")
    path = settings.data_dir / SETUP_TOKEN_FILE
    expected = path.read_text().strip() if path.is_file() else ""
    if not expected or not hmac.compare_digest(expected.encode(), token.strip().encode()):
        raise AuthError(f"That set-up token is wrong; the server printed it to its log and wrote it to {path}.")
    setup_actor = Actor("setup", Role.admin)
    user = add_user(session=session, actor=setup_actor, username=username, password=password, role=Role.admin)
    path.unlink(missing_ok=True)
    return Actor(user.username, user.role, user.id)
