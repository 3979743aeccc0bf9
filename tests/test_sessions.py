"""The server-side session store: hashed ids, one-time tickets, idle and absolute expiry, ending sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from aixchange_images import auth, sessions
from aixchange_images.auth_models import BrowserSession
from aixchange_images.models import User, utcnow

PASSWORD = "correct horse"


def add_user(engine, username: str = "alice", role: str = "admin") -> int:
    with Session(engine) as session:
        user = auth.add_user(session=session, actor=auth.CLI_ACTOR, username=username, password=PASSWORD, role=role)
        session.commit()
        return user.id


def start(engine, settings, username: str = "alice", now=None) -> sessions.Started:
    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == username)).one()
        started = sessions.start(
            session=session, settings=settings, actor=auth.Actor(user.username, user.role, user.id), now=now
        )
        session.commit()
    return started


def hand_over(engine, ticket: str, browser: str | None = None, now=None) -> sessions.HandedOver | None:
    with Session(engine) as session:
        handed = sessions.hand_over(session=session, ticket=ticket, browser=browser, now=now)
        session.commit()
    return handed


def signed_in_browser(engine, settings, username: str = "alice", browser: str | None = None, now=None):
    started = start(engine, settings, username, now)
    return started, hand_over(engine, started.ticket, browser, now)


def everything_stored(engine) -> str:
    """Every row of every table, as text."""
    with engine.connect() as conn:
        rows = [
            repr(tuple(row))
            for table in SQLModel.metadata.sorted_tables
            for row in conn.execute(text(f'SELECT * FROM "{table.name}"'))
        ]
    return "\n".join(rows)


def test_the_database_holds_no_piece_of_a_session_ticket_or_browser_id(engine, settings):
    add_user(engine)
    started, handed = signed_in_browser(engine, settings)
    stored = everything_stored(engine)
    for secret in (started.ticket, handed.token, handed.browser):
        assert len(secret) >= 43  # 256 random bits
        assert not [secret[i : i + 8] for i in range(len(secret) - 7) if secret[i : i + 8] in stored]
    assert sessions.digest(handed.token) in stored  # what is kept instead


def test_a_handed_over_cookie_resumes_its_user_and_a_made_up_one_nobody(engine, settings):
    user_id = add_user(engine)
    started, handed = signed_in_browser(engine, settings)
    by_cookie = sessions.resume(engine, settings, token=handed.token)
    assert by_cookie == auth.Actor("alice", "admin", user_id)
    assert by_cookie.session_id == started.actor.session_id
    assert sessions.resume(engine, settings, token=sessions.new_secret()) is None
    assert sessions.resume(engine, settings, token="") is None


def test_a_ticket_is_traded_once_and_only_while_it_lasts(engine, settings):
    add_user(engine)
    now = utcnow()
    started = start(engine, settings, now=now)
    assert hand_over(engine, started.ticket, now=now + sessions.TICKET_LIFETIME) is None  # too late
    fresh = start(engine, settings, now=now)
    assert hand_over(engine, fresh.ticket, now=now + timedelta(seconds=5)) is not None
    assert hand_over(engine, fresh.ticket, now=now + timedelta(seconds=6)) is None  # spent
    assert hand_over(engine, "not-a-ticket") is None


def test_a_session_left_idle_ends_and_activity_moves_the_limit_on(engine, settings):
    add_user(engine)
    now = utcnow()
    idle = timedelta(hours=settings.session_idle_hours)
    _, handed = signed_in_browser(engine, settings, now=now)
    later = now + idle - timedelta(minutes=5)
    assert sessions.resume(engine, settings, token=handed.token, now=later) is not None  # used: the limit moves on
    assert sessions.resume(engine, settings, token=handed.token, now=later + idle - timedelta(minutes=1)) is not None
    gone = later + idle - timedelta(minutes=1) + idle
    assert sessions.resume(engine, settings, token=handed.token, now=gone) is None
    with Session(engine) as session:
        assert session.exec(select(BrowserSession)).all() == []  # an ended session is deleted


def test_a_session_ends_at_its_absolute_end_however_busy(engine, settings):
    add_user(engine)
    now = utcnow()
    _, handed = signed_in_browser(engine, settings, now=now)
    moment = now
    end = now + timedelta(days=settings.session_max_days)
    while moment + timedelta(hours=1) < end:  # a run every hour, never idle
        moment += timedelta(hours=1)
        assert sessions.resume(engine, settings, token=handed.token, now=moment) is not None
    assert sessions.resume(engine, settings, token=handed.token, now=end) is None


def test_the_cookie_lasts_until_the_sessions_absolute_end(engine, settings):
    add_user(engine)
    _, handed = signed_in_browser(engine, settings)
    assert abs(handed.max_age - settings.session_max_days * 86400) < 5


def test_signing_out_ends_the_users_sessions_in_that_browser_only(engine, settings):
    add_user(engine)
    add_user(engine, "bob", "manager")
    _, first = signed_in_browser(engine, settings)
    browser = first.browser
    _, second = signed_in_browser(engine, settings, browser=browser)  # another tab signed in again
    _, bobs = signed_in_browser(engine, settings, "bob", browser=browser)  # someone else, same browser
    _, elsewhere = signed_in_browser(engine, settings)  # alice on another machine
    with Session(engine) as session:
        sessions.end(session=session, token=second.token)
        session.commit()
    assert sessions.resume(engine, settings, token=first.token) is None
    assert sessions.resume(engine, settings, token=second.token) is None
    assert sessions.resume(engine, settings, token=bobs.token) is not None
    assert sessions.resume(engine, settings, token=elsewhere.token) is not None


def test_a_signed_in_tab_is_out_once_its_session_ends_before_the_cookie_was_handed_over(engine, settings):
    add_user(engine)
    started = start(engine, settings)  # the page has not traded its ticket yet
    assert sessions.resume(engine, settings, session_id=started.actor.session_id) is not None
    with Session(engine) as session:
        sessions.end(session=session, session_id=started.actor.session_id)
        session.commit()
    assert sessions.resume(engine, settings, session_id=started.actor.session_id) is None
    assert hand_over(engine, started.ticket) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda s: auth.set_disabled(session=s, actor=auth.CLI_ACTOR, username="bob", disabled=True),
        lambda s: auth.set_role(session=s, actor=auth.CLI_ACTOR, username="bob", role="product"),
    ],
    ids=["disabled", "role changed"],
)
def test_disabling_a_user_or_changing_their_role_ends_their_sessions(engine, settings, change):
    add_user(engine)
    add_user(engine, "bob", "manager")
    _, bobs_cookie = signed_in_browser(engine, settings, "bob")
    bobs_tab = start(engine, settings, "bob").actor.session_id
    _, alices = signed_in_browser(engine, settings)
    with Session(engine) as session:
        change(session)
        session.commit()
    assert sessions.resume(engine, settings, token=bobs_cookie.token) is None
    assert sessions.resume(engine, settings, session_id=bobs_tab) is None
    assert sessions.resume(engine, settings, token=alices.token) is not None


def test_saving_the_same_role_again_keeps_the_users_sessions(engine, settings):
    add_user(engine, "bob", "manager")
    _, bobs = signed_in_browser(engine, settings, "bob")
    with Session(engine) as session:
        auth.set_role(session=session, actor=auth.CLI_ACTOR, username="bob", role="manager")
        session.commit()
    assert sessions.resume(engine, settings, token=bobs.token) is not None


def test_a_known_browser_keeps_its_id_and_an_unknown_id_is_never_adopted(engine, settings):
    add_user(engine)
    _, first = signed_in_browser(engine, settings)
    _, again = signed_in_browser(engine, settings, browser=first.browser)
    assert again.browser is None  # the browser keeps the id it has
    _, planted = signed_in_browser(engine, settings, browser="chosen-by-someone-else")
    assert planted.browser not in (None, "chosen-by-someone-else")
    with Session(engine) as session:
        user_id = session.exec(select(User.id).where(User.username == "alice")).one()
        assert sessions.browser_known(session=session, browser=first.browser, user_id=user_id)
        assert not sessions.browser_known(session=session, browser="chosen-by-someone-else", user_id=user_id)
