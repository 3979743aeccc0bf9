"""Generation end to end: stored candidates, the attempt ledger, cache, failures, parallelism, rate limit."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest
from conftest import TEST_KEY, get_solution
from PIL import Image
from sqlmodel import Session, select

from aixchange_images import batch, catalogue, pipeline
from aixchange_images.config import Settings, load_settings
from aixchange_images.models import (
    PLACEHOLDER_URL,
    PUBLIC_PREFIX,
    Attempt,
    AttemptStatus,
    Candidate,
    CandidateState,
    ImageStatus,
    Solution,
)
from aixchange_images.provider_registry import get_provider
from aixchange_images.providers.base import ImageRequest


@pytest.fixture
def local_settings() -> Settings:
    """The local provider at a small size, so drawing stays quick."""
    return load_settings(dalle_image_size="256x256")


def run(engine, settings: Settings, ids: list[str], **options) -> tuple[list[pipeline.GenerationResult], dict]:
    return batch.run_batch(engine, settings, ids, pipeline.GenerateOptions(**options))


def rows(engine, model, *where) -> list:
    with Session(engine) as session:
        return list(session.exec(select(model).where(*where).order_by(model.id)).all())


def test_local_generation_stores_a_candidate_a_thumbnail_and_a_complete_attempt(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)

    (result,), summary = run(engine, local_settings, [sid])

    assert (result.status, result.error_kind, result.cache_hit, result.cost_usd) == ("succeeded", None, False, 0.0)
    (candidate,) = rows(engine, Candidate)
    (attempt,) = rows(engine, Attempt)
    data_dir = local_settings.data_dir.resolve()
    image_file = (local_settings.data_dir / candidate.file_path).resolve()
    thumb_file = (local_settings.data_dir / candidate.thumb_path).resolve()
    assert data_dir / "candidates" in image_file.parents and data_dir / "thumbnails" in thumb_file.parents
    data = image_file.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("PNG", (256, 256))
    with Image.open(thumb_file) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= 480
    assert (candidate.id, candidate.solution_id, candidate.attempt_id) == (result.candidate_id, sid, attempt.id)
    assert (candidate.bytes, candidate.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (candidate.state, candidate.image_format, candidate.width, candidate.height) == ("pending", "png", 256, 256)
    assert (candidate.model, candidate.template_ref, candidate.cost_usd) == ("local-card", "default@1", 0.0)

    assert (attempt.status, attempt.error_kind, attempt.error_message) == (AttemptStatus.succeeded, None, None)
    assert (attempt.solution_id, attempt.batch_id, attempt.actor) == (sid, summary["batch_id"], "cli")
    assert (attempt.provider, attempt.model, attempt.size, attempt.quality) == (
        "local",
        "local-card",
        "256x256",
        "medium",
    )
    assert (attempt.output_format, attempt.template_ref, attempt.variant) == ("png", "default@1", 0)
    assert "Solution number 0" in attempt.prompt and "summarises support tickets number 0" in attempt.prompt
    assert len(attempt.request_key) == 64 and int(attempt.request_key, 16) >= 0
    assert (attempt.moderation, attempt.cache_hit, attempt.retries) == ("passed", False, 0)
    assert attempt.started_at <= attempt.finished_at
    assert 0 <= attempt.provider_ms <= attempt.duration_ms == result.duration_ms
    assert (attempt.cost_usd, attempt.reserved_usd, attempt.cost_source) == (0.0, 0.0, "none")
    assert (attempt.bytes, attempt.candidate_id) == (candidate.bytes, candidate.id)
    assert (attempt.pid, attempt.host) == (os.getpid(), pipeline.HOST)

    solution = get_solution(engine, sid)
    assert (solution.image_status, solution.image_url) == (ImageStatus.pending, None)


def test_local_images_are_the_same_for_the_same_prompt_and_variant(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (result,), _ = run(engine, local_settings, [sid])
    (attempt,) = rows(engine, Attempt)
    (candidate,) = rows(engine, Candidate)
    solution = get_solution(engine, sid)
    subject = {
        "title": solution.title,
        "description": solution.description,
        "category": solution.category,
        "tags": solution.tags,
    }
    provider = get_provider("local", local_settings)

    def draw(variant: int) -> bytes:
        request = ImageRequest(
            prompt=attempt.prompt,
            model="local-card",
            size="256x256",
            quality="medium",
            output_format="png",
            variant=variant,
            subject=subject,
        )
        return provider.generate(request).data

    stored = (local_settings.data_dir / candidate.file_path).read_bytes()
    assert draw(0) == draw(0) == stored
    assert draw(1) != stored


def test_regenerating_without_the_cache_draws_a_new_variant(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    run(engine, local_settings, [sid])

    (again,), _ = run(engine, local_settings, [sid], use_cache=False)

    assert (again.status, again.cache_hit) == ("succeeded", False)
    first, second = rows(engine, Attempt)
    assert (first.variant, second.variant) == (0, 1)
    assert first.request_key != second.request_key
    old, new = rows(engine, Candidate)
    assert old.sha256 != new.sha256 and old.file_path != new.file_path
    assert [c.state for c in (old, new)] == [CandidateState.pending, CandidateState.pending]


def test_a_cache_hit_reuses_the_image_at_no_cost_without_a_provider_call(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    (paid,), _ = run(engine, openai_settings, [sid])
    calls_before = len(standin.requests)

    (cached,), summary = run(engine, openai_settings, [sid])

    assert paid.cost_usd > 0 and not paid.cache_hit
    assert (cached.status, cached.cache_hit, cached.cost_usd) == ("succeeded", True, 0.0)
    assert len(standin.requests) == calls_before  # neither an image nor a moderation call
    assert summary["cost_usd"] == 0
    first, second = rows(engine, Attempt)
    assert (second.cache_hit, second.cost_source, second.cost_usd) == (True, "cache", 0.0)
    assert second.request_key == first.request_key
    assert second.candidate_id == first.candidate_id  # the same pending candidate, not a copy to review twice


def test_after_a_rejection_generating_again_makes_a_new_image_not_the_rejected_one(
    engine, local_settings, make_solutions
):
    from aixchange_images import review
    from aixchange_images.auth import CLI_ACTOR

    (sid,) = make_solutions(1)
    (first,), _ = run(engine, local_settings, [sid])
    with Session(engine) as session:
        review.reject(session=session, candidate_id=first.candidate_id, reason="off_brand", actor=CLI_ACTOR)
        session.commit()

    (again,), _ = run(engine, local_settings, [sid])  # the cache is on, as on the Generate page

    assert again.status == "succeeded" and not again.cache_hit
    old, new = rows(engine, Candidate)
    assert (old.state, new.state) == ("rejected", "pending")
    assert new.sha256 != old.sha256
    assert get_solution(engine, sid).image_status == "pending"


def test_a_cache_hit_for_another_solution_is_a_free_copy_of_the_same_file(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    (first,), _ = run(engine, local_settings, [sid])
    with Session(engine) as session:  # a second solution that renders to exactly the same prompt
        twin = Solution(**get_solution(engine, sid).model_dump(exclude={"id"}))
        session.add(twin)
        session.commit()
        twin_id = twin.id

    (copy,), _ = run(engine, local_settings, [twin_id])

    assert copy.cache_hit and copy.candidate_id != first.candidate_id
    source, duplicate = rows(engine, Candidate)
    assert (duplicate.solution_id, duplicate.cache_hit, duplicate.cost_usd) == (twin_id, True, 0.0)
    assert (duplicate.file_path, duplicate.sha256) == (source.file_path, source.sha256)
    assert get_solution(engine, twin_id).image_status == ImageStatus.pending


def test_a_failed_generation_gives_the_placeholder_and_stays_missing(engine, openai_settings, standin, make_solutions):
    failing, fine = make_solutions(2)
    standin.enqueue("moderation_blocked")

    results, summary = run(engine, openai_settings, [failing, fine], concurrency=1)

    assert [(r.solution_id, r.status, r.error_kind) for r in results] == [
        (failing, "failed", "moderation_blocked"),
        (fine, "succeeded", None),
    ]
    assert summary["errors_by_kind"] == {"moderation_blocked": 1}
    solution = get_solution(engine, failing)
    assert (solution.image_url, solution.image_status) == (PLACEHOLDER_URL, ImageStatus.placeholder)
    with Session(engine) as session:
        assert catalogue.missing_ids(session=session) == [failing]

    (retry,), _ = run(engine, openai_settings, [failing])  # the later retry the queue is for

    assert retry.status == "succeeded"
    assert get_solution(engine, failing).image_status == ImageStatus.pending


def test_a_failed_regeneration_keeps_a_published_image(engine, openai_settings, standin, make_solutions):
    published = PUBLIC_PREFIX + "solution_number_0-1740153503444.png"
    (sid,) = make_solutions(1, imageUrl=published)
    standin.enqueue("server_error", status=503, retry_after="0.01")
    standin.enqueue("server_error", status=503, retry_after="0.01")
    standin.enqueue("server_error", status=503, retry_after="0.01")

    (result,), _ = run(engine, openai_settings, [sid])

    assert result.error_kind == "server_error"
    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (published, ImageStatus.uploaded)  # the file's, kept


@pytest.mark.parametrize("description", ["", "   \n  "])
def test_an_empty_description_is_an_invalid_request_without_any_provider_call(
    engine, openai_settings, standin, make_solutions, description
):
    (sid,) = make_solutions(1)
    with Session(engine) as session:
        solution = session.get(Solution, sid)
        solution.description = description
        session.add(solution)
        session.commit()

    (result,), _ = run(engine, openai_settings, [sid])

    assert (result.status, result.error_kind) == ("failed", "invalid_request")
    assert standin.requests == []
    (attempt,) = rows(engine, Attempt)
    assert (attempt.status, attempt.error_kind) == (AttemptStatus.failed, "invalid_request")
    assert "empty description" in attempt.error_message
    assert (attempt.cost_usd, attempt.reserved_usd) == (0.0, 0.0)


@pytest.mark.parametrize("concurrency", [2, 4])
def test_a_batch_runs_its_calls_in_parallel_up_to_the_concurrency(
    engine, openai_settings, standin, make_solutions, concurrency
):
    ids = make_solutions(8)
    standin.latency = 0.3

    results, summary = run(engine, openai_settings, ids, concurrency=concurrency)

    assert summary["succeeded"] == 8 and len(results) == 8
    assert standin.max_in_flight == concurrency
    assert standin.image_calls == 8


def test_the_rate_limit_holds_back_calls_beyond_it(engine, openai_settings, standin, make_solutions):
    """Five workers, two calls a minute: two are made, three wait; stopping the batch releases them."""
    ids = make_solutions(5)
    standin.latency = 0.3  # without a limit, all five would be in flight before the first answer
    settings = openai_settings.model_copy(update={"image_rate_limit_per_minute": 2})
    stop = threading.Event()

    def progress(done: int, total: int, result: pipeline.GenerationResult) -> None:
        if done == 2:
            stop.set()  # the minute is not over: the other three must still be waiting

    results, _ = batch.run_batch(
        engine, settings, ids, pipeline.GenerateOptions(concurrency=5), progress=progress, stop=stop
    )

    assert standin.image_calls == 2
    assert sorted((r.status, r.error_kind) for r in results) == [("succeeded", None), ("succeeded", None)]
    # the three held back asked nothing: no record, no charge, and their solutions keep what they had
    assert len(rows(engine, Attempt)) == 2
    waited = {sid for sid in ids} - {r.solution_id for r in results}
    assert {get_solution(engine, sid).image_status for sid in waited} == {ImageStatus.none}


def test_the_rate_limiter_gives_out_only_its_slots_per_minute():
    stopped = threading.Event()
    stopped.set()  # so a refused slot answers at once instead of waiting for the minute to pass
    limiter = pipeline.RateLimiter(3, stopped)

    assert [limiter.acquire() for _ in range(4)] == [True, True, True, False]
    assert pipeline.RateLimiter(None).acquire()


def test_a_surprise_after_a_paid_call_is_a_recorded_failure_and_the_batch_goes_on(
    engine, openai_settings, standin, make_solutions, monkeypatch, caplog
):
    ids = make_solutions(3)
    real_store = pipeline.storage.store_candidate

    def store(settings, solution_id, data, info):  # type: ignore[no-untyped-def]
        if solution_id == ids[1]:
            raise RuntimeError(f"disk quirk while keeping {solution_id} for {TEST_KEY}")
        return real_store(settings, solution_id, data, info)

    monkeypatch.setattr(pipeline.storage, "store_candidate", store)

    results, summary = run(engine, openai_settings, ids, concurrency=1)

    by_id = {r.solution_id: r for r in results}
    assert summary["succeeded"] == 2 and summary["errors_by_kind"] == {"storage": 1}
    assert "disk quirk" in by_id[ids[1]].error and standin.image_calls == 3
    assert "disk quirk" in caplog.text and "Traceback" in caplog.text  # logged, with where it happened
    assert TEST_KEY not in caplog.text + by_id[ids[1]].error
    (kept,) = rows(engine, Attempt, Attempt.solution_id == ids[1])
    assert (kept.status, kept.error_kind, kept.cost_source) == (AttemptStatus.failed, "storage", "usage")
    assert kept.cost_usd > 0  # the call was paid for, and its cost is on the record
    assert get_solution(engine, ids[1]).image_url == PLACEHOLDER_URL


def test_a_proxy_password_never_reaches_a_failure_or_the_log(engine, make_solutions, monkeypatch, caplog):
    (sid,) = make_solutions(1)
    proxy = "http://user:proxy-pass-123456@proxy.invalid/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", proxy)
    settings = load_settings(dalle_image_size="256x256")

    def store(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"could not reach {proxy}")

    monkeypatch.setattr(pipeline.storage, "store_candidate", store)

    (result,), _ = run(engine, settings, [sid])

    assert result.error_kind == "storage" and "proxy.invalid" in result.error and "proxy.invalid" in caplog.text
    assert "proxy-pass-123456" not in result.error + caplog.text


def test_a_batch_stopped_by_its_event_keeps_every_result_it_finished_and_starts_no_more(
    engine, local_settings, make_solutions
):
    ids = make_solutions(6)
    stop = threading.Event()

    class StopAfterTheFirst(list):
        def append(self, result: pipeline.GenerationResult) -> None:  # called by the worker that made it
            super().append(result)
            stop.set()  # as the dashboard's Stop button does, from another thread

    kept = StopAfterTheFirst()
    options = pipeline.GenerateOptions(concurrency=2)

    results, _ = batch.run_batch(engine, local_settings, ids, options, stop=stop, kept=kept)

    # the first, and at most what the other workers had begun (a call, or keeping a reply while a
    # freed call slot went to the next): nothing new began after the stop
    assert 1 <= len(kept) <= options.concurrency + batch.finishing_workers(options.concurrency) < len(ids)
    assert sorted(r.attempt_id for r in kept) == sorted(r.attempt_id for r in results)
    assert len(rows(engine, Attempt)) == len(kept)
