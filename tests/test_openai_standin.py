"""The OpenAI stand-in server, driven through the real openai SDK."""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from openai_standin import OpenAIStandIn
from PIL import Image

MODEL = "gpt-image-2"


@pytest.fixture
def server():
    with OpenAIStandIn() as standin:
        yield standin


def make_client(server: OpenAIStandIn, **kwargs) -> openai.OpenAI:
    options = {"api_key": "test-key", "max_retries": 0, **kwargs}
    return openai.OpenAI(base_url=server.base_url, **options)


@pytest.fixture
def client(server):
    with make_client(server) as sdk:
        yield sdk


def decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


# --- success -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "quality", "expected_size", "image_tokens"),
    [
        ("1024x1024", "low", (1024, 1024), 272),
        ("1536x1024", "high", (1536, 1024), 6240),
        ("1024x1536", "medium", (1024, 1536), 1584),
        ("auto", "auto", (1024, 1024), 1056),
    ],
)
def test_success_has_usage_and_a_png_of_the_requested_size(client, size, quality, expected_size, image_tokens):
    prompt = "a lighthouse at dusk, oil painting"  # 34 chars -> 9 text tokens
    raw = client.images.with_raw_response.generate(model=MODEL, prompt=prompt, size=size, quality=quality)
    result = raw.parse()

    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["openai-processing-ms"]) >= 0
    assert len(result.data) == 1
    image = decode(result.data[0].b64_json)
    assert (image.format, image.size) == ("PNG", expected_size)
    assert result.size == "{}x{}".format(*expected_size)
    assert result.quality == ("medium" if quality == "auto" else quality)
    assert (result.output_format, result.background) == ("png", "opaque")
    text_tokens = math.ceil(len(prompt) / 4)
    usage = result.usage
    assert usage.input_tokens == usage.input_tokens_details.text_tokens == text_tokens
    assert usage.input_tokens_details.image_tokens == 0
    assert usage.output_tokens == usage.output_tokens_details.image_tokens
    assert usage.output_tokens == image_tokens
    assert usage.output_tokens_details.text_tokens == 0
    assert usage.total_tokens == text_tokens + image_tokens


def test_jpeg_output_and_n_images_that_differ(client):
    first = client.images.generate(model=MODEL, prompt="x", output_format="jpeg", n=3, size="1024x1024")
    second = client.images.generate(model=MODEL, prompt="x", output_format="jpeg")

    images = [d.b64_json for d in first.data + second.data]
    assert len(images) == 4
    assert len(set(images)) == 4
    assert {decode(b64).format for b64 in images} == {"JPEG"}
    assert first.output_format == "jpeg"
    assert first.usage.output_tokens == 3 * 1056


def test_custom_size_only_for_models_that_take_it(client):
    result = client.images.generate(model=MODEL, prompt="x", size="2048x1152")
    assert decode(result.data[0].b64_json).size == (2048, 1152)
    assert result.usage.output_tokens == round(1056 * 2048 * 1152 / 1024**2)
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(model="gpt-image-1.5", prompt="x", size="2048x1152")
    assert err.value.param == "size"


def test_usage_can_be_omitted_then_queue_falls_back_to_success(server, client):
    server.enqueue("success", usage=False)
    without = client.images.generate(model=MODEL, prompt="x")
    after = client.images.generate(model=MODEL, prompt="x")
    assert without.usage is None
    assert decode(without.data[0].b64_json).format == "PNG"
    assert after.usage is not None


# --- scripted errors ---------------------------------------------------------------


IRE = "invalid_request_error"


@pytest.mark.parametrize(
    ("behaviour", "opts", "exc", "status", "error_type", "code"),
    [
        ("moderation_blocked", {}, openai.BadRequestError, 400, "image_generation_user_error", "moderation_blocked"),
        ("invalid_request", {"param": "size"}, openai.BadRequestError, 400, IRE, "invalid_value"),
        ("model_not_found", {}, openai.NotFoundError, 404, IRE, "model_not_found"),
        ("invalid_api_key", {}, openai.AuthenticationError, 401, IRE, "invalid_api_key"),
        ("rate_limited", {}, openai.RateLimitError, 429, "requests", "rate_limit_exceeded"),
        ("insufficient_quota", {}, openai.RateLimitError, 429, "insufficient_quota", "insufficient_quota"),
        ("billing_hard_limit", {}, openai.BadRequestError, 400, IRE, "billing_hard_limit_reached"),
        ("server_error", {}, openai.InternalServerError, 500, "server_error", None),
        ("server_error", {"status": 502}, openai.InternalServerError, 502, "server_error", None),
        ("server_error", {"status": 503}, openai.InternalServerError, 503, "server_error", None),
    ],
)
def test_scripted_errors_raise_the_sdk_exception(server, client, behaviour, opts, exc, status, error_type, code):
    server.enqueue(behaviour, **opts)
    with pytest.raises(exc) as err:
        client.images.generate(model=MODEL, prompt="x")

    assert err.value.status_code == status
    assert err.value.request_id.startswith("req_")
    assert set(err.value.body) == {"message", "type", "param", "code"}
    assert (err.value.type, err.value.code) == (error_type, code)
    assert err.value.param == opts.get("param")
    client.images.generate(model=MODEL, prompt="x")  # back to success


