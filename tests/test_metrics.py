"""Figures for managers on a hand-built history with known values, storage clean-up, and the Metrics
and Settings pages."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import get_solution, open_page, open_tab
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest
from test_cli import STATS_KEYS

from aixchange_images import (
    batch,
    charts,
    cli,
    demo,
    metrics,
    metrics_dashboard,
    pipeline,
    provider_metrics,
    review,
    spending,
)
from aixchange_images.auth import CLI_ACTOR, Actor, PermissionDenied
from aixchange_images.config import Settings, load_settings
from aixchange_images.db import session_scope
from aixchange_images.metrics import Scope
from aixchange_images.models import (
    Attempt,
    AttemptStatus,
    AuditEvent,
    Candidate,
    CandidateState,
    Publication,
    Solution,
    utcnow,
)

ALICE = Actor("alice", "admin")
MIA = Actor("mia", "manager")
D1 = datetime(2026, 3, 1, 10, tzinfo=UTC)
D2, D3, D4 = (D1 + timedelta(days=n) for n in (1, 2, 3))
DAYS = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]


# -- a hand-built history ------------------------------------------------------------------------
def add_attempt(
    session: Session,
    sid: str,
    at: datetime,
    *,
    status: str = AttemptStatus.succeeded,
    ms: int | None = None,
    cost: float = 0.0,
    model: str = "gpt-image-2",
    template: str = "default@1",
    provider: str = "openai",
    cache_hit: bool = False,
    saved: float = 0.0,
    kind: str | None = None,
) -> Attempt:
    attempt = Attempt(
        solution_id=sid,
        provider=provider,
        model=model,
        size="1024x1024",
        quality="medium",
        template_ref=template,
        prompt="a card",
        request_key=f"key-{random.random()}",
        status=status,
        error_kind=kind,
        cache_hit=cache_hit,
        started_at=at,
        finished_at=None if status == AttemptStatus.running else at + timedelta(milliseconds=ms or 0),
        duration_ms=ms,
        cost_usd=cost,
        reserved_usd=cost if status == AttemptStatus.running else 0.0,
        saved_usd=saved,
    )
    session.add(attempt)
    session.flush()
    return attempt


def add_candidate(
    session: Session,
    attempt: Attempt | None,
    sid: str,
    at: datetime,
    state: str,
    size: int,
    *,
    cache_hit: bool = False,
    source: str = "generated",
    deleted_at: datetime | None = None,
) -> Candidate:
    candidate = Candidate(
        solution_id=sid,
        attempt_id=attempt.id if attempt else None,
        state=state,
        file_path=f"candidates/{sid}/{random.random()}.png",
        thumb_path=f"thumbnails/{sid}/{random.random()}.jpg",
        image_format="png",
        width=1024,
        height=1024,
        bytes=size,
        sha256="0" * 64,
        template_ref=attempt.template_ref if attempt else "upload",
        model=attempt.model if attempt else "upload",
        cost_usd=attempt.cost_usd if attempt else 0.0,
        cache_hit=cache_hit,
        source=source,
        created_at=at,
        deleted_at=deleted_at,
    )
    session.add(candidate)
    session.flush()
    if attempt is not None:
        attempt.candidate_id = candidate.id
        session.add(attempt)
    return candidate


def add_publication(session: Session, sid: str, candidate: Candidate, at: datetime, size: int, active: bool) -> None:
    session.add(
        Publication(
            solution_id=sid,
            candidate_id=candidate.id,
            file_name=f"{sid}-{candidate.id}.png",
            image_url=f"/api/external-images/solutions/{sid}-{candidate.id}.png",
            bytes=size,
            published_at=at,
            active=active,
        )
    )


@pytest.fixture
def history(engine) -> None:
    """Three solutions over three days (plus a clean-up on the fourth), every figure known:

    day 1  S1: paid 1000 ms $0.04 approved (published, 1200 B); paid 2000 ms $0.04 rejected (its
               2000 B file cleaned up on day 4); rate limited
    day 2  S2: default@2 paid 3000 ms $0.05, published (3500 B) then superseded; rate limited
           S3: default@2 cache hit saving $0.05 (pending); local 400 ms $0 (pending)
    day 3  S3: local invalid request; default@2 paid 4000 ms $0.05 rejected
           S2: interrupted, charged its $0.03 reservation; an upload published (800 B)
           S1: still running with $0.03 reserved (in no figure)
    """
    with Session(engine) as session:
        for sid, title in (("s1", "Alpha"), ("s2", "Beta"), ("s3", "Gamma")):
            session.add(Solution(id=sid, title=title, description="Routes tickets.", category="Other"))
        session.flush()
        a = add_attempt(session, "s1", D1, ms=1000, cost=0.04)
        c1 = add_candidate(session, a, "s1", D1, CandidateState.approved, 1000)
        add_publication(session, "s1", c1, D1, 1200, active=True)
        a = add_attempt(session, "s1", D1 + timedelta(hours=1), ms=2000, cost=0.04)
        add_candidate(session, a, "s1", D1, CandidateState.rejected, 2000, deleted_at=D4)
        add_attempt(session, "s1", D1 + timedelta(hours=2), status=AttemptStatus.failed, ms=500, kind="rate_limited")

        a = add_attempt(session, "s2", D2, ms=3000, cost=0.05, template="default@2")
        c3 = add_candidate(session, a, "s2", D2, CandidateState.superseded, 3000)
        add_publication(session, "s2", c3, D2, 3500, active=False)
        a = add_attempt(session, "s3", D2, ms=10, template="default@2", cache_hit=True, saved=0.05)
        add_candidate(session, a, "s3", D2, CandidateState.pending, 3000, cache_hit=True)
        a = add_attempt(session, "s3", D2, ms=400, model="local-card", provider="local")
        add_candidate(session, a, "s3", D2, CandidateState.pending, 500)
        add_attempt(session, "s2", D2, status=AttemptStatus.failed, ms=100, template="default@2", kind="rate_limited")

        add_attempt(
            session,
            "s3",
            D3,
            status=AttemptStatus.failed,
            ms=0,
            model="local-card",
            provider="local",
            kind="invalid_request",
        )
        a = add_attempt(session, "s3", D3, ms=4000, cost=0.05, template="default@2")
        add_candidate(session, a, "s3", D3, CandidateState.rejected, 4000)
        add_attempt(session, "s2", D3, status=AttemptStatus.interrupted, cost=0.03)
        upload = add_candidate(session, None, "s2", D3, CandidateState.approved, 800, source="uploaded")
        add_publication(session, "s2", upload, D3, 800, active=True)
        add_attempt(session, "s1", D3, status=AttemptStatus.running, cost=0.03)
        session.commit()


def headline(engine, scope: Scope | None = None) -> dict:
    with Session(engine) as session:
        return metrics.headline(session=session, scope=scope)


def figures(head: dict, *keys: str) -> tuple:
    return tuple(head[k] for k in keys)


def test_headline_sums_the_finished_attempts_of_the_history(engine, history):
    head = headline(engine)

    assert figures(head, "attempts", "succeeded", "failed", "success_rate") == (10, 6, 4, 0.6)
    # paid successes took 400, 1000, 2000, 3000, 4000 ms: nearest rank 3 of 5 and 5 of 5
    assert figures(head, "p50_ms", "p95_ms") == (2000, 4000)
    assert head["spend_usd"] == pytest.approx(0.21)
    assert figures(head, "cache_hits", "cache_saved_usd") == (1, pytest.approx(0.05))
    assert head["approved"] == 2  # the published and the superseded one; the upload was not generated
    assert head["cost_per_approved_usd"] == pytest.approx(0.105)
    assert head["rejected_spend_usd"] == pytest.approx(0.09)
    # files on disk: 1000 + 3000 + 500 + 4000 + 800 (the cache hit shares a file, one was cleaned up)
    # plus published 1200 + 3500 + 800
    assert head["storage_bytes"] == 14800


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (Scope(model="local-card"), (2, 1, 0.5, 400, 400, 0.0, 0, None, 0.0)),
        (Scope(provider="local"), (2, 1, 0.5, 400, 400, 0.0, 0, None, 0.0)),
        (Scope(template="default@2"), (4, 3, 0.75, 3000, 4000, 0.10, 1, 0.10, 0.05)),
        (Scope(provider="openai"), (8, 5, 0.625, 2000, 4000, 0.21, 2, 0.105, 0.09)),
        (
            Scope(since=datetime(2026, 3, 2, tzinfo=UTC), until=datetime(2026, 3, 3, tzinfo=UTC)),
            (4, 3, 0.75, 400, 3000, 0.05, 1, 0.05, 0.0),
        ),
    ],
    ids=["model", "provider-local", "template", "provider-openai", "period"],
)
def test_a_scope_narrows_every_headline_figure(engine, history, scope, expected):
    head = headline(engine, scope)

    keys = (
        "attempts",
        "succeeded",
        "success_rate",
        "p50_ms",
        "p95_ms",
        "spend_usd",
        "approved",
        "cost_per_approved_usd",
        "rejected_spend_usd",
    )
    assert figures(head, *keys) == pytest.approx(expected)


def test_percentiles_are_nearest_rank_over_paid_successes_only(engine):
    with Session(engine) as session:
        session.add(Solution(id="s1", title="Alpha", description="Routes tickets.", category="Other"))
        session.flush()
        durations = list(range(100, 2001, 100))  # 20 paid calls
        random.Random(7).shuffle(durations)
        for n, ms in enumerate(durations):
            add_attempt(session, "s1", D1 + timedelta(minutes=n), ms=ms, cost=0.01)
        add_attempt(session, "s1", D1, ms=1, cache_hit=True)  # never reached a provider
        add_attempt(session, "s1", D1, status=AttemptStatus.failed, ms=99_000, kind="timeout")
        session.commit()
        times = metrics.daily_percentiles(session=session)

    head = headline(engine)

    # nearest rank: the 10th and 19th of 20 (interpolation would give 1050 and 1905)
    assert figures(head, "p50_ms", "p95_ms") == (1000, 1900)
    assert times.to_dict("records") == [{"day": DAYS[0], "p50_ms": 1000, "p95_ms": 1900}]


def test_an_empty_history_has_no_rates_or_times(engine):
    head = headline(engine)

    assert figures(head, "attempts", "success_rate", "p50_ms", "p95_ms", "cost_per_approved_usd") == (
        0,
        None,
        None,
        None,
        None,
    )
    with Session(engine) as session:
        assert metrics.daily(session=session).empty
        assert metrics.storage_over_time(session=session).empty


def test_daily_counts_attempts_successes_spend_and_savings_per_day(engine, history):
    with Session(engine) as session:
        table = metrics.daily(session=session)

    rows = [
        (r["day"], r["attempts"], r["succeeded"], round(r["spend_usd"], 6), r["cache_hits"], round(r["saved_usd"], 6))
        for r in table.to_dict("records")
    ]
    assert rows == [
        (DAYS[0], 3, 2, 0.08, 0, 0.0),
        (DAYS[1], 4, 3, 0.05, 1, 0.05),
        (DAYS[2], 3, 1, 0.08, 0, 0.0),
    ]
    assert list(table["success_rate"]) == pytest.approx([2 / 3, 0.75, 1 / 3])


def test_daily_percentiles_rank_each_day_on_its_own(engine, history):
    with Session(engine) as session:
        times = metrics.daily_percentiles(session=session)

    assert times.to_dict("records") == [
        {"day": DAYS[0], "p50_ms": 1000, "p95_ms": 2000},
        {"day": DAYS[1], "p50_ms": 400, "p95_ms": 3000},
        {"day": DAYS[2], "p50_ms": 4000, "p95_ms": 4000},
    ]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        (
            "model",
            {
                (DAYS[0], "gpt-image-2", 0.08),
                (DAYS[1], "gpt-image-2", 0.05),
                (DAYS[1], "local-card", 0.0),
                (DAYS[2], "gpt-image-2", 0.08),
                (DAYS[2], "local-card", 0.0),
            },
        ),
        (
            "template",
            {
                (DAYS[0], "default@1", 0.08),
                (DAYS[1], "default@1", 0.0),
                (DAYS[1], "default@2", 0.05),
                (DAYS[2], "default@1", 0.03),
                (DAYS[2], "default@2", 0.05),
            },
        ),
        (
            "provider",
            {
                (DAYS[0], "openai", 0.08),
                (DAYS[1], "local", 0.0),
                (DAYS[1], "openai", 0.05),
                (DAYS[2], "local", 0.0),
                (DAYS[2], "openai", 0.08),
            },
        ),
    ],
)
def test_spend_is_split_per_day_by_model_template_or_provider(engine, history, by, expected):
    with Session(engine) as session:
        table = metrics.spend_by(session=session, by=by)

    assert list(table.columns) == ["day", by, "spend_usd"]
    assert {(r["day"], r[by], round(r["spend_usd"], 6)) for r in table.to_dict("records")} == expected
    assert list(table["day"]) == sorted(table["day"])


def test_failures_are_counted_by_kind_most_frequent_first(engine, history):
    with Session(engine) as session:
        table = metrics.failures_by_kind(session=session)
        local = metrics.failures_by_kind(session=session, scope=Scope(provider="local"))

    # the interrupted attempt has no kind to show
    assert table.to_dict("records") == [
        {"error_kind": "rate_limited", "n": 2},
        {"error_kind": "invalid_request", "n": 1},
    ]
    assert local.to_dict("records") == [{"error_kind": "invalid_request", "n": 1}]


def storage_by_day(table) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in table.to_dict("records"):
        out.setdefault(r["day"], {})[r["kind"]] = int(r["bytes"])
    return out


def test_storage_over_time_is_cumulative_and_a_clean_up_shows_as_a_drop(engine, history):
    with Session(engine) as session:
        table = metrics.storage_over_time(session=session)
        recent = metrics.storage_over_time(session=session, since=D3)
        on_disk = metrics.storage_bytes(session=session)

    by_day = storage_by_day(table)
    assert by_day == {
        DAYS[0]: {"candidates": 1000, "published": 1200, "rejected": 2000},
        DAYS[1]: {"candidates": 4500, "published": 4700, "rejected": 2000},
        DAYS[2]: {"candidates": 5300, "published": 5500, "rejected": 6000},
        DAYS[3]: {"candidates": 5300, "published": 5500, "rejected": 4000},  # the clean-up
    }
    assert sum(by_day[DAYS[3]].values()) == on_disk
    # a later start shows the same running totals, not totals counted from that day
    assert storage_by_day(recent) == {day: by_day[day] for day in DAYS[2:]}


def test_largest_consumers_rank_solutions_by_bytes_on_disk(engine, history):
    with Session(engine) as session:
        top = metrics.largest_consumers(session=session, limit=2)
        every = metrics.largest_consumers(session=session)

    assert top.to_dict("records") == [
        {"title": "Beta", "bytes": 8100, "files": 4},
        {"title": "Gamma", "bytes": 4500, "files": 2},
    ]
    assert every.to_dict("records")[-1] == {"title": "Alpha", "bytes": 2200, "files": 2}


def test_attempts_table_lists_finished_attempts_newest_first(engine, history):
    with Session(engine) as session:
        table = metrics.attempts_table(session=session)
        local = metrics.attempts_table(session=session, scope=Scope(model="local-card"))

    assert len(table) == 10 and "running" not in set(table["status"])
    assert list(table["id"]) == sorted(table["id"], reverse=True)
    assert set(local["model"]) == {"local-card"} and len(local) == 2


def test_the_dashboard_figures_run_side_by_side_and_match_each_query_on_its_own(engine, history):
    scope = Scope(model="local-card")
    with Session(engine) as session:
        one_by_one = {
            "head": metrics.headline(session=session, scope=scope),
            "daily": metrics.daily(session=session, scope=scope),
            "times": metrics.daily_percentiles(session=session, scope=scope),
            "failures": metrics.failures_by_kind(session=session, scope=scope),
            "by_model": metrics.spend_by(session=session, scope=scope, by="model"),
            "by_template": metrics.spend_by(session=session, scope=scope, by="template"),
            "storage": metrics.storage_over_time(session=session, since=scope.since),
            "largest": metrics.largest_consumers(session=session),
            "totals": spending.totals(session=session, scope=scope),
            "providers": provider_metrics.provider_totals(session=session, scope=scope),
            "month": spending.month_outlook(session=session),
            "flags_by_model": metrics.flag_rates(session=session, scope=scope, by="model"),
            "flags_by_template": metrics.flag_rates(session=session, scope=scope, by="template"),
        }

    together = metrics_dashboard.gather(engine, scope, workers=4)

    assert together.keys() == one_by_one.keys()
    assert together["head"] == one_by_one["head"] and together["head"]["attempts"] == 2
    assert together["month"].spent == one_by_one["month"].spent
    for name in one_by_one.keys() - {"head", "month"}:
        pd.testing.assert_frame_equal(together[name], one_by_one[name])
    assert not together["largest"].empty


def test_one_breakdown_by_day_model_and_template_gives_daily_and_spend_by_model_and_template(engine, history):
    with Session(engine) as session:
        for scope in (Scope(), Scope(model="gpt-image-2", since=D2), Scope(since=utcnow() + timedelta(days=1))):
            breakdown = metrics.day_breakdown(session=session, scope=scope)

            pd.testing.assert_frame_equal(metrics.daily_of(breakdown), metrics.daily(session=session, scope=scope))
            for by in ("model", "template"):
                one_pass = metrics.spend_of(breakdown, by)
                pd.testing.assert_frame_equal(one_pass, metrics.spend_by(session=session, scope=scope, by=by))


# -- per provider --------------------------------------------------------------------------------
def provider_rows(engine, scope: Scope | None = None) -> dict[str, dict]:
    with Session(engine) as session:
        totals = provider_metrics.provider_totals(session=session, scope=scope or Scope())
    return {row["provider"]: row for row in totals.to_dict("records")}


def test_provider_totals_give_each_provider_its_attempts_time_spend_and_approvals(engine, history):
    rows = provider_rows(engine)

    assert list(rows) == ["openai", "local"]  # dearest first
    openai, local = rows["openai"], rows["local"]
    assert (openai["attempts"], openai["succeeded"], openai["success_rate"]) == (8, 5, 0.625)
    assert openai["p50_ms"] == 2000  # paid successes 1000, 2000, 3000, 4000 ms: nearest rank 2 of 4
    assert openai["spend_usd"] == pytest.approx(0.21) and openai["approved"] == 2
    assert openai["cost_per_approved_usd"] == pytest.approx(0.105)
    assert (local["attempts"], local["succeeded"], local["p50_ms"], local["spend_usd"], local["approved"]) == (
        2,
        1,
        400,
        0.0,
        0,
    )
    assert pd.isna(local["cost_per_approved_usd"])


def test_provider_totals_honour_the_period_and_the_provider_filter(engine, history):
    day_two = provider_rows(engine, Scope(since=D2, until=D3))
    local = provider_rows(engine, Scope(provider="local"))

    assert {p: (r["attempts"], r["approved"]) for p, r in day_two.items()} == {"openai": (3, 1), "local": (1, 0)}
    assert list(local) == ["local"] and local["local"]["attempts"] == 2


@pytest.fixture
def shared_model(engine, history) -> None:
    """A second provider serving openai's model: azure made one approved gpt-image-2 image on day 3, $0.06."""
    with Session(engine) as session:
        a = add_attempt(session, "s1", D3, ms=5000, cost=0.06, provider="azure")
        add_candidate(session, a, "s1", D3, CandidateState.approved, 100)
        session.commit()


