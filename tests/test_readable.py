"""The words the dashboard shows, in plain pytest: money, statuses, error sentences, the figures and
their axes, totals by model and template version, this month's forecast, the audit log as sentences."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlmodel import Session
from test_metrics import D1, D3, add_attempt, history  # noqa: F401 - the hand-built history fixture

from aixchange_images import auditlog, charts, metrics, spending, wording
from aixchange_images.auth import CLI_ACTOR, Actor
from aixchange_images.models import AttemptStatus, AuditEvent, Solution

ALICE = Actor("alice", "admin")


# -- money and words -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "$0"),
        (0.0, "$0"),
        (1e-9, "$0"),
        (0.004, "<$0.01"),
        (0.01, "$0.01"),
        (0.04, "$0.04"),
        (0.0421, "$0.04"),
        (0.999, "$1"),
        (5, "$5"),
        (12.5, "$12.50"),
        (999.99, "$999.99"),
        (1234.4, "$1,234"),
        (1_234_567.8, "$1,234,568"),
        (-3.5, "-$3.50"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_money_reads_as_people_write_it(value, text):
    assert wording.money(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(0.0082, "$0.0082"), (0.005, "$0.0050"), (0.00004, "$0.000040"), (0.04, "$0.04")]
)
def test_exact_money_keeps_two_significant_figures_below_a_cent(value, text):
    assert wording.money(value, exact=True) == text


@pytest.mark.parametrize(
    ("message", "plain"),
    [
        (
            "The image for s1 could not be kept (OSError: [Errno 28] No space left on device).",
            "The image for s1 could not be kept (No space left on device).",
        ),
        ("The reply is not a readable image (UnidentifiedImageError).", "The reply is not a readable image."),
        ("Unexpected reply from the image service: APIConnectionError.", "Unexpected reply from the image service."),
        ("PIL.UnidentifiedImageError: cannot identify image file", "Cannot identify image file."),
        ("Error: the title is taken", "Error: the title is taken."),
        ("A user called mia exists already.", "A user called mia exists already."),
    ],
)
def test_an_error_sentence_loses_python_class_names(message, plain):
    assert wording.plain_error(message) == plain


def test_statuses_and_failure_kinds_read_as_words():
    assert [wording.image_status(s) for s in ("none", "pending", "uploaded")] == [
        "No image",
        "Awaiting review",
        "Author's image",
    ]
    assert wording.error_kind("rate_limited") == "Rate limited"
    assert wording.error_kind("brand_new_kind") == "Brand new kind"


# -- figures -------------------------------------------------------------------------------------
def daily_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"day": ["2026-03-01", "2026-03-02"], "attempts": [4, 2], "succeeded": [4, 1], "saved_usd": [0.0, 0.05]}
    ).assign(success_rate=lambda f: f["succeeded"] / f["attempts"])


def test_the_success_rate_axis_runs_from_0_to_100_percent():
    fig = charts.attempts_and_success(daily_frame())
    axis = fig.layout.yaxis2
    assert axis.tickformat == ".0%" and list(axis.tickvals) == [0, 0.25, 0.5, 0.75, 1] and axis.range[0] == 0
    assert [t.name for t in fig.data] == ["Attempts", "Success rate"]


def test_failure_kinds_and_model_names_are_words_and_plain_text_in_figures():
    failures = pd.DataFrame({"error_kind": ["rate_limited", "bad_image"], "n": [3, 1]})
    assert list(charts.failures_by_kind(failures).data[0].y) == ["Rate limited", "Unusable image"]
    spend = pd.DataFrame({"day": ["2026-03-01"], "model": ['<a href="http://x/phish">m</a>'], "spend_usd": [0.5]})
    [bars] = charts.spend_per_day(spend, "model").data
    assert bars.name == '&lt;a href="http://x/phish"&gt;m&lt;/a&gt;'  # plotly shows it, never links it


def test_the_month_chart_draws_spend_so_far_the_forecast_and_the_budget():
    outlook = spending.MonthOutlook(
        month_start=date(2026, 3, 1),
        today=date(2026, 3, 10),
        daily=pd.DataFrame({"day": ["2026-03-02", "2026-03-09"], "spend_usd": [4.0, 6.0]}),
    )
    fig = charts.month_against_budget(outlook, cap=50.0)
    spent, forecast = fig.data
    assert list(spent.y)[-1] == 10.0 and len(spent.x) == 10
    assert list(forecast.x) == ["2026-03-10", "2026-03-31"] and list(forecast.y) == [10.0, 31.0]
    assert fig.layout.shapes[0].y0 == 50.0


# -- this month and the totals -------------------------------------------------------------------
def test_the_forecast_is_spend_so_far_over_days_elapsed_times_days_in_month():
    outlook = spending.MonthOutlook(
        month_start=date(2026, 2, 1),
        today=date(2026, 2, 7),
        daily=pd.DataFrame({"day": ["2026-02-03"], "spend_usd": [14.0]}),
    )
    assert (outlook.spent, outlook.days_elapsed, outlook.days_in_month, outlook.forecast) == (14.0, 7, 28, 56.0)
    assert outlook.method() == (
        "Forecast to month end: $14 spent so far ÷ 7 day(s) elapsed (today counts as a whole day) "
        "× 28 days in February = $56."
    )
    assert outlook.against(50.0) == (
        "$14 of the $50 monthly budget spent (28%); on this pace the month ends at $56, over budget."
    )


def test_month_outlook_counts_this_months_calls_as_the_budget_does(engine, history):  # noqa: F811
    now = D3 + timedelta(hours=5)  # 2026-03-03: the whole history is this month
    with Session(engine) as session:
        add_attempt(session, "s1", D1 - timedelta(days=5), cost=9.0)  # last month
        session.commit()
        outlook = spending.month_outlook(session=session, now=now)
        head = metrics.headline(session=session, scope=metrics.Scope(since=D1 - timedelta(days=1)))
    # every finished call's cost plus the running call's $0.03 reservation
    assert outlook.spent == pytest.approx(head["spend_usd"] + 0.03)
    assert list(outlook.daily["day"]) == ["2026-03-01", "2026-03-02", "2026-03-03"]


def test_totals_by_model_and_template_version_match_the_history(engine, history):  # noqa: F811
    with Session(engine) as session:
        both = spending.totals(session=session, scope=metrics.Scope())
    by_model = both.groupby("model")[spending.TOTAL_COLUMNS].sum()
    by_template = both.groupby("template")[spending.TOTAL_COLUMNS].sum()
    assert by_model.loc["gpt-image-2", "attempts"] == 8 and by_model.loc["local-card", "attempts"] == 2
    assert by_model.loc["gpt-image-2", "spend_usd"] == pytest.approx(0.21)
    # approved: s1's published image (default@1) and s2's later superseded one (default@2)
    assert (by_template.loc["default@1", "approved"], by_template.loc["default@2", "approved"]) == (1, 1)
    table = spending.totals_table(both, "model")
    per_approved = wording.money(by_model.loc["gpt-image-2", "spend_usd"] / 2)
    assert list(table.iloc[0]) == ["gpt-image-2", 8, "62%", "$0.21", 2, per_approved]
    assert list(spending.totals_table(both, "template")["Template version"]) == ["default@1", "default@2"]


def test_a_custom_period_covers_whole_days_and_this_month_starts_on_the_first():
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    custom = metrics.period_scope("custom", start=date(2026, 3, 2), end=date(2026, 3, 3), now=now)
    assert (custom.since, custom.until) == (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    assert metrics.period_scope("month", now=now).since == datetime(2026, 3, 1, tzinfo=UTC)
    assert metrics.period_scope("7", now=now, model="m").since == now - timedelta(days=7)


# -- the audit log -------------------------------------------------------------------------------
def event(action: str, target: str | None = None, actor: str = "alice", **detail) -> AuditEvent:
    return AuditEvent(actor=actor, action=action, target=target, detail=detail)


TITLES = {"s1": "Forge Churn Analyzer"}


@pytest.mark.parametrize(
    ("audited", "said"),
    [
        (
            event("image.approve", "s1", candidate_id=12, file="f.png"),
            "alice approved a new image for Forge Churn Analyzer (candidate 12)",
        ),
        (
            event("image.reject", "s1", candidate_id=3, reason="off_brand", note="wrong colours"),
            "alice rejected an image for Forge Churn Analyzer (candidate 3): off-brand (wrong colours)",
        ),
        (
            event("image.reject", "s1", candidate_id=4, reason="not_chosen"),
            "alice rejected an image for Forge Churn Analyzer (candidate 4): not chosen",
        ),
        (
            event("image.rollback", "s1", restored="/api/x.png"),
            "alice rolled Forge Churn Analyzer back to its previous image",
        ),
        (
            event("image.upload", "s1", candidate_id=5, bytes=250_000),
            "alice uploaded the author's own image for Forge Churn Analyzer (0.2 MB)",
        ),
        (event("solution.add", "gone", title="Old Title"), "alice added the solution Old Title"),
        (event("solution.edit", "s1", field="description"), "alice edited the description of Forge Churn Analyzer"),
        (
            event("settings.change", "image_budget_daily_usd", actor="cli", old=5.0, new=10.0),
            "cli changed the daily budget from $5 to $10",
        ),
        (
            event("settings.change", "image_budget_alert_share", old=None, new=0.9),
            "alice changed the budget alert threshold from the server's setting to 90%",
        ),
        (
            event("price.change", "gpt-image-2", old=[5, 8, 30], new=[5, 8, 32]),
            "alice changed the price of gpt-image-2 from $5 text in, $8 image in, $30 image out per 1M tokens "
            "to $5 text in, $8 image in, $32 image out per 1M tokens",
        ),
        (event("user.add", "mia", role="manager"), "alice added the user mia as a manager"),
        (event("user.role", "mia", old="manager", new="product"), "alice changed mia's role from manager to product"),
        (
            event("user.email", "mia", old=None, new="mia@example.com"),
            "alice set mia's single sign-on email to mia@example.com",
        ),
        (
            event("user.throttled", "mia", actor="sign-in", client="10.0.0.7", wait=30),
            "Failed sign-ins as mia from 10.0.0.7: a new browser now waits 30 s before trying again",
        ),
        (
            event("image.undo", "s1", candidate_id=9),
            "alice undid the approval of a new image for Forge Churn Analyzer (candidate 9): it waits for review again",
        ),
        (event("template.save", "default@3", note="bolder"), "alice saved the template version default@3: bolder"),
        (
            event("template.label", "default", label="production", from_version=1, to_version=2, note=""),
            "alice moved default's production label from v1 to v2",
        ),
        (
            event("template.category", "Computer Vision", old=None, new="vision"),
            "alice set Computer Vision to use the vision template (it used default)",
        ),
        (
            event("catalogue.import", "a.json", imported=3, updated=1, refused=2),
            "alice imported a.json: 3 new, 1 updated, 2 refused",
        ),
        (event("marketplace.keep_theirs", "s1"), "alice kept the marketplace's own image for Forge Churn Analyzer"),
        (
            event("storage.cleanup", None, older_than_days=30, files=4, bytes=3_000_000),
            "alice deleted 4 file(s) of candidates older than 30 days, freeing 3.0 MB",
        ),
        (
            event(
                "schedule.change",
                "nightly_generate",
                old={"enabled": False, "every_minutes": 1440, "offset_minutes": 120},
                new={"enabled": True, "every_minutes": 1440, "offset_minutes": 210},
            ),
            "alice turned on the nightly generation of missing images (published without review): "
            "every day at 03:30 UTC",
        ),
        (
            event(
                "schedule.change",
                "marketplace_pull",
                old={"enabled": True, "every_minutes": 15, "offset_minutes": 0},
                new={"enabled": True, "every_minutes": 60, "offset_minutes": 0},
            ),
            "alice changed the scheduled marketplace pull from every 15 minutes to every hour",
        ),
        (
            event(
                "schedule.change",
                "marketplace_pull",
                old={"enabled": True, "every_minutes": 15, "offset_minutes": 0},
                new={"enabled": False, "every_minutes": 15, "offset_minutes": 0},
            ),
            "alice turned off the scheduled marketplace pull",
        ),
        (event("image.frobnicate", "s1", count=3), "alice: image frobnicate (Forge Churn Analyzer); count 3"),
        (event("session.revoke", "bob", reason="expired"), "alice: session revoke (bob); reason expired"),
    ],
)
def test_each_action_reads_as_a_sentence(audited, said):
    assert auditlog.sentence(audited, TITLES) == said


def test_a_page_of_the_log_looks_titles_up_in_one_query(engine):
    with Session(engine) as session:
        session.add(Solution(id="s1", title="Forge Churn Analyzer", description="d", category="Other"))
        session.add(event("image.approve", "s1", candidate_id=1))
        session.add(event("settings.change", "image_model", old="gpt-image-2", new="gpt-image-2.5-flare"))
        session.commit()
        statements: list[str] = []
        from sqlalchemy import event as sa_event

        sa_event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        lines = auditlog.entries(session=session, actor=ALICE)
    assert [line.sentence for line in lines] == [
        "alice changed the default model from gpt-image-2 to gpt-image-2.5-flare",
        "alice approved a new image for Forge Churn Analyzer (candidate 1)",
    ]
    assert sum("FROM solution" in s for s in statements) == 1


def test_only_admins_read_the_audit_log(engine):
    from aixchange_images.auth import PermissionDenied

    with Session(engine) as session, pytest.raises(PermissionDenied):
        auditlog.entries(session=session, actor=Actor("mia", "manager"))
    assert CLI_ACTOR.can("manage")


def test_a_running_attempt_is_not_in_the_totals(engine, history):  # noqa: F811
    with Session(engine) as session:
        add_attempt(session, "s1", D3, status=AttemptStatus.running, cost=1.0, model="other-model")
        session.commit()
        totals = spending.totals(session=session, scope=metrics.Scope())
    assert "other-model" not in set(totals["model"])
