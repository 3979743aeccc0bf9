"""Marketplace (admins): the link to the marketplace's database, deliveries waiting, conflicts, Pull now."""

import pandas as pd
import streamlit as st

import ui
from aixchange_images import deliveries, marketplace, pull, wording

actor = ui.guard("manage")
settings = ui.settings()
st.title("Marketplace")

if not marketplace.configured(settings):
    st.info(
        "Not connected. Set MARKETPLACE_DATABASE_URL to the marketplace's PostgreSQL URL (a role that may read "
        '"Solution" and update its imageUrl, as the README\'s "Run it beside the marketplace" shows) and '
        "restart. Until then approvals are published into the image folder only.",
        icon=":material/link_off:",
    )


@st.cache_data(ttl=30, show_spinner=False)
def link_status(_marker: str) -> dict:
    return marketplace.status(ui.engine(), ui.settings())


with st.spinner("Asking the marketplace…"):
    status = link_status(str(ui.base_settings().database_url))
cols = st.columns(4)
cols[0].metric(
    "Connection",
    "answering" if status["reachable"] else ("down" if status["configured"] else "not set"),
    help=ui.md("The marketplace's database: {} (host and database only).", status["connection"]),
)
cols[1].metric("Solutions linked", f"{status['linked_solutions']:,}")
cols[2].metric("Changes waiting", f"{status['pending']:,}", help="Image changes not yet written to the marketplace.")
cols[3].metric("Conflicts", f"{status['conflicts']:,}", help="Rows changed in the marketplace since we saw them.")
if status["problem"]:
    st.error(ui.literal(wording.plain_error(status["problem"])), icon=":material/cloud_off:")
st.text(f"Marketplace database: {status['connection']}")
last = status["last_pull"]
if last:
    st.text(
        f"Last pull {last['at']:%Y-%m-%d %H:%M} UTC by {last['by']}: {last.get('created', 0)} new, "
        f"{last.get('updated', 0)} updated, {last.get('unchanged', 0)} unchanged, {len(last.get('errors', []))} errors."
    )
else:
    st.caption("Never pulled yet.")
if status["awaiting_their_row"]:
    st.caption(
        f"{status['awaiting_their_row']} solution(s) made by the image service wait for their marketplace row; "
        "the next pull joins them by the image they show or by title."
    )

pull_col, push_col, _ = st.columns([1, 1, 3])
if pull_col.button("Pull now", type="primary", icon=":material/download:", disabled=not status["configured"]):
    bar = st.progress(0.0, text="Reading the marketplace's solutions…")
    report = ui.attempt(
        lambda: pull.pull(
            ui.engine(),
            settings,
            actor=actor,
            progress=lambda done, total: bar.progress(done / total, text=f"{done:,} of {total:,} solutions"),
        )
    )
    if report is not None:
        deliveries.deliver_waiting(ui.engine(), settings)
        st.session_state["last_pull_report"] = report.as_dict()
        st.rerun()
if push_col.button("Push now", icon=":material/upload:", disabled=not status["configured"]):
    pushed = ui.attempt(lambda: deliveries.push(ui.engine(), settings))
    if pushed is not None:
        st.session_state["last_push_report"] = pushed.as_dict()
        st.rerun()
if report := st.session_state.pop("last_pull_report", None):
    st.success(
        f"Pulled: {report['created']} new, {report['updated']} updated, {report['unchanged']} unchanged, "
        f"{report['adopted']} joined to the image service's solutions."
    )
    for error in report["errors"]:
        st.text(f"{error['title'] or error['id']}: {error['error']}")
if pushed := st.session_state.pop("last_push_report", None):
    st.success(f"Pushed: {pushed['written']} written, {pushed['pending']} still waiting.")
    for error in pushed["errors"]:
        st.error(ui.literal(wording.plain_error(error["error"])), icon=":material/error:")

st.subheader("Conflicts")
with ui.db() as session:
    open_conflicts = deliveries.conflicts(session=session)
    waiting = deliveries.waiting(session=session)
if not open_conflicts:
    st.caption("None: every image we approved is what the marketplace shows, or on its way.")
for conflict in open_conflicts:
    ui.conflict_panel(conflict, actor)

st.subheader("Waiting to be written")
if not waiting:
    st.caption("Nothing waits.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Solution": w["title"],
                    "Image": w["image_url"] or "no image",
                    "State": "no such row in the marketplace" if w["state"] == "failed" else "waiting",
                    "Since": w["since"],
                    "Tries": w["tries"],
                    "Last problem": w["last_error"] or "",
                }
                for w in waiting
            ]
        ),
        hide_index=True,
        width="stretch",
    )