def test_a_model_two_providers_serve_counts_each_approval_for_the_provider_that_made_it(engine, shared_model):
    rows = provider_rows(engine)

    assert {p: (r["attempts"], r["approved"]) for p, r in rows.items()} == {
        "openai": (8, 2),
        "azure": (1, 1),
        "local": (2, 0),
    }
    assert figures(headline(engine, Scope(provider="azure")), "attempts", "approved", "spend_usd") == (1, 1, 0.06)
    assert headline(engine, Scope(provider="openai"))["approved"] == 2
    with Session(engine) as session:
        totals = spending.totals(session=session, scope=Scope(provider="azure"))
    assert list(totals[["model", "attempts", "approved"]].itertuples(index=False, name=None)) == [("gpt-image-2", 1, 1)]


def test_provider_totals_read_as_a_table_and_a_chart(engine, history):
    with Session(engine) as session:
        totals = provider_metrics.provider_totals(session=session, scope=Scope())

    table = provider_metrics.provider_table(totals)
    fig = charts.provider_totals(totals)

    assert table.to_dict("records") == [
        {
            "Provider": "openai",
            "Attempts": 8,
            "Success rate": "62%",
            "Typical time": "2.0 s",
            "Spent": "$0.21",
            "Approved images": 2,
            "Per approved image": "$0.10",
        },
        {
            "Provider": "local",
            "Attempts": 2,
            "Success rate": "50%",
            "Typical time": "0.4 s",
            "Spent": "$0",
            "Approved images": 0,
            "Per approved image": "—",
        },
    ]
    assert list(fig.data[0].y) == ["openai", "local"]
    assert list(fig.data[0].text) == ["$0.10 per approved image", "nothing approved"]


