"""Settings (admins): users and roles, generation defaults and budgets, prices, the audit log."""

import json
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import streamlit as st

import jobs_panel
import ui
from aixchange_images import admin, auth, review
from aixchange_images.config import QUALITIES, STANDARD_SIZES
from aixchange_images.models import Role, User

ROLES = [role.value for role in Role]

actor = ui.guard("manage")
settings = ui.settings()
st.title("Settings")
users_tab, defaults_tab, prices_tab, storage_tab, schedules_tab, audit_tab = st.tabs(
    ["Users", "Defaults and budgets", "Prices", "Storage", "Schedules", "Audit log"]
)


def base_url_shown(url: str) -> str:
    """The base URL without any user:password part (a proxy's URL may carry one)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")))


def write(fn, message: str):
    def run():
        with ui.db(write=True) as session:
            out = fn(session)
            session.commit()
            return out

    return ui.attempt(run, message)


def change_user(users: list[User]) -> None:
    """Role and access as two separate actions, each starting from the user's current value."""
    st.markdown("**Change a user**")
    if not users:
        st.caption("No users yet.")
        return
    by_name = {u.username: u for u in users}
    who = st.selectbox("User", list(by_name), key="change-user")
    user = by_name[who]
    # Keyed by user: picking another user shows that user's role, never a leftover choice.
    new_role = st.selectbox("Role", ROLES, index=ROLES.index(user.role), key=f"role-of-{who}")
    c1, c2 = st.columns(2)
    if c1.button("Save role", disabled=new_role == user.role, width="stretch"):
        done = write(
            lambda s: auth.set_role(session=s, actor=actor, username=who, role=new_role),
            f"{who} is now {new_role}.",
        )
        if done is not None:
            st.rerun()
    label = "Enable user" if user.disabled else "Disable user"
    if c2.button(label, icon=":material/person_off:" if not user.disabled else ":material/person:", width="stretch"):
        done = write(
            lambda s: auth.set_disabled(session=s, actor=actor, username=who, disabled=not user.disabled),
            f"{who} is {'enabled' if user.disabled else 'disabled'}.",
        )
        if done is not None:
            st.rerun()


with users_tab:
    with ui.db() as session:
        users = auth.list_users(session=session)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "username": u.username,
                    "role": u.role,
                    "disabled": u.disabled,
                    "last sign-in": u.last_login_at,
                    "locked until": u.locked_until,
                }
                for u in users
            ]
        ),
        hide_index=True,
    )
    c1, c2 = st.columns(2)
    with c1, st.form("add-user", clear_on_submit=True):
        st.markdown("**Add a user**")
        name = st.text_input("New username")
        role = st.selectbox("Role", ROLES, index=2)
        password = st.text_input("Initial password", type="password", help="At least 8 characters.")
        if st.form_submit_button("Add user", type="primary"):
            write(
                lambda s: auth.add_user(session=s, actor=actor, username=name, password=password, role=role),
                f"Added {name}.",
            )
    with c2:
        change_user(users)

