"""The openai provider through the real SDK against the stand-in: cost, retries and every error kind."""

from __future__ import annotations

import math
import re
import time

import pytest
from conftest import get_solution
from openai_standin import IMAGES_PATH, OpenAIStandIn
from sqlmodel import Session, select

from aixchange_images import batch, pipeline
from aixchange_images.config import Settings, load_settings
from aixchange_images.models import Attempt, AttemptStatus, Candidate, CandidateCheck, CandidateState, ImageStatus
from aixchange_images.providers.base import ImageRequest, ProviderError
from aixchange_images.providers.openai import OpenAIProvider


def openai_config(**overrides) -> Settings:
    """Settings for the stand-in (the `openai_settings` fixture has set the environment)."""
    return load_settings(**{"image_max_retry_wait_seconds": 2.0, "image_timeout_seconds": 5.0, **overrides})


def generate(engine, settings: Settings, solution_id: str, **options) -> tuple[pipeline.GenerationResult, Attempt]:
    (result,), _ = batch.run_batch(engine, settings, [solution_id], pipeline.GenerateOptions(**options))
    with Session(engine) as session:
        attempt = session.get(Attempt, result.attempt_id)
    return result, attempt


def image_requests(standin: OpenAIStandIn) -> list[dict]:
    return [r["json"] for r in standin.requests if r["path"] == IMAGES_PATH]


@pytest.fixture
def solution_id(make_solutions) -> str:
    return make_solutions(1)[0]


@pytest.mark.parametrize(
    ("quality", "size", "image_tokens", "image_dollars"),
    [
        ("medium", "1024x1024", 1056, 0.03168),  # 1056 x $30 / 1M
        ("high", "1536x1024", 6240, 0.18720),
        ("low", "1024x1024", 272, 0.00816),
    ],
)
def test_success_records_usage_cost_and_request_id(
    engine, openai_settings, standin, solution_id, quality, size, image_tokens, image_dollars
):
    result, attempt = generate(engine, openai_settings, solution_id, quality=quality, size=size)

    assert result.status == "succeeded"
    text_tokens = math.ceil(len(attempt.prompt) / 4)  # what the stand-in counts
    assert (attempt.input_text_tokens, attempt.input_image_tokens) == (text_tokens, 0)
    assert (attempt.output_image_tokens, attempt.output_text_tokens) == (image_tokens, 0)
    assert attempt.cost_source == "usage"
    assert attempt.cost_usd == pytest.approx(text_tokens * 5.00 / 1e6 + image_dollars, abs=1e-9)
    assert result.cost_usd == attempt.cost_usd
    assert re.fullmatch(r"req_[0-9a-f]{32}", attempt.request_id)
    (sent,) = image_requests(standin)
    assert (sent["model"], sent["quality"], sent["size"], sent["n"]) == ("gpt-image-2", quality, size, 1)
    with Session(engine) as session:
        candidate = session.get(Candidate, result.candidate_id)
    assert (candidate.width, candidate.height) == tuple(map(int, size.split("x")))
    assert candidate.cost_usd == attempt.cost_usd


def test_reply_without_usage_is_charged_at_the_per_image_price(engine, openai_settings, standin, solution_id):
    standin.enqueue("success", usage=False)

    result, attempt = generate(engine, openai_settings, solution_id)

    assert result.status == "succeeded"
    assert attempt.cost_source == "per_image"
    assert attempt.input_text_tokens is None and attempt.output_image_tokens is None
    # the price table's per-image figure for gpt-image-2, 1024x1024, medium: prompt estimate + 1056 image tokens
    assert attempt.cost_usd == pytest.approx(math.ceil(len(attempt.prompt) / 4) * 5e-6 + 0.03168, abs=1e-9)
    assert attempt.cost_usd > 0


@pytest.mark.parametrize(
    ("script", "kind", "calls", "says"),
    [
        ([("moderation_blocked", {})], "moderation_blocked", 1, "safety system"),
        ([("invalid_request", {"param": "quality"})], "invalid_request", 1, "quality"),
        ([("model_not_found", {})], "model_unavailable", 1, "gpt-image-2"),
        ([("invalid_api_key", {})], "auth", 1, "OPENAI_API_KEY"),
        ([("insufficient_quota", {})], "quota_exceeded", 1, "credit"),
        ([("billing_hard_limit", {})], "quota_exceeded", 1, "hard limit"),
        ([("rate_limited", {"retry_after": "30"})], "rate_limited", 1, "rate-limiting"),  # longer than we wait
        ([("server_error", {"retry_after": "0.01"})] * 3, "server_error", 3, "internal error"),
        ([("server_error", {"status": 503, "retry_after": "0.01"})] * 3, "server_error", 3, "internal error"),
    ],
    ids=["moderation", "param", "model", "key", "quota", "billing", "rate", "500", "503"],
)
def test_each_failure_is_recorded_with_its_kind_and_only_transient_ones_are_retried(
    engine, openai_settings, standin, solution_id, script, kind, calls, says
):
    for behaviour, opts in script:
        standin.enqueue(behaviour, **opts)

    result, attempt = generate(engine, openai_settings, solution_id)

    assert (result.status, result.error_kind) == ("failed", kind)
    assert standin.image_calls == calls
    assert (attempt.status, attempt.error_kind, attempt.retries) == (AttemptStatus.failed, kind, calls - 1)
    assert says in attempt.error_message
    assert attempt.cost_usd == 0 and attempt.candidate_id is None
    assert attempt.request_id is not None  # the failed call can be traced with OpenAI


