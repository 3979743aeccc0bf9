"""Signing in with a password under throttles: backoff, one sentence for every refusal, no lockout of the admin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import Session, select

from aixchange_images import auth, sessions, throttle
from aixchange_images.auth_models import SignInThrottle
from aixchange_images.models import AuditEvent, utcnow

PASSWORD = "correct horse"
ATTACKER = "203.0.113.9"
ADMIN_DESK = "198.51.100.7"
REFUSED = re.compile(
    r"The username or password is wrong, or too many attempts were made; try again( in \d+ seconds?)?\."
)


@pytest.fixture
def admin(engine):
    with Session(engine) as session:
        auth.add_user(session=session, actor=auth.CLI_ACTOR, username="root", password=PASSWORD, role="admin")
        session.commit()


def attempt(engine, settings, username, password, client, now, browser=None) -> str | sessions.Started:
    """One sign-in; the refusal's sentence, or the started session."""
    with Session(engine) as session:
        try:
            started = sessions.sign_in(
                session=session,
                settings=settings,
                username=username,
                password=password,
                client=client,
                browser=browser,
                now=now,
            )
        except auth.AuthError as refused:
            session.commit()
            assert REFUSED.fullmatch(str(refused)), str(refused)
            return str(refused)
        session.commit()
        return started


def wait_in(sentence: str) -> int:
    found = re.search(r"in (\d+) second", sentence)
    return int(found.group(1)) if found else 0


def test_the_wait_doubles_from_the_fifth_failure_and_stops_at_fifteen_minutes():
    waits = [throttle.backoff(n).total_seconds() for n in range(1, 18)]
    assert waits[:4] == [0, 0, 0, 0]
    assert waits[4:9] == [1, 2, 4, 8, 16]
    assert max(waits) == 900 and waits[-1] == 900


def test_the_only_admin_gets_in_once_the_backoff_has_passed(engine, settings, admin):
    now = utcnow()
    for _ in range(12):  # someone guesses from the admin's own address until it waits 128 s
        refused = attempt(engine, settings, "root", "guess", ADMIN_DESK, now)
        now += timedelta(seconds=wait_in(refused))
    assert wait_in(refused) == 128
    assert isinstance(attempt(engine, settings, "root", PASSWORD, ADMIN_DESK, now - timedelta(seconds=1)), str)
    assert isinstance(attempt(engine, settings, "root", PASSWORD, ADMIN_DESK, now), sessions.Started)


def test_attempts_during_a_wait_are_refused_without_making_it_longer(engine, settings, admin):
    now = utcnow()
    for _ in range(9):
        refused = attempt(engine, settings, "root", "guess", ATTACKER, now)
        now += timedelta(seconds=wait_in(refused))
    assert wait_in(refused) == 16
    for second in range(16):  # a guess every second of the wait
        assert wait_in(attempt(engine, settings, "root", "guess", ATTACKER, now - timedelta(seconds=16 - second))) > 0
    assert isinstance(attempt(engine, settings, "root", PASSWORD, ATTACKER, now), sessions.Started)


def test_strangers_failing_forever_never_keep_the_admin_out_of_a_browser_they_signed_in_from(engine, settings, admin):
    now = utcnow()
    first = attempt(engine, settings, "root", PASSWORD, ADMIN_DESK, now)
    with Session(engine) as session:
        browser = sessions.hand_over(session=session, ticket=first.ticket, now=now).browser
        session.commit()
    for n in range(20):  # guesses from ever new addresses, each the moment the name's wait ends
        refused = attempt(engine, settings, "root", "guess", f"203.0.113.{n}", now)
        now += timedelta(seconds=wait_in(refused))
    later = now - timedelta(seconds=1)
    assert auth.account_wait(session=Session(engine), username="root", now=later) > 0  # the name is held
    assert isinstance(attempt(engine, settings, "root", PASSWORD, ADMIN_DESK, later, browser=browser), sessions.Started)
    refused = attempt(engine, settings, "root", PASSWORD, "192.0.2.50", later)  # a new browser waits its turn
    assert wait_in(refused) > 0