def test_rate_limit_sends_retry_after_and_ratelimit_headers(server, client):
    server.enqueue("rate_limited", retry_after="7")
    with pytest.raises(openai.RateLimitError) as err:
        client.images.generate(model=MODEL, prompt="x")
    headers = err.value.response.headers
    assert headers["retry-after"] == "7"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-limit-tokens" in headers


def test_script_is_fifo_one_entry_per_image_request(server, client):
    server.enqueue("server_error")
    server.enqueue("moderation_blocked")
    client.moderations.create(input="hello")  # moderations do not consume the script
    with pytest.raises(openai.InternalServerError):
        client.images.generate(model=MODEL, prompt="x")
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model=MODEL, prompt="x")
    assert client.images.generate(model=MODEL, prompt="x").data


def test_enqueue_rejects_unknown_behaviours_and_options(server):
    with pytest.raises(ValueError, match="behaviour"):
        server.enqueue("explode")
    with pytest.raises(ValueError, match="does not take"):
        server.enqueue("slow", retry_after="1")


# --- validation like the real API --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "param", "code"),
    [
        ({"response_format": "b64_json"}, openai.BadRequestError, "response_format", None),
        ({"style": "vivid"}, openai.BadRequestError, "style", None),
        ({"quality": "standard"}, openai.BadRequestError, "quality", None),
        ({"quality": "hd"}, openai.BadRequestError, "quality", None),
        ({"prompt": "x" * 32001}, openai.BadRequestError, "prompt", None),
        ({"size": "1792x1024", "model": "gpt-image-1.5"}, openai.BadRequestError, "size", None),
        ({"model": "dall-e-2"}, openai.NotFoundError, None, "model_not_found"),
        ({"model": "dall-e-3"}, openai.NotFoundError, None, "model_not_found"),
        ({"model": "gpt-image-1"}, openai.NotFoundError, None, "model_not_found"),
    ],
)
def test_invalid_requests_are_rejected(client, kwargs, exc, param, code):
    with pytest.raises(exc) as err:
        client.images.generate(**{"model": MODEL, "prompt": "x", **kwargs})
    if param is not None:
        assert err.value.param == param
        assert err.value.type == "invalid_request_error"
    if code is not None:
        assert err.value.code == code
        model = kwargs["model"]
        assert f"The model `{model}` does not exist or you do not have access" in str(err.value)


def test_prompt_of_exactly_32000_chars_is_accepted(client):
    result = client.images.generate(model=MODEL, prompt="x" * 32000)
    assert result.usage.input_tokens == 8000


def test_expected_key_is_enforced():
    with OpenAIStandIn(expected_key="right-key") as server:
        wrong = make_client(server, api_key="wrong-key")
        with wrong, pytest.raises(openai.AuthenticationError) as err:
            wrong.images.generate(model=MODEL, prompt="x")
        with make_client(server, api_key="right-key") as right:
            assert right.images.generate(model=MODEL, prompt="x").data
    assert err.value.code == "invalid_api_key"
    assert server.requests[0]["headers"]["authorization"] == "Bearer wrong-key"


# --- timeouts, garbage, bombs ------------------------------------------------------


def test_slow_answer_makes_the_client_time_out(server, client):
    server.enqueue("slow", seconds=5)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.images.generate(model=MODEL, prompt="x", timeout=0.3)
    assert time.monotonic() - started < 3


def test_slow_answer_succeeds_when_the_client_waits(server, client):
    server.enqueue("slow", seconds=0.2)
    started = time.monotonic()
    result = client.images.generate(model=MODEL, prompt="x", timeout=5)
    assert time.monotonic() - started >= 0.2
    assert decode(result.data[0].b64_json).format == "PNG"


def test_garbage_json_body_fails_to_parse(server, client):
    server.enqueue("garbage_json")
    with pytest.raises(json.JSONDecodeError):
        client.images.generate(model=MODEL, prompt="x")


