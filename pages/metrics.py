"""Metrics: what we spent, on what, and what it bought us (every aggregate runs in SQL)."""

import plotly.express as px
import streamlit as st
from plotly.subplots import make_subplots

import ui
from aixchange_images import bulkfiles, metrics, templates

actor = ui.guard("view")
st.title("Metrics")


def show(fig, **layout) -> None:
    fig.update_layout(**{**LAYOUT, **layout})
    st.plotly_chart(fig, width="stretch")


LAYOUT = dict(height=300, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="")


@st.cache_data(ttl=300, show_spinner=False)
def filter_choices() -> dict:
    with ui.db() as session:
        found = metrics.choices(session=session)
        found["template"] = sorted(set(found["template"]) | set(templates.version_refs(session=session)))
        found["labels"] = templates.all_labels(session=session)
    return found


@st.cache_data(ttl=60, show_spinner=False)
def figures(days: int, model: str | None, template: str | None, provider: str | None) -> dict:
    scope = metrics.last_days(days, model=model, template=template, provider=provider)
    return metrics.dashboard(ui.engine(), scope)


choices = filter_choices()
c1, c2, c3, c4 = st.columns([1.4, 1, 1, 1])
days = c1.segmented_control("Period", [7, 30, 90], default=30, format_func=lambda d: f"last {d} days") or 30
model = c2.selectbox("Model", [None, *choices["model"]], format_func=lambda v: v or "all models")
template = c3.selectbox(
    "Template version",
    [None, *choices["template"]],
    format_func=lambda v: " · ".join([v, *choices["labels"].get(v, [])]) if v else "all versions",
)
provider = c4.selectbox("Provider", [None, *choices["provider"]], format_func=lambda v: v or "all providers")
data = figures(days, model, template, provider)
head, daily = data["head"], data["daily"]
if not head["attempts"]:
    st.info(
        "No generations match this period and filters. Widen them, run some on Generate, or load demo "
        "data from Overview.",
        icon=":material/query_stats:",
    )
    st.stop()

row = st.columns(4)
row[0].metric("Attempts", f"{head['attempts']:,}")
row[1].metric("Success rate", f"{head['success_rate']:.1%}")
row[2].metric(
    "p50 time", f"{(head['p50_ms'] or 0) / 1000:.1f} s", help="Paid calls that succeeded; cache hits excluded."
)
row[3].metric("p95 time", f"{(head['p95_ms'] or 0) / 1000:.1f} s")
row = st.columns(4)
row[0].metric("Spend", ui.money(head["spend_usd"]))
row[1].metric(
    "Per approved image",
    ui.money(head["cost_per_approved_usd"]),
    help=f"{head['approved']:,} images approved from this period's attempts.",
)
row[2].metric("Spent on rejected", ui.money(head["rejected_spend_usd"]))
row[3].metric("Saved by the cache", ui.money(head["cache_saved_usd"]), help=f"{head['cache_hits']:,} cache hits.")

left, right = st.columns(2)
with left:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=daily["day"], y=daily["attempts"], name="attempts")
    fig.add_scatter(x=daily["day"], y=daily["success_rate"], mode="lines", name="success rate", secondary_y=True)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], secondary_y=True)
    show(fig, title="Attempts and success rate")
with right:
    fig = px.bar(
        data["failures"],
        x="n",
        y="error_kind",
        orientation="h",
        title="Failures by kind",
        labels={"n": "attempts", "error_kind": ""},
    )
    show(fig)

left, right = st.columns(2)
with left:
    fig = px.line(
        data["times"],
        x="day",
        y=["p50_ms", "p95_ms"],
        title="Generation time (ms)",
        labels={"day": "", "value": "ms", "variable": ""},
    )
    show(fig)
with right:
    fig = px.bar(
        data["by_model"],
        x="day",
        y="spend_usd",
        color="model",
        title="Spend per day by model (USD)",
        labels={"day": "", "spend_usd": "USD"},
    )
    cap = ui.settings().image_budget_daily_usd
    if cap:
        fig.add_hline(y=cap, line_dash="dash", line_color="#dc2626", annotation_text="daily budget")
    show(fig)

left, right = st.columns(2)
with left:
    fig = px.bar(
        data["by_template"],
        x="day",
        y="spend_usd",
        color="template",
        title="Spend per day by template version (USD)",
        labels={"day": "", "spend_usd": "USD"},
    )
    show(fig)
with right:
    fig = px.bar(
        daily, x="day", y="saved_usd", title="Money the cache saved (USD)", labels={"day": "", "saved_usd": "USD"}
    )
    show(fig)

st.subheader("Storage")
left, right = st.columns([3, 2])
with left:
    storage = data["storage"].assign(GB=lambda f: f["bytes"] / 1e9)
    fig = px.area(storage, x="day", y="GB", color="kind", title="Bytes on disk", labels={"day": ""})
    show(fig)
with right:
    st.caption("Largest consumers")
    st.dataframe(
        data["largest"].assign(MB=lambda f: (f["bytes"] / 1e6).round(1))[["title", "MB", "files"]],
        hide_index=True,
        height=280,
    )
    if actor.can("manage"):
        ui.page_link("pages/settings.py", "Free space: clean-up in Settings", ":material/cleaning_services:")


def attempts_csv() -> str:
    scope = metrics.last_days(days, model=model, template=template, provider=provider)
    with ui.db() as session:
        return bulkfiles.safe_csv(metrics.attempts_table(session=session, scope=scope))


# Built on request: up to 50,000 rows is too much to prepare on every visit.
key = ("attempts_csv", days, model, template, provider)
if st.session_state.get("csv_key") != key:
    if st.button("Prepare the attempts behind these charts (CSV)", icon=":material/table:"):
        with st.spinner("Preparing the CSV…"):
            st.session_state["csv"], st.session_state["csv_key"] = attempts_csv(), key
        st.rerun()
else:
    st.download_button(
        "Download the attempts (CSV)",
        st.session_state["csv"],
        file_name=f"aixchange-attempts-{days}d.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )
