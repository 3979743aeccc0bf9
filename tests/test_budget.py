"""Money: cost from usage, the per-image fallback, hard budgets under parallel workers and processes,
price changes, estimates before a batch, alerts, and what the cache saves."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ROOT, TEST_KEY, open_page
from openai_standin import OpenAIStandIn
from sqlalchemy import event, inspect, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from aixchange_images import (
    admin,
    batch,
    budget,
    calls,
    cli,
    metrics,
    migrations,
    pipeline,
    review,
    templates,
)
from aixchange_images.auth import Actor, PermissionDenied
from aixchange_images.config import Settings, load_settings
from aixchange_images.db import session_scope
from aixchange_images.models import Attempt, AttemptStatus, AuditEvent, Candidate, Price, Solution, utcnow
from aixchange_images.providers.base import ImageRequest, Usage
from aixchange_images.providers.openai import OpenAIProvider

ALICE = Actor("alice", "admin")
MIA = Actor("mia", "manager")
PAT = Actor("pat", "product")
# The published prices (USD per 1M tokens: text in, image in, image out) from openai-images.md, written
# out here rather than read from the library, so a wrong seed or a wrong formula fails.
PUBLISHED = {
    "gpt-image-2": (5.00, 8.00, 30.00),
    "gpt-image-2-2026-04-21": (5.00, 8.00, 30.00),
    "gpt-image-2.5-sunburst": (5.00, 8.00, 30.00),
    "gpt-image-2.5-sunburst-2026-09-08": (5.00, 8.00, 30.00),
    "gpt-image-2.5-flare": (5.00, 8.00, 30.00),
    "gpt-image-2.5-flare-2026-09-08": (5.00, 8.00, 30.00),
    "gpt-image-2.6-sunburst": (5.00, 8.00, 30.00),
    "gpt-image-2.6-flare": (5.00, 8.00, 30.00),
    "gpt-image-1.5": (5.00, 8.00, 32.00),
    "gpt-image-1-mini": (2.00, 2.50, 8.00),
}
# Models the stand-in serves and the pipeline still calls, whatever today's date.
CURRENT = [m for m in PUBLISHED if m.startswith("gpt-image-2")]


def run(engine, settings: Settings, ids: list[str], **options) -> tuple[list[pipeline.GenerationResult], dict]:
    return batch.run_batch(engine, settings, ids, pipeline.GenerateOptions(**options))


def attempts(engine, *where) -> list[Attempt]:
    with Session(engine) as session:
        return list(session.exec(select(Attempt).where(*where).order_by(Attempt.id)).all())


def expected_cost(prompt: str, image_tokens: int, text_in: float = 5.00, image_out: float = 30.00) -> float:
    """What the stand-in's usage should cost: ceil(len/4) text tokens in, `image_tokens` out."""
    return math.ceil(len(prompt) / 4) * text_in / 1e6 + image_tokens * image_out / 1e6


def prompt_for(engine, solution_id: str) -> str:
    with Session(engine) as session:
        return templates.render(session=session, solution=session.get(Solution, solution_id))[1]


def cli_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def spend(
    engine,
    *costs: float,
    at: datetime | None = None,
    status: str = AttemptStatus.succeeded,
    sid: str,
    pid: int | None = None,
    host: str | None = None,
) -> list[int]:
    """Record finished (or running, reserved) paid attempts directly, as earlier batches would have."""
    rows = []
    with Session(engine) as session:
        for cost in costs:
            running = status == AttemptStatus.running
            rows.append(
                Attempt(
                    solution_id=sid,
                    provider="openai",
                    model="gpt-image-2",
                    size="1024x1024",
                    quality="medium",
                    prompt="p",
                    request_key=f"k{time.monotonic_ns()}",
                    status=status,
                    started_at=at or utcnow(),
                    reserved_usd=cost,
                    cost_usd=0.0 if running else cost,
                    pid=pid,
                    host=host,
                )
            )
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


# -- cost ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", list(PUBLISHED))
def test_each_priced_model_is_charged_from_the_usage_at_its_published_rates(engine, model):
    text_in, image_in, image_out = PUBLISHED[model]
    usage = Usage(input_text_tokens=120, input_image_tokens=700, output_image_tokens=1056, output_text_tokens=9)

    with Session(engine) as session:
        price, own = budget.price_for(session=session, model=model)

    assert own and price.model == model
    # output text tokens are charged at the image-output rate: never under-count
    expected = (120 * text_in + 700 * image_in + (1056 + 9) * image_out) / 1e6
    assert budget.cost_from_usage(price, usage) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("model", CURRENT)
def test_a_call_records_the_cost_of_the_usage_the_server_returned(
    engine, openai_settings, standin, make_solutions, model
):
    (sid,) = make_solutions(1)

    (result,), _ = run(engine, openai_settings, [sid], model=model, quality="low")

    (attempt,) = attempts(engine)
    assert (result.status, attempt.model, attempt.cost_source) == ("succeeded", model, "usage")
    assert attempt.output_image_tokens == 272  # what the stand-in said a low 1024x1024 image took
    assert attempt.cost_usd == pytest.approx(expected_cost(attempt.prompt, 272), abs=1e-9)
    assert result.cost_usd == attempt.cost_usd


