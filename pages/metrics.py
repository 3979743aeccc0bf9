"""Metrics: success, time and spend over a chosen period (aggregated in SQL)."""

from datetime import timedelta

import plotly.express as px
import streamlit as st
from plotly.subplots import make_subplots

import ui
from aixchange_images import metrics
from aixchange_images.models import utcnow

actor = ui.guard("view")
st.title("Metrics")
days = st.segmented_control("Period", [7, 30, 90], default=30, format_func=lambda d: f"last {d} days")


@st.cache_data(ttl=60, show_spinner=False)
def figures(days: int) -> tuple[dict, object, object]:
    since = utcnow() - timedelta(days=days)
    with ui.db() as session:
        return (metrics.headline(session=session, since=since), metrics.daily(session=session, since=since),
                metrics.failures_by_kind(session=session, since=since))


head, daily, failures = figures(days or 30)
if not head["attempts"]:
    st.info("No generations in this period yet. Run some on Generate, or load demo data from Overview.",
            icon=":material/query_stats:")
    st.stop()

cols = st.columns(7)
cols[0].metric("Attempts", f"{head['attempts']:,}")
cols[1].metric("Success rate", f"{head['success_rate']:.1%}")
cols[2].metric("p50 time", f"{(head['p50_ms'] or 0) / 1000:.1f} s", help="Paid calls that succeeded; cache hits excluded.")
cols[3].metric("p95 time", f"{(head['p95_ms'] or 0) / 1000:.1f} s")
cols[4].metric("Spend", ui.money(head["spend_usd"]))
cols[5].metric("Per approved image", ui.money(head["cost_per_approved_usd"]))
cols[6].metric("Storage", f"{head['storage_bytes'] / 1e9:.2f} GB")

layout = dict(height=300, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="")
left, right = st.columns(2)
with left:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=daily["day"], y=daily["attempts"], name="attempts")
    fig.add_scatter(x=daily["day"], y=daily["success_rate"], mode="lines", name="success rate", secondary_y=True)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], secondary_y=True)
    fig.update_layout(title="Attempts and success rate per day", **layout)
    st.plotly_chart(fig, width="stretch")
with right:
    fig = px.bar(failures, x="n", y="error_kind", orientation="h", title="Failures by kind",
                 labels={"n": "attempts", "error_kind": ""})
    fig.update_layout(**layout)
    st.plotly_chart(fig, width="stretch")
left, right = st.columns(2)
with left:
    fig = px.line(daily, x="day", y="mean_ms", title="Mean generation time (ms)", labels={"day": "", "mean_ms": "ms"})
    fig.update_layout(**layout)
    st.plotly_chart(fig, width="stretch")
with right:
    fig = px.bar(daily, x="day", y="spend_usd", title="Spend per day (USD)", labels={"day": "", "spend_usd": "USD"})
    fig.update_layout(**layout)
    st.plotly_chart(fig, width="stretch")

st.download_button("Download the daily table (CSV)", daily.to_csv(index=False), file_name="aixchange-daily.csv",
                   mime="text/csv", icon=":material/download:")
