"""Metrics: what we spent, what it bought, how the month stands against the budget, and how well
generation runs. Every aggregate runs in SQL and every figure is built in the library.

The headline numbers come first; the charts and tables sit in tabs that run only when open, so a
visit queries and draws one group of figures, not all eight charts and three tables."""

from datetime import date, timedelta

import streamlit as st

import ui
from aixchange_images import (
    bulkfiles,
    charts,
    metrics,
    metrics_dashboard,
    provider_metrics,
    spending,
    templates,
    wording,
)

actor = ui.guard("view")
st.title("Metrics")
DATABASE = str(ui.base_settings().database_url)  # every cache below is per database


@st.cache_data(ttl=300, show_spinner=False)
def filter_choices(database: str) -> dict:
    with ui.db() as session:
        found = metrics.choices(session=session)
        found["template"] = sorted(set(found["template"]) | set(templates.version_refs(session=session)))
        found["labels"] = templates.all_labels(session=session)
    return found


@st.cache_data(ttl=60, show_spinner=False)
def figures(database: str, parts: tuple[str, ...], period: str, start: date | None, end: date | None, filters: tuple):
    """The `parts` of metrics_dashboard.gather for a scope, kept a minute per database, scope and parts."""
    return metrics_dashboard.gather(ui.engine(), scope_of(period, start, end, filters), parts=parts)


def scope_of(period: str, start: date | None, end: date | None, filters: tuple) -> metrics.Scope:
    model, template, provider = filters
    return metrics.period_scope(period, start=start, end=end, model=model, template=template, provider=provider)


@st.cache_data(ttl=60, show_spinner=False)
def month_outlook(database: str) -> spending.MonthOutlook:
    """This month's spend: the same whatever the period and filters."""
    with ui.db() as session:
        return spending.month_outlook(session=session)


def choose_period() -> tuple[str, date | None, date | None]:
    """7/30/90 days, this month, or a custom range of whole UTC days."""
    period = st.segmented_control(
        "Period", list(metrics.PERIODS), default="30", format_func=metrics.PERIODS.get, key="metrics-period"
    )
    period = period or "30"
    if period != "custom":
        return period, None, None
    today = date.today()
    picked = st.date_input("From – to (UTC days, both included)", (today - timedelta(days=30), today), max_value=today)
    first, last = (tuple(picked) + (None, None))[:2] if isinstance(picked, tuple | list) else (picked, None)
    return period, first, last or first


def choose_filters(choices: dict) -> tuple:
    c1, c2, c3 = st.columns(3)
    model = c1.selectbox("Model", [None, *choices["model"]], format_func=lambda v: v or "all models")
    template = c2.selectbox(
        "Template version",
        [None, *choices["template"]],
        format_func=lambda v: " · ".join([v, *choices["labels"].get(v, [])]) if v else "all versions",
    )
    provider = c3.selectbox("Provider", [None, *choices["provider"]], format_func=lambda v: v or "all providers")
    return model, template, provider


def what_it_bought(head: dict) -> None:
    st.subheader("What we spent and what it bought")
    row = st.columns(4)
    row[0].metric("Spent", ui.money(head["spend_usd"]), help="Every finished call in this period and filter.")
    row[1].metric(
        "Approved and published",
        f"{head['approved']:,}",
        help=f"Images made in this period that an admin approved (each approval publishes); "
        f"{head['approved_live']:,} of them are live on the marketplace now.",
    )
    row[2].metric("Per approved image", ui.money(head["cost_per_approved_usd"]), help="Spent ÷ approved images.")
    row[3].metric("Spent on rejected images", ui.money(head["rejected_spend_usd"]))


def this_month(outlook: spending.MonthOutlook) -> None:
    st.subheader("This month against the budget")
    cap = ui.settings().image_budget_monthly_usd
    row = st.columns(4)
    row[0].metric("Spent this month", ui.money(outlook.spent), help="Every call this UTC month, whatever the filters.")
    row[1].metric("Monthly budget", "not set" if cap is None else ui.money(cap))
    row[2].metric("Forecast to month end", ui.money(outlook.forecast), help=ui.literal(outlook.method()))
    row[3].metric("Days elapsed", f"{outlook.days_elapsed} of {outlook.days_in_month}")
    st.caption(ui.literal(f"{outlook.against(cap)} {outlook.method()}"))
    st.plotly_chart(charts.month_against_budget(outlook, cap), width="stretch")


def how_it_runs(head: dict) -> None:
    st.subheader("How generation runs")
    row = st.columns(5)
    row[0].metric("Attempts", f"{head['attempts']:,}")
    row[1].metric("Success rate", f"{head['success_rate']:.1%}")
    paid = "Paid calls that succeeded; cache hits excluded."
    row[2].metric("Typical time", wording.seconds(head["p50_ms"]), help=f"The median. {paid}")
    row[3].metric(
        "Slowest 5% take", wording.seconds(head["p95_ms"]), help=f"At least this long (95th percentile). {paid}"
    )
    row[4].metric("Saved by the cache", ui.money(head["cache_saved_usd"]), help=f"{head['cache_hits']:,} cache hits.")


