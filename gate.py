"""The sign-in gate's Streamlit glue: the pages a run may route to, signing in and out, the cookie hand-over.

Streamlit's websocket cannot set a cookie, so after a sign-in the page trades a one-time ticket for
an HttpOnly session cookie at POST /_aix/session, and after a sign-out asks POST /_aix/sign-out to
clear it (dashboard/server.py serves both). The tab itself stays signed in by its session's id in
session_state, checked against the database on every run like the cookie is.

With single sign-on configured (Streamlit's [auth] secrets), a fresh `st.login` identity starts the
same kind of session, mapped to a user by email (sessions.sign_in_external).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import streamlit as st

import ui
from aixchange_images import auth, sessions
from aixchange_images.auth import Actor
from aixchange_images.db import session_scope


def url_path(path: str) -> str:
    return Path(path).stem


def signed_out_pages(sign_in_page: Callable[[], None]) -> list:
    """Every page's URL, each showing the sign-in form: a link to /review lands on the form, then on Review."""
    return [
        st.Page(sign_in_page, title="Sign in", icon=":material/login:", url_path=url_path(path), default=index == 0)
        for index, (path, _, _, _) in enumerate(ui.PAGES)
    ]


def signed_in_pages(actor: Actor) -> list:
    """The pages the actor's role may see; the others' URLs say so instead of 'Page not found'."""
    pages = []
    for path, title, icon, permission in ui.PAGES:
        if actor.can(permission):
            pages.append(st.Page(ui.page_path(path), title=title, icon=icon, url_path=url_path(path)))
        else:
            pages.append(st.Page(_not_for(actor, title), title=title, url_path=url_path(path), visibility="hidden"))
    return pages


def _not_for(actor: Actor, title: str) -> Callable[[], None]:
    def page() -> None:
        st.error(f"Your role ({actor.role}) does not give access to {title}.")

    page.__name__ = f"not_for_{actor.role}"
    return page


def client_address() -> str:
    """The address this tab connected from ('local' on this machine): what the per-client throttle counts."""
    address = st.context.ip_address
    return address if isinstance(address, str) else "local"


def password_sign_in(username: str, password: str) -> str:
    """Sign in with a password: reruns the app signed in, or returns the refusal sentence."""
    with session_scope(ui.engine(), write=True) as session:
        try:
            started = sessions.sign_in(
                session=session,
                settings=ui.base_settings(),
                username=username,
                password=password,
                client=client_address(),
                browser=ui.browser_cookie(sessions.BROWSER_COOKIE),
            )
        except auth.AuthError as refused:
            session.commit()  # the failure's count must stick
            return str(refused)
        session.commit()
    signed_in(started)


SSO_FRESH_SECONDS = 600  # how long after signing in at the provider that sign-in is taken here


def sso_configured() -> bool:
    """Single sign-on is on when the secrets hold Streamlit's [auth] section (st.login's provider)."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def sso_identity() -> dict | None:
    """What the provider said when st.login last signed this browser in (its id_token's claims), or None."""
    if not sso_configured() or not st.user.is_logged_in:
        return None
    return {key: st.user.get(key) for key in ("email", "email_verified", "iat")}


def single_sign_on() -> str | None:
    """Sign in as the identity a fresh st.login brought back (reruns signed in), or say why not.

    Only a sign-in at the provider in the last minutes counts, and never in a tab whose session just
    ended: our own session's expiry and sign-out are not undone by Streamlit's identity cookie.
    """
    identity = sso_identity()
    iat = identity.get("iat") if identity else None
    if not isinstance(iat, int | float) or time.time() - iat > SSO_FRESH_SECONDS or st.session_state.get("signed_out"):
        return None
    email, verified = identity.get("email"), identity.get("email_verified")
    with session_scope(ui.engine(), write=True) as session:
        try:
            started = sessions.sign_in_external(
                session=session,
                settings=ui.base_settings(),
                email=email if isinstance(email, str) else None,
                verified=verified if isinstance(verified, bool) else None,
            )
        except auth.AuthError as refused:
            return str(refused)
        session.commit()
    signed_in(started)


def signed_in(started: sessions.Started) -> NoReturn:
    st.session_state["actor"] = started.actor
    st.session_state["cookie_ticket"] = started.ticket
    st.session_state.pop("signed_out", None)
    st.rerun()


def sign_out(actor: Actor) -> NoReturn:
    """End this session (and the user's others in this browser): every tab is out at its next run."""
    with session_scope(ui.engine(), write=True) as session:
        sessions.end(session=session, session_id=actor.session_id)
        session.commit()
    st.session_state.pop("actor", None)
    st.session_state.pop("cookie_ticket", None)
    st.session_state["signed_out"] = True
    st.session_state["clear_cookie"] = True
    if sso_identity() is not None:
        st.logout()  # the page goes to Streamlit's /auth/logout, which deletes its identity cookie, and reloads
        st.stop()  # (a rerun now would drop that redirect); our own cookie is worthless already
    st.rerun()


def cookie_script() -> None:
    """After a sign-in, hand the browser its cookie; after a sign-out, have the server clear it."""
    base = "/" + (st.get_option("server.baseUrlPath") or "").strip("/")
    if ticket := st.session_state.pop("cookie_ticket", None):
        call = _post(base.rstrip("/") + "/_aix/session", f"ticket={ticket}")
    elif st.session_state.pop("clear_cookie", False):
        call = _post(base.rstrip("/") + "/_aix/sign-out", "")
    else:
        return
    st.html(f"<script>{call}</script>", unsafe_allow_javascript=True)


def _post(url: str, body: str) -> str:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    options = {"method": "POST", "credentials": "same-origin", "headers": headers, "body": body}
    return f"fetch({json.dumps(url)}, {json.dumps(options)});"


# The browser fetches and compiles an element's code the first time a page shows one: plotly.js (4.7 MB)
# for the first chart, the data grid (1.3 MB) for the first table. On a busy 2-core machine that took
# the first page after signing in ~1 s past its run. The sign-in form asks for both while it waits.
CHART_CODE = "/PlotlyChart/PlotlyChart.tsx"  # keys in Streamlit's build manifest
TABLE_CODE = "_DataFrame."


def preload_script() -> None:
    """Have the browser load Streamlit's chart and table code now, when idle, as it would on first use."""
    base = "/" + (st.get_option("server.baseUrlPath") or "").strip("/")
    urls = [base.rstrip("/") + "/" + file for file in _client_code()]
    if urls:
        load = "".join(f"import({json.dumps(url)}).catch(() => {{}});" for url in urls)
        script = f"<script>(window.requestIdleCallback || setTimeout)(() => {{ {load} }});</script>"
        st.html(script, unsafe_allow_javascript=True)


@functools.cache
def _client_code() -> tuple[str, ...]:
    """The files of the chart and table code in this Streamlit's build; none if its manifest moved."""
    try:
        manifest = json.loads((Path(st.__file__).parent / "static" / "manifest.json").read_text())
    except (OSError, ValueError):
        return ()
    wanted = [
        key for key in manifest if key.endswith(CHART_CODE) or (key.startswith(TABLE_CODE) and key.endswith(".js"))
    ]
    return tuple(manifest[key]["file"] for key in wanted)
