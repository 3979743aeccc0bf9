"""Single sign-on in a real Chromium against a local OpenID Connect provider (tests/oidc_standin.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from oidc_standin import OIDCStandIn
from test_browser import _wait_until, streamlit_server
from test_browser_sessions import PASSWORD, ROOT, cookies_handed_over, expect_sign_in_form, new_tab, sign_in

pytestmark = pytest.mark.browser


def add_user(env: dict[str, str], username: str, role: str, *email: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "aixchange_images", "users", "add", username, "--role", role, *email],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def sso_server(tmp_path: Path):
    """The dashboard with Streamlit's [auth] pointing at the stand-in provider; yields (url, provider)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    add_user(env, "admin", "admin")
    add_user(env, "ana", "manager", "--email", "ana@example.com")
    with OIDCStandIn() as idp:
        secrets = tmp_path / ".streamlit" / "secrets.toml"  # the server's working directory's
        secrets.parent.mkdir()
        secrets.write_text(
            "[auth]\n"
            'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            'cookie_secret = "a-cookie-secret-for-the-test-only"\n'
            f'client_id = "{idp.client_id}"\n'
            f'client_secret = "{idp.client_secret}"\n'
            f'server_metadata_url = "{idp.metadata_url}"\n'
        )
        with streamlit_server(tmp_path, env) as url:
            idp.redirect_uris.add(f"{url}/oauth2callback")
            yield url, idp


def test_a_known_identity_signs_in_stays_in_across_tabs_and_signs_out(sso_server, browser):
    from playwright.sync_api import expect

    url, idp = sso_server
    idp.identity = {"sub": "ana-1", "email": "ana@example.com", "email_verified": True, "name": "Ana"}
    context = browser.new_context()
    page = new_tab(context, url)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    expect(page.get_by_text("Signed in as")).to_contain_text("ana (manager)")
    assert idp.authorizations == 1
    cookies_handed_over(context)
    page.reload()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    other = new_tab(context, f"{url}/metrics")
    expect(other.get_by_role("heading", name="Metrics")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect_sign_in_form(page)
    other.get_by_role("link", name="Overview").first.click()
    expect_sign_in_form(other)
    expect_sign_in_form(new_tab(context, url))  # neither our cookie nor the provider's identity signs it in
    assert idp.authorizations == 1
    names = {"aix_session", "_streamlit_user"}
    _wait_until(lambda: not names & {c["name"] for c in context.cookies()}, 30, "both identity cookies to go")


def test_an_unknown_identity_is_told_to_ask_an_admin_and_the_local_admin_still_signs_in(sso_server, browser):
    from playwright.sync_api import expect

    url, idp = sso_server
    idp.identity = {"sub": "zed-9", "email": "zed@example.com", "email_verified": True}
    page = new_tab(browser.new_context(), url)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    expect(page.get_by_text("ask an admin to add you")).to_be_visible()
    expect(page.get_by_text("Your provider signed you in as zed@example.com.")).to_be_visible()
    sign_in(page)  # the local admin, with a password
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_contain_text("admin (admin)")
