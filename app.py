"""The dashboard's router: the sign-in gate, then the pages the user's role may see."""

from __future__ import annotations

import streamlit as st

import jobs_panel
import ui
from aixchange_images import auth

st.set_page_config(page_title="AIXchange Images", page_icon=":material/image:", layout="wide")


def sign_in_page() -> None:
    st.title("AIXchange Images")
    with ui.db() as session:
        first_run = not auth.has_users(session=session)
    if first_run:
        setup_form()
        return
    st.caption("Generate, review and publish solution images.")
    if notice := st.session_state.pop("signed_out_notice", None):
        st.warning(notice, icon=":material/person_off:")
    with st.form("sign-in", border=True):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        with ui.db(write=True) as session:
            try:
                actor = auth.authenticate(session=session, username=username, password=password)
            except auth.AuthError as exc:
                session.commit()  # the failed-attempt count must stick
                st.error(str(exc))
                return
            session.commit()
        st.session_state["actor"] = actor
        st.rerun()


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
            actor = ui.attempt(
                lambda: auth.claim_setup(
                    session=session, settings=ui.base_settings(), token=token, username=username, password=password
                )
            )
            if actor is None:
                return
            session.commit()
        st.session_state["actor"] = actor
        st.rerun()


def sidebar(actor: auth.Actor) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{actor.username}** ({actor.role})")
        if st.button("Sign out", icon=":material/logout:"):
            st.session_state.pop("actor", None)
            st.rerun()
        jobs_panel.sidebar_panel()  # running jobs, live, on every page


ui.leave_pages_directory_mode()
ui.engine()  # build the engine (and announce a set-up token) once per server
actor = ui.current_actor()  # reloaded from the database: a disabled user is signed out, a new role applies now
if actor is None:
    # st.navigation runs on every run, also signed out: without it Streamlit would fall back to
    # serving pages/ directly, with no gate (style.md's trap).
    navigation = st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:", url_path="sign-in")])
else:
    pages = [
        st.Page(path, title=title, icon=icon) for path, title, icon, permission in ui.PAGES if actor.can(permission)
    ]
    navigation = st.navigation(pages)
    sidebar(actor)
navigation.run()
