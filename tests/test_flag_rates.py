"""Flag rates: how often the automatic checks flag what each model and template version makes, in the
library (one GROUP BY), the yield table, the Metrics page's chart and Prompt Studio's yield table.
Real SQLite files (PostgreSQL with TEST_POSTGRES_URL); candidates and their checks written directly."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from conftest import open_page, open_tab
from sqlmodel import Session
from test_metrics import add_attempt, add_candidate

from aixchange_images import charts, metrics, yields
from aixchange_images.auth import Actor
from aixchange_images.checks import NAMES
from aixchange_images.inspections import stored_flags
from aixchange_images.metrics import Scope
from aixchange_images.models import CandidateCheck, CandidateState, Solution, utcnow

MIA = Actor("mia", "manager")
PAT = Actor("pat", "product")
GPT, LOCAL_CARD = "gpt-image-2", "local-card"


def checked(session: Session, model: str, template: str, flagged: tuple[str, ...] = (), **options) -> None:
    """A generated candidate of `model` and `template` (an attempt made it), checked by `ran` (every
    check unless told) with `flagged` raised; `at` when it was made; `upload=True`: an upload instead."""
    at, ran = options.get("at", utcnow() - timedelta(days=1)), options.get("ran", NAMES)
    provider = "local" if model == LOCAL_CARD else "openai"
    attempt = (
        None
        if options.get("upload")
        else add_attempt(session, "s1", at, model=model, template=template, provider=provider)
    )
    source = "uploaded" if attempt is None else "generated"
    candidate = add_candidate(session, attempt, "s1", at, CandidateState.pending, 10, source=source)
    candidate.checked_at, candidate.flags = (at, stored_flags(flagged)) if ran else (None, "")
    session.add(candidate)
    for name in ran:
        session.add(CandidateCheck(candidate_id=candidate.id, name=name, flagged=name in flagged, sentence="a test"))


@pytest.fixture
def history(engine) -> None:
    """In the last 30 days:
    gpt-image-2 default@1: 4 checked by every check, 2 with garbled lettering (one also a duplicate)
    gpt-image-2 default@2: 2 checked by blank and wrong size only, 1 of the wrong size
    local-card  default@2: 2 checked by every check, 1 blank; 1 not checked yet
    an upload flagged blank (not generated: never counted)
    40 days ago, gpt-image-2 default@1: 1 flagged unsafe."""
    with Session(engine) as session:
        session.add(Solution(id="s1", title="Alpha", description="Routes tickets.", category="Other"))
        session.flush()
        for flagged in (("text_garbled",), ("text_garbled", "duplicate"), (), ()):
            checked(session, GPT, "default@1", flagged)
        for flagged in (("wrong_size",), ()):
            checked(session, GPT, "default@2", flagged, ran=("blank", "wrong_size"))
        for flagged in (("blank",), ()):
            checked(session, LOCAL_CARD, "default@2", flagged)
        checked(session, LOCAL_CARD, "default@2", ran=())
        checked(session, "upload", "upload", ("blank",), upload=True)
        checked(session, GPT, "default@1", ("unsafe",), at=utcnow() - timedelta(days=40))
        session.commit()


def rates(engine, by: str, scope: Scope | None = None) -> pd.DataFrame:
    with Session(engine) as session:
        return metrics.flag_rates(session=session, scope=scope or metrics.last_days(30), by=by).set_index(by)


def test_flag_rates_per_model_count_the_checked_candidates_and_each_checks_share(engine, history):
    table = rates(engine, "model")

    assert list(table.index) == [GPT, LOCAL_CARD]
    gpt, local = table.loc[GPT], table.loc[LOCAL_CARD]
    assert (gpt["checked"], gpt["flagged"], gpt["flag_rate"]) == (6, 3, 0.5)
    assert (gpt["text_garbled_flagged"], gpt["text_garbled_rate"]) == (2, pytest.approx(2 / 6))
    assert (gpt["duplicate_flagged"], gpt["unsafe_rate"], gpt["blank_rate"]) == (1, 0.0, 0.0)
    assert (gpt["wrong_size_flagged"], gpt["wrong_size_rate"]) == (1, pytest.approx(1 / 6))
    assert (local["checked"], local["flagged"], local["flag_rate"], local["blank_rate"]) == (2, 1, 0.5, 0.5)
    assert local["text_garbled_rate"] == 0.0


def test_flag_rates_per_template_version_show_which_one_garbles_lettering(engine, history):
    table = rates(engine, "template")

    assert list(table.index) == ["default@1", "default@2"]
    one, two = table.loc["default@1"], table.loc["default@2"]
    assert (one["checked"], one["flag_rate"], one["text_garbled_rate"]) == (4, 0.5, 0.5)
    assert (two["checked"], two["flagged"], two["text_garbled_flagged"], two["text_garbled_rate"]) == (4, 2, 0, 0.0)
    assert (two["blank_rate"], two["wrong_size_rate"]) == (0.25, 0.25)


def test_the_metrics_filters_narrow_the_flag_rates(engine, history):
    table = rates(engine, "model", Scope(since=utcnow() - timedelta(days=30), template="default@2"))
    local = rates(engine, "template", Scope(provider="local"))

    assert (table.loc[GPT, "checked"], table.loc[GPT, "text_garbled_rate"], table.loc[GPT, "wrong_size_rate"]) == (
        2,
        0.0,
        0.5,
    )
    assert list(local.index) == ["default@2"] and local.loc["default@2", "blank_rate"] == 0.5


def test_the_period_decides_which_candidates_count(engine, history):
    all_time = rates(engine, "model", Scope()).loc[GPT]
    before = rates(engine, "model", Scope(until=utcnow() - timedelta(days=30)))

    assert (all_time["checked"], all_time["flagged"], all_time["unsafe_flagged"]) == (7, 4, 1)
    assert all_time["unsafe_rate"] == pytest.approx(1 / 7)
    assert list(before.index) == [GPT]
    assert (before.loc[GPT, "checked"], before.loc[GPT, "unsafe_rate"], before.loc[GPT, "text_garbled_rate"]) == (
        1,
        1.0,
        0.0,
    )
    assert rates(engine, "template", Scope(since=utcnow() + timedelta(days=1))).empty


def test_the_yield_table_has_the_flag_rates_of_each_template_version(engine, history):
    with Session(engine) as session:
        table = yields.yield_table(session=session, since=utcnow() - timedelta(days=30)).set_index("template")
        everything = yields.yield_table(session=session).set_index("template")

    one, two = table.loc["default@1"], table.loc["default@2"]
    assert (one["candidates"], one["checked"], one["flag_rate"], one["text_garbled_rate"]) == (4, 4, 0.5, 0.5)
    assert (two["candidates"], two["checked"], two["blank_rate"]) == (5, 4, 0.25)
    assert (everything.loc["default@1", "checked"], everything.loc["default@1", "unsafe_rate"]) == (5, 0.2)
    assert (two["text_garbled_flagged"], two["wrong_size_flagged"]) == (0, 1)
    assert "upload" not in table.index


def test_the_yield_table_per_provider_and_model_has_their_flag_rates(engine, history):
    with Session(engine) as session:
        table = yields.yield_table(session=session, since=utcnow() - timedelta(days=30), by=yields.BY_PAIR)

    table = table.set_index(["provider", "model"])
    assert (table.loc[("openai", GPT), "checked"], table.loc[("openai", GPT), "flag_rate"]) == (6, 0.5)
    assert (table.loc[("local", LOCAL_CARD), "checked"], table.loc[("local", LOCAL_CARD), "blank_rate"]) == (2, 0.5)


def test_the_readable_yield_table_names_the_checks_in_plain_words(engine, history):
    with Session(engine) as session:
        table = yields.yield_table(session=session, since=utcnow() - timedelta(days=30))

    readable = yields.yield_readable(table, {}).set_index("Template version")

    assert list(readable.columns[-7:]) == [
        "Checked",
        "Flagged",
        "Blank",
        "Garbled lettering",
        "Unsafe",
        "Duplicate",
        "Wrong size",
    ]
    assert list(readable.loc["default@1", ["Checked", "Flagged", "Garbled lettering"]]) == [4, "50%", "50%"]
    assert (readable.loc["default@2", "Garbled lettering"], readable.loc["default@2", "Blank"]) == ("0%", "25%")


def test_a_version_nothing_was_checked_for_reads_as_no_rate(engine, make_solutions):
    (sid,) = make_solutions(1)
    with Session(engine) as session:
        add_candidate(session, add_attempt(session, sid, utcnow()), sid, utcnow(), CandidateState.pending, 10)
        session.commit()
        table = yields.yield_table(session=session)

    readable = yields.yield_readable(table, {}).set_index("Template version")
    assert (readable.loc["default@1", "Checked"], readable.loc["default@1", "Flagged"]) == (0, "—")


def test_the_flag_rate_chart_has_a_bar_series_per_check_and_a_row_per_model(engine, history):
    fig = charts.flag_rates(rates(engine, "model").reset_index(), "model")

    assert [trace.name for trace in fig.data] == [
        "Any check",
        "Blank",
        "Garbled lettering",
        "Unsafe",
        "Duplicate",
        "Wrong size",
    ]
    garbled = fig.data[2]
    assert list(garbled.y) == [GPT, LOCAL_CARD] and list(garbled.x) == pytest.approx([2 / 6, 0.0])
    assert [list(pair) for pair in garbled.customdata] == [[2, 6], [0, 2]]
    assert fig.layout.title.text == "Share of checked images flagged, by model"


def chart_titles(at) -> set[str]:  # type: ignore[no-untyped-def]
    return {json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")}


def test_the_metrics_page_charts_the_flag_rates_per_model_and_template_version(engine, history):
    at = open_tab(open_page("metrics", MIA), "metrics-tab", "Image checks")

    assert {
        "Share of checked images flagged, by model",
        "Share of checked images flagged, by template version",
    } <= chart_titles(at)
    by_model = next(d.value for d in at.dataframe if list(d.value.columns)[0] == "Model").set_index("Model")
    assert list(by_model.loc[GPT, ["Checked", "Flagged", "Garbled lettering"]]) == [6, "50%", "33%"]
    assert not any("No checked images" in i.value for i in at.info)


def test_the_metrics_page_says_what_to_do_when_nothing_was_checked(engine, make_solutions):
    (sid,) = make_solutions(1)
    with Session(engine) as session:
        add_candidate(session, add_attempt(session, sid, utcnow()), sid, utcnow(), CandidateState.pending, 10)
        session.commit()

    at = open_tab(open_page("metrics", MIA), "metrics-tab", "Image checks")

    assert any(
        "No checked images in this period" in i.value and "python -m aixchange_images checks --all" in i.value
        for i in at.info
    )
    assert not any("Share of checked images" in title for title in chart_titles(at))


def test_prompt_studio_yield_table_shows_the_flag_rates(engine, history):
    at = open_page("prompt_studio", PAT)

    table = at.dataframe[-1].value.set_index("Template version")  # the yield table is the last on the page

    assert list(table.loc["default@1", ["Checked", "Flagged", "Garbled lettering"]]) == [5, "60%", "40%"]