def test_an_unknown_name_is_refused_and_throttled_exactly_like_a_real_one(engine, settings, admin):
    now = utcnow()
    real = [attempt(engine, settings, "root", "guess", "192.0.2.1", now + timedelta(minutes=i)) for i in range(8)]
    unknown = [attempt(engine, settings, "nobody", "guess", "192.0.2.2", now + timedelta(minutes=i)) for i in range(8)]
    assert real == unknown
    assert wait_in(real[-1]) > 0


def test_a_disabled_user_with_the_right_password_gets_the_same_sentence(engine, settings, admin):
    with Session(engine) as session:
        auth.add_user(session=session, actor=auth.CLI_ACTOR, username="ex", password=PASSWORD, role="manager")
        auth.set_disabled(session=session, actor=auth.CLI_ACTOR, username="ex", disabled=True)
        session.commit()
    now = utcnow()
    assert attempt(engine, settings, "ex", PASSWORD, "192.0.2.1", now) == attempt(
        engine, settings, "nobody", PASSWORD, "192.0.2.2", now
    )


def test_a_check_for_an_unknown_name_costs_an_argon2_hash_like_a_real_one():
    hasher = PasswordHasher()
    dummy = auth._dummy_hash()
    assert dummy.startswith("$argon2id$") and not hasher.check_needs_rehash(dummy)  # the same parameters
    assert auth.check_password(None, "anything") is False


def test_the_throttles_never_store_what_was_typed_or_the_address(engine, settings, admin):
    typed = "correct-horse-typed-in-the-wrong-box"
    attempt(engine, settings, typed, "x", ATTACKER, utcnow())
    with Session(engine) as session:
        keys = session.exec(select(SignInThrottle.key_hash)).all()
    assert sorted(keys) == sorted([throttle.account_key(typed), throttle.client_key(ATTACKER)])
    assert not [k for k in keys if typed in k or ATTACKER in k]


def test_a_success_forgets_the_names_failures_but_not_the_addresss(engine, settings, admin):
    now = utcnow()
    for _ in range(4):
        attempt(engine, settings, "root", "typo", ADMIN_DESK, now)
    attempt(engine, settings, "root", PASSWORD, ADMIN_DESK, now)
    with Session(engine) as session:
        assert session.get(SignInThrottle, throttle.account_key("root")) is None
        assert session.get(SignInThrottle, throttle.client_key(ADMIN_DESK)).failures == 4


def test_failures_are_forgotten_after_a_day_without_one(engine, settings, admin):
    now = utcnow()
    for _ in range(6):
        attempt(engine, settings, "root", "guess", ATTACKER, now)
    assert throttle.wait_seconds(session=Session(engine), keys=[throttle.client_key(ATTACKER)], now=now) > 0
    refused = attempt(engine, settings, "root", "guess", ATTACKER, now + timedelta(days=1, seconds=1))
    assert wait_in(refused) == 0  # counted from zero again


def test_unlock_lets_a_new_browser_try_the_name_at_once_and_is_audited(engine, settings, admin):
    now = utcnow()
    for n in range(12):
        attempt(engine, settings, "root", "guess", f"203.0.113.{n}", now)
    assert auth.account_wait(session=Session(engine), username="root", now=now) > 0
    with Session(engine) as session:
        assert auth.unlock(session=session, actor=auth.CLI_ACTOR, username="root") == 1
        session.commit()
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.target == "root")).all()
    assert "user.unlock" in actions and "user.throttled" in actions
    assert isinstance(attempt(engine, settings, "root", PASSWORD, "192.0.2.80", now), sessions.Started)


def test_unlock_needs_an_admin_and_a_real_user(engine, admin):
    with Session(engine) as session:
        with pytest.raises(auth.AuthError, match="There is no user called ghost"):
            auth.unlock(session=session, actor=auth.CLI_ACTOR, username="ghost")
        with pytest.raises(auth.PermissionDenied):
            auth.unlock(session=session, actor=auth.Actor("mia", "manager"), username="root")
