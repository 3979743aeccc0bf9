"""Sign-in throttles: failed attempts counted per key, with an exponential wait after the first few.

A key is the SHA-256 of what it counts (a client address, a typed username, a known browser), so a
password typed into the username box never reaches the database. Attempts made during a wait are
refused without being counted: a wait always ends, at most `MAX_WAIT` after the last failure.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from .auth_models import SignInThrottle

FREE_FAILURES = 4  # failures with no wait; the 5th waits 1 s, the 6th 2 s, the 7th 4 s ...
MAX_WAIT = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=24)  # a key with no failure for this long starts from zero


def key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def client_key(address: str) -> str:
    return key("client", address)


def account_key(username: str) -> str:
    """The typed username's key, whether or not such a user exists (case-insensitive, as usernames are)."""
    return key("account", username.strip().lower())


def browser_key(browser_hash: str) -> str:
    return key("browser", browser_hash)


def backoff(failures: int) -> timedelta:
    """The wait after `failures` failures in a row."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    doublings = min(failures - FREE_FAILURES - 1, 30)  # past the cap long before; keeps the number small
    return min(timedelta(seconds=2**doublings), MAX_WAIT)


def wait_seconds(*, session: Session, keys: Iterable[str], now: datetime) -> int:
    """Whole seconds until every key lets an attempt through (0: now)."""
    waits = [0]
    for name in keys:
        row = session.get(SignInThrottle, name)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            waits.append(math.ceil((row.blocked_until - now).total_seconds()))
    return max(waits)


def record_failure(*, session: Session, keys: Iterable[str], now: datetime) -> int:
    """Count a failure against each key; returns the wait (seconds) it now imposes."""
    wait = timedelta(0)
    for name in keys:
        row = _row(session, name)
        if now - row.last_failure_at > FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        row.blocked_until = now + backoff(row.failures) if row.failures > FREE_FAILURES else None
        session.add(row)
        wait = max(wait, backoff(row.failures))
    _forget_old(session, now)
    return math.ceil(wait.total_seconds())


def clear(*, session: Session, keys: Iterable[str]) -> int:
    """Forget the failures of these keys; returns how many were waiting or counting."""
    result = session.execute(delete(SignInThrottle).where(col(SignInThrottle.key_hash).in_(list(keys))))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _row(session: Session, name: str) -> SignInThrottle:
    row = session.get(SignInThrottle, name)
    if row is not None:
        return row
    try:
        with session.begin_nested():  # a parallel attempt may create it first
            row = SignInThrottle(key_hash=name, failures=0)
            session.add(row)
        return row
    except IntegrityError:
        return session.get(SignInThrottle, name, populate_existing=True)  # type: ignore[return-value]


def _forget_old(session: Session, now: datetime) -> None:
    """Keys nobody failed for a day are dropped, so typed-in names do not pile up."""
    session.execute(delete(SignInThrottle).where(col(SignInThrottle.last_failure_at) < now - FORGET_AFTER))