with defaults_tab:
    key_state = "configured" if settings.openai_api_key else "not configured"
    st.markdown(
        f"OpenAI API key: **{key_state}** (set `OPENAI_API_KEY` on the server; it is never shown or stored)."
        + (f" Base URL: `{base_url_shown(settings.openai_base_url)}`." if settings.openai_base_url else "")
    )
    if settings.quality_notice:
        st.info(settings.quality_notice)
    with st.form("defaults"):
        c1, c2, c3 = st.columns(3)
        provider = c1.selectbox(
            "Provider",
            ["local", "openai"],
            index=["local", "openai"].index(settings.provider_name)
            if settings.provider_name in ("local", "openai")
            else 0,
        )
        model = c2.text_input("Model", settings.image_model)
        size = c3.selectbox("Size", list(dict.fromkeys([settings.dalle_image_size, *STANDARD_SIZES])))
        quality = c1.selectbox(
            "Quality",
            QUALITIES[:4],
            index=QUALITIES.index(settings.dalle_image_quality) if settings.dalle_image_quality in QUALITIES[:4] else 1,
        )
        fmt = c2.selectbox(
            "Published format", ["png", "jpeg"], index=["png", "jpeg"].index(settings.dalle_image_format)
        )
        concurrency = c3.number_input("Parallel calls", 1, 64, settings.image_concurrency)
        rate = c1.number_input("Calls per minute (0 = no cap)", 0, 10000, settings.image_rate_limit_per_minute or 0)
        daily = c2.number_input(
            "Daily budget USD (empty = the server's setting)", 0.0, 1e6, settings.image_budget_daily_usd
        )
        monthly = c3.number_input(
            "Monthly budget USD (empty = the server's setting)", 0.0, 1e7, settings.image_budget_monthly_usd
        )
        share = c1.slider("Alert at share of a budget", 0.1, 1.0, settings.image_budget_alert_share, 0.05)
        if st.form_submit_button("Save defaults", type="primary"):
            values = {
                "image_provider": provider,
                "image_model": model.strip(),
                "dalle_image_size": size,
                "dalle_image_quality": quality,
                "dalle_image_format": fmt,
                "image_concurrency": int(concurrency),
                "image_rate_limit_per_minute": int(rate) or None,
                "image_budget_daily_usd": daily,
                "image_budget_monthly_usd": monthly,
                "image_budget_alert_share": share,
            }
            # Only what the admin changed becomes an override; the rest keeps following the server.
            changes = admin.changed_settings(settings=settings, values=values)
            if not changes:
                st.info("Nothing changed.")
            else:
                write(
                    lambda s: admin.save_overrides(
                        session=s, settings=ui.base_settings(), actor=actor, changes=changes
                    ),
                    f"Saved {len(changes)} setting(s).",
                )

with prices_tab:
    st.caption("USD per 1M tokens. A change applies to calls from now on; past attempts keep what they cost.")
    with ui.db() as session:
        rows = admin.prices(session=session)
    frame = pd.DataFrame(
        [
            {
                "model": p.model,
                "text in": p.text_input_per_m,
                "image in": p.image_input_per_m,
                "image out": p.image_output_per_m,
                "updated by": p.updated_by,
            }
            for p in rows
        ]
    )
    edited = st.data_editor(frame, hide_index=True, num_rows="dynamic", disabled=["updated by"], key="prices")
    if st.button("Save prices", type="primary"):
        before = {r["model"]: r for r in frame.to_dict("records")}
        changed = [r for r in edited.to_dict("records") if r.get("model") and before.get(r["model"]) != r]

        def cell(value):
            return None if pd.isna(value) else value

        def save(s):
            for r in changed:
                admin.set_price(
                    session=s,
                    actor=actor,
                    model=str(r["model"]),
                    # An empty cell goes on as None, and set_price refuses it with one sentence.
                    text_input=cell(r["text in"]),
                    image_input=cell(r["image in"]),
                    image_output=cell(r["image out"]),
                )
            return len(changed)

        write(save, f"Saved {len(changed)} price(s).")

with storage_tab:
    st.caption(
        "Delete the files of rejected and superseded candidates older than some days. Published files "
        "(and so every rollback target) are never touched."
    )
    days = st.number_input("Older than (days)", 0, 3650, settings.cleanup_after_days)

    def clean(dry_run: bool):
        return lambda s: review.clean_up(
            session=s, settings=settings, actor=actor, older_than_days=int(days), dry_run=dry_run
        )

    c1, c2 = st.columns([1, 4])
    if c1.button("Preview"):
        report = write(clean(True), None)
        if report:
            st.info(
                f"Would delete {report['files']:,} file(s) of {report['candidates']:,} candidate(s), "
                f"freeing {report['freed_bytes'] / 1e6:,.1f} MB."
            )
    if c2.button("Delete old files", type="primary"):
        report = write(clean(False), "Clean-up done.")
        if report:
            st.success(f"Deleted {report['files']:,} file(s), freed {report['freed_bytes'] / 1e6:,.1f} MB.")

with schedules_tab:
    jobs_panel.schedules_form(actor)

with audit_tab:
    offset = st.number_input("Skip the newest", 0, 10_000_000, 0, step=100)
    with ui.db() as session:
        events = admin.audit_log(session=session, actor=actor, offset=int(offset), limit=100)
    if not events:
        st.caption("Nothing recorded yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "when": e.at,
                        "who": e.actor,
                        "action": e.action,
                        "target": e.target,
                        "detail": json.dumps(e.detail, default=str),
                    }
                    for e in events
                ]
            ),
            hide_index=True,
        )
