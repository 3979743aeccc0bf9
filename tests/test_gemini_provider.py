"""The gemini provider through the real google-genai SDK against the stand-in: cost, sizes, retries,
every error kind, deadlines, edits and secrets."""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TEST_KEY, get_solution
from gemini_standin import GeminiStandIn
from PIL import Image
from sqlmodel import Session, select
from test_openai_provider import generate

from aixchange_images import batch, pipeline, provider_registry
from aixchange_images.config import Settings, load_settings
from aixchange_images.models import Attempt, AttemptStatus, Candidate, CandidateCheck, ImageStatus
from aixchange_images.providers.base import ImageRequest, ProviderError
from aixchange_images.providers.gemini import GeminiProvider, image_config

PROMPT_COST = 0.50 / 1e6  # text input of gemini-3.1-flash-image, per token
IMAGE_COST = 60.00 / 1e6  # its image output, per token


@pytest.fixture
def gemini():
    with GeminiStandIn() as server:
        yield server


@pytest.fixture
def gemini_settings(gemini: GeminiStandIn, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings that send the gemini provider to the stand-in with a fake key."""
    monkeypatch.setenv("GEMINI_API_KEY", TEST_KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", gemini.base_url)
    monkeypatch.setenv("IMAGE_PROVIDER", "gemini")
    return config()


def config(**overrides) -> Settings:
    return load_settings(**{"image_max_retry_wait_seconds": 2.0, "image_timeout_seconds": 5.0, **overrides})


@pytest.fixture
def solution_id(make_solutions) -> str:
    return make_solutions(1)[0]


def sent(gemini: GeminiStandIn) -> list[dict]:
    return [r["json"] for r in gemini.requests if r["path"].endswith(":generateContent")]


def candidate_of(engine, result: pipeline.GenerationResult) -> Candidate:
    with Session(engine) as session:
        return session.get(Candidate, result.candidate_id)


@pytest.mark.parametrize(
    ("size", "ratio", "tier", "image_tokens"),
    [("1024x1024", "1:1", "1K", 1120), ("1536x1024", "3:2", "2K", 1680), ("1536x864", "16:9", "2K", 1680)],
)
def test_success_is_charged_from_usage_metadata_at_the_size_asked_for(
    engine, gemini_settings, gemini, solution_id, size, ratio, tier, image_tokens
):
    result, attempt = generate(engine, gemini_settings, solution_id, size=size)

    assert result.status == "succeeded"
    (body,) = sent(gemini)
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": ratio, "imageSize": tier}
    assert body["generationConfig"]["responseModalities"] == ["IMAGE"]
    assert attempt.model == "gemini-3.1-flash-image"  # not IMAGE_MODEL's default, a GPT image model
    text_tokens = math.ceil(len(attempt.prompt) / 4)  # what the stand-in counts
    assert (attempt.input_text_tokens, attempt.output_image_tokens, attempt.output_text_tokens) == (
        text_tokens,
        image_tokens,
        0,
    )
    assert attempt.cost_source == "usage"
    assert attempt.cost_usd == pytest.approx(text_tokens * PROMPT_COST + image_tokens * IMAGE_COST, abs=1e-6)
    assert attempt.request_id.startswith("resp-")
    candidate = candidate_of(engine, result)
    assert f"{candidate.width}x{candidate.height}" == size  # Gemini's 3:2 image scaled to the size asked for


def test_auto_lets_the_model_choose_and_keeps_what_it_made(engine, gemini_settings, gemini, solution_id):
    result, attempt = generate(engine, gemini_settings, solution_id, size="auto")

    assert result.status == "succeeded"
    assert sent(gemini)[0]["generationConfig"]["imageConfig"] == {"imageSize": "1K"}
    assert (candidate_of(engine, result).width, attempt.output_image_tokens) == (1024, 1120)


def test_thinking_tokens_are_charged_as_output(engine, gemini_settings, gemini, solution_id):
    gemini.enqueue("success", thoughts=200)

    _, attempt = generate(engine, gemini_settings, solution_id)

    assert attempt.output_text_tokens == 200
    text = math.ceil(len(attempt.prompt) / 4)
    assert attempt.cost_usd == pytest.approx(text * PROMPT_COST + (1120 + 200) * IMAGE_COST, abs=1e-6)


def test_a_reply_without_usage_is_charged_at_the_per_image_tokens(engine, gemini_settings, gemini, solution_id):
    gemini.enqueue("success", usage=False)

    result, attempt = generate(engine, gemini_settings, solution_id, size="1536x1024")

    assert result.status == "succeeded"
    assert attempt.cost_source == "per_image" and attempt.output_image_tokens is None
    text = math.ceil(len(attempt.prompt) / 4)
    assert attempt.cost_usd == pytest.approx(text * PROMPT_COST + 1680 * IMAGE_COST, abs=1e-6)  # 2K tier


@pytest.mark.parametrize(
    ("script", "kind", "calls", "says"),
    [
        ([("image_safety", {})], "moderation_blocked", 1, "safety system"),
        ([("prompt_blocked", {})], "moderation_blocked", 1, "safety system"),
        ([("invalid_argument", {"message": "Unsupported value for imageSize."})], "invalid_request", 1, "imageSize"),
        ([("invalid_key", {})], "auth", 1, "GEMINI_API_KEY"),
        ([("permission_denied", {})], "auth", 1, "GEMINI_API_KEY"),
        ([("not_found", {})], "model_unavailable", 1, "gemini-3.1-flash-image"),
        ([("daily_quota", {})], "quota_exceeded", 1, "daily quota"),
        ([("resource_exhausted", {"retry_delay": "30s"})], "rate_limited", 1, "rate-limiting"),  # longer than we wait
        ([("internal", {})] * 3, "server_error", 3, "HTTP 500"),
        ([("unavailable", {})] * 3, "server_error", 3, "HTTP 503"),
    ],
    ids=["image-safety", "prompt-blocked", "argument", "key", "permission", "model", "daily", "rate", "500", "503"],
)
def test_each_failure_is_recorded_with_its_kind_and_only_transient_ones_are_retried(
    engine, gemini_settings, gemini, solution_id, script, kind, calls, says
):
    for behaviour, opts in script:
        gemini.enqueue(behaviour, **opts)

    result, attempt = generate(engine, config(image_max_retry_wait_seconds=2.0), solution_id)

    assert (result.status, result.error_kind) == ("failed", kind)
    assert gemini.image_calls == calls
    assert (attempt.status, attempt.error_kind, attempt.retries) == (AttemptStatus.failed, kind, calls - 1)
    assert says in attempt.error_message
    assert attempt.candidate_id is None
    assert get_solution(engine, solution_id).image_status == ImageStatus.placeholder


def test_a_refused_image_that_spent_tokens_is_charged_its_estimate(engine, gemini_settings, gemini, solution_id):
    gemini.enqueue("image_safety")  # the stand-in reports the image tokens it spent before refusing

    _, attempt = generate(engine, gemini_settings, solution_id)

    assert (attempt.error_kind, attempt.cost_source) == ("moderation_blocked", "estimate")
    assert attempt.cost_usd > 1000 * IMAGE_COST


def test_a_rate_limited_call_waits_for_retry_info_and_then_succeeds(engine, gemini_settings, gemini, solution_id):
    gemini.enqueue("resource_exhausted", retry_delay="0.05s")

    result, attempt = generate(engine, gemini_settings, solution_id)

    assert (result.status, gemini.image_calls, attempt.retries) == ("succeeded", 2, 1)
    assert attempt.cost_source == "usage" and attempt.cost_usd > 0  # the answered call only, once


@pytest.mark.parametrize(
    ("behaviour", "opts", "source"),
    [
        ("garbage_json", {}, "usage-less"),
        ("garbage_json", {"content_type": "text/html"}, "usage-less"),
        ("garbage_image", {}, "usage"),
        ("text_only", {}, "estimate"),
        ("success", {"usage": {"candidatesTokenCount": -5000, "candidatesTokensDetails": None}}, "estimate"),
    ],
    ids=["json", "html", "base64-not-an-image", "text-only", "negative-usage"],
)
def test_a_reply_that_is_not_an_image_is_bad_image_and_stores_nothing(
    engine, gemini_settings, gemini, solution_id, tmp_path, behaviour, opts, source
):
    gemini.enqueue(behaviour, **opts)

    result, attempt = generate(engine, gemini_settings, solution_id)

    assert (result.status, result.error_kind) == ("failed", "bad_image")
    assert gemini.image_calls == 1  # a broken reply is not worth a second paid call
    with Session(engine) as session:
        assert session.exec(select(Candidate)).all() == []
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    if source == "estimate":  # tokens were spent (or the usage is nonsense): never under-count
        assert attempt.cost_source == "estimate" and attempt.cost_usd > 1000 * IMAGE_COST
    elif source == "usage":  # answered with usage, then refused by our checks: charged what it used
        assert attempt.cost_source == "usage"
    else:
        assert attempt.cost_usd == 0


def test_an_image_of_another_ratio_is_kept_as_it_came_and_flagged_wrong_size(
    engine, gemini_settings, gemini, solution_id
):
    gemini.enqueue("wrong_size", size="1024x2048")

    result, _ = generate(engine, gemini_settings, solution_id, size="1024x1024")

    with Session(engine) as session:
        candidate = session.get(Candidate, result.candidate_id)
        check = session.get(CandidateCheck, (candidate.id, "wrong_size"))
    assert (candidate.width, candidate.height) == (1024, 2048)  # not stretched to the size asked for
    assert "wrong_size" in candidate.flags.split()
    assert check.sentence == "The image is 1024x2048 pixels, not the 1024x1024 asked for."


def test_an_answer_slower_than_the_timeout_is_a_timeout(engine, gemini_settings, gemini, solution_id):
    gemini.enqueue("slow", seconds=10)

    result, attempt = generate(engine, config(image_timeout_seconds=0.3, image_max_retries=0), solution_id)

    assert result.error_kind == "timeout"
    assert attempt.duration_ms < 5000
    assert attempt.cost_source == "estimate"  # it may have been billed


@pytest.mark.parametrize("part", ["head", "body"])
def test_a_reply_trickled_past_the_timeout_ends_at_the_timeout(engine, gemini_settings, gemini, solution_id, part):
    # A piece every quarter second: no single read ever waits the 2 s, yet the whole reply takes 20 s.
    gemini.enqueue("trickle", part=part, seconds=20, interval=0.25)

    started = time.monotonic()
    result, _ = generate(engine, config(image_timeout_seconds=2.0, image_max_retries=0), solution_id)
    elapsed = time.monotonic() - started

    assert (result.status, result.error_kind) == ("failed", "timeout")
    assert elapsed < 8, f"the call lasted {elapsed:.1f} s against a 2 s timeout"


def test_a_trickled_reply_that_ends_within_the_timeout_is_kept(engine, gemini_settings, gemini, solution_id):
    gemini.enqueue("trickle", seconds=0.5, interval=0.1)

    result, attempt = generate(engine, gemini_settings, solution_id)

    assert result.status == "succeeded" and attempt.cost_source == "usage"


def test_a_server_that_is_not_there_is_a_connection_failure(engine, solution_id, monkeypatch):
    with GeminiStandIn() as gone:
        address = gone.base_url
    monkeypatch.setenv("GEMINI_API_KEY", TEST_KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", address)

    result, attempt = generate(engine, config(image_max_retries=0), solution_id, provider="gemini")

    assert result.error_kind == "connection" and "GEMINI_BASE_URL" in attempt.error_message


def test_an_echoed_key_never_reaches_the_attempt_or_the_log(engine, gemini_settings, gemini, make_solutions, caplog):
    caplog.set_level(logging.DEBUG)  # the HTTP stack's debug lines carry every response header
    ids = make_solutions(3)
    gemini.echo_key = True  # every reply's x-request-id carries the caller's key
    gemini.enqueue("invalid_argument", message=f"Bad request from key {TEST_KEY}.")
    gemini.enqueue("text_only")
    gemini.enqueue("success", usage=False)

    batch.run_batch(engine, config(image_concurrency=1), ids, pipeline.GenerateOptions())

    with Session(engine) as session:
        rows = session.exec(select(Attempt).order_by(Attempt.id)).all()
    assert [a.error_kind for a in rows] == ["invalid_request", "bad_image", None]
    assert "[redacted]" in rows[0].error_message
    stored = " ".join(f"{a.error_message} {a.request_id}" for a in rows) + caplog.text
    pieces = {TEST_KEY[i : i + 8] for i in range(len(TEST_KEY) - 7)}
    assert not [p for p in pieces if p in stored]
    assert "x-request-id" in caplog.text.lower()  # the headers were logged, with the key cut out


def test_a_hard_budget_cap_refuses_the_call_before_it_is_made(engine, gemini_settings, gemini, solution_id):
    settings = gemini_settings.model_copy(update={"image_budget_daily_usd": 0.01})  # one image is ~$0.067

    result, _ = generate(engine, settings, solution_id)

    assert (result.status, result.error_kind, gemini.image_calls) == ("failed", "budget_exceeded", 0)


def test_the_cache_serves_an_identical_second_request_at_no_cost(engine, gemini_settings, gemini, solution_id):
    paid, _ = generate(engine, gemini_settings, solution_id)

    cached, attempt = generate(engine, gemini_settings, solution_id)

    assert paid.cost_usd > 0
    assert (cached.cache_hit, cached.cost_usd, attempt.cost_source) == (True, 0.0, "cache")
    assert gemini.image_calls == 1


def test_without_a_key_the_provider_fails_as_auth_without_calling(engine, gemini, solution_id, monkeypatch):
    monkeypatch.setenv("GEMINI_BASE_URL", gemini.base_url)

    result, attempt = generate(engine, load_settings(), solution_id, provider="gemini")

    assert result.error_kind == "auth" and "GEMINI_API_KEY is not set" in attempt.error_message
    assert gemini.requests == []


def test_a_retired_preview_model_fails_before_any_call(engine, gemini_settings, gemini, solution_id):
    result, attempt = generate(engine, gemini_settings, solution_id, model="gemini-3-pro-image-preview")

    assert result.error_kind == "model_unavailable"
    assert "2026-06-25" in attempt.error_message and "gemini-3.1-flash-image" in attempt.error_message
    assert gemini.requests == []


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def test_an_edit_sends_the_image_inline_with_the_instruction(gemini_settings, gemini):
    provider = GeminiProvider(gemini_settings)
    request = ImageRequest(
        prompt="Make the background dark blue",
        model="gemini-3-pro-image",
        size="1024x1536",
        quality="medium",
        output_format="png",
        image=png(1024, 1536),
    )

    reply = provider.edit(request)

    (body,) = sent(gemini)
    parts = body["contents"][0]["parts"]
    assert parts[0] == {"text": "Make the background dark blue"}
    assert base64.urlsafe_b64decode(parts[1]["inlineData"]["data"]) == request.image  # the SDK's URL-safe base64
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "2:3", "imageSize": "2K"}
    assert Image.open(io.BytesIO(reply.data)).size == (1024, 1536)
    assert (reply.usage.input_image_tokens, reply.usage.output_image_tokens) == (1120, 1120)
    assert provider.expected_usage(request).input_image_tokens == 1120


def test_a_wrong_key_is_refused_once_and_not_retried(gemini_settings, gemini):
    gemini.expected_key = "the-right-key-0000000000"
    request = ImageRequest(
        prompt="A clean card", model="gemini-3.1-flash-image", size="1024x1024", quality="medium", output_format="png"
    )

    with pytest.raises(ProviderError) as caught:
        GeminiProvider(gemini_settings).generate(request)

    assert caught.value.kind == "auth" and gemini.image_calls == 1


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        ("gemini-3.1-flash-image", "512x512", ("1:1", "512")),
        ("gemini-3.1-flash-image", "3840x2160", ("16:9", "4K")),
        ("gemini-3.1-flash-image", "1280x1024", ("5:4", "2K")),
        ("gemini-3-pro-image", "1024x1024", ("1:1", "1K")),
        ("gemini-2.5-flash-image", "1536x1024", ("3:2", None)),  # one tier: no imageSize is sent
        ("gemini-2.5-flash-image", "auto", (None, None)),
    ],
)
def test_a_size_maps_to_the_nearest_ratio_at_the_smallest_tier_that_covers_it(model, size, expected):
    assert image_config(model, size) == expected


def test_listing_providers_shows_gemini_without_loading_its_sdk(gemini_settings):
    (row,) = [r for r in provider_registry.describe(gemini_settings) if r["name"] == "gemini"]
    assert row["ready"] and row["edits"] and row["default_model"] == "gemini-3.1-flash-image"
    assert "gemini-2.5-flash-image" not in row["models"]  # shut down on 2026-10-02
    assert {"GEMINI_API_KEY", "GEMINI_BASE_URL"} <= set(row["variables"])
    code = "import sys, aixchange_images.provider_registry; print('google.genai' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
    listed = subprocess.run(
        [sys.executable, "-m", "aixchange_images", "providers", "--json"],
        cwd=gemini_settings.data_dir.parent,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "gemini" in [p["name"] for p in json.loads(listed.stdout)["providers"]]