def spend_per_day(data: dict) -> None:
    daily_cap = ui.settings().image_budget_daily_usd
    pair(
        charts.spend_per_day(data["by_model"], "model", daily_cap),
        charts.spend_per_day(data["by_template"], "template"),
    )
    pair(charts.cache_savings(data["daily"]), None)


def attempts_and_time(data: dict) -> None:
    pair(charts.attempts_and_success(data["daily"]), charts.failures_by_kind(data["failures"]))
    pair(charts.generation_times(data["times"]), None)


def pair(left_fig: object, right_fig: object | None) -> None:
    left, right = st.columns(2)
    left.plotly_chart(left_fig, width="stretch")
    if right_fig is not None:
        right.plotly_chart(right_fig, width="stretch")


def totals(data: dict) -> None:
    by_provider, by_model, by_template = st.tabs(["By provider", "By model", "By template version"])
    with by_provider:
        providers = data["providers"]
        st.plotly_chart(charts.provider_totals(providers), width="stretch")
        st.dataframe(
            provider_metrics.provider_table(providers),
            hide_index=True,
            width="stretch",
            column_config={
                "Typical time": st.column_config.TextColumn(
                    "Typical time", help="The median of paid calls that succeeded; cache hits excluded."
                )
            },
        )
    with by_model:
        st.dataframe(spending.totals_table(data["totals"], "model"), hide_index=True, width="stretch")
    with by_template:
        st.dataframe(spending.totals_table(data["totals"], "template"), hide_index=True, width="stretch")


def storage(data: dict) -> None:
    st.caption("Space on disk counts every image, whatever the period and filters: the disk holds them all.")
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.storage(data["storage"]), width="stretch")
    largest = data["largest"]
    right.caption("The solutions holding the most space")
    right.dataframe(
        largest.assign(Size=largest["bytes"].map(wording.megabytes))[["title", "Size", "files"]].rename(
            columns={"title": "Solution", "files": "Files"}
        ),
        hide_index=True,
        height=280,
    )
    if actor.can("manage"):
        with right:
            ui.page_link("pages/settings.py", "Free space: clean-up in Settings", ":material/cleaning_services:")


def image_checks(data: dict) -> None:
    """How often the automatic checks flag what each model and template version makes."""
    by_model, by_template = data["flags_by_model"], data["flags_by_template"]
    if by_model.empty:
        st.info(
            "No checked images in this period: generate some, or run `python -m aixchange_images checks --all`.",
            icon=":material/fact_check:",
        )
        return
    st.caption(
        "Of the images made in this period and filters that the automatic checks looked at, the share each "
        "check flagged; Any check counts an image once, whatever it was flagged for."
    )
    for table, by, first in ((by_model, "model", "Model"), (by_template, "template", "Template version")):
        st.plotly_chart(charts.flag_rates(table, by), width="stretch")
        readable = {first: table[by], **metrics.flag_readable(table)}
        st.dataframe(readable, hide_index=True, width="stretch")


TABS = {  # tab -> what it shows, and the figures (metrics_dashboard's parts) that needs
    "Spend per day": (spend_per_day, ("by_model", "by_template", "daily")),
    "Attempts and time": (attempts_and_time, ("daily", "failures", "times")),
    "Totals": (totals, ("providers", "totals")),
    "Storage": (storage, ("storage", "largest")),
    "Image checks": (image_checks, ("flags_by_model", "flags_by_template")),
}


def charts_and_tables(period: str, start: date | None, end: date | None, filters: tuple) -> None:
    """One tab at a time: switching tabs reruns the page, and only the open tab queries and draws."""
    for tab, (show, parts) in zip(
        st.tabs(list(TABS), key="metrics-tab", on_change="rerun"), TABS.values(), strict=True
    ):
        if tab.open:
            with tab:
                show(figures(DATABASE, parts, period, start, end, filters))


def attempts_download(period: str, start: date | None, end: date | None, filters: tuple) -> None:
    """The attempt rows behind the charts as CSV, prepared on request (up to 50,000 rows)."""
    key = ("attempts_csv", period, start, end, filters)
    if st.session_state.get("csv_key") != key:
        if st.button("Prepare the attempts behind these charts (CSV)", icon=":material/table:"):
            with st.spinner("Preparing the CSV…"), ui.db() as session:
                table = metrics.attempts_table(session=session, scope=scope_of(period, start, end, filters))
                st.session_state["csv"], st.session_state["csv_key"] = bulkfiles.safe_csv(table), key
            st.rerun()
        return
    st.download_button(
        "Download the attempts (CSV)",
        st.session_state["csv"],
        file_name=f"aixchange-attempts-{period}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )


period, start, end = choose_period()
filters = choose_filters(filter_choices(DATABASE))
head = figures(DATABASE, ("head",), period, start, end, filters)["head"]
if not head["attempts"]:
    more = " or run some on Generate" if actor.can("generate") else ""
    st.info(f"No generations match this period and filters. Widen them{more}.", icon=":material/query_stats:")
    this_month(month_outlook(DATABASE))
    st.stop()
what_it_bought(head)
this_month(month_outlook(DATABASE))
how_it_runs(head)
charts_and_tables(period, start, end, filters)
attempts_download(period, start, end, filters)
