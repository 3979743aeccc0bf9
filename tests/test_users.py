"""Users from a shell and from Settings: `users list` for people, `users unlock`, the Unlock button."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conftest import open_page
from sqlmodel import Session, select
from test_cli import run

from aixchange_images import auth, throttle
from aixchange_images.auth import Actor
from aixchange_images.models import AuditEvent, User, utcnow


def add_user(engine, username: str, role: str = "admin", signed_in: datetime | None = None) -> None:
    with Session(engine) as session:
        user = auth.add_user(
            session=session, actor=auth.CLI_ACTOR, username=username, password="long enough", role=role
        )
        user.last_login_at = signed_in
        session.commit()


def throttle_name(engine, username: str, failures: int = 10) -> None:
    with Session(engine) as session:
        for _ in range(failures):
            throttle.record_failure(session=session, keys=[throttle.account_key(username)], now=utcnow())
        session.commit()


def test_users_list_prints_a_table_for_people(engine, capsys):
    add_user(engine, "alice", signed_in=datetime(2026, 11, 30, 9, 5, 42, tzinfo=UTC))
    add_user(engine, "mia", "manager")
    throttle_name(engine, "mia")

    code, out, _ = run(capsys, "users", "list")

    assert code == 0
    assert "datetime" not in out and "None" not in out
    header, alice, mia, total = out.strip().splitlines()
    assert header.split() == ["USERNAME", "ROLE", "EMAIL", "STATUS", "LAST", "SIGN-IN"]
    assert alice.split() == ["alice", "admin", "-", "active", "2026-11-30", "09:05", "UTC"]
    assert mia.startswith("mia") and "waits" in mia and "users unlock" in mia and mia.endswith("never")
    assert total == "2 user(s)"


def test_users_list_json_gives_iso_dates_and_the_wait(engine, capsys):
    add_user(engine, "alice", signed_in=datetime(2026, 11, 30, 9, 5, 42, tzinfo=UTC))
    code, out, _ = run(capsys, "users", "list", "--json")
    (listed,) = json.loads(out)["users"]
    assert listed["last_login_at"].startswith("2026-11-30T09:05:42") and listed["sign_in_wait_seconds"] == 0


def test_users_unlock_lets_the_name_be_tried_again_and_is_audited(engine, capsys):
    add_user(engine, "alice")
    throttle_name(engine, "alice")

    code, out, err = run(capsys, "users", "unlock", "alice")

    assert (code, err) == (0, "")
    assert out.strip() == "alice may sign in again now (1 throttle(s) cleared)."
    with Session(engine) as session:
        assert auth.account_wait(session=session, username="alice") == 0
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "user.unlock")).one()
    assert (event.actor, event.target) == ("cli", "alice")


def test_users_unlock_of_an_unknown_user_exits_2_with_one_sentence(engine, capsys):
    add_user(engine, "alice")
    code, out, err = run(capsys, "users", "unlock", "ghost")
    assert (code, out) == (2, "")
    assert err.strip() == "error: There is no user called ghost."
    with Session(engine) as session:
        assert not session.exec(select(AuditEvent).where(AuditEvent.action == "user.unlock")).all()


def test_the_settings_unlock_button_lets_a_throttled_user_try_again(engine):
    add_user(engine, "mia", "manager")
    throttle_name(engine, "mia")
    at = open_page("settings", Actor("alice", "admin"))
    frame = at.dataframe[0].value
    assert frame.set_index("Username").loc["mia", "Status"].startswith("a new browser waits")
    at.selectbox(key="change-user").select("mia").run()
    next(b for b in at.button if b.label == "Unlock sign-in").click().run()
    assert not at.exception
    with Session(engine) as session:
        assert auth.account_wait(session=session, username="mia") == 0
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "user.unlock")).one()
        assert session.exec(select(User.username).where(User.username == "mia")).one() == event.target
    assert event.actor == "alice"
    assert at.dataframe[0].value.set_index("Username").loc["mia", "Status"] == "active"


def test_users_add_and_users_email_set_the_single_sign_on_identity(engine, capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough\n"))
    code, out, _ = run(capsys, "users", "add", "ana", "--role", "manager", "--email", "Ana@Example.com", "--json")
    assert (code, json.loads(out)) == (0, {"username": "ana", "role": "manager", "email": "ana@example.com"})
    code, out, _ = run(capsys, "users", "email", "ana", "ana@corp.example")
    assert (code, out.strip()) == (0, "ana signs in with single sign-on as ana@corp.example.")
    code, out, _ = run(capsys, "users", "email", "ana")
    assert (code, out.strip()) == (0, "ana signs in with single sign-on as nobody (cleared).")
    code, out, err = run(capsys, "users", "email", "ana", "not an email")
    assert (code, out) == (2, "") and err.startswith("error: An email is name@domain.example")
