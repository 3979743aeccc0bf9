"""Comparing providers and models: trials whose sides differ by provider or model, which providers a
trial may use here, and the yield table per provider and model. Real SQLite files, the local
provider and the OpenAI stand-in on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import run_jobs
from sqlmodel import Session, select
from test_metrics import add_attempt, add_candidate

from aixchange_images import charts, provider_registry, templates, trials, yields
from aixchange_images.auth import Actor
from aixchange_images.config import ConfigError
from aixchange_images.models import Attempt, AttemptStatus, Candidate, utcnow
from aixchange_images.prompts import PromptError

PAT = Actor("pat", "product")
LOCAL = "local"


def save(engine, body: str) -> str:
    with Session(engine) as session:
        saved = templates.save_version(session=session, actor=PAT, name="default", body=body, note="a test")
        session.commit()
        return saved.ref


def rows(engine, model) -> list:
    with Session(engine) as session:
        return list(session.exec(select(model)).all())


# -- which providers a trial may use -----------------------------------------------------------------
def test_a_provider_without_its_key_is_not_runnable_and_says_how_to_fix_it(settings):
    here = trials.providers_here(settings)

    assert set(here) == set(provider_registry.provider_names())
    assert here[LOCAL] is None
    assert list(here)[0] == LOCAL  # free providers first: a trial costs nothing by default
    assert "OPENAI_API_KEY is not set" in here["openai"]


def test_with_its_key_the_openai_provider_is_runnable(openai_settings, standin):
    assert trials.providers_here(openai_settings)["openai"] is None
    assert standin.requests == []  # finding out calls nobody


def test_an_unknown_provider_is_one_sentence_naming_the_known_ones(settings):
    assert "choose one of: " in trials.provider_problem("nosuch", settings)


def test_each_provider_lists_its_models():
    assert provider_registry.model_names(LOCAL) == ["local-card"]
    openai_models = provider_registry.model_names("openai")
    assert "gpt-image-2" in openai_models
    assert "gpt-image-1-mini" not in openai_models  # retired on 2026-12-01


# -- the sides of a trial ------------------------------------------------------------------------------
def test_sides_are_labelled_by_what_differs():
    one, two = trials.Side("default@1", LOCAL, "local-card"), trials.Side("default@2", LOCAL, "local-card")
    paid = trials.Side("default@1", "openai", "gpt-image-2")
    newer = trials.Side("default@1", "openai", "gpt-image-2.5-sunburst")

    assert trials.labels((one, two)) == ("default@1", "default@2")
    assert trials.labels((one, paid)) == ("local · local-card", "openai · gpt-image-2")
    assert trials.labels((paid, newer)) == ("gpt-image-2", "gpt-image-2.5-sunburst")
    assert trials.labels((two, paid)) == ("default@2 · local · local-card", "default@1 · openai · gpt-image-2")


def test_two_sides_that_resolve_to_the_same_thing_are_refused_in_one_sentence(engine, settings, make_solutions):
    ids = make_solutions(1)
    sides = (trials.Side("default@1", LOCAL), trials.Side("default@production", LOCAL, "local-card"))

    with pytest.raises(PromptError, match=r"^Both sides are default@1 with local · local-card; choose two different"):
        trials.start_trial(engine, settings, actor=PAT, sides=sides, solution_ids=ids)

    assert rows(engine, Attempt) == []


def test_a_side_on_a_provider_without_its_key_is_refused_before_anything_is_queued(engine, settings, make_solutions):
    ids = make_solutions(1)
    sides = (trials.Side("default@1", LOCAL), trials.Side("default@1", "openai"))

    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        trials.start_trial(engine, settings, actor=PAT, sides=sides, solution_ids=ids)


def test_the_estimate_shows_each_side_with_its_provider_and_model(engine, openai_settings, standin, make_solutions):
    ids = make_solutions(3)
    sides = (trials.Side("default@1", LOCAL), trials.Side("default@1", "openai"))

    found = trials.estimate_sides(engine, openai_settings, actor=PAT, sides=sides, solution_ids=ids)
    total = trials.estimate_trial(engine, openai_settings, actor=PAT, sides=sides, solution_ids=ids)

    (local_label, local_side, local), (paid_label, paid_side, paid) = found
    assert (local_label, local_side.describe(), local.paid, local.cost_usd) == (
        "local · local-card",
        "default@1 with local · local-card",
        False,
        0,
    )
    assert (paid_label, paid_side.describe(), paid.paid, paid.calls) == (
        "openai · gpt-image-2",
        "default@1 with openai · gpt-image-2",
        True,
        3,
    )
    assert (total.paid, total.calls) == (True, 3)  # the free side's calls cost nothing
    assert total.cost_usd == pytest.approx(paid.cost_usd) and total.cost_usd > 0
    assert standin.requests == []


def test_a_trial_of_one_version_on_local_and_openai_runs_each_side_on_its_provider(
    engine, openai_settings, standin, make_solutions
):
    ids = make_solutions(2)
    sides = (trials.Side("default@1", LOCAL), trials.Side("default@1", "openai", "gpt-image-2.5-sunburst"))

    job_ids = trials.start_trial(engine, openai_settings, actor=PAT, sides=sides, solution_ids=ids)
    run_jobs(engine, openai_settings)

    made = sorted((a.provider, a.model, a.template_ref, a.purpose) for a in rows(engine, Attempt))
    assert (
        made
        == [("local", "local-card", "default@1", "trial")] * 2
        + [("openai", "gpt-image-2.5-sunburst", "default@1", "trial")] * 2
    )
    assert standin.image_calls == 2
    with Session(engine) as session:
        trial = trials.trial_of(session=session, job_ids=job_ids)
        compared = trials.comparison(session=session, trial=trial)
    assert trial.labels == ("local · local-card", "openai · gpt-image-2.5-sunburst")
    assert [s.describe() for s in trial.sides] == [
        "default@1 with local · local-card",
        "default@1 with openai · gpt-image-2.5-sunburst",
    ]
    assert [trial.summaries[label]["succeeded"] for label in trial.labels] == [2, 2]
    candidates = {c.id: c for c in rows(engine, Candidate)}
    for row in compared:
        models = [candidates[row["sides"][label]["candidate_id"]].model for label in trial.labels]
        assert models == ["local-card", "gpt-image-2.5-sunburst"]
    paid = [row["sides"]["openai · gpt-image-2.5-sunburst"]["cost_usd"] for row in compared]
    assert all(cost > 0 for cost in paid)


def test_two_versions_on_one_provider_still_run_as_before(engine, settings, make_solutions):
    ids = make_solutions(1)
    draft = save(engine, "A blueprint card for {title}.")

    trial = trials.run_trial(engine, settings, actor=PAT, refs=("default@1", draft), solution_ids=ids, provider=LOCAL)

    assert trial.labels == trial.refs == ("default@1", draft)
    assert all(trial.results[ref][ids[0]].candidate_id for ref in trial.refs)


# -- the yield table per provider and model --------------------------------------------------------------
def _attempt(session, sid: str, provider: str, model: str, *, cost: float, state: str | None, when=None) -> None:  # type: ignore[no-untyped-def]
    """A finished attempt (failed when it made no candidate) and the candidate it made, in `state`."""
    when = when or utcnow()
    status = AttemptStatus.succeeded if state else AttemptStatus.failed
    attempt = add_attempt(session, sid, when, status=status, cost=cost, model=model, provider=provider)
    if state:
        add_candidate(session, attempt, sid, when, state, 1)


@pytest.fixture
def history(engine, make_solutions):
    """local: 3 attempts, 2 approved, 1 failed. openai gpt-image-2: 2 approved, 1 rejected at $0.04;
    azure also serves gpt-image-2: 1 rejected at $0.05, 1 pending. 40 days ago, one more openai approval."""
    (sid,) = make_solutions(1)
    with Session(engine) as session:
        for state in ("approved", "superseded", None):
            _attempt(session, sid, LOCAL, "local-card", cost=0.0, state=state)
        for state in ("approved", "approved", "rejected"):
            _attempt(session, sid, "openai", "gpt-image-2", cost=0.04, state=state)
        for state in ("rejected", "pending"):
            _attempt(session, sid, "azure", "gpt-image-2", cost=0.05, state=state)
        _attempt(session, sid, "openai", "gpt-image-2", cost=1.0, state="approved", when=utcnow() - timedelta(days=40))
        session.commit()


def test_the_yield_per_provider_and_model_counts_each_pair_apart(engine, history):
    with Session(engine) as session:
        table = yields.yield_table(session=session, since=utcnow() - timedelta(days=30), by=yields.BY_PAIR)

    table = table.set_index(["provider", "model"])
    assert list(table.index) == [("azure", "gpt-image-2"), ("local", "local-card"), ("openai", "gpt-image-2")]
    local, paid, azure = (
        table.loc[k] for k in [("local", "local-card"), ("openai", "gpt-image-2"), ("azure", "gpt-image-2")]
    )
    assert (local["attempts"], local["succeeded"], local["approved"], local["reviewed"]) == (3, 2, 2, 2)
    assert local["approval_rate"] == 1.0 and local["cost_per_approved_usd"] == 0.0
    assert (paid["attempts"], paid["approved"], paid["reviewed"]) == (3, 2, 3)
    assert paid["approval_rate"] == pytest.approx(2 / 3)
    assert paid["cost_per_approved_usd"] == pytest.approx(0.12 / 2)
    assert (azure["approved"], azure["reviewed"], azure["pending"], azure["candidates"]) == (0, 1, 1, 2)
    assert azure["spend_usd"] == pytest.approx(0.10)


def test_the_yield_per_pair_over_all_time_counts_older_history(engine, history):
    with Session(engine) as session:
        table = yields.yield_table(session=session, by=yields.BY_PAIR).set_index(["provider", "model"])

    assert (table.loc[("openai", "gpt-image-2"), "approved"], table.loc[("azure", "gpt-image-2"), "approved"]) == (3, 0)


def test_the_pair_view_reads_as_a_table_and_a_chart(engine, history):
    with Session(engine) as session:
        table = yields.yield_table(session=session, by=yields.BY_PAIR)

    readable = yields.yield_readable(table, {})
    fig = charts.approval_rates(table[table["reviewed"] > 0])

    assert list(readable.columns[:3]) == ["Provider", "Model", "Attempts"] and "Rejection reasons" not in readable
    assert list(readable["Approval rate"]) == ["0%", "100%", "75%"]
    assert list(fig.data[0].y) == ["azure · gpt-image-2", "local · local-card", "openai · gpt-image-2"]


def test_a_candidate_made_in_the_period_by_an_attempt_begun_before_it_keeps_its_provider(engine, make_solutions):
    (sid,) = make_solutions(1)
    since = utcnow() - timedelta(days=30)
    with Session(engine) as session:
        _attempt(session, sid, "openai", "gpt-image-2", cost=0.04, state="approved", when=since - timedelta(seconds=5))
        session.flush()
        made = session.exec(select(Candidate)).one()
        made.created_at = since + timedelta(seconds=5)
        session.commit()

    with Session(engine) as session:
        table = yields.yield_table(session=session, since=since, by=yields.BY_PAIR)

    assert [(r.provider, r.model, r.attempts, r.approved) for r in table.itertuples()] == [
        ("openai", "gpt-image-2", 0, 1)
    ]