def test_a_reply_without_usage_is_charged_the_per_image_price_for_its_model_size_and_quality(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    standin.enqueue("success", usage=False)  # another OpenAI-compatible server: no `usage` in the reply

    (result,), _ = run(engine, openai_settings, [sid], model="gpt-image-2.5-flare", quality="high", size="1536x1024")

    (attempt,) = attempts(engine)
    assert (result.status, attempt.cost_source, attempt.output_image_tokens) == ("succeeded", "per_image", None)
    # 4160 image tokens for a high 1024x1024 image, times 1.5 for the larger area
    assert attempt.cost_usd == pytest.approx(expected_cost(attempt.prompt, 6240), abs=1e-9)


def test_a_reply_without_usage_to_an_auto_request_is_charged_for_what_the_service_says_it_made(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    standin.enqueue("success", usage=False)  # the reply still says: quality medium, size 1024x1024

    (result,), _ = run(engine, openai_settings, [sid], quality="auto", size="auto")

    (attempt,) = attempts(engine)
    assert (result.status, attempt.quality, attempt.cost_source) == ("succeeded", "auto", "per_image")
    assert attempt.cost_usd == pytest.approx(expected_cost(attempt.prompt, 1056), abs=1e-9)  # not the 6240 reserved


def test_a_model_missing_from_the_price_table_is_charged_at_the_dearest_rates(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    standin.models["acme-image-1"] = None  # a compatible server's own model

    (result,), _ = run(engine, openai_settings, [sid], model="acme-image-1")

    (attempt,) = attempts(engine)
    assert (result.status, attempt.cost_source) == ("succeeded", "assumed_price")
    with Session(engine) as session:  # every provider's models are in the table: the dearest may not be OpenAI's
        dearest = session.exec(select(Price).order_by(Price.image_output_per_m.desc())).first()
    assert dearest.image_output_per_m >= 32.00  # at least the dearest GPT image model
    cost = expected_cost(attempt.prompt, 1056, text_in=dearest.text_input_per_m, image_out=dearest.image_output_per_m)
    assert attempt.cost_usd == pytest.approx(cost, abs=1e-9)


# -- the hard budget ---------------------------------------------------------------------------
def test_a_ten_cent_daily_cap_lets_exactly_three_of_eight_parallel_calls_through(
    engine, openai_settings, standin, make_solutions
):
    ids = make_solutions(8)
    standin.latency = 0.3  # calls overlap, so the four workers race for the budget
    settings = openai_settings.model_copy(update={"image_budget_daily_usd": 0.10})

    results, summary = run(engine, settings, ids, model="gpt-image-2", quality="medium", concurrency=4)

    assert standin.max_in_flight > 1
    assert standin.image_calls == 3
    assert Counter((r.status, r.error_kind) for r in results) == {
        ("succeeded", None): 3,
        ("failed", "budget_exceeded"): 5,
    }
    assert summary["errors_by_kind"] == {"budget_exceeded": 5}
    paid = [r.cost_usd for r in results if r.status == "succeeded"]
    assert all(0.031 < cost < 0.033 for cost in paid)  # about $0.032 an image
    refused = attempts(engine, Attempt.error_kind == "budget_exceeded")
    assert all((a.cost_usd, a.reserved_usd) == (0.0, 0.0) for a in refused)
    assert all("budget has $" in a.error_message for a in refused)
    with Session(engine) as session:
        state = budget.budget_state(session=session, settings=settings)
    assert state.spent_today == pytest.approx(sum(paid), abs=1e-9)
    assert state.spent_today < 0.10


class HeldStandIn(OpenAIStandIn):
    """The stand-in, except that image answers wait for `release`: paid calls stay in flight while we look."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def _image_answer(self, *args):  # type: ignore[no-untyped-def]
        self.release.wait(30)
        return super()._image_answer(*args)

    def close(self) -> None:
        self.release.set()
        super().close()


def test_two_processes_sharing_the_database_never_jointly_pass_the_cap(engine, make_solutions, tmp_path):
    ids = make_solutions(8)
    with HeldStandIn() as server:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OPENAI_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": server.base_url,
            "IMAGE_PROVIDER": "openai",
            "IMAGE_BUDGET_DAILY_USD": "0.10",
        }
        command = [sys.executable, "-m", "aixchange_images", "generate", "--concurrency", "4", "--json"]
        procs = [
            subprocess.Popen(
                [*command, "--solution", *half], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for half in (ids[:4], ids[4:])
        ]
        try:
            # Every attempt decided while no paid call has been answered: each process saw the other's
            # reservations, or more than three would be running now.
            deadline = time.monotonic() + 30
            while len(decided := attempts(engine)) < 8:
                assert all(p.poll() is None for p in procs), "a process ended before deciding its attempts"
                assert time.monotonic() < deadline, "the processes did not decide their attempts in time"
                time.sleep(0.05)  # polling interval, not a stand-in for synchronisation
            assert Counter(a.status for a in decided) == {AttemptStatus.running: 3, AttemptStatus.failed: 5}
            assert len({a.pid for a in decided}) == 2
            server.release.set()
            outputs = [p.communicate(timeout=30) for p in procs]
        finally:
            server.release.set()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()

    assert [p.returncode for p in procs] == [1, 1]  # each batch had at least one refused call
    results = [r for out, _ in outputs for r in json.loads(out)["results"]]
    assert Counter(r["error_kind"] for r in results) == {None: 3, "budget_exceeded": 5}
    assert server.image_calls == 3
    with Session(engine) as session:
        state = budget.budget_state(session=session, settings=load_settings(image_budget_daily_usd=0.10))
    assert 0.09 < state.spent_today < 0.10


def test_a_price_change_applies_to_new_attempts_and_old_attempts_keep_their_cost(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    (before,), _ = run(engine, openai_settings, [sid])

    with session_scope(engine, write=True) as session:
        admin.set_price(
            session=session, actor=ALICE, model="gpt-image-2", text_input=5.0, image_input=8.0, image_output=60.0
        )
        session.commit()
    (after,), _ = run(engine, openai_settings, [sid], use_cache=False)

    old, new = attempts(engine)
    assert old.cost_usd == before.cost_usd == pytest.approx(expected_cost(old.prompt, 1056), abs=1e-9)
    assert new.cost_usd == after.cost_usd == pytest.approx(expected_cost(new.prompt, 1056, image_out=60.0), abs=1e-9)
    with Session(engine) as session:
        old_candidate = session.get(Candidate, old.candidate_id)
        (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == "price.change")).all()
    assert old_candidate.cost_usd == before.cost_usd
    assert (event.actor, event.target) == ("alice", "gpt-image-2")
    assert event.detail == {"old": [5.0, 8.0, 30.0], "new": [5.0, 8.0, 60.0]}


def test_a_manager_may_not_change_a_price(engine):
    with session_scope(engine, write=True) as session, pytest.raises(PermissionDenied):
        admin.set_price(session=session, actor=MIA, model="gpt-image-2", text_input=0, image_input=0, image_output=0)

    with Session(engine) as session:
        price = session.get(Price, "gpt-image-2")
        assert price.image_output_per_m == 30.0
        assert session.exec(select(AuditEvent)).all() == []


# -- estimates -----------------------------------------------------------------------------------
def test_an_estimate_counts_paid_calls_cache_hits_and_dollars_without_calling(
    engine, openai_settings, standin, make_solutions
):
    done, fresh, other = make_solutions(3)
    (first,), _ = run(engine, openai_settings, [done])
    settings = openai_settings.model_copy(update={"image_budget_daily_usd": 1.00})
    requests_before = len(standin.requests)

    def estimate(**options) -> dict:
        return batch.estimate_batch(
            engine, settings, [done, fresh, other], pipeline.GenerateOptions(**options)
        ).as_dict()

    one, two, uncached = estimate(), estimate(candidates=2), estimate(use_cache=False)

    each = {sid: expected_cost(prompt_for(engine, sid), 1056) for sid in (done, fresh, other)}
    assert one == {
        "calls": 2,
        "paid": True,
        "expected_cache_hits": 1,
        "estimated_cost_usd": pytest.approx(each[fresh] + each[other], abs=1e-6),
        "budget_left_usd": pytest.approx(1.00 - first.cost_usd, abs=1e-6),
        "fits_budget": True,
    }
    assert (two["calls"], two["expected_cache_hits"]) == (5, 1)  # variant 1 of `done` is new
    assert two["estimated_cost_usd"] == pytest.approx(sum(each.values()) + each[fresh] + each[other], abs=1e-6)
    assert (uncached["calls"], uncached["expected_cache_hits"]) == (3, 0)
    assert len(standin.requests) == requests_before


def test_an_estimate_from_prompt_columns_matches_one_from_whole_solutions(engine, openai_settings, make_solutions):
    ids = make_solutions(6, tags=["support", "nlp", "déjà vu"])
    with session_scope(engine, write=True) as session:
        body = "{title} ({category}) by {provider}, tagged {tags}: {description}"
        templates.save_version(session=session, actor=ALICE, name="every-field", body=body)
        session.get(Solution, ids[-1]).description = "  "  # no prompt can be made: not counted
        session.commit()
    options = pipeline.GenerateOptions(template="every-field", candidates=2)
    plan = pipeline.make_plan(openai_settings, options)
    with Session(engine) as session:
        generator = pipeline.Generator(engine, openai_settings, plan)
        requests = [generator.prepare(session, session.get(Solution, sid), v) for sid in ids for v in (0, 1)]
        each = [
            budget.estimate_call(session=session, provider=plan.provider, request=plan.request(r.prompt))
            for r in requests
            if r.problem is None
        ]

    estimate = batch.estimate_batch(engine, openai_settings, ids, options)

    assert estimate.calls == len(each) == 10
    assert estimate.cost_usd == pytest.approx(sum(each), abs=1e-6)


def test_a_database_from_before_migration_14_gains_the_indexes_estimates_and_yields_read(engine):
    with engine.begin() as conn:  # the indexes as migration 13 left them
        conn.exec_driver_sql("DROP INDEX ix_attempt_solution_candidate_variant")
        conn.exec_driver_sql("DROP INDEX ix_candidate_yield_cover")
        conn.exec_driver_sql(
            "CREATE INDEX ix_candidate_template_state_reason ON candidate (template_ref, state, reject_reason)"
        )
        conn.exec_driver_sql("DELETE FROM schemamigration WHERE version = 14")

    assert migrations.migrate(engine) == [14]
    on_attempt = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("attempt")}
    on_candidate = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("candidate")}
    assert on_attempt["ix_attempt_solution_candidate_variant"] == ["solution_id", "candidate_id", "variant"]
    assert on_candidate["ix_candidate_yield_cover"] == [
        "template_ref",
        "state",
        "reject_reason",
        "source",
        "created_at",
    ]
    assert "ix_candidate_template_state_reason" not in on_candidate


def test_an_estimate_over_what_the_budget_has_left_does_not_fit(engine, openai_settings, standin, make_solutions):
    ids = make_solutions(2)
    settings = openai_settings.model_copy(update={"image_budget_daily_usd": 0.05})

    estimate = batch.estimate_batch(engine, settings, ids, pipeline.GenerateOptions())

    assert (estimate.calls, estimate.budget_left_usd, estimate.fits_budget) == (2, 0.05, False)


def test_generate_json_summary_carries_the_estimate_it_printed_before_the_batch(
    engine, openai_settings, standin, make_solutions, capsys
):
    (sid,) = make_solutions(1)

    code, payload, err = cli_run(capsys, "generate", "--solution", sid)

    assert code == 0, err
    cost = expected_cost(prompt_for(engine, sid), 1056)
    assert payload["summary"]["estimate"] == {
        "calls": 1,
        "paid": True,
        "expected_cache_hits": 0,
        "estimated_cost_usd": pytest.approx(cost, abs=1e-6),
        "budget_left_usd": None,
        "fits_budget": True,
    }
    assert payload["summary"]["cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert f"(about ${cost:.4f})" in err


# -- alerts --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("share", "spent", "alert"),
    [
        (None, 0.79, None),
        (None, 0.80, "The daily image budget is 80% used ($0.80 of $1)."),
        (None, 1.25, "The daily image budget is 125% used ($1.25 of $1)."),
        (0.5, 0.49, None),
        (0.5, 0.50, "The daily image budget is 50% used ($0.50 of $1)."),
    ],
    ids=["below-default", "at-default", "over", "below-custom", "at-custom"],
)
def test_a_budget_alerts_once_at_or_over_its_share(engine, make_solutions, share, spent, alert):
    (sid,) = make_solutions(1)
    spend(engine, spent, sid=sid)
    settings = load_settings(image_budget_daily_usd=1.00, image_budget_monthly_usd=100.0)
    if share is not None:
        settings = settings.model_copy(update={"image_budget_alert_share": share})

    with Session(engine) as session:
        state = budget.budget_state(session=session, settings=settings)

    assert state.alerts == ([alert] if alert else [])


def test_the_alerts_count_running_reservations_and_each_period_separately(engine, make_solutions):
    (sid,) = make_solutions(1)
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    spend(engine, 0.50, at=now - timedelta(hours=1), sid=sid)
    spend(engine, 0.30, at=now - timedelta(minutes=1), status=AttemptStatus.running, sid=sid)  # reserved, in flight
    spend(engine, 5.00, at=now - timedelta(days=10), sid=sid)  # this month, not today
    spend(engine, 90.0, at=now - timedelta(days=20), sid=sid)  # last month
    settings = load_settings(image_budget_daily_usd=1.00, image_budget_monthly_usd=10.0)

    with Session(engine) as session:
        state = budget.budget_state(session=session, settings=settings, now=now)

    assert (state.spent_today, state.spent_month) == (pytest.approx(0.80), pytest.approx(5.80))
    assert state.alerts == ["The daily image budget is 80% used ($0.80 of $1)."]
    assert state.left == pytest.approx(0.20)


def test_generate_warns_on_stderr_once_the_budget_passes_its_alert_share(
    engine, openai_settings, standin, make_solutions, capsys, monkeypatch
):
    quiet, loud = make_solutions(2)
    monkeypatch.setenv("IMAGE_BUDGET_DAILY_USD", "1.00")
    code, _, err = cli_run(capsys, "generate", "--solution", quiet)
    assert code == 0 and "warning:" not in err  # about 3% of the budget

    monkeypatch.setenv("IMAGE_BUDGET_DAILY_USD", "0.07")
    code, payload, err = cli_run(capsys, "generate", "--solution", loud)

    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {payload['summary']['budget']['alerts'][0]}"]
    assert "The daily image budget is 9" in warnings[0]  # two calls of about $0.032 of $0.07


@pytest.mark.parametrize(("actor", "shown"), [(ALICE, True), (MIA, True), (PAT, False)])
def test_the_dashboard_banner_warns_admins_and_managers_near_the_budget(
    engine, make_solutions, monkeypatch, actor, shown
):
    (sid,) = make_solutions(1)
    monkeypatch.setenv("IMAGE_BUDGET_DAILY_USD", "1.00")
    spend(engine, 0.90, sid=sid)

    at = open_page("overview", actor)

    banner = [re.sub(r"\\(.)", r"\1", w.value) for w in at.warning if "image budget" in w.value]  # shown literally
    assert banner == (["The daily image budget is 90% used ($0.90 of $1)."] if shown else [])
    assert "Overview" in [t.value for t in at.title]


def test_the_dashboard_banner_stays_away_below_the_alert_share(engine, make_solutions, monkeypatch):
    (sid,) = make_solutions(1)
    monkeypatch.setenv("IMAGE_BUDGET_DAILY_USD", "1.00")
    spend(engine, 0.70, sid=sid)

    at = open_page("overview", ALICE)

    assert not [w for w in at.warning if "image budget" in w.value]
    assert "Overview" in [t.value for t in at.title]


# -- reservations hold what a call can cost ------------------------------------------------------
def estimate(engine, prompt: str, size: str, quality: str) -> float:
    with Session(engine) as session:
        request = ImageRequest(prompt=prompt, model="gpt-image-2", size=size, quality=quality, output_format="png")
        return budget.estimate_call(session=session, provider=OpenAIProvider(load_settings()), request=request)


def test_auto_quality_and_size_reserve_the_dearest_image_the_service_may_choose(engine):
    auto = estimate(engine, "x" * 400, "auto", "auto")

    # high quality at the largest standard size: 4160 x 1.5 image tokens at $30/M, plus 100 text tokens at $5/M
    assert auto == pytest.approx(6240 * 30 / 1e6 + 100 * 5 / 1e6, abs=1e-9)
    assert auto == estimate(engine, "x" * 400, "1536x1024", "high")
    assert auto > 5 * estimate(engine, "x" * 400, "1024x1024", "medium")


def test_a_cap_that_covers_a_medium_image_refuses_an_auto_call_that_may_cost_more(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    settings = openai_settings.model_copy(update={"image_budget_daily_usd": 0.10})

    (result,), _ = run(engine, settings, [sid], quality="auto", size="auto")

    assert (result.status, result.error_kind, standin.image_calls) == ("failed", "budget_exceeded", 0)


def test_a_retry_is_made_only_when_the_budget_covers_another_call(engine, openai_settings, standin, make_solutions):
    (sid,) = make_solutions(1)
    settings = openai_settings.model_copy(update={"image_budget_daily_usd": 0.05})  # one ~$0.032 call, not two
    standin.enqueue("server_error", retry_after=0)

    (result,), _ = run(engine, settings, [sid], quality="medium")

    assert (result.status, result.error_kind, standin.image_calls) == ("failed", "server_error", 1)
    assert "not retried: the image budget cannot cover another call" in result.error
    (attempt,) = attempts(engine)
    assert (attempt.cost_usd, attempt.retries) == (0.0, 0)  # an HTTP 500 is not billed


def test_each_retry_reserves_another_call_and_a_success_is_charged_its_usage(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    settings = openai_settings.model_copy(update={"image_budget_daily_usd": 0.10})
    standin.enqueue("server_error", retry_after=0)

    (result,), _ = run(engine, settings, [sid], quality="medium")

    (attempt,) = attempts(engine)
    per_call = estimate(engine, attempt.prompt, "1024x1024", "medium")
    assert (result.status, attempt.retries, standin.image_calls) == ("succeeded", 1, 2)
    assert attempt.reserved_usd == pytest.approx(2 * per_call, abs=1e-9)
    assert attempt.cost_usd == pytest.approx(expected_cost(attempt.prompt, 1056), abs=1e-9)


def test_a_try_that_timed_out_is_charged_its_estimate_because_it_may_have_been_billed(
    engine, openai_settings, standin, make_solutions
):
    a, b = make_solutions(2)
    settings = openai_settings.model_copy(update={"image_timeout_seconds": 0.5})
    standin.enqueue("slow", seconds=10)  # a's first try: no answer in time

    (first,), _ = run(engine, settings, [a], quality="medium")
    (second,), _ = run(engine, settings.model_copy(update={"image_max_retries": 0}), [b], quality="medium")
    standin.enqueue("slow", seconds=10)
    (third,), _ = run(
        engine, settings.model_copy(update={"image_max_retries": 0}), [b], quality="medium", use_cache=False
    )

    retried, answered, timed_out = attempts(engine)
    per_call = estimate(engine, retried.prompt, "1024x1024", "medium")
    assert (first.status, retried.retries, retried.cost_source) == ("succeeded", 1, "usage")
    assert retried.cost_usd == pytest.approx(expected_cost(retried.prompt, 1056) + per_call, abs=1e-9)
    assert answered.cost_usd == pytest.approx(expected_cost(answered.prompt, 1056), abs=1e-9)
    assert (third.error_kind, timed_out.cost_source) == ("timeout", "estimate")
    assert timed_out.cost_usd == pytest.approx(estimate(engine, timed_out.prompt, "1024x1024", "medium"), abs=1e-9)


@pytest.mark.parametrize(
    "usage",
    [
        {"output_tokens": -2_000_000, "output_tokens_details": {"image_tokens": -2_000_000, "text_tokens": 0}},
        {"input_tokens_details": {"text_tokens": -500_000, "image_tokens": 0}},
        {"output_tokens": 1056.5, "output_tokens_details": {"image_tokens": 1056.5, "text_tokens": 0}},
    ],
    ids=["negative-output", "negative-input", "fractional"],
)
def test_a_reply_with_nonsensical_usage_is_charged_its_estimate_and_the_cap_still_holds(
    engine, openai_settings, standin, make_solutions, usage
):
    a, b = make_solutions(2)
    per_call = estimate(engine, prompt_for(engine, a), "1024x1024", "medium")
    settings = openai_settings.model_copy(update={"image_budget_daily_usd": round(1.5 * per_call, 6)})
    standin.enqueue("success", usage=usage)  # a negative bill would hand the budget back

    (first,), _ = run(engine, settings, [a], quality="medium")
    (second,), _ = run(engine, settings, [b], quality="medium")

    garbled, refused = attempts(engine)
    assert (first.error_kind, garbled.cost_source, garbled.candidate_id) == ("bad_image", "estimate", None)
    assert "usage" in garbled.error_message
    assert garbled.cost_usd == pytest.approx(per_call, abs=1e-9)
    assert (second.error_kind, refused.status) == ("budget_exceeded", AttemptStatus.failed)
    assert standin.image_calls == 1  # the second call was refused before it was made


def test_no_usage_makes_a_negative_bill(engine):
    with Session(engine) as session:
        price, _ = budget.price_for(session=session, model="gpt-image-2")

    assert budget.cost_from_usage(price, Usage(input_text_tokens=10, output_image_tokens=-1_000_000)) == 0.0


def test_a_call_is_kept_until_its_own_deadline_and_a_namesake_process_is_not_this_one(engine, settings, make_solutions):
    (sid,) = make_solutions(1)
    ours = budget.longest_call(settings)
    running = {"status": AttemptStatus.running, "sid": sid}
    # another machine with longer limits: older than our longest call, within its own deadline
    (patient,) = spend(engine, 0.05, pid=4242, host="another-machine", at=utcnow() - ours * 2, **running)
    # another container with our host name and pid: not in our in-flight set, yet not ours either
    (namesake,) = spend(engine, 0.05, pid=os.getpid(), host=pipeline.HOST, **running)
    with session_scope(engine, write=True) as session:
        session.get(Attempt, patient).deadline_at = utcnow() + timedelta(minutes=5)
        session.get(Attempt, namesake).runner = "another-process"
        session.get(Attempt, namesake).deadline_at = utcnow() + timedelta(minutes=5)
        session.commit()
        closed = budget.settle_interrupted(session=session, older_than=ours)
        session.commit()

    assert closed == 0
    assert {a.status for a in attempts(engine)} == {AttemptStatus.running}


def test_a_database_from_before_deadlines_gains_them_and_settles_by_them(engine, settings, make_solutions):
    with engine.begin() as conn:  # the attempt table as migration 7 left it
        for column in ("runner", "deadline_at"):
            conn.exec_driver_sql(f"ALTER TABLE attempt DROP COLUMN {column}")
        conn.exec_driver_sql("DELETE FROM schemamigration WHERE version = 8")

    assert migrations.migrate(engine) == [8]
    deadline = next(c for c in inspect(engine).get_columns("attempt") if c["name"] == "deadline_at")
    if engine.dialect.name == "postgresql":  # UTC instants, whatever the server's own time zone
        assert deadline["type"].timezone

    (sid,) = make_solutions(1)
    running = {"status": AttemptStatus.running, "sid": sid, "host": "another-machine", "pid": 4242}
    (late,) = spend(engine, 0.05, **running)
    (live,) = spend(engine, 0.05, **running)
    with session_scope(engine, write=True) as session:
        session.get(Attempt, late).deadline_at = utcnow() - timedelta(seconds=1)
        session.get(Attempt, live).deadline_at = utcnow() + timedelta(minutes=5)
        session.commit()
        assert budget.settle_interrupted(session=session) == 1
        session.commit()
    assert [a.status for a in attempts(engine)] == [AttemptStatus.interrupted, AttemptStatus.running]


def test_the_next_batch_closes_reservations_no_live_call_holds_and_keeps_the_others(engine, settings, make_solutions):
    a, b = make_solutions(2)
    too_old = budget.longest_call(settings) + timedelta(minutes=1)
    running = {"status": AttemptStatus.running, "sid": a}
    (orphan,) = spend(engine, 0.05, pid=os.getpid(), host=pipeline.HOST, **running)  # this process, no worker on it
    (elsewhere,) = spend(engine, 0.05, pid=4242, host="another-machine", **running)
    (stuck,) = spend(engine, 0.05, pid=4242, host="another-machine", at=utcnow() - too_old, **running)

    run(engine, settings, [b])  # the local provider: free, but it settles first

    with Session(engine) as session:
        rows = {i: session.get(Attempt, i) for i in (orphan, elsewhere, stuck)}
    assert rows[elsewhere].status == AttemptStatus.running  # maybe still calling, on its own machine
    for closed in (rows[orphan], rows[stuck]):
        assert (closed.status, closed.cost_usd, closed.cost_source) == (AttemptStatus.interrupted, 0.05, "estimate")


@contextmanager
def call_in_flight(engine, sid: str, monkeypatch: pytest.MonkeyPatch):
    """A paid batch for `sid` on a thread, its call held at the server until the block ends; yields
    the list the batch's outcome lands in."""
    with HeldStandIn() as server:
        monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        paid = load_settings(image_provider="openai", image_timeout_seconds=30.0)
        outcome: list = []
        worker = threading.Thread(target=lambda: outcome.append(run(engine, paid, [sid])))
        worker.start()
        assert server.wait_in_flight(1, timeout=10)
        try:
            yield outcome
        finally:
            server.release.set()
            worker.join(30)


def test_a_batch_in_this_process_never_closes_another_batchs_call_in_flight(
    engine, settings, make_solutions, monkeypatch
):
    a, b = make_solutions(2)
    with call_in_flight(engine, a, monkeypatch) as outcome:
        # A second batch, as a second dashboard session would start, on the local provider: with the
        # key now set, `settings` would choose openai and wait at the held server too.
        run(engine, load_settings(image_provider="local"), [b])
        (held,) = attempts(engine, Attempt.solution_id == a)

    assert held.status == AttemptStatus.running  # left alone while its call was in flight
    (((result,), _),) = outcome
    (settled,) = attempts(engine, Attempt.solution_id == a)
    assert (result.status, settled.status, settled.cost_source) == ("succeeded", AttemptStatus.succeeded, "usage")


def test_a_call_is_in_flight_before_its_running_row_can_be_seen(engine, openai_settings, standin, make_solutions):
    (sid,) = make_solutions(1)
    settles: list[int] = []

    def settle_as_soon_as_a_call_is_visible(session) -> None:  # type: ignore[no-untyped-def]
        if settles:
            return
        with Session(engine) as look:
            visible = look.exec(select(Attempt.id).where(Attempt.status == AttemptStatus.running)).all()
        if visible:  # another batch in this process settles right now
            settles.append(-1)
            with session_scope(engine, write=True) as other:
                settles.append(budget.settle_interrupted(session=other))
                other.commit()

    event.listen(OrmSession, "after_commit", settle_as_soon_as_a_call_is_visible)
    try:
        (result,), _ = run(engine, openai_settings, [sid])
    finally:
        event.remove(OrmSession, "after_commit", settle_as_soon_as_a_call_is_visible)

    assert settles == [-1, 0]  # it saw the running row, and left it alone
    (attempt,) = attempts(engine)
    assert (result.status, attempt.status, attempt.error_message) == ("succeeded", AttemptStatus.succeeded, None)


def test_a_call_closed_by_a_settle_while_it_ran_keeps_its_real_outcome(engine, make_solutions, monkeypatch):
    (sid,) = make_solutions(1)
    # the call overruns its deadline (a stalled network, a skewed clock), and a settle closes it
    with call_in_flight(engine, sid, monkeypatch) as outcome, session_scope(engine, write=True) as session:
        session.exec(update(Attempt).values(deadline_at=utcnow() - timedelta(seconds=1)))
        closed = budget.settle_interrupted(session=session)
        session.commit()

    (attempt,) = attempts(engine)
    assert closed == 1 and outcome[0][0][0].status == "succeeded"
    assert (attempt.status, attempt.cost_source, attempt.error_message) == (AttemptStatus.succeeded, "usage", None)
    assert attempt.cost_usd == pytest.approx(expected_cost(attempt.prompt, 1056), abs=1e-9)


@pytest.mark.skipif(
    not os.environ.get("TEST_POSTGRES_URL"),
    reason="needs read-committed PostgreSQL: on SQLite the settle's write transaction holds off the worker",
)
def test_a_settle_never_overwrites_a_call_that_finished_after_it_looked(engine, make_solutions, monkeypatch):
    (sid,) = make_solutions(1)
    (row_id,) = spend(engine, 0.05, status=AttemptStatus.running, sid=sid, pid=os.getpid(), host=pipeline.HOST)

    def finishes_meanwhile(attempt: Attempt) -> bool:
        with session_scope(engine, write=True) as other:  # the worker's final write lands first
            row = other.get(Attempt, attempt.id)
            row.status, row.cost_usd, row.cost_source = AttemptStatus.succeeded, 0.032, "usage"
            other.commit()
        return False  # and then it has left the in-flight set

    monkeypatch.setattr(calls, "call_alive", finishes_meanwhile)
    with session_scope(engine, write=True) as session:
        closed = budget.settle_interrupted(session=session)
        session.commit()

    (attempt,) = attempts(engine, Attempt.id == row_id)
    assert closed == 0
    assert (attempt.status, attempt.cost_usd, attempt.cost_source) == (AttemptStatus.succeeded, 0.032, "usage")


@pytest.mark.parametrize(("status", "cost_after"), [(AttemptStatus.running, 0.0), (AttemptStatus.interrupted, 0.08)])
def test_a_retrys_reservation_counts_also_on_a_row_a_settle_closed_meanwhile(
    engine, settings, make_solutions, status, cost_after
):
    (sid,) = make_solutions(1)
    (row_id,) = spend(engine, 0.05, status=AttemptStatus.running, sid=sid)
    with session_scope(engine, write=True) as session:
        row = session.get(Attempt, row_id)
        if status == AttemptStatus.interrupted:  # what settle_interrupted leaves
            row.status, row.cost_usd = status, row.reserved_usd
        session.commit()
        assert budget.extend_reservation(session=session, settings=settings, attempt=row, extra=0.03)
        session.commit()
        state = budget.budget_state(session=session, settings=settings)

    (after,) = attempts(engine, Attempt.id == row_id)
    assert after.reserved_usd == pytest.approx(0.08) and after.cost_usd == pytest.approx(cost_after)
    assert state.spent_today == pytest.approx(0.08)  # either way the budget counts both calls


# -- the cache -----------------------------------------------------------------------------------
def test_a_repeated_request_is_free_and_counted_as_saved_and_no_cache_calls_again(
    engine, openai_settings, standin, make_solutions, capsys
):
    (sid,) = make_solutions(1)
    (paid,), _ = run(engine, openai_settings, [sid])
    seen = len(standin.requests)

    (cached,), summary = run(engine, openai_settings, [sid])

    assert len(standin.requests) == seen and standin.image_calls == 1  # nothing reached the server
    assert (cached.status, cached.cache_hit, cached.cost_usd, summary["cost_usd"]) == ("succeeded", True, 0.0, 0)
    _, hit = attempts(engine)
    assert (hit.cost_usd, hit.saved_usd, hit.cost_source) == (0.0, paid.cost_usd, "cache")
    with Session(engine) as session:
        head = metrics.headline(session=session)
    assert (head["cache_hits"], head["cache_saved_usd"], head["spend_usd"]) == (1, paid.cost_usd, paid.cost_usd)

    code, payload, err = cli_run(capsys, "generate", "--solution", sid, "--no-cache")

    assert code == 0, err
    (fresh,) = payload["results"]
    assert (fresh["cache_hit"], fresh["cost_usd"] > 0) == (False, True)
    assert standin.image_calls == 2


def test_the_cache_serves_the_live_image_but_never_brings_back_a_replaced_or_rolled_back_one(
    engine, settings, make_solutions
):
    (sid,) = make_solutions(1)
    (v0,), _ = run(engine, settings, [sid], auto_approve=True, actor=ALICE)
    (v1,), _ = run(engine, settings, [sid], auto_approve=True, actor=ALICE, use_cache=False)  # v0 is replaced

    (again,), summary = run(engine, settings, [sid], auto_approve=True, actor=ALICE)
    with session_scope(engine, write=True) as session:
        review.rollback(session=session, solution_id=sid, actor=ALICE)  # v1 is rolled back, v0 is live again
        session.commit()
    (after,), _ = run(engine, settings, [sid], auto_approve=True, actor=ALICE)

    assert (again.cache_hit, again.candidate_id, summary["published"]) == (True, v1.candidate_id, 0)
    assert not after.cache_hit and after.candidate_id not in (v0.candidate_id, v1.candidate_id)
    with Session(engine) as session:
        states = {c.id: c.state for c in session.exec(select(Candidate).where(Candidate.solution_id == sid))}
    assert states == {v0.candidate_id: "superseded", v1.candidate_id: "rolled_back", after.candidate_id: "approved"}


@pytest.mark.parametrize("turned_down", ["rejected", "rolled_back", "superseded"])
def test_the_same_request_as_a_turned_down_image_makes_a_new_one(engine, settings, make_solutions, turned_down):
    (sid,) = make_solutions(1)
    generator = pipeline.Generator(engine, settings, pipeline.make_plan(settings, pipeline.GenerateOptions()))
    first = generator.generate(sid, 0)
    with session_scope(engine, write=True) as session:
        session.get(Candidate, first.candidate_id).state = turned_down
        session.commit()

    again = generator.generate(sid, 0)  # the very request that made it: same prompt, same variant

    assert first.status == again.status == "succeeded"
    assert not again.cache_hit and again.candidate_id != first.candidate_id


# -- the Settings page ---------------------------------------------------------------------------
def test_settings_saves_an_edited_price_and_shows_it_in_the_audit_log(engine):
    at = open_page("settings", ALICE)
    table = at.data_editor(key="prices").value
    row = int(table.index[table["model"] == "gpt-image-2"][0])

    at.session_state["prices"] = {"edited_rows": {row: {"image out": 45.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    next(b for b in at.button if b.label == "Save prices").click().run()

    assert not at.exception, at.exception
    with Session(engine) as session:
        assert session.get(Price, "gpt-image-2").image_output_per_m == 45.0
        assert session.get(Price, "gpt-image-1.5").image_output_per_m == 32.0  # untouched rows stay
    log = next(d.value for d in at.dataframe if "What happened" in d.value.columns)
    assert list(log["What happened"]) == [
        "alice changed the price of gpt-image-2 from $5 text in, $8 image in, $30 image out per 1M tokens "
        "to $5 text in, $8 image in, $45 image out per 1M tokens"
    ]


def test_a_zero_budget_says_every_paid_call_is_refused(engine, settings):
    from aixchange_images.budget import budget_state

    zero = settings.with_overrides({"image_budget_daily_usd": 0.0})
    with Session(engine) as session:
        alerts = budget_state(session=session, settings=zero).alerts
    assert alerts == ["The daily image budget is $0: every paid call is refused until it is raised."]
