"""Single sign-on: a provider's identity (its email) maps to a user; unknown ones are told to ask an admin."""

from __future__ import annotations

import time

import pytest
from conftest import app_test
from sqlalchemy import inspect
from sqlmodel import Session, select

from aixchange_images import auth, migrations, sessions
from aixchange_images.auth_models import BrowserSession
from aixchange_images.models import AuditEvent, User

AUTH_SECRETS = {
    "redirect_uri": "http://127.0.0.1:{port}/oauth2callback",
    "cookie_secret": "a-test-cookie-secret",
    "client_id": "aixchange-images",
    "client_secret": "stand-in-client-secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


def add_user(engine, username: str, role: str = "manager", email: str | None = None) -> None:
    with Session(engine) as session:
        auth.add_user(
            session=session, actor=auth.CLI_ACTOR, username=username, password="long enough", role=role, email=email
        )
        session.commit()


def external(engine, settings, email, verified=True):
    with Session(engine) as session:
        started = sessions.sign_in_external(session=session, settings=settings, email=email, verified=verified)
        session.commit()
    return started


def test_a_providers_email_names_its_user_whatever_its_case(engine, settings):
    add_user(engine, "ana", email="Ana@Example.com")
    started = external(engine, settings, "ANA@example.COM")
    assert (started.actor.username, started.actor.role) == ("ana", "manager")
    with Session(engine) as session:
        row = session.get(BrowserSession, started.actor.session_id)
        assert row.method == "oidc" and session.get(User, row.user_id).last_login_at is not None


@pytest.mark.parametrize(
    ("email", "verified"),
    [("nobody@example.com", True), ("ana@example.com", False), (None, True), ("ex@example.com", True)],
    ids=["unknown", "unverified", "no email", "disabled"],
)
def test_an_identity_that_names_no_usable_user_is_told_to_ask_an_admin(engine, settings, email, verified):
    add_user(engine, "ana", email="ana@example.com")
    add_user(engine, "ex", email="ex@example.com")
    with Session(engine) as session:
        auth.set_disabled(session=session, actor=auth.CLI_ACTOR, username="ex", disabled=True)
        session.commit()
    with pytest.raises(auth.AuthError, match="ask an admin to add you"):
        external(engine, settings, email, verified)
    with Session(engine) as session:
        assert session.exec(select(BrowserSession)).all() == []


def test_a_provider_that_does_not_say_whether_the_email_is_verified_is_taken_at_its_word(engine, settings):
    add_user(engine, "ana", email="ana@example.com")
    assert external(engine, settings, "ana@example.com", verified=None).actor.username == "ana"


def test_an_email_is_checked_kept_unique_and_its_change_audited_and_ends_sessions(engine, settings):
    add_user(engine, "ana", email="ana@example.com")
    add_user(engine, "bob")
    started = external(engine, settings, "ana@example.com")
    with Session(engine) as session:
        for bad in ("not-an-email", "a@b", "[x](http://evil)@example.com", "x" * 250 + "@example.com"):
            with pytest.raises(auth.AuthError, match="An email is"):
                auth.set_email(session=session, actor=auth.CLI_ACTOR, username="bob", email=bad)
        with pytest.raises(auth.AuthError, match="Another user has that email already"):
            auth.set_email(session=session, actor=auth.CLI_ACTOR, username="bob", email="ANA@example.com")
        auth.set_email(session=session, actor=auth.CLI_ACTOR, username="ana", email="ana@corp.example")
        session.commit()
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "user.email")).one()
    assert event.detail == {"old": "ana@example.com", "new": "ana@corp.example"}
    assert sessions.resume(engine, settings, session_id=started.actor.session_id) is None


def test_a_database_from_before_sessions_and_sign_on_gains_them(engine):
    with engine.begin() as conn:
        for table in ("browsersession", "knownbrowser", "signinthrottle"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("DROP INDEX ix_user_email")
        conn.exec_driver_sql('ALTER TABLE "user" DROP COLUMN email')
        conn.exec_driver_sql("DELETE FROM schemamigration WHERE version IN (11, 12)")
    assert migrations.migrate(engine) == [11, 12]
    assert migrations.migrate(engine) == []
    assert {"browsersession", "knownbrowser", "signinthrottle"} <= set(inspect(engine).get_table_names())
    assert "ix_user_email" in {i["name"] for i in inspect(engine).get_indexes("user")}


# -- the sign-in page -----------------------------------------------------------------------------------
def with_sso(at, **claims):
    at.secrets["auth"] = AUTH_SECRETS
    if claims:
        at.user = {"is_logged_in": True, "iat": int(time.time()), **claims}
    return at


def test_without_a_provider_the_page_offers_no_single_sign_on(engine):
    add_user(engine, "ana", email="ana@example.com")
    at = app_test().run()
    assert not at.exception and [b.label for b in at.button] == ["Sign in"]


def test_back_from_the_provider_a_known_identity_is_signed_in_and_gets_its_cookie(engine):
    add_user(engine, "ana", email="ana@example.com")
    at = with_sso(app_test(), email="ana@example.com", email_verified=True).run()
    assert not at.exception
    assert at.session_state["actor"].username == "ana"
    assert "Overview" in [t.value for t in at.title]
    assert any("/_aix/session" in h.proto.body for h in at.get("html"))


def test_back_from_the_provider_an_unknown_identity_is_told_to_ask_an_admin_and_shown_literally(engine):
    add_user(engine, "ana", email="ana@example.com")
    at = with_sso(app_test(), email="**mallory**@example.com").run()
    assert not at.exception and "actor" not in at.session_state
    assert any("ask an admin to add you" in e.value for e in at.error)
    assert "Your provider signed you in as **mallory**@example.com." in [t.value for t in at.text]
    assert {"Sign in", "Sign out of single sign-on"} <= {b.label for b in at.button}  # the local admin still can


def test_an_old_sign_in_at_the_provider_is_not_taken_again(engine):
    add_user(engine, "ana", email="ana@example.com")
    at = with_sso(app_test(), email="ana@example.com")
    at.user = {**at.user, "iat": int(time.time()) - 3600}  # our session ended since; the provider's cookie lives on
    at.run()
    assert "actor" not in at.session_state
    assert "Sign in with single sign-on" in [b.label for b in at.button]


def test_signing_out_ends_the_session_and_the_providers_identity(engine):
    add_user(engine, "ana", email="ana@example.com")
    at = with_sso(app_test(), email="ana@example.com").run()
    session_id = at.session_state["actor"].session_id
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert not at.exception and "actor" not in at.session_state
    with Session(engine) as session:
        assert session.get(BrowserSession, session_id) is None
    at.run()
    assert "actor" not in at.session_state  # not signed in again from the provider's identity
