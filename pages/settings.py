"""Settings (admins): users and roles, generation defaults and budgets, the automatic checks, prices, storage,
schedules, the audit log."""

from collections.abc import Callable
from datetime import datetime

import pandas as pd
import streamlit as st
from sqlmodel import Session

import jobs_panel
import ui
from aixchange_images import (
    admin,
    auditlog,
    auth,
    check_settings,
    inspections,
    jobs,
    provider_registry,
    review,
    wording,
)
from aixchange_images.checks import LABELS, NAMES
from aixchange_images.config import QUALITIES, STANDARD_SIZES
from aixchange_images.models import Role, User

ROLES = [role.value for role in Role]

AUDIT_PAGE = 100
actor = ui.guard("manage")
settings = ui.settings()
st.title("Settings")


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
        done = ui.write(
            lambda s: auth.set_role(session=s, actor=actor, username=who, role=new_role),
            f"{who} is now {new_role}.",
        )
        if done is not None:
            st.rerun()
    label = "Enable user" if user.disabled else "Disable user"
    if c2.button(label, icon=":material/person_off:" if not user.disabled else ":material/person:", width="stretch"):
        done = ui.write(
            lambda s: auth.set_disabled(session=s, actor=actor, username=who, disabled=not user.disabled),
            f"{who} is {'enabled' if user.disabled else 'disabled'}.",
        )
        if done is not None:
            st.rerun()
    email = st.text_input("Email for single sign-on", user.email or "", key=f"email-of-{who}")
    if st.button("Save email", disabled=email.strip().lower() == (user.email or ""), key=f"save-email-{who}"):
        done = ui.write(
            lambda s: auth.set_email(session=s, actor=actor, username=who, email=email), f"Saved {who}'s email."
        )
        if done is not None:
            st.rerun()
    # Failed sign-ins make new browsers wait before trying this name again; this forgets them.
    if st.button("Unlock sign-in", icon=":material/lock_open:", key=f"unlock-{who}"):
        done = ui.write(lambda s: auth.unlock(session=s, actor=actor, username=who), f"{who} may sign in again now.")
        if done is not None:
            st.rerun()


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


def user_status(user: User, wait: int) -> str:
    if user.disabled:
        return "disabled"
    return f"a new browser waits {wait:,} s to sign in" if wait else "active"


def users_tab() -> None:
    with ui.db() as session:
        users = auth.list_users(session=session)
        waits = {u.username: auth.account_wait(session=session, username=u.username) for u in users}
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Username": u.username,
                    "Role": u.role,
                    "Email": u.email or "",
                    "Status": user_status(u, waits[u.username]),
                    "Last sign-in": when(u.last_login_at) or "never",
                }
                for u in users
            ],
            columns=["Username", "Role", "Email", "Status", "Last sign-in"],
        ),
        hide_index=True,
    )
    c1, c2 = st.columns(2)
    with c1, st.form("add-user", clear_on_submit=True):
        st.markdown("**Add a user**")
        name = st.text_input("New username")
        role = st.selectbox("Role", ROLES, index=2)
        password = st.text_input("Initial password", type="password", help="At least 8 characters.")
        email = st.text_input("Email for single sign-on (optional)")
        if st.form_submit_button("Add user", type="primary"):
            ui.write(
                lambda s: auth.add_user(
                    session=s, actor=actor, username=name, password=password, role=role, email=email
                ),
                f"Added {name}.",
            )
    with c2:
        change_user(users)


def providers_table() -> None:
    """Each provider: ready or what it lacks, its models, and the variables it reads (never their values)."""
    st.markdown("**Image providers** (set their variables on the server; keys are never shown or stored)")
    rows = [
        {
            "Provider": p["label"],
            "Ready": "ready" if p["ready"] else p["missing"],
            "Models": ", ".join(p["models"]),
            "Refine": "yes" if p["edits"] else "no",
            "Reads": ", ".join(p["variables"]) or "nothing",
            "Address": p["address"] or "",
        }
        for p in provider_registry.describe(settings)
    ]
    st.dataframe(rows, hide_index=True, width="stretch")


def defaults_tab() -> None:
    providers_table()
    if settings.quality_notice:
        st.info(ui.literal(settings.quality_notice))
    with st.form("defaults"):
        values = defaults_form()
        submitted = st.form_submit_button("Save defaults", type="primary")
    if not submitted:
        return
    # Only what the admin changed becomes an override; the rest keeps following the server.
    changes = admin.changed_settings(settings=settings, values=values)
    if not changes:
        st.info("Nothing changed.")
        return
    ui.write(
        lambda s: admin.save_overrides(session=s, settings=ui.base_settings(), actor=actor, changes=changes),
        f"Saved {len(changes)} setting(s).",
    )


