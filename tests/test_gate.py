"""The router and its gate through AppTest of the server's main script: links, sign-in, sign-out, the cookie hand-over."""

from __future__ import annotations

import re

from conftest import MAIN_SCRIPT, ROOT, DashboardTest, app_test
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from aixchange_images import auth, sessions
from aixchange_images.auth_models import BrowserSession

PASSWORD = "correct horse"


def add_user(engine, username: str = "alice", role: str = "admin") -> None:
    with Session(engine) as session:
        auth.add_user(session=session, actor=auth.CLI_ACTOR, username=username, password=PASSWORD, role=role)
        session.commit()


def opened_at(page: str) -> AppTest:
    """A new tab opened at /<page> (before its first run a page is named by its file's name)."""
    at = DashboardTest(MAIN_SCRIPT, default_timeout=60)
    at.switch_page(f"pages/{page}.py")
    return at.run()


def sign_in(at: AppTest, username: str = "alice") -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(PASSWORD)
    return at.button[0].click().run()


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def scripts(at: AppTest) -> str:
    return " ".join(h.proto.body for h in at.get("html"))


def test_the_servers_first_request_for_a_page_goes_through_the_gate(engine):
    add_user(engine)
    at = opened_at("settings")
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert not [w for w in at.warning if "Sign in to use" in w.value]  # no page file ran, only the router


def test_beside_pages_streamlit_would_serve_the_page_file_itself(engine):
    """Why the main script lives in dashboard/: run from beside pages/, Streamlit's old multipage mode
    serves pages/settings.py directly, router and gate skipped (only the page's own guard stops it)."""
    add_user(engine)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/settings.py")
    at.run()
    assert any("Sign in to use" in w.value for w in at.warning)
    assert not at.text_input


def test_a_link_followed_while_signed_out_lands_on_its_page_after_sign_in(engine):
    add_user(engine)
    at = sign_in(opened_at("metrics"))
    assert not at.exception
    assert "Metrics" in titles(at)


def test_a_link_to_a_page_the_role_cannot_see_says_so_after_sign_in(engine):
    add_user(engine)
    add_user(engine, "mia", "manager")
    at = sign_in(opened_at("settings"), "mia")
    assert not at.exception
    assert any("(manager) does not give access to Settings" in e.value for e in at.error)
    assert "Settings" not in titles(at)


def test_signing_in_hands_the_browser_its_cookie_through_a_one_time_ticket(engine):
    add_user(engine)
    at = sign_in(app_test().run())
    script = scripts(at)
    assert '"/_aix/session"' in script and "ticket=" in script
    ticket = script.split("ticket=")[1].split('"')[0]
    with Session(engine) as session:
        [row] = session.exec(select(BrowserSession)).all()
    assert row.ticket_hash == sessions.digest(ticket) and row.id == at.session_state["actor"].session_id
    assert "ticket=" not in scripts(at.run())  # handed over once


def test_the_sign_in_form_has_the_browser_load_the_chart_and_table_code_meanwhile(engine):
    add_user(engine)
    at = app_test().run()

    assert not at.exception
    script = scripts(at)
    assert re.search(r'import\("/static/js/PlotlyChart\.[\w-]+\.js"\)', script)
    assert re.search(r'import\("/static/js/DataFrame\.[\w-]+\.js"\)', script)
    assert "import(" not in scripts(sign_in(at))  # signed in: the pages load what they use


def test_signing_out_ends_the_session_and_has_the_server_clear_the_cookie(engine):
    add_user(engine)
    at = sign_in(app_test().run())
    session_id = at.session_state["actor"].session_id
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert '"/_aix/sign-out"' in scripts(at)
    with Session(engine) as session:
        assert session.get(BrowserSession, session_id) is None


def test_a_tab_is_signed_out_at_its_next_run_once_its_session_ends_elsewhere(engine):
    add_user(engine)
    at = sign_in(app_test().run())
    with Session(engine) as session:  # another tab of the same browser signed out
        sessions.end(session=session, session_id=at.session_state["actor"].session_id)
        session.commit()
    at.run()
    assert "actor" not in at.session_state
    assert any("You were signed out" in w.value for w in at.warning)


def test_pages_name_page_files_from_the_repository_root():
    """Streamlit resolves a relative page path against the main script's folder, dashboard/, where no
    pages/ is: a literal "pages/x.py" given to Streamlit fails there. ui.page_path and ui.page_link do it right."""
    literal = re.compile(r"st\.(switch_page|page_link|Page)\(\s*f?[\"']")
    sources = [ROOT / "app.py", ROOT / "ui.py", ROOT / "gate.py", *sorted((ROOT / "pages").glob("*.py"))]
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []
