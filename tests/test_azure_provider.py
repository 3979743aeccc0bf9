"""The azure provider through the real SDK (openai.AzureOpenAI) against the Azure stand-in: Azure's
paths, key header and API version, deployments, its refusals, and cost, budget and cache end to end."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import subprocess
import sys
import time

import pytest
from azure_standin import AzureStandIn
from conftest import ROOT, TEST_KEY, get_solution
from PIL import Image
from sqlmodel import Session

from aixchange_images import batch, pipeline
from aixchange_images.config import ConfigError, Settings, load_settings
from aixchange_images.models import Attempt, AttemptStatus, ImageStatus, Solution
from aixchange_images.provider_registry import get_provider
from aixchange_images.providers.azure import API_VERSION, AzureSettings
from aixchange_images.providers.base import ImageRequest, ProviderError


@pytest.fixture
def azure():
    with AzureStandIn(key=TEST_KEY) as server:
        yield server


@pytest.fixture
def azure_env(azure: AzureStandIn, monkeypatch: pytest.MonkeyPatch) -> AzureStandIn:
    """The azure provider's variables pointing at the stand-in, with its key."""
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", azure.endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("IMAGE_PROVIDER", "azure")
    return azure


def azure_config(**overrides) -> Settings:
    return load_settings(**{"image_max_retry_wait_seconds": 2.0, "image_timeout_seconds": 5.0, **overrides})


def generate(engine, solution_id: str, settings: Settings | None = None, **options):
    settings = settings or azure_config()
    (result,), _ = batch.run_batch(engine, settings, [solution_id], pipeline.GenerateOptions(**options))
    with Session(engine) as session:
        attempt = session.get(Attempt, result.attempt_id)
    return result, attempt


def request(**overrides) -> ImageRequest:
    values = {"prompt": "A clean card", "model": "gpt-image-2", "size": "1024x1024", "quality": "low"}
    return ImageRequest(**{**values, "output_format": "png", **overrides})


@pytest.fixture
def solution_id(make_solutions) -> str:
    return make_solutions(1)[0]


# -- where a call goes -------------------------------------------------------------------------
def test_a_call_goes_to_the_models_deployment_with_the_key_header_and_api_version(engine, azure_env, solution_id):
    result, attempt = generate(engine, solution_id, quality="medium")

    assert result.status == "succeeded"
    (sent,) = azure_env.image_requests()
    assert sent["path"] == "/openai/deployments/gpt-image-2/images/generations"
    assert sent["api_version"] == API_VERSION == "2025-04-01-preview"
    assert sent["headers"]["api-key"] == TEST_KEY and "authorization" not in sent["headers"]
    assert (sent["fields"]["quality"], sent["fields"]["n"]) == ("medium", 1)
    text_tokens = math.ceil(len(attempt.prompt) / 4)
    assert (attempt.model, attempt.cost_source, attempt.output_image_tokens) == ("gpt-image-2", "usage", 1056)
    assert attempt.cost_usd == pytest.approx(text_tokens * 5.00 / 1e6 + 1056 * 30.00 / 1e6, abs=1e-9)
    assert attempt.request_id and attempt.request_id.startswith("req_")


def test_azure_openai_deployment_names_the_deployment_of_image_model(engine, azure_env, solution_id, monkeypatch):
    azure_env.deployments = {"product-cards": "gpt-image-1-mini"}
    monkeypatch.setenv("IMAGE_MODEL", "gpt-image-1-mini")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "product-cards")

    result, attempt = generate(engine, solution_id, quality="low")

    assert result.status == "succeeded"
    (sent,) = azure_env.image_requests()
    assert (sent["deployment"], sent["fields"]["model"]) == ("product-cards", "product-cards")
    # priced as the model IMAGE_MODEL names: gpt-image-1-mini's $2 text in, $8 image out
    text_tokens = math.ceil(len(attempt.prompt) / 4)
    assert attempt.model == "gpt-image-1-mini"
    assert attempt.cost_usd == pytest.approx(text_tokens * 2.00 / 1e6 + 272 * 8.00 / 1e6, abs=1e-9)


def test_a_model_picked_for_one_run_goes_to_the_deployment_named_like_it(engine, azure_env, solution_id, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "product-cards")  # serves IMAGE_MODEL, gpt-image-2
    azure_env.deployments = {"product-cards": "gpt-image-2", "gpt-image-1-mini": "gpt-image-1-mini"}

    result, attempt = generate(engine, solution_id, model="gpt-image-1-mini")

    assert result.status == "succeeded" and attempt.model == "gpt-image-1-mini"
    assert [r["deployment"] for r in azure_env.image_requests()] == ["gpt-image-1-mini"]


def test_openai_api_version_is_sent_and_one_azure_does_not_know_says_what_to_check(
    engine, azure_env, solution_id, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-03-01-preview")
    generate(engine, solution_id)
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-02-01")

    result, attempt = generate(engine, solution_id, use_cache=False)

    assert [r["api_version"] for r in azure_env.image_requests()] == ["2025-03-01-preview", "2024-02-01"]
    assert (result.error_kind, attempt.retries) == ("invalid_request", 0)
    assert "OPENAI_API_VERSION" in attempt.error_message and "AZURE_OPENAI_ENDPOINT" in attempt.error_message


# -- Azure's refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "kind", "calls", "says"),
    [
        ([("content_filter", {})], "moderation_blocked", 1, "content filter refused this prompt (violence)"),
        ([("content_filter", {"shape": "chat", "category": "self_harm"})], "moderation_blocked", 1, "(self harm)"),
        ([("content_filter", {"shape": "output"})], "moderation_blocked", 1, "content filter refused this prompt;"),
        ([("rate_limited", {"retry_after": "30"})], "rate_limited", 1, "retry after 30 seconds"),  # longer than we wait
        ([("server_error", {"retry_after": "0.01"})] * 3, "server_error", 3, "internal error"),
        ([("server_error", {"status": 503, "retry_after": "0.01"})] * 3, "server_error", 3, "internal error"),
    ],
    ids=["filter-images", "filter-chat", "filter-output", "rate", "500", "503"],
)
def test_each_refusal_is_recorded_with_its_kind_and_only_transient_ones_are_retried(
    engine, azure_env, solution_id, script, kind, calls, says
):
    for behaviour, opts in script:
        azure_env.enqueue(behaviour, **opts)

    result, attempt = generate(engine, solution_id)

    assert (result.status, result.error_kind) == ("failed", kind)
    assert azure_env.image_calls == calls
    assert (attempt.status, attempt.retries, attempt.cost_usd) == (AttemptStatus.failed, calls - 1, 0)
    assert says in attempt.error_message
    assert get_solution(engine, solution_id).image_status == ImageStatus.placeholder


def test_a_rate_limited_call_is_retried_after_retry_after_and_then_succeeds(engine, azure_env, solution_id):
    azure_env.enqueue("rate_limited", retry_after="0.05")

    result, attempt = generate(engine, solution_id)

    assert result.status == "succeeded"
    assert (azure_env.image_calls, attempt.retries) == (2, 1)
    assert attempt.cost_source == "usage" and attempt.cost_usd > 0


def test_a_wrong_key_is_azures_access_denied_an_auth_failure_never_retried(engine, azure_env, solution_id):
    azure_env.key = "the-right-key-0000000000"

    result, attempt = generate(engine, solution_id)

    assert result.error_kind == "auth"
    assert azure_env.image_calls == 1  # no moderation endpoint: the image call itself was refused
    assert "AZURE_OPENAI_API_KEY" in attempt.error_message and "AZURE_OPENAI_ENDPOINT" in attempt.error_message


@pytest.mark.parametrize(
    ("deployment", "model", "says"),
    [
        ("product-cards", None, "set AZURE_OPENAI_DEPLOYMENT to the name of your gpt-image-2 deployment"),
        (None, "gpt-image-1-mini", "deploy gpt-image-1-mini under that name, or set IMAGE_MODEL=gpt-image-1-mini"),
    ],
)
def test_a_deployment_azure_does_not_have_is_model_unavailable_naming_it(
    engine, azure_env, solution_id, monkeypatch, deployment, model, says
):
    azure_env.deployments = {"gpt-image-2": "gpt-image-2"}
    if deployment:
        monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", deployment)

    result, attempt = generate(engine, solution_id, model=model)

    assert (result.error_kind, azure_env.image_calls) == ("model_unavailable", 1)
    assert f"no deployment named {deployment or model}" in attempt.error_message and says in attempt.error_message


def test_the_content_filter_is_the_moderation_the_local_rules_screen_before_any_call(engine, azure_env, make_solutions):
    violent, gory = make_solutions(2)
    with Session(engine) as session:
        session.get(Solution, violent).description = "Plans the violence scenes of an action film frame by frame."
        session.get(Solution, gory).description = "Renders gore effects for horror films frame by frame."
        session.commit()

    refused, at_azure = generate(engine, violent)
    screened, locally = generate(engine, gory)

    # "violence" passes the local rules and Azure's content filter refuses it at generation
    assert (refused.error_kind, at_azure.moderation, at_azure.cost_usd) == ("moderation_blocked", "passed", 0)
    assert "Azure OpenAI's content filter" in at_azure.error_message
    # "gore" is on the local list: no call is made at all
    assert (screened.error_kind, locally.moderation) == ("moderation_blocked", "flagged")
    assert azure_env.image_calls == 1


# -- budget, cache, timeouts ------------------------------------------------------------------------
def test_a_hard_budget_cap_refuses_the_call_before_it_is_made(engine, azure_env, solution_id, monkeypatch):
    monkeypatch.setenv("IMAGE_BUDGET_DAILY_USD", "0.001")  # less than one medium image

    result, attempt = generate(engine, solution_id)

    assert result.error_kind == "budget_exceeded"
    assert azure_env.azure_requests == [] and attempt.cost_usd == 0
    assert get_solution(engine, solution_id).image_status == ImageStatus.placeholder


def test_the_cache_serves_an_identical_second_request_at_no_cost(engine, azure_env, solution_id):
    paid, first = generate(engine, solution_id)
    cached, second = generate(engine, solution_id)

    assert first.cost_usd > 0 and not first.cache_hit
    assert (second.cache_hit, second.cost_source, second.cost_usd) == (True, "cache", 0.0)
    assert cached.status == "succeeded" and azure_env.image_calls == 1


def test_a_reply_trickled_past_the_timeout_ends_at_the_timeout(engine, azure_env, solution_id):
    azure_env.enqueue("trickle", seconds=20, interval=0.25)

    started = time.monotonic()
    result, attempt = generate(
        engine, solution_id, settings=azure_config(image_timeout_seconds=2.0, image_max_retries=0)
    )

    assert (result.error_kind, attempt.candidate_id) == ("timeout", None)
    assert time.monotonic() - started < 8


def test_a_reply_that_is_not_an_image_is_bad_image(engine, azure_env, solution_id):
    azure_env.enqueue("garbage_image")

    result, _ = generate(engine, solution_id)

    assert (result.error_kind, azure_env.image_calls) == ("bad_image", 1)


# -- refine: images.edit on the deployment ----------------------------------------------------------
def test_an_edit_sends_the_image_and_instruction_to_the_deployments_edits(azure_env):
    provider = get_provider("azure", azure_config())
    original = io.BytesIO()
    Image.new("RGB", (1024, 1024), (200, 40, 40)).save(original, format="PNG")

    result = provider.edit(request(prompt="Make the background dark blue", image=original.getvalue()))

    (sent,) = azure_env.image_requests()
    assert sent["path"] == "/openai/deployments/gpt-image-2/images/edits"
    assert sent["image"] == original.getvalue() and sent["fields"]["prompt"] == "Make the background dark blue"
    assert Image.open(io.BytesIO(result.data)).size == (1024, 1024)
    assert result.usage is not None and result.usage.output_image_tokens == 272


def test_an_edit_of_an_image_azure_filters_is_moderation_blocked(azure_env):
    azure_env.enqueue("content_filter", category="sexual")
    provider = get_provider("azure", azure_config())

    with pytest.raises(ProviderError) as caught:
        provider.edit(request(prompt="Change it", image=b"\x89PNG\r\n\x1a\n-not-read"))

    assert (caught.value.kind, azure_env.image_calls) == ("moderation_blocked", 1)
    assert "(sexual)" in caught.value.message