def test_rate_limited_call_is_retried_after_retry_after_and_then_succeeds(
    engine, openai_settings, standin, solution_id
):
    standin.enqueue("rate_limited", retry_after="0.05")

    result, attempt = generate(engine, openai_settings, solution_id)

    assert result.status == "succeeded"
    assert standin.image_calls == 2
    assert attempt.retries == 1
    assert attempt.cost_usd > 0  # only the call that answered is charged, once


def test_a_model_the_server_does_not_know_is_model_unavailable(engine, openai_settings, standin, solution_id):
    result, attempt = generate(engine, openai_settings, solution_id, model="gpt-image-7")

    assert result.error_kind == "model_unavailable"
    assert standin.image_calls == 1
    assert "gpt-image-7" in attempt.error_message and "gpt-image-2" in attempt.error_message


def test_a_retired_dalle_model_fails_before_any_call_and_names_the_current_model(
    engine, standin, openai_settings, solution_id, monkeypatch
):
    monkeypatch.setenv("IMAGE_MODEL", "dall-e-3")

    result, attempt = generate(engine, openai_config(), solution_id)

    assert result.error_kind == "model_unavailable"
    assert "dall-e-3" in attempt.error_message and "gpt-image-2" in attempt.error_message
    assert standin.requests == []
    assert get_solution(engine, solution_id).image_status == ImageStatus.placeholder


def test_a_wrong_key_is_an_auth_failure(engine, openai_settings, standin, solution_id):
    standin.expected_key = "the-right-key-0000000000"

    result, attempt = generate(engine, openai_settings, solution_id)

    assert result.error_kind == "auth"
    assert standin.image_calls == 0  # the moderation check was refused first: no image was asked for
    assert "OPENAI_API_KEY" in attempt.error_message
    request = ImageRequest(
        prompt="A clean card", model="gpt-image-2", size="1024x1024", quality="medium", output_format="png"
    )
    with pytest.raises(ProviderError) as caught:
        OpenAIProvider(openai_settings).generate(request)
    assert caught.value.kind == "auth"
    assert standin.image_calls == 1  # a refused key is not retried


def test_without_a_key_the_openai_provider_fails_as_auth_without_calling(engine, standin, solution_id, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", standin.base_url)

    result, attempt = generate(engine, load_settings(), solution_id, provider="openai")

    assert result.error_kind == "auth"
    assert "OPENAI_API_KEY is not set" in attempt.error_message
    assert standin.requests == []


def test_an_answer_slower_than_the_timeout_is_a_timeout(engine, openai_settings, standin, solution_id):
    standin.enqueue("slow", seconds=10)

    result, attempt = generate(engine, openai_config(image_timeout_seconds=0.3, image_max_retries=0), solution_id)

    assert result.error_kind == "timeout"
    assert standin.image_calls == 1
    assert attempt.duration_ms < 5000


@pytest.mark.parametrize("part", ["head", "body"])
def test_a_reply_trickled_past_the_timeout_ends_at_the_timeout(engine, openai_settings, standin, solution_id, part):
    # A piece every quarter second: no single read ever waits the 2 s, yet the whole reply takes 20 s.
    standin.enqueue("trickle", part=part, seconds=20, interval=0.25)
    settings = openai_config(image_timeout_seconds=2.0, image_max_retries=0)

    started = time.monotonic()
    result, attempt = generate(engine, settings, solution_id)
    elapsed = time.monotonic() - started

    assert (result.status, result.error_kind) == ("failed", "timeout")
    assert elapsed < 8, f"the call lasted {elapsed:.1f} s against a 2 s timeout"
    assert standin.image_calls == 1 and attempt.candidate_id is None


def test_a_trickled_reply_that_ends_within_the_timeout_is_kept(engine, openai_settings, standin, solution_id):
    standin.enqueue("trickle", seconds=0.5, interval=0.1)

    result, attempt = generate(engine, openai_settings, solution_id)

    assert result.status == "succeeded" and attempt.cost_source == "usage"


def test_a_prompt_flagged_by_moderation_never_reaches_the_image_endpoint(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1, description="Plans the violence scenes of an action film frame by frame.")

    result, attempt = generate(engine, openai_settings, sid)

    assert result.error_kind == "moderation_blocked"
    assert (standin.moderation_calls, standin.image_calls) == (1, 0)
    assert attempt.moderation == "flagged" and "violence" in attempt.error_message


@pytest.mark.parametrize(
    ("behaviour", "opts"),
    [
        ("garbage_json", {}),
        ("garbage_json", {"content_type": "text/html"}),
        ("garbage_image", {}),
        ("bomb", {}),
        ("empty_data", {}),
    ],
    ids=["json", "html", "base64-not-an-image", "decompression-bomb", "empty-data"],
)
def test_a_reply_that_is_not_an_image_is_bad_image_and_stores_nothing(
    engine, openai_settings, standin, solution_id, tmp_path, behaviour, opts
):
    standin.enqueue(behaviour, **opts)

    result, attempt = generate(engine, openai_settings, solution_id)

    assert (result.status, result.error_kind) == ("failed", "bad_image")
    assert standin.image_calls == 1  # a broken reply is not worth a second paid call
    assert attempt.candidate_id is None
    with Session(engine) as session:
        assert session.exec(select(Candidate)).all() == []
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("asked", "made"),
    [
        ("1024x1024", "1x1"),
        ("1024x1024", "1x30000"),
        ("auto", "1x30000"),
        ("auto", "8x8"),
    ],
)
def test_a_reply_no_card_can_show_is_bad_image_and_the_working_image_stays(
    engine, openai_settings, standin, solution_id, asked, made
):
    published, _ = generate(engine, openai_settings, solution_id, auto_approve=True)
    standin.enqueue("wrong_size", size=made)

    result, attempt = generate(engine, openai_settings, solution_id, size=asked, use_cache=False)

    assert (result.status, result.error_kind) == ("failed", "bad_image")
    assert made in attempt.error_message and attempt.candidate_id is None
    solution = get_solution(engine, solution_id)
    assert (solution.image_status, solution.image_url) == (ImageStatus.approved, published.published_url)
    with Session(engine) as session:
        assert len(session.exec(select(Candidate)).all()) == 1  # only the published one


