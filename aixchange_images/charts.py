"""The dashboard's plotly figures, built from the small frames `metrics` and `spending` return.

Pages only show them, so every chart is tested in plain pytest. Text that came from people (model
names typed into Settings) is escaped: plotly reads `<a href>` and `<img>`-like tags in labels.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .checks import LABELS, NAMES
from .wording import error_kind, image_status, money, seconds

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from .spending import MonthOutlook

HEIGHT = 300
MARGIN = dict(l=10, r=10, t=70, b=10)
MONEY_AXIS = dict(tickprefix="$", tickformat=",.2~f", rangemode="tozero")
PERCENT_AXIS = dict(range=[0, 1.02], tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%")
STORAGE_WORDS = {"published": "Published", "candidates": "Candidates", "rejected": "Rejected"}
SERIES_COLORS = ["#4f46e5", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#64748b", "#ec4899"]
BUDGET_RED = "#dc2626"
STATUS_COLORS = {
    "none": "#94a3b8",
    "placeholder": "#ef4444",
    "pending": "#f59e0b",
    "approved": "#10b981",
    "uploaded": "#4f46e5",
}


def plain(text: Any) -> str:
    """Text shown by plotly exactly as written (no tags, no entities)."""
    return html.escape(str(text), quote=False)


def _figure() -> go.Figure:
    import plotly.graph_objects as go

    return go.Figure()


def _finish(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    # The title on the first line, the legend on its own line under it: long titles never overlap it.
    defaults = dict(
        title=dict(text=title, x=0, xanchor="left", y=0.98, yanchor="top", yref="container"),
        height=HEIGHT,
        margin=MARGIN,
        legend=dict(title_text="", orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        colorway=SERIES_COLORS,
        hovermode="x unified",
    )
    fig.update_layout(**{**defaults, **layout})
    return fig


def attempts_and_success(daily: pd.DataFrame) -> go.Figure:
    """Attempts per day as bars, the success rate as a line on a 0-100% axis."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=daily["day"], y=daily["attempts"], name="Attempts", hovertemplate="%{y:,}")
    fig.add_scatter(
        x=daily["day"],
        y=daily["success_rate"],
        mode="lines",
        name="Success rate",
        secondary_y=True,
        hovertemplate="%{y:.0%}",
    )
    fig.update_yaxes(title_text="attempts", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="success rate", showgrid=False, secondary_y=True, **PERCENT_AXIS)
    return _finish(fig, "Attempts and success rate")


def failures_by_kind(failures: pd.DataFrame) -> go.Figure:
    """Failed attempts per kind, most frequent on top, kinds in words."""
    fig = _figure()
    fig.add_bar(
        x=failures["n"],
        y=[plain(error_kind(k)) for k in failures["error_kind"]],
        orientation="h",
        hovertemplate="%{x:,} attempts",
        name="",
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title_text="failed attempts")
    return _finish(fig, "Why attempts failed", showlegend=False, hovermode="closest")


def generation_times(times: pd.DataFrame) -> go.Figure:
    """The typical and the slow generation time per day, in seconds."""
    fig = _figure()
    for column, name in (("p50_ms", "Typical (median)"), ("p95_ms", "Slowest 5% (95th percentile)")):
        fig.add_scatter(x=times["day"], y=times[column] / 1000, mode="lines", name=name, hovertemplate="%{y:.1f} s")
    fig.update_yaxes(title_text="seconds", rangemode="tozero", ticksuffix=" s")
    return _finish(fig, "Generation time (paid calls that succeeded)")


def spend_per_day(spend: pd.DataFrame, by: str, daily_cap: float | None = None) -> go.Figure:
    """Spend per day stacked by model or template version, with the daily budget as a line."""
    fig = _figure()
    for name, part in spend.groupby(by, sort=True):
        fig.add_bar(x=part["day"], y=part["spend_usd"], name=plain(name), hovertemplate="%{y:$,.2f}")
    if daily_cap:
        fig.add_hline(y=daily_cap, line_dash="dash", line_color=BUDGET_RED, annotation_text="daily budget")
    fig.update_yaxes(title_text="spent", **MONEY_AXIS)
    words = {"model": "model", "template": "template version"}
    return _finish(fig, f"Spend per day by {words[by]}", barmode="stack")


def cache_savings(daily: pd.DataFrame) -> go.Figure:
    fig = _figure()
    fig.add_bar(x=daily["day"], y=daily["saved_usd"], name="Saved", hovertemplate="%{y:$,.2f}")
    fig.update_yaxes(title_text="saved", **MONEY_AXIS)
    return _finish(fig, "Money the cache saved", showlegend=False)


def storage(storage_frame: pd.DataFrame) -> go.Figure:
    """Bytes on disk at the end of each day, stacked by kind, in GB."""
    fig = _figure()
    for kind, part in storage_frame.groupby("kind", sort=True):
        fig.add_scatter(
            x=part["day"],
            y=part["bytes"] / 1e9,
            name=STORAGE_WORDS.get(str(kind), plain(kind)),
            stackgroup="disk",
            mode="lines",
            hovertemplate="%{y:.2f} GB",
        )
    fig.update_yaxes(title_text="GB", rangemode="tozero")
    return _finish(fig, "Space on disk")