# -- settings ---------------------------------------------------------------------------------------
def test_without_a_key_or_an_endpoint_nothing_is_called(engine, azure, solution_id, monkeypatch):
    monkeypatch.setenv("IMAGE_PROVIDER", "azure")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", azure.endpoint)
    no_key, attempt = generate(engine, solution_id)
    assert "AZURE_OPENAI_API_KEY is not set" in attempt.error_message

    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", TEST_KEY)
    no_endpoint, attempt = generate(engine, solution_id)

    assert (no_key.error_kind, no_endpoint.error_kind) == ("auth", "auth")
    assert "AZURE_OPENAI_ENDPOINT is not set" in attempt.error_message
    assert azure.azure_requests == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "not an address",
        "ftp://myres.openai.azure.com",
        "https://myres.openai.azure.com/openai/deployments/gpt-image-2",
        "https://myres.openai.azure.com/openai/v1/",
        "https://someone:pa55word-secret@myres.openai.azure.com",
        "https://myres.openai.azure.com:99999",
    ],
)
def test_an_endpoint_that_is_not_a_resource_address_is_one_sentence_that_never_repeats_it(monkeypatch, endpoint):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)

    with pytest.raises(ConfigError) as caught:
        load_settings().provider_settings(AzureSettings)

    message = str(caught.value)
    assert message.startswith("Setting AZURE_OPENAI_ENDPOINT:") and "https://YOUR-RESOURCE.openai.azure.com" in message
    assert endpoint not in message and "myres" not in message and "pa55word" not in message
    assert message.count(". ") == 0 and message.endswith(".")


@pytest.mark.parametrize(("variable", "value"), [("OPENAI_API_VERSION", "latest"), ("AZURE_OPENAI_DEPLOYMENT", "a/b")])
def test_a_malformed_api_version_or_deployment_is_one_sentence(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError, match=f"^Setting {variable}: this is not"):
        load_settings().provider_settings(AzureSettings)


def test_a_retired_model_fails_before_any_call_and_names_the_current_one(engine, azure_env, solution_id, monkeypatch):
    monkeypatch.setenv("IMAGE_MODEL", "gpt-image-1")

    result, attempt = generate(engine, solution_id)

    assert result.error_kind == "model_unavailable"
    assert "2026-10-23" in attempt.error_message and "gpt-image-2" in attempt.error_message
    assert azure_env.azure_requests == []


# -- secrets ----------------------------------------------------------------------------------------
def test_no_piece_of_the_key_reaches_the_attempt_or_the_log(engine, azure_env, solution_id, caplog):
    azure_env.echo_key = True  # every x-request-id carries the caller's key
    azure_env.enqueue("rate_limited", retry_after="30", message=f"Key {TEST_KEY} is rate limited.")
    caplog.set_level(logging.DEBUG)

    failed, failure = generate(engine, solution_id)
    kept, success = generate(engine, solution_id)

    assert (failed.error_kind, kept.status) == ("rate_limited", "succeeded")
    pieces = {TEST_KEY[i : i + 8] for i in range(len(TEST_KEY) - 7)}
    seen = " ".join(
        str(v) for v in (failure.error_message, failure.request_id, success.request_id, caplog.text) if v is not None
    )
    assert success.request_id  # the id was kept, with the key cut out
    assert not [piece for piece in pieces if piece in seen]


# -- the registry -----------------------------------------------------------------------------------
def python(tmp_path, *args: str) -> str:
    """What `python ARGS` prints, run from tmp_path with the fixtures' variables (the stand-in's among them)."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_azure_is_listed_and_listing_providers_does_not_load_the_sdk(azure_env, tmp_path):
    listing = python(tmp_path, "-m", "aixchange_images", "providers", "--json")

    (azure,) = [p for p in json.loads(listing)["providers"] if p["name"] == "azure"]
    assert (azure["ready"], azure["edits"], azure["paid"], azure["default_model"]) == (True, True, True, "gpt-image-2")
    assert azure["variables"] == [
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "OPENAI_API_VERSION",
        "AZURE_OPENAI_DEPLOYMENT",
    ]
    assert azure["address"] == azure_env.endpoint and TEST_KEY not in listing
    loaded = python(tmp_path, "-c", "import sys, aixchange_images.provider_registry; print('openai' in sys.modules)")
    assert loaded.strip() == "False"