def test_a_reply_of_another_size_is_kept_flagged_wrong_size_and_never_auto_approved(
    engine, openai_settings, standin, solution_id, monkeypatch
):
    monkeypatch.setenv("CHECK_MIN_SIDE_PX", "512")
    settings = load_settings(image_max_retry_wait_seconds=2.0, image_timeout_seconds=5.0)
    published, _ = generate(engine, settings, solution_id, size="1024x1024", auto_approve=True)
    standin.enqueue("wrong_size", size="1536x1024")

    result, attempt = generate(engine, settings, solution_id, size="1024x1024", use_cache=False, auto_approve=True)

    assert result.status == "succeeded" and result.published_url is None  # paid for, kept, not published
    with Session(engine) as session:
        candidate = session.get(Candidate, result.candidate_id)
        check = session.get(CandidateCheck, (candidate.id, "wrong_size"))
    assert (candidate.state, candidate.flags.split()) == (CandidateState.pending, ["wrong_size"])
    assert check.sentence == "The image is 1536x1024 pixels, not the 1024x1024 asked for."
    assert check.evidence == {"width": 1536, "height": 1024, "requested": "1024x1024", "min_side": 512}
    solution = get_solution(engine, solution_id)
    assert (solution.image_status, solution.image_url) == (ImageStatus.pending, published.published_url)


def test_an_auto_request_keeps_any_size_the_service_may_choose(engine, openai_settings, standin, solution_id):
    standin.enqueue("wrong_size", size="1024x1536")

    result, _ = generate(engine, openai_settings, solution_id, size="auto")

    assert result.status == "succeeded"
    with Session(engine) as session:
        candidate = session.get(Candidate, result.candidate_id)
    assert (candidate.width, candidate.height) == (1024, 1536)


def test_requests_never_carry_dalle_only_parameters(engine, openai_settings, standin, make_solutions):
    ids = make_solutions(3)

    results, _ = batch.run_batch(engine, openai_settings, ids, pipeline.GenerateOptions(candidates=2))

    assert [r.status for r in results] == ["succeeded"] * 6
    sent = image_requests(standin)
    assert len(sent) == 6
    for body in sent:
        assert "response_format" not in body and "style" not in body
        assert body["model"] == "gpt-image-2" and body["output_format"] == "png"


@pytest.mark.parametrize(("legacy", "sent_as"), [("standard", "medium"), ("hd", "high")])
def test_dalle_quality_values_are_sent_as_gpt_image_qualities(
    engine, openai_settings, standin, solution_id, monkeypatch, legacy, sent_as
):
    monkeypatch.setenv("DALLE_IMAGE_QUALITY", legacy)
    settings = openai_config()

    result, attempt = generate(engine, settings, solution_id)

    assert result.status == "succeeded"
    (sent,) = image_requests(standin)
    assert sent["quality"] == sent_as == attempt.quality
    assert f"DALLE_IMAGE_QUALITY={legacy}" in settings.quality_notice