def defaults_form() -> dict:
    c1, c2, c3 = st.columns(3)
    providers = provider_registry.provider_names()
    provider = c1.selectbox(
        "Provider",
        providers,
        index=providers.index(provider_registry.chosen(settings))
        if provider_registry.chosen(settings) in providers
        else 0,
        format_func=lambda name: provider_registry.provider_class(name).label,
    )
    model = c2.text_input("Model", settings.image_model)
    size = c3.selectbox("Size", list(dict.fromkeys([settings.dalle_image_size, *STANDARD_SIZES])))
    quality = c1.selectbox(
        "Quality",
        QUALITIES[:4],
        index=QUALITIES.index(settings.dalle_image_quality) if settings.dalle_image_quality in QUALITIES[:4] else 1,
    )
    fmt = c2.selectbox("Published format", ["png", "jpeg"], index=["png", "jpeg"].index(settings.dalle_image_format))
    concurrency = c3.number_input("Parallel calls", 1, 64, settings.image_concurrency)
    rate = c1.number_input("Calls per minute (0 = no cap)", 0, 10000, settings.image_rate_limit_per_minute or 0)
    daily = c2.number_input(
        "Daily budget USD (empty = the server's setting)", 0.0, 1e6, settings.image_budget_daily_usd
    )
    monthly = c3.number_input(
        "Monthly budget USD (empty = the server's setting)", 0.0, 1e7, settings.image_budget_monthly_usd
    )
    share = c1.slider("Alert at share of a budget", 0.1, 1.0, settings.image_budget_alert_share, 0.05)
    return {
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


def checks_tab() -> None:
    st.caption(
        "Every new candidate is checked automatically; auto-approve never publishes one with a flag other than "
        "Duplicate, and Review shows the flags. A check turned off no longer runs; verdicts already kept stay "
        "until the candidates are checked again."
    )
    with st.form("checks"):
        enabled, numbers = checks_form()
        submitted = st.form_submit_button("Save checks", type="primary")
    if submitted:
        changes = admin.changed_settings(settings=settings, values=check_settings.form_values(enabled, numbers))
        if not changes:
            st.info("Nothing changed.")
        else:
            ui.write(
                lambda s: check_settings.save(session=s, settings=ui.base_settings(), actor=actor, changes=changes),
                f"Saved {len(changes)} setting(s).",
            )
    recheck()


def checks_form() -> tuple[list[str], dict]:
    enabled, numbers = [], {}
    for name in NAMES:
        if st.checkbox(
            LABELS[name], name in settings.enabled_checks, key=f"check-on-{name}", help=check_settings.WHAT[name]
        ):
            enabled.append(name)
        columns = st.columns(3)
        for column, t in zip(columns, check_settings.thresholds(name), strict=False):
            numbers[t.key] = column.number_input(
                t.label, value=getattr(settings, t.key), step=t.step, format=t.format, help=t.help, key=t.key
            )
    return enabled, numbers


def recheck() -> None:
    """Check every stored candidate again as a job for the workers (after a threshold changed, say)."""
    with ui.db() as session:
        waiting = inspections.unchecked(session)
    if waiting:
        st.caption(f"{waiting:,} stored candidate(s) have not been checked yet.")
    if st.button("Check every candidate again", icon=":material/fact_check:"):
        job = ui.attempt(lambda: jobs.enqueue_checks(ui.engine(), settings, actor=actor))
        if job is not None:
            st.success(f"Queued as job {job.id}: {job.total:,} candidate(s). The Jobs page shows its progress.")


def prices_tab() -> None:
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
                "updated by": p.updated_by or "the published price",
            }
            for p in rows
        ]
    )
    edited = st.data_editor(frame, hide_index=True, num_rows="dynamic", disabled=["updated by"], key="prices")
    if st.button("Save prices", type="primary"):
        before = {r["model"]: r for r in frame.to_dict("records")}
        changed = [r for r in edited.to_dict("records") if r.get("model") and before.get(r["model"]) != r]
        ui.write(lambda s: save_prices(s, changed), f"Saved {len(changed)} price(s).")


def save_prices(session: Session, changed: list[dict]) -> int:
    def cell(value: object) -> object:
        return None if pd.isna(value) else value

    for r in changed:
        admin.set_price(
            session=session,
            actor=actor,
            model=str(r["model"]),
            # An empty cell goes on as None, and set_price refuses it with one sentence.
            text_input=cell(r["text in"]),
            image_input=cell(r["image in"]),
            image_output=cell(r["image out"]),
        )
    return len(changed)


def storage_tab() -> None:
    st.caption(
        "Delete the files of rejected and superseded candidates older than some days. Published files "
        "(and so every rollback target) are never touched."
    )
    days = st.number_input("Older than (days)", 0, 3650, settings.cleanup_after_days)

    def clean(dry_run: bool) -> Callable[[Session], dict | None]:
        return lambda s: review.clean_up(
            session=s, settings=settings, actor=actor, older_than_days=int(days), dry_run=dry_run
        )

    c1, c2 = st.columns([1, 4])
    if c1.button("Preview"):
        report = ui.write(clean(True), None)
        if report:
            st.info(
                f"Would delete {report['files']:,} file(s) of {report['candidates']:,} candidate(s), "
                f"freeing {wording.megabytes(report['freed_bytes'])}."
            )
    if c2.button("Delete old files", type="primary"):
        report = ui.write(clean(False), "Clean-up done.")
        if report:
            st.success(f"Deleted {report['files']:,} file(s), freed {wording.megabytes(report['freed_bytes'])}.")


def schedules_tab() -> None:
    jobs_panel.schedules_form(actor)  # the nightly generation and the marketplace pull, written through ui.write


def audit_tab() -> None:
    with ui.db() as session:
        total = auditlog.count(session=session, actor=actor)
        offset = ui.pager("audit-page", total, AUDIT_PAGE)
        entries = auditlog.entries(session=session, actor=actor, offset=offset, limit=AUDIT_PAGE)
    if not entries:
        st.caption("Nothing recorded yet.")
        return
    st.caption(f"{total:,} event(s), newest first.")
    st.dataframe(
        pd.DataFrame([{"When": e.at, "What happened": e.sentence} for e in entries], columns=["When", "What happened"]),
        hide_index=True,
        width="stretch",
        column_config={
            "When": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss", width="small"),
            "What happened": st.column_config.TextColumn("What happened", width="large"),
        },
    )


TABS = {
    "Users": users_tab,
    "Defaults and budgets": defaults_tab,
    "Checks": checks_tab,
    "Prices": prices_tab,
    "Storage": storage_tab,
    "Schedules": schedules_tab,
    "Audit log": audit_tab,
}
tabs = st.tabs(list(TABS))
for tab, show in zip(tabs, TABS.values(), strict=True):
    with tab:
        show()