def test_the_dashboard_runs_only_the_parts_asked_for(engine, history):
    scope = Scope(model="local-card")
    everything = metrics_dashboard.gather(engine, scope)

    some = metrics_dashboard.gather(engine, scope, parts=("head", "by_model"))
    alone = metrics_dashboard.gather(engine, scope, parts=["totals"])

    assert some.keys() == {"head", "by_model"} and alone.keys() == {"totals"}
    assert some["head"] == everything["head"]
    pd.testing.assert_frame_equal(some["by_model"], everything["by_model"])
    pd.testing.assert_frame_equal(alone["totals"], everything["totals"])
    with pytest.raises(ValueError, match="No dashboard part named weather"):
        metrics_dashboard.gather(engine, scope, parts=("head", "weather"))


def stats(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert cli.main(["stats", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_stats_json_has_the_contract_keys_and_honours_its_filters(engine, history, capsys):
    everything = stats(capsys)

    assert set(everything) >= STATS_KEYS and "budget" in everything
    assert figures(everything, "attempts", "succeeded", "p50_ms", "storage_bytes") == (10, 6, 2000, 14800)
    assert stats(capsys, "--since", "2026-03-02")["attempts"] == 7
    assert stats(capsys, "--model", "local-card")["attempts"] == 2
    assert stats(capsys, "--template", "default@2")["spend_usd"] == pytest.approx(0.10)
    assert stats(capsys, "--provider", "openai")["attempts"] == 8


# -- clean-up ------------------------------------------------------------------------------------
def approve(engine, settings: Settings, candidate_id: int) -> None:
    with session_scope(engine, write=True) as session:
        review.approve(session=session, settings=settings, candidate_id=candidate_id, actor=CLI_ACTOR)
        session.commit()


def reject(engine, candidate_id: int) -> None:
    with session_scope(engine, write=True) as session:
        review.reject(session=session, candidate_id=candidate_id, reason="low_quality", actor=CLI_ACTOR)
        session.commit()


def generate(engine, settings: Settings, sid: str, **options) -> int:
    (result,), _ = batch.run_batch(engine, settings, [sid], pipeline.GenerateOptions(**options))
    assert result.status == "succeeded", result.error
    return result.candidate_id


def age(engine, days: int, *candidate_ids: int) -> None:
    with Session(engine) as session:
        for cid in candidate_ids:
            candidate = session.get(Candidate, cid)
            candidate.created_at = utcnow() - timedelta(days=days)
            session.add(candidate)
        for publication in session.exec(select(Publication)).all():
            publication.published_at = utcnow() - timedelta(days=days)
            session.add(publication)
        session.commit()


@pytest.fixture
def local_settings() -> Settings:
    return load_settings(dalle_image_size="256x256")


@pytest.fixture
def reviewed(engine, local_settings, make_solutions) -> dict[str, int]:
    """Candidates 40 days old: superseded, rejected, rejected but shared with a pending cache hit,
    the approved one; and a rejected one only 10 days old."""
    a, b, c, d = make_solutions(4)
    ids = {"superseded": generate(engine, local_settings, a)}
    approve(engine, local_settings, ids["superseded"])
    ids["approved"] = generate(engine, local_settings, a, use_cache=False)
    approve(engine, local_settings, ids["approved"])
    ids["rejected"] = generate(engine, local_settings, b)
    reject(engine, ids["rejected"])
    ids["shared"] = generate(engine, local_settings, c)
    with Session(engine) as session:  # a solution with exactly the same prompt: a cache hit copies c's file
        twin = Solution(**get_solution(engine, c).model_dump(exclude={"id"}))
        session.add(twin)
        session.commit()
        twin_id = twin.id
    ids["twin"] = generate(engine, local_settings, twin_id)
    reject(engine, ids["shared"])
    ids["young"] = generate(engine, local_settings, d)
    reject(engine, ids["young"])
    age(engine, 40, *(ids[k] for k in ("superseded", "approved", "rejected", "shared", "twin")))
    age(engine, 10, ids["young"])
    return ids


def candidates(engine) -> dict[int, Candidate]:
    with Session(engine) as session:
        return {c.id: c for c in session.exec(select(Candidate)).all()}


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def images(settings: Settings) -> dict[str, bytes]:
    """Candidate images and thumbnails in the data folder (not the dashboard's set-up token)."""
    return {
        name: data for name, data in files(settings.data_dir).items() if name.startswith(("candidates/", "thumbnails/"))
    }


def test_clean_up_deletes_old_rejected_and_superseded_files_and_nothing_published_or_shared(
    engine, local_settings, reviewed
):
    data = local_settings.data_dir
    before = candidates(engine)
    assert (
        before[reviewed["twin"]].cache_hit
        and before[reviewed["twin"]].file_path == before[reviewed["shared"]].file_path
    )
    gone = [before[reviewed[k]] for k in ("superseded", "rejected")]
    sizes = sum((data / p).stat().st_size for c in gone for p in (c.file_path, c.thumb_path))
    published = files(local_settings.publish_dir)
    with Session(engine) as session:
        stored_before = metrics.storage_bytes(session=session)

    with session_scope(engine, write=True) as session:
        report = review.clean_up(session=session, settings=local_settings, actor=CLI_ACTOR, older_than_days=30)
        session.commit()

    assert report == {"candidates": 2, "files": 4, "freed_bytes": sizes, "dry_run": False}
    after = candidates(engine)
    for c in gone:
        assert not (data / c.file_path).exists() and not (data / c.thumb_path).exists()
        assert after[c.id].deleted_at is not None
    for key in ("approved", "shared", "twin", "young"):
        kept = after[reviewed[key]]
        assert (data / kept.file_path).is_file() and (data / kept.thumb_path).is_file(), key
        assert kept.deleted_at is None, key
    assert files(local_settings.publish_dir) == published and len(published) == 2
    with Session(engine) as session:
        (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == "storage.cleanup")).all()
        stored_after = metrics.storage_bytes(session=session)
        by_day = storage_by_day(metrics.storage_over_time(session=session))
    assert event.detail == {"older_than_days": 30, "files": 4, "bytes": sizes}
    freed_images = sum(c.bytes for c in gone)  # thumbnails are not in the storage figures
    assert stored_before - stored_after == freed_images
    *_, earlier, today = sorted(by_day)
    assert sum(by_day[earlier].values()) - sum(by_day[today].values()) == freed_images


def test_a_rollback_after_a_clean_up_still_finds_the_earlier_published_file(engine, local_settings, reviewed):
    sid = candidates(engine)[reviewed["approved"]].solution_id
    with session_scope(engine, write=True) as session:
        review.clean_up(session=session, settings=local_settings, actor=CLI_ACTOR, older_than_days=30)
        review.rollback(session=session, solution_id=sid, actor=CLI_ACTOR)
        session.commit()

    restored = get_solution(engine, sid).image_url
    assert (local_settings.publish_dir / restored.rsplit("/", 1)[1]).is_file()
    assert candidates(engine)[reviewed["superseded"]].state == CandidateState.approved


def test_a_dry_run_reports_what_it_would_free_and_deletes_nothing(engine, local_settings, reviewed, capsys):
    on_disk = images(local_settings)

    assert cli.main(["cleanup", "--older-than", "30", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert (report["candidates"], report["files"], report["dry_run"]) == (2, 4, True) and report["freed_bytes"] > 0
    assert images(local_settings) == on_disk
    assert all(c.deleted_at is None for c in candidates(engine).values())
    with Session(engine) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "storage.cleanup")).all() == []


def test_a_dry_run_counts_a_file_two_rejected_candidates_share_once(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    source = generate(engine, local_settings, sid)
    with Session(engine) as session:  # same prompt, so a cache hit: a copy sharing the source's file
        twin = Solution(**get_solution(engine, sid).model_dump(exclude={"id"}))
        session.add(twin)
        session.commit()
        twin_id = twin.id
    copy = generate(engine, local_settings, twin_id)
    reject(engine, source)
    reject(engine, copy)
    age(engine, 40, source, copy)

    with session_scope(engine, write=True) as session:
        preview = review.clean_up(
            session=session, settings=local_settings, actor=CLI_ACTOR, older_than_days=30, dry_run=True
        )
        done = review.clean_up(session=session, settings=local_settings, actor=CLI_ACTOR, older_than_days=30)
        session.commit()

    assert images(local_settings) == {}
    assert (done["candidates"], done["files"]) == (2, 2)  # one image and its thumbnail
    assert {**preview, "dry_run": False} == done


def test_a_manager_may_not_clean_up(engine, local_settings, reviewed):
    on_disk = images(local_settings)

    with session_scope(engine, write=True) as session, pytest.raises(PermissionDenied):
        review.clean_up(session=session, settings=local_settings, actor=MIA, older_than_days=0)

    assert images(local_settings) == on_disk


# -- pages ---------------------------------------------------------------------------------------


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture
def demo_data(engine, settings):
    demo.load(engine, settings, solutions=30, generations=150, actor=CLI_ACTOR)


@pytest.mark.parametrize(
    ("label", "value", "filters"),
    [
        ("Model", "local-card", {"model": "local-card"}),
        ("Provider", "local", {"provider": "local"}),
        ("Template version", "default@2", {"template": "default@2"}),
    ],
)
def test_metrics_page_filters_change_the_headline_figures(engine, demo_data, label, value, filters):
    at = open_page("metrics", MIA)
    everything = int(metric(at, "Attempts").replace(",", ""))
    with Session(engine) as session:
        assert everything == metrics.headline(session=session, scope=metrics.last_days(30))["attempts"] > 0

    next(s for s in at.selectbox if s.label == label).select(value).run()

    assert not at.exception, at.exception
    with Session(engine) as session:
        expected = metrics.headline(session=session, scope=metrics.last_days(30, **filters))
    assert 0 < expected["attempts"] < everything
    assert int(metric(at, "Attempts").replace(",", "")) == expected["attempts"]
    assert metric(at, "Success rate") == f"{expected['success_rate']:.1%}"


def test_metrics_page_shows_no_spend_for_the_free_provider(engine, demo_data):
    at = open_page("metrics", MIA)
    assert metric(at, "Spent") != "$0"

    next(s for s in at.selectbox if s.label == "Provider").select("local").run()

    with Session(engine) as session:
        local = metrics.headline(session=session, scope=metrics.last_days(30, provider="local"))
    assert metric(at, "Spent") == "$0"
    assert metric(at, "Per approved image") == ("—" if local["cost_per_approved_usd"] is None else "$0")


def test_metrics_totals_tab_has_a_row_per_provider_and_the_provider_filter_narrows_it(engine, demo_data):
    at = open_tab(open_page("metrics", MIA), "metrics-tab", "Totals")
    table = next(d.value for d in at.dataframe if list(d.value.columns)[0] == "Provider")
    assert sorted(table["Provider"]) == ["local", "openai"]

    next(s for s in at.selectbox if s.label == "Provider").select("local").run()

    assert not at.exception
    table = next(d.value for d in at.dataframe if list(d.value.columns)[0] == "Provider")
    with Session(engine) as session:
        local = metrics.headline(session=session, scope=metrics.last_days(30, provider="local"))
    assert list(table["Provider"]) == ["local"] and list(table["Attempts"]) == [local["attempts"]]


def test_settings_clean_up_preview_reports_without_deleting(engine, local_settings, reviewed):
    on_disk = images(local_settings)
    at = open_page("settings", ALICE)

    next(n for n in at.number_input if n.label == "Older than (days)").set_value(30)
    next(b for b in at.button if b.label == "Preview").click().run()

    assert not at.exception, at.exception
    assert any(i.value.startswith("Would delete 4 file(s) of 2 candidate(s)") for i in at.info)
    assert images(local_settings) == on_disk


def test_settings_clean_up_deletes_and_the_audit_log_shows_it(engine, local_settings, reviewed):
    at = open_page("settings", ALICE)

    next(b for b in at.button if b.label == "Delete old files").click().run()  # the default: 30 days

    assert not at.exception, at.exception
    assert any(s.value.startswith("Deleted 4 file(s)") for s in at.success)
    assert all(
        c.deleted_at is not None
        for c in candidates(engine).values()
        if c.id in (reviewed["superseded"], reviewed["rejected"])
    )
    log = next(d.value for d in at.dataframe if "What happened" in d.value.columns)
    assert log["What happened"][0].startswith("alice deleted 4 file(s) of candidates older than 30 days, freeing ")