def month_against_budget(outlook: MonthOutlook, cap: float | None) -> go.Figure:
    """This month's spend so far (cumulative), the straight-line forecast to month end, the budget."""
    import pandas as pd

    days = pd.date_range(outlook.month_start, periods=outlook.days_in_month, freq="D").strftime("%Y-%m-%d")
    per_day = outlook.daily.set_index("day")["spend_usd"] if not outlook.daily.empty else pd.Series(dtype=float)
    so_far = per_day.reindex(days[: outlook.days_elapsed], fill_value=0.0).cumsum()
    fig = _figure()
    fig.add_scatter(x=list(so_far.index), y=list(so_far), mode="lines+markers", name="Spent so far")
    fig.add_scatter(
        x=[days[outlook.days_elapsed - 1], days[-1]],
        y=[outlook.spent, outlook.forecast],
        mode="lines",
        line=dict(dash="dot"),
        name="Forecast",
        hovertemplate="%{y:$,.2f}",
    )
    if cap is not None:
        fig.add_hline(y=cap, line_dash="dash", line_color=BUDGET_RED, annotation_text="monthly budget")
    fig.update_yaxes(title_text="spent this month", **MONEY_AXIS)
    fig.update_xaxes(range=[days[0], days[-1]])
    return _finish(fig, "Spend so far this month, the forecast to its end, and the monthly budget")


def status_counts(counts: dict[str, int]) -> go.Figure:
    """Solutions per image status, statuses in words (Overview)."""
    fig = _figure()
    fig.add_bar(
        x=[image_status(s) for s in counts],
        y=list(counts.values()),
        marker_color=[STATUS_COLORS.get(s, SERIES_COLORS[0]) for s in counts],
        hovertemplate="%{y:,} solutions",
        name="",
    )
    fig.update_yaxes(title_text="solutions", rangemode="tozero")
    return _finish(fig, "", showlegend=False, hovermode="closest", height=280, margin=dict(l=10, r=10, t=10, b=10))


def generations(daily: pd.DataFrame) -> go.Figure:
    """Images made per day against attempts (Overview)."""
    fig = _figure()
    fig.add_bar(x=daily["day"], y=daily["succeeded"], name="Images made", hovertemplate="%{y:,}")
    fig.add_scatter(x=daily["day"], y=daily["attempts"], mode="lines+markers", name="Attempts", hovertemplate="%{y:,}")
    fig.update_yaxes(title_text="per day", rangemode="tozero")
    return _finish(fig, "", height=280, margin=dict(l=10, r=10, t=30, b=10))


def approval_rates(reviewed: pd.DataFrame) -> go.Figure:
    """Share of reviewed candidates approved, per template version or per provider and model
    (Prompt Studio's yield: `yields.yield_table` either way)."""
    if "template" in reviewed.columns:
        names = list(reviewed["template"])
    else:
        names = [
            f"{provider} · {model}" for provider, model in zip(reviewed["provider"], reviewed["model"], strict=True)
        ]
    fig = _figure()
    fig.add_bar(
        x=reviewed["approval_rate"],
        y=[plain(name) for name in names],
        orientation="h",
        text=[f"{r:.0%}" for r in reviewed["approval_rate"]],
        hovertemplate="%{x:.0%} approved",
        name="",
    )
    fig.update_xaxes(**{**PERCENT_AXIS, "range": [0, 1.05]}, title_text="approved of reviewed")
    fig.update_yaxes(autorange="reversed", automargin=True, type="category")
    return _finish(
        fig,
        "Share of reviewed candidates that were approved",
        showlegend=False,
        hovermode="closest",
        height=110 + 34 * len(reviewed),
    )


def flag_rates(rates: pd.DataFrame, by: str) -> go.Figure:
    """Per model or template version (`metrics.flag_rates`), the share of checked images any check
    flagged, then the share each check flagged; how many of how many on hover."""
    fig = _figure()
    names = [plain(name) for name in rates[by]]
    series = [("Any check", "flag_rate", "flagged")] + [(LABELS[n], f"{n}_rate", f"{n}_flagged") for n in NAMES]
    for label, rate, flagged in series:
        fig.add_bar(
            x=rates[rate],
            y=names,
            orientation="h",
            name=label,
            customdata=list(zip(rates[flagged], rates["checked"], strict=True)),
            hovertemplate=f"{label}: %{{x:.0%}} (%{{customdata[0]:,}} of %{{customdata[1]:,}} checked)<extra></extra>",
        )
    fig.update_xaxes(tickformat=".0%", rangemode="tozero", title_text="flagged of checked")
    fig.update_yaxes(autorange="reversed", automargin=True, type="category")
    words = {"model": "model", "template": "template version"}
    return _finish(
        fig,
        f"Share of checked images flagged, by {words[by]}",
        barmode="group",
        hovermode="closest",
        height=130 + 90 * len(rates),
    )


def provider_totals(totals: pd.DataFrame) -> go.Figure:
    """Spend per provider, with what each approved image cost and how its calls went on hover
    (`provider_metrics.provider_totals`)."""
    fig = _figure()
    per_approved = [money(usd) for usd in totals["cost_per_approved_usd"]]
    fig.add_bar(
        x=totals["spend_usd"],
        y=[plain(p) for p in totals["provider"]],
        orientation="h",
        text=[f"{each} per approved image" if each != "—" else "nothing approved" for each in per_approved],
        customdata=list(
            zip(
                [f"{n:,}" for n in totals["attempts"]],
                ["—" if rate != rate or rate is None else f"{rate:.0%}" for rate in totals["success_rate"]],
                [seconds(ms) for ms in totals["p50_ms"]],
                strict=True,
            )
        ),
        hovertemplate="$%{x:,.2f} spent · %{customdata[0]} attempts · %{customdata[1]} succeeded · "
        "typical time %{customdata[2]}",
        name="",
    )
    fig.update_xaxes(**MONEY_AXIS, title_text="spent")
    fig.update_yaxes(autorange="reversed", automargin=True, type="category")
    return _finish(fig, "Spend by provider", showlegend=False, hovermode="closest", height=110 + 40 * len(totals))