def test_garbage_image_is_not_an_image(server, client):
    server.enqueue("garbage_image")
    result = client.images.generate(model=MODEL, prompt="x")
    blob = base64.b64decode(result.data[0].b64_json)
    assert blob
    with pytest.raises(Exception, match="cannot identify image file"):
        Image.open(io.BytesIO(blob))


def test_bomb_declares_huge_dimensions_in_few_bytes(server, client):
    server.enqueue("bomb")
    result = client.images.generate(model=MODEL, prompt="x")
    blob = base64.b64decode(result.data[0].b64_json)
    assert len(blob) < 2000
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", blob[16:24]) == (30000, 30000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(blob))


def test_empty_data(server, client):
    server.enqueue("empty_data")
    assert client.images.generate(model=MODEL, prompt="x").data == []


# --- moderation, models, unknown paths, recording ----------------------------------


def test_moderation_flags_only_flag_words(server, client):
    flagged = client.moderations.create(model="omni-moderation-latest", input="He tries to KILL the dragon").results[0]
    clean = client.moderations.create(input="a skillful painter").results[0]
    server.flag_words = {"dragon"}
    custom = client.moderations.create(input="a dragon").results[0]

    assert flagged.flagged and custom.flagged and not clean.flagged
    categories = flagged.categories.model_dump(by_alias=True)
    assert {name for name, on in categories.items() if on} == {"violence"}
    assert len(categories) == 13
    assert flagged.category_scores.violence > 0.5 > clean.category_scores.violence
    assert not any(clean.categories.model_dump().values())
    assert server.moderation_calls == 3
    assert server.image_calls == 0


def test_models_carry_shutdown_dates(client):
    models = {m.id: m.shutdown_date for m in client.models.list()}
    assert models["gpt-image-2"] is None
    assert models["gpt-image-1.5"] == "2026-12-01"
    assert models["gpt-image-1-mini"] == "2026-12-01"
    assert "dall-e-3" not in models
    assert client.models.retrieve("gpt-image-1.5").shutdown_date == "2026-12-01"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("dall-e-3")
    assert err.value.code == "model_not_found"


def test_unknown_path_is_a_json_404(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.post("/no/such/thing", cast_to=object, body={})
    assert err.value.body["message"] == "Invalid URL (POST /v1/no/such/thing)"
    assert err.value.type == "invalid_request_error"


def test_requests_are_recorded(server, client):
    client.images.generate(model=MODEL, prompt="a fox", n=2)
    client.moderations.create(input="a fox")

    image_request, moderation_request = server.requests
    assert image_request["method"] == "POST"
    assert image_request["path"] == "/v1/images/generations"
    assert image_request["json"] == {"model": MODEL, "prompt": "a fox", "n": 2}
    assert image_request["headers"]["authorization"] == "Bearer test-key"
    assert moderation_request["json"]["input"] == "a fox"
    assert (server.image_calls, server.moderation_calls) == (1, 1)


# --- concurrency and shutdown ------------------------------------------------------


def test_max_in_flight_counts_parallel_image_requests():
    with OpenAIStandIn(latency=0.3) as server:
        clients = [make_client(server) for _ in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda c: c.images.generate(model=MODEL, prompt="x"), clients))
        assert all(r.data for r in results)
        assert server.max_in_flight == 4
        clients[0].images.generate(model=MODEL, prompt="x")
        assert server.max_in_flight == 4
    for sdk in clients:
        sdk.close()


def test_sequential_requests_never_overlap(server, client):
    for _ in range(3):
        client.images.generate(model=MODEL, prompt="x")
    assert server.max_in_flight == 1


def test_latency_delays_every_image_answer():
    with OpenAIStandIn(latency=0.25) as server, make_client(server) as client:
        started = time.monotonic()
        client.images.generate(model=MODEL, prompt="x")
        assert time.monotonic() - started >= 0.25


def test_close_interrupts_a_slow_answer():
    server = OpenAIStandIn()
    server.enqueue("slow", seconds=30)
    outcome: list[BaseException | object] = []

    def call() -> None:
        with make_client(server, timeout=20) as sdk:
            try:
                outcome.append(sdk.images.generate(model=MODEL, prompt="x"))
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert server.wait_in_flight(1, timeout=5)
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 1.0
    caller.join(timeout=5)
    assert not caller.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], openai.APIConnectionError)
    assert server.in_flight == 0


def test_nothing_answers_after_close_even_on_a_kept_alive_connection():
    server = OpenAIStandIn()
    with make_client(server) as sdk:
        assert sdk.models.list().data  # leaves an idle keep-alive connection
        server.close()
        with pytest.raises(openai.APIConnectionError):
            sdk.models.list()
