"""The tables behind signing in: browser sessions, sign-in throttles and known browsers.

Every secret a browser holds (a session id, a known-browser id, a one-time hand-over ticket) is
stored here only as its SHA-256, and every throttle only as the SHA-256 of what it counts (an
address or a typed username, which may be a password typed in the wrong box).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from .models import utcnow


class BrowserSession(SQLModel, table=True):
    """A signed-in browser. Its cookie holds a random id; this row holds the id's hash and the expiries."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    token_hash: str | None = Field(default=None, unique=True, max_length=64)  # None until the cookie is handed over
    ticket_hash: str | None = Field(default=None, unique=True, max_length=64)  # the one-time hand-over ticket
    ticket_expires_at: datetime | None = None
    browser_hash: str | None = Field(default=None, index=True, max_length=64)  # the known-browser id it came from
    method: str = Field(default="password", max_length=16)  # password | setup | oidc
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime  # the absolute end, whatever the activity


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted for one client address, one typed username or one known browser."""

    key_hash: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    last_failure_at: datetime = Field(default_factory=utcnow, index=True)
    blocked_until: datetime | None = None


class KnownBrowser(SQLModel, table=True):
    """A browser a user has signed in from: its own throttle, so strangers' failures never lock it out."""

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(primary_key=True, foreign_key="user.id", ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime = Field(default_factory=utcnow)
