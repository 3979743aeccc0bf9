"""Overview: what needs doing today, each number leading to where it is handled."""

import streamlit as st

import ui
from aixchange_images import budget, charts, deliveries, demo, metrics

actor = ui.guard("view")
st.title("Overview")


@st.cache_data(ttl=30, show_spinner=False)
def figures(_marker: str) -> dict:
    with ui.db() as session:
        out = metrics.overview(session=session)
        out["budget"] = budget.budget_state(session=session, settings=ui.settings()).as_dict()
        out["daily"] = metrics.daily(session=session, scope=metrics.Scope(since=budget.period_starts()[1]))
    return out


data = figures(str(ui.base_settings().database_url))
if data["solutions"] == 0:
    if not actor.can("edit_catalogue"):
        st.info("No solutions yet: an admin imports the catalogue on **Solutions**.", icon=":material/inbox:")
        st.stop()
    st.info(
        "No solutions yet. Import AIXchange bulk JSON or CSV on **Solutions**, or load a demo catalogue "
        "to look around (`python -m aixchange_images demo-data` does the same from a shell).",
        icon=":material/inbox:",
    )
    ui.page_link("pages/solutions.py", "Import solutions", ":material/upload:")
    if st.button("Load demo data", type="primary", icon=":material/magic_button:"):
        with st.spinner("Drawing demo images and writing a history…"):
            ui.attempt(
                lambda: demo.load(ui.engine(), ui.settings(), solutions=120, generations=600, actor=actor),
                "Demo data loaded.",
            )
        st.rerun()
    st.stop()

money = data["budget"]
cols = st.columns(4)
with cols[0]:
    st.metric("Missing an image", f"{data['missing']:,}")
    ui.page_link("pages/generate.py", "Generate for them", ":material/auto_awesome:")
with cols[1]:
    st.metric("Awaiting review", f"{data['awaiting_review']:,}")
    ui.page_link("pages/review.py", "Review candidates", ":material/fact_check:")
with cols[2]:
    st.metric("Published this week", f"{data['published_week']:,}")
    ui.page_link("pages/solutions.py", "Browse solutions", ":material/inventory_2:")
with cols[3]:
    cap = money["monthly_cap_usd"]
    st.metric(
        "Spent this month", ui.money(money["spent_month_usd"]), help="Month to date, UTC, including calls in flight."
    )
    if cap:
        st.progress(min(1.0, money["spent_month_usd"] / cap), text=ui.md("of {} monthly budget", ui.money(cap)))
    else:
        st.caption("No monthly budget set" + (" — set one in Settings." if actor.can("manage") else "."))
    ui.page_link("pages/metrics.py", "See the metrics", ":material/monitoring:")

with ui.db() as session:
    open_conflicts = deliveries.conflicts(session=session)
if open_conflicts:
    st.warning(
        f"{len(open_conflicts)} image(s) changed in the marketplace after we approved ours: keep theirs or send ours.",
        icon=":material/sync_problem:",
    )
    if actor.can("review"):
        for conflict in open_conflicts[:3]:
            ui.conflict_panel(conflict, actor)
    ui.page_link("pages/marketplace.py", "All marketplace conflicts", ":material/storefront:")

st.subheader("Images by status")
st.plotly_chart(charts.status_counts(data["status_counts"]), width="stretch")

daily = data["daily"]
if not daily.empty:
    st.subheader("Generations this month")
    st.plotly_chart(charts.generations(daily), width="stretch")
