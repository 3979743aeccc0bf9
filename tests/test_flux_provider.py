"""The flux provider over real HTTP against the BFL stand-in: submit, poll, download, cost and every
error kind, alone and end to end through a batch."""

from __future__ import annotations

import base64
import io
import logging
import time

import pytest
from conftest import TEST_KEY, get_solution
from flux_standin import FluxStandIn
from PIL import Image
from sqlmodel import Session, select

from aixchange_images import batch, budget, pipeline
from aixchange_images.config import ConfigError, Settings, load_settings
from aixchange_images.models import Attempt, AttemptStatus, Candidate, ImageStatus
from aixchange_images.provider_registry import get_provider
from aixchange_images.providers.base import ImageRequest, ProviderError
from aixchange_images.providers.flux import FluxProvider

ESTIMATE_1024 = 1024 * 1024 * 0.03 / 1e6  # flux-2-pro's estimate for one 1024x1024 image, in USD


@pytest.fixture
def flux():
    with FluxStandIn(expected_key=TEST_KEY) as server:
        yield server


@pytest.fixture
def flux_settings(flux: FluxStandIn, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings that send the flux provider to the stand-in with a fake key, polling every 10 ms."""
    monkeypatch.setenv("BFL_API_KEY", TEST_KEY)
    monkeypatch.setenv("BFL_BASE_URL", flux.base_url)
    monkeypatch.setenv("BFL_POLL_SECONDS", "0.01")
    monkeypatch.setenv("IMAGE_PROVIDER", "flux")
    return flux_config()


def flux_config(**overrides) -> Settings:
    return load_settings(**{"image_max_retry_wait_seconds": 2.0, "image_timeout_seconds": 5.0, **overrides})


def generate(engine, settings: Settings, solution_id: str, **options) -> tuple[pipeline.GenerationResult, Attempt]:
    (result,), _ = batch.run_batch(engine, settings, [solution_id], pipeline.GenerateOptions(**options))
    with Session(engine) as session:
        attempt = session.get(Attempt, result.attempt_id)
    return result, attempt


def request(**fields) -> ImageRequest:
    values = {"prompt": "A clean product card", "model": "flux-2-pro", "size": "1024x1024", "quality": "medium"}
    return ImageRequest(**{"output_format": "png", **values, **fields})


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def solution_id(make_solutions) -> str:
    return make_solutions(1)[0]


@pytest.mark.parametrize(
    ("model", "size", "dollars"),
    [
        ("flux-2-pro", "1024x1024", 0.03),  # 3 credits: the first megapixel
        ("flux-2-pro", "1536x1024", 0.045),  # 2 megapixels: 3 + 1.5 credits
        ("flux-2-max", "1024x1536", 0.10),  # 7 + 3 credits
        ("flux-2-klein-4b", "1024x1024", 0.014),
    ],
)
def test_a_success_is_charged_the_credits_the_service_reports(
    engine, flux_settings, flux, solution_id, model, size, dollars
):
    result, attempt = generate(engine, flux_settings, solution_id, model=model, size=size)

    assert result.status == "succeeded"
    assert (attempt.cost_source, attempt.cost_usd) == ("reported", pytest.approx(dollars, abs=1e-9))
    assert attempt.output_image_tokens is None  # the reported cost is all there is to record
    (submit,) = flux.calls("submit")
    assert submit["path"] == f"/v1/{model}"
    assert (submit["json"]["width"], submit["json"]["height"]) == tuple(map(int, size.split("x")))
    assert submit["json"]["output_format"] == "png" and submit["json"]["prompt"] == attempt.prompt
    with Session(engine) as session:
        candidate = session.get(Candidate, result.candidate_id)
    assert f"{candidate.width}x{candidate.height}" == size


def test_the_key_goes_to_submit_and_polls_but_never_to_the_signed_image_url(engine, flux_settings, flux, solution_id):
    flux.enqueue("success", pending=3)

    result, attempt = generate(engine, flux_settings, solution_id)

    assert result.status == "succeeded"
    submits, polls, samples = (flux.calls(kind) for kind in ("submit", "poll", "sample"))
    assert (len(submits), len(polls), len(samples)) == (1, 4, 1)  # three times Pending, then Ready
    assert all(r["headers"].get("x-key") == TEST_KEY for r in submits + polls)
    assert "x-key" not in samples[0]["headers"]
    assert polls[0]["query"]["id"] == [attempt.request_id]


def test_a_reply_without_a_cost_is_charged_its_estimate_per_image(engine, flux_settings, flux, solution_id):
    flux.enqueue("success", cost=None)

    result, attempt = generate(engine, flux_settings, solution_id)

    assert result.status == "succeeded"
    assert attempt.cost_source == "per_image"
    assert attempt.cost_usd == pytest.approx(ESTIMATE_1024, abs=1e-6)  # 1,048,576 pixels at $0.03 per 1M


@pytest.mark.parametrize(
    ("size", "image", "dollars"),
    [
        ("1024x1024", None, ESTIMATE_1024),
        ("512x512", None, ESTIMATE_1024),  # under a megapixel: the first one is charged whole
        ("1536x1024", None, 1536 * 1024 * 0.03 / 1e6),
        ("auto", png(1024, 1024), (1536 * 1024 * 0.03 + 1024 * 1024 * 0.015) / 1e6),  # an edit's input counts
    ],
)
def test_an_estimate_prices_pixels_at_the_per_megapixel_list_price(engine, flux_settings, size, image, dollars):
    provider = get_provider("flux", flux_settings)
    with Session(engine) as session:
        estimate = budget.estimate_call(session=session, provider=provider, request=request(size=size, image=image))

    assert estimate == pytest.approx(dollars, abs=1e-6)
    # never below what the service would charge for the same image (3 credits, +1.5 a further megapixel)
    assert estimate >= 0.03 + (0.015 if size == "1536x1024" or image else 0) - 1e-9


@pytest.mark.parametrize(
    ("script", "kind", "submits", "says"),
    [
        ([("forbidden", {})], "auth", 1, "BFL_API_KEY"),
        ([("no_credits", {})], "quota_exceeded", 1, "out of credits"),
        ([("invalid", {})], "invalid_request", 1, "width: Input should be a multiple of 16"),
        ([("rate_limited", {"retry_after": "30"})], "rate_limited", 1, "rate-limiting"),  # longer than we wait
        ([("server_error", {"retry_after": "0.01"})] * 3, "server_error", 3, "HTTP 500"),
        ([("server_error", {"status": 503, "retry_after": "0.01"})] * 3, "server_error", 3, "HTTP 503"),
        (
            [("request_moderated", {"details": {"Moderation Reasons": ["Derivative Works"]}})],
            "moderation_blocked",
            1,
            "Derivative Works",
        ),
        ([("error", {})] * 3, "server_error", 3, "failed to make the image"),
        ([("task_not_found", {})] * 3, "server_error", 3, "Task not found"),
    ],
    ids=["403", "402", "422", "429", "500", "503", "request-moderated", "error", "task-not-found"],
)
def test_each_failure_is_recorded_with_its_kind_and_only_transient_ones_are_retried(
    engine, flux_settings, flux, solution_id, script, kind, submits, says
):
    for behaviour, opts in script:
        flux.enqueue(behaviour, **opts)

    result, attempt = generate(engine, flux_settings, solution_id)

    assert (result.status, result.error_kind) == ("failed", kind)
    assert len(flux.calls("submit")) == submits
    assert (attempt.status, attempt.error_kind, attempt.retries) == (AttemptStatus.failed, kind, submits - 1)
    assert says in attempt.error_message
    assert attempt.candidate_id is None
    assert get_solution(engine, solution_id).image_status == ImageStatus.placeholder
    accepted = script[0][0] in ("error", "task_not_found")  # a task that ran, then failed, may be billed
    assert attempt.cost_usd == pytest.approx(submits * ESTIMATE_1024 if accepted else 0, abs=1e-6)


def test_an_image_withheld_by_moderation_after_it_was_made_is_charged(engine, flux_settings, flux, solution_id):
    flux.enqueue("content_moderated", pending=2)

    result, attempt = generate(engine, flux_settings, solution_id)

    assert (result.status, result.error_kind) == ("failed", "moderation_blocked")
    assert "withheld" in attempt.error_message and len(flux.calls("submit")) == 1
    assert (attempt.cost_source, attempt.cost_usd) == ("estimate", pytest.approx(ESTIMATE_1024, abs=1e-6))


def test_a_rate_limited_submit_is_retried_after_retry_after_and_then_succeeds(engine, flux_settings, flux, solution_id):
    flux.enqueue("rate_limited", retry_after="0.05")

    result, attempt = generate(engine, flux_settings, solution_id)

    assert result.status == "succeeded"
    assert len(flux.calls("submit")) == 2 and attempt.retries == 1
    assert (attempt.cost_source, attempt.cost_usd) == ("reported", 0.03)  # only the task that ran


def test_a_task_that_stays_pending_ends_at_the_timeout(engine, flux_settings, flux, solution_id):
    flux.enqueue("pending_forever")
    settings = flux_config(image_timeout_seconds=0.5, image_max_retries=0)

    started = time.monotonic()
    result, attempt = generate(engine, settings, solution_id)

    assert (result.status, result.error_kind) == ("failed", "timeout")
    assert time.monotonic() - started < 5
    assert len(flux.calls("poll")) > 3  # it kept asking, with waits in between, until the time was up
    assert attempt.cost_usd == pytest.approx(ESTIMATE_1024, abs=1e-6)  # the task ran: charged its estimate


@pytest.mark.parametrize("step", ["submit", "poll", "sample"])
def test_a_reply_trickled_past_the_timeout_ends_at_the_timeout(engine, flux_settings, flux, solution_id, step):
    # A piece every quarter second: no single read waits the 2 s, yet the reply would take 20 s.
    flux.enqueue("trickle", step=step, seconds=20, interval=0.25)
    settings = flux_config(image_timeout_seconds=2.0, image_max_retries=0)

    started = time.monotonic()
    result, attempt = generate(engine, settings, solution_id)
    elapsed = time.monotonic() - started

    assert (result.status, result.error_kind) == ("failed", "timeout")
    assert elapsed < 8, f"the call lasted {elapsed:.1f} s against a 2 s timeout"
    assert attempt.candidate_id is None and len(flux.calls("submit")) == 1


def test_a_trickled_image_that_ends_within_the_timeout_is_kept(engine, flux_settings, flux, solution_id):
    flux.enqueue("trickle", step="sample", seconds=0.5, interval=0.1)

    result, attempt = generate(engine, flux_settings, solution_id)

    assert result.status == "succeeded" and attempt.cost_source == "reported"


@pytest.mark.parametrize(
    ("behaviour", "opts", "says"),
    [
        ("garbled_json", {"step": "submit"}, "not the JSON"),
        ("garbled_json", {"step": "poll"}, "not the JSON"),
        ("success", {"sample": b"<html>Access denied</html>"}, "not a PNG, JPEG or WebP"),
        ("success", {"sample_status": 404}, "HTTP 404"),
        ("success", {"polling_host": "localhost"}, "polling address"),  # plain http to another host
        ("success", {"sample_host": "localhost"}, "image address"),
    ],
    ids=["submit-json", "poll-json", "sample-not-an-image", "sample-gone", "polling-elsewhere", "sample-elsewhere"],
)
def test_a_reply_that_is_not_what_it_should_be_is_bad_image_and_stores_nothing(
    engine, flux_settings, flux, solution_id, tmp_path, behaviour, opts, says
):
    flux.enqueue(behaviour, **opts)

    result, attempt = generate(engine, flux_settings, solution_id)

    assert (result.status, result.error_kind) == ("failed", "bad_image")
    assert says in attempt.error_message
    assert len(flux.calls("submit")) == 1  # a broken reply is not worth a second paid call
    with Session(engine) as session:
        assert session.exec(select(Candidate)).all() == []
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    if "polling_host" in opts:  # an address it will not follow is never called
        assert flux.calls("poll") == []
    if "sample_host" in opts:
        assert flux.calls("sample") == []


@pytest.mark.parametrize(
    ("base", "url", "allowed"),
    [
        ("https://api.bfl.ai", "https://api.bfl.ai/v1/get_result?id=1", True),
        ("https://api.bfl.ai", "https://api.eu2.bfl.ai/v1/get_result?id=1", True),  # a regional host of the service
        ("https://api.eu.bfl.ai", "https://api.us1.bfl.ai/v1/get_result?id=1", True),
        ("https://api.bfl.ai", "http://api.eu2.bfl.ai/v1/get_result?id=1", False),  # not over plain http
        ("https://api.bfl.ai", "https://api.bfl.ai.evil.example/v1/get_result", False),
        ("https://api.bfl.ai", "https://notbfl.ai/v1/get_result", False),
        ("https://flux-proxy.example.com", "https://api.bfl.ai/v1/get_result?id=1", False),  # not the proxy's
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/get_result?id=1", True),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8081/v1/get_result?id=1", False),
    ],
)
def test_the_key_is_sent_only_to_the_configured_host_or_the_services_own(monkeypatch, base, url, allowed):
    monkeypatch.setenv("BFL_API_KEY", TEST_KEY)
    monkeypatch.setenv("BFL_BASE_URL", base)

    assert FluxProvider(load_settings()).key_allowed(url) is allowed


def test_a_key_the_server_echoes_is_never_stored_or_logged(engine, flux_settings, flux, make_solutions, caplog):
    flux.echo_key = True  # task ids and error messages carry the key
    first, second = make_solutions(2)
    flux.enqueue("forbidden")

    with caplog.at_level(logging.DEBUG):
        failed, failed_attempt = generate(engine, flux_settings, first)
        done, done_attempt = generate(engine, flux_settings, second)

    assert (failed.error_kind, done.status) == ("auth", "succeeded")
    assert TEST_KEY in flux.calls("submit")[-1]["headers"]["x-key"]  # the stand-in did echo it
    pieces = {TEST_KEY[i : i + 8] for i in range(len(TEST_KEY) - 7)}
    for attempt in (failed_attempt, done_attempt):
        kept = f"{attempt.error_message} {attempt.request_id}"
        assert not [piece for piece in pieces if piece in kept]
    assert not [piece for piece in pieces if piece in caplog.text]
    assert "[redacted]" in done_attempt.request_id


def test_without_a_key_the_flux_provider_fails_as_auth_without_calling(engine, flux, solution_id, monkeypatch):
    monkeypatch.setenv("BFL_BASE_URL", flux.base_url)

    result, attempt = generate(engine, load_settings(), solution_id, provider="flux")

    assert result.error_kind == "auth"
    assert "BFL_API_KEY is not set" in attempt.error_message
    assert flux.requests == []


def test_a_hard_budget_cap_refuses_the_call_before_it_is_made(engine, flux, flux_settings, solution_id, monkeypatch):
    monkeypatch.setenv("IMAGE_BUDGET_DAILY_USD", "0.02")  # under one 1024x1024 image's estimate

    result, attempt = generate(engine, flux_config(), solution_id)

    assert (result.status, result.error_kind) == ("failed", "budget_exceeded")
    assert flux.requests == [] and attempt.cost_usd == 0


def test_an_identical_second_request_is_served_from_the_cache_at_no_cost(engine, flux_settings, flux, solution_id):
    paid, _ = generate(engine, flux_settings, solution_id)
    calls = len(flux.requests)

    cached, attempt = generate(engine, flux_settings, solution_id)

    assert paid.cost_usd == 0.03 and cached.cache_hit
    assert (attempt.cost_source, attempt.cost_usd) == ("cache", 0.0)
    assert len(flux.requests) == calls


def test_an_edit_sends_the_image_and_instruction_and_is_charged_input_and_output(flux_settings, flux):
    provider = get_provider("flux", flux_settings)
    original = png(1024, 1024)

    reply = provider.edit(request(prompt="Make the background dark blue", size="auto", image=original))

    (submit,) = flux.calls("submit")
    assert base64.b64decode(submit["json"]["input_image"]) == original
    assert submit["json"]["prompt"] == "Make the background dark blue"
    assert "width" not in submit["json"]  # `auto`: the service keeps the input's size
    assert reply.cost_usd == pytest.approx(0.045)  # 3 credits out + 1.5 for the input megapixel
    with Image.open(io.BytesIO(reply.data)) as image:
        assert image.size == (1024, 1024)


def test_an_edit_without_an_image_fails_before_any_call(flux_settings, flux):
    with pytest.raises(ProviderError) as caught:
        get_provider("flux", flux_settings).edit(request(image=None))

    assert caught.value.kind == "invalid_request" and flux.requests == []


def test_a_model_flux_does_not_serve_fails_before_any_call(engine, flux_settings, flux, solution_id):
    with pytest.raises(ConfigError, match="no model 'flux-9-ultra'; choose one of: flux-2-pro"):
        generate(engine, flux_settings, solution_id, model="flux-9-ultra")
    with pytest.raises(ProviderError) as caught:
        get_provider("flux", flux_settings).generate(request(model="flux-9-ultra"))

    assert caught.value.kind == "model_unavailable" and flux.requests == []


def test_an_address_nobody_answers_at_is_a_connection_failure(engine, flux_settings, solution_id, monkeypatch):
    with FluxStandIn() as gone:
        closed = gone.base_url  # a port that was just given up: nothing listens there now
    monkeypatch.setenv("BFL_BASE_URL", closed)

    result, attempt = generate(engine, flux_config(image_max_retries=0), solution_id)

    assert (result.status, result.error_kind) == ("failed", "connection")
    assert "BFL_BASE_URL" in attempt.error_message and attempt.cost_usd == 0


@pytest.mark.parametrize(
    ("value", "used"),
    [("", "https://api.bfl.ai"), ("  https://api.eu.bfl.ai/ ", "https://api.eu.bfl.ai"), ("ftp://api.bfl.ai", None)],
)
def test_bfl_base_url_defaults_when_blank_and_a_malformed_one_is_one_sentence(monkeypatch, value, used):
    from aixchange_images.providers.flux import FluxSettings

    monkeypatch.setenv("BFL_BASE_URL", value)
    if used is None:
        with pytest.raises(ConfigError, match=r"^Setting BFL_BASE_URL: .*write it like https://api\.bfl\.ai"):
            load_settings().provider_settings(FluxSettings)
    else:
        assert load_settings().provider_settings(FluxSettings).bfl_base_url == used
