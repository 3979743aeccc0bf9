"""The dashboard's router: the sign-in gate, then the pages the user's role may see.

Streamlit runs it through dashboard/main.py (`streamlit run dashboard/server.py`), whose folder has
no pages/ beside it, so Streamlit never starts in its old pages/ discovery: every run routes here.
"""

from __future__ import annotations

import streamlit as st

import gate
import jobs_panel
import ui
from aixchange_images import auth, sessions

st.set_page_config(page_title="AIXchange Images", page_icon=":material/image:", layout="wide")


def sign_in_page() -> None:
    st.title("AIXchange Images")
    with ui.db() as session:
        first_run = not auth.has_users(session=session)
    if first_run:
        setup_form()
        return
    st.caption("Generate, review and publish solution images.")
    if refused := gate.single_sign_on():
        sso_refused(refused)
    if notice := st.session_state.pop("signed_out_notice", None):
        st.warning(notice, icon=":material/person_off:")
    with st.form("sign-in", border=True):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        st.error(gate.password_sign_in(username, password))
    if gate.sso_configured() and st.button("Sign in with single sign-on", icon=":material/badge:"):
        st.login()
    gate.cookie_script()
    gate.preload_script()


def sso_refused(refusal: str) -> None:
    st.error(refusal, icon=":material/person_off:")
    st.text(f"Your provider signed you in as {gate.sso_identity().get('email') or 'someone with no email'}.")
    if st.button("Sign out of single sign-on"):
        st.logout()


def setup_form() -> None:
    path = ui.base_settings().data_dir / auth.SETUP_TOKEN_FILE
    st.info(
        "First run: create the first admin. The server printed a one-time **set-up token** to its log "
        f"and wrote it to `{path}`. Or run `python -m aixchange_images users add NAME --role admin`.",
        icon=":material/key:",
    )
    with st.form("setup"):
        token = st.text_input("Set-up token", type="password")
        username = st.text_input("Username")
        password = st.text_input("Password", type="password", help="At least 8 characters.")
        submitted = st.form_submit_button("Create admin", type="primary")
    if submitted:
        with ui.db(write=True) as session:
            started = ui.attempt(
                lambda: sessions.start(
                    session=session,
                    settings=ui.base_settings(),
                    actor=auth.claim_setup(
                        session=session, settings=ui.base_settings(), token=token, username=username, password=password
                    ),
                    method="setup",
                )
            )
            if started is None:
                return
            session.commit()
        gate.signed_in(started)


def sidebar(actor: auth.Actor) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{actor.username}** ({actor.role})")
        if st.button("Sign out", icon=":material/logout:"):
            gate.sign_out(actor)
        gate.cookie_script()
        jobs_panel.sidebar_panel()  # running jobs, live, on every page


ui.engine()  # build the engine (and announce a set-up token) once per server
actor = ui.current_actor()  # from the database on every run: a session ended anywhere signs this tab out
if actor is None:
    # Every page's URL is routed, to the sign-in form, so a link lands on its page once signed in.
    navigation = st.navigation(gate.signed_out_pages(sign_in_page), position="hidden")
else:
    navigation = st.navigation(gate.signed_in_pages(actor))
    sidebar(actor)
navigation.run()
