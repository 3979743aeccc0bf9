"""The drop-in service over real HTTP on 127.0.0.1: the marketplace route's answers, and its bounds."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import TEST_KEY, run_jobs
from PIL import Image
from sqlalchemy import create_engine, func
from sqlmodel import Session, select

from aixchange_images import cli, intake, jobs, queue, service
from aixchange_images.config import Settings
from aixchange_images.models import Attempt, AuditEvent, Candidate, Publication, Solution

FAILURE_KEYS = ["error", "status", "details", "useDefaultImage", "defaultImagePath"]
DESCRIPTION = "Summarises support tickets and routes each one to the right team."


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


class Client:
    """Plain http.client, one connection per request, as a browser's fetch through a proxy would look."""

    def __init__(self, port: int, app: Any = None):
        self.port = port
        self.app = app  # the FastAPI app behind it (its state: intake, schedule)

    def request(self, method: str, path: str, body: bytes | Iterable[bytes] | None = None, **headers: str) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:  # an iterable body goes out chunked, with no Content-Length
            conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def post(self, payload: Any = None, *, raw: bytes | None = None, forwarded_for: str | None = None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        body = raw if raw is not None else json.dumps(payload).encode()
        return self.request("POST", "/api/generate-image", body, **headers)


@contextmanager
def running(
    settings: Settings, *, rate: str = "1000/minute", total: str = "1000/minute", **options: Any
) -> Iterator[tuple[Client, intake.Intake]]:
    """The real app on uvicorn on a free port, in a thread; stopped (and its pool closed) on exit."""
    settings = settings.model_copy(update={"service_rate_limit": rate, "service_total_rate_limit": total})
    server = service.make_server(settings, port=0, log_level="warning", **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.ready.wait(30), "the service did not start"
    try:
        yield Client(server.port, server.config.app), server.config.app.state.intake
    finally:
        server.should_exit = True
        thread.join(60)
        assert not thread.is_alive()


def count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def published_files(tmp_path) -> list[str]:  # type: ignore[no-untyped-def]
    folder = tmp_path / "external-images" / "solutions"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- 200 -------------------------------------------------------------------------------------------
def test_a_request_publishes_an_image_named_and_answered_as_the_marketplace_route_does(settings, engine, tmp_path):
    with running(settings) as (client, _):
        reply = client.post({"description": DESCRIPTION, "title": "Ticket Triage Bot!"})

    assert reply.status == 200, reply.raw
    body = reply.body
    assert list(body) == ["imageUrl", "status", "message", "filename", "details"]
    assert re.fullmatch(r"ticket_triage_bot-\d{13}\.png", body["filename"])
    assert body["imageUrl"] == f"/api/external-images/solutions/{body['filename']}"
    assert body["status"] == "success"
    assert body["details"] == {"size": "1024x1024", "format": "png", "location": body["imageUrl"]}
    assert published_files(tmp_path) == [body["filename"]]
    with Image.open(tmp_path / "external-images" / "solutions" / body["filename"]) as image:
        assert (image.format, image.size) == ("PNG", (1024, 1024))
    with Session(engine) as session:
        solution = session.exec(select(Solution)).one()
        attempt = session.exec(select(Attempt)).one()
        audit = [(e.actor, e.action, e.target) for e in session.exec(select(AuditEvent))]
    assert (solution.origin, solution.title, solution.description) == ("request", "Ticket Triage Bot!", DESCRIPTION)
    assert (solution.category, solution.provider, solution.launch_url, solution.tags) == ("Other", "Unknown", "", [])
    assert (solution.image_url, solution.image_status) == (body["imageUrl"], "approved")
    assert (attempt.solution_id, attempt.actor, attempt.status) == (solution.id, "service", "succeeded")
    assert {("service", "solution.add", solution.id), ("service", "image.approve", solution.id)} <= set(audit)


def test_an_image_an_automatic_check_flags_waits_for_review_and_the_card_keeps_the_placeholder(
    engine, tmp_path, monkeypatch
):
    from aixchange_images.config import load_settings

    monkeypatch.setenv("CHECK_MIN_SIDE_PX", "2048")  # every 1024x1024 card is then too small: wrong_size
    with running(load_settings()) as (client, _):
        reply = client.post({"description": DESCRIPTION, "title": "Ticket Triage Bot"})

    assert reply.status == 200, reply.raw
    assert reply.body["imageUrl"] == "/placeholder-image.jpg"
    assert reply.body["message"] == "The image will appear on the card after an admin approves it in AIXchange Images."
    assert published_files(tmp_path) == []
    with Session(engine) as session:
        candidate = session.exec(select(Candidate)).one()
        solution = session.exec(select(Solution)).one()
    assert (candidate.state, candidate.flags.split()) == ("pending", ["wrong_size"])
    assert solution.image_status == "pending"


def test_eight_requests_at_once_each_get_their_own_image(settings, engine, tmp_path):
    with running(settings, concurrency=4) as (client, _):
        replies: list[Reply] = []
        start = threading.Barrier(8)

        def one(i: int) -> None:
            start.wait()
            replies.append(client.post({"description": f"{DESCRIPTION} Queue {i}.", "title": f"Bot {i}"}))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

    assert sorted(r.status for r in replies) == [200] * 8, [r.raw for r in replies if r.status != 200]
    assert sorted(r.body["filename"] for r in replies) == published_files(tmp_path)
    assert len(published_files(tmp_path)) == 8 and count(engine, Solution) == 8


def test_a_known_solution_is_drawn_from_our_catalogue_and_never_replaced_by_a_request(
    settings, engine, make_solutions, tmp_path
):
    (solution_id,) = make_solutions(1)
    request = {"description": "Bananas ripen faster in paper bags.", "title": "Fruit", "solutionId": solution_id}
    with running(settings) as (client, _):
        first = client.post(request)
        again = client.post(request)

    assert first.status == again.status == 200, (first.raw, again.raw)
    assert first.body["filename"].startswith("solution_number_0-")  # our title, not the request's
    assert again.body["imageUrl"] == first.body["imageUrl"]
    assert again.body["message"] == "The solution already has a published image."
    with Session(engine) as session:
        prompt = session.exec(select(Attempt.prompt)).one()  # one attempt: the second request made nothing
    assert "support tickets number 0" in prompt and "Bananas" not in prompt
    assert count(engine, Solution) == 1 and count(engine, Publication) == 1
    assert len(published_files(tmp_path)) == 1


def test_an_unknown_solution_id_gets_candidates_for_review_never_a_published_image(settings, engine, tmp_path):
    marketplace_id = "cm1abcdefghijklmnopqrstuv"  # anyone can send any id: what it draws waits for a person
    with running(settings) as (client, intake):
        reply = client.post({"description": DESCRIPTION, "title": "Routing", "solutionId": marketplace_id})
        refused = client.post({"description": DESCRIPTION, "solutionId": "../../etc/passwd"})
    run_jobs(engine, settings)

    assert (reply.status, reply.body["imageUrl"]) == (200, "/placeholder-image.jpg"), reply.raw
    with Session(engine) as session:
        solution = session.get(Solution, marketplace_id)
        waiting = session.exec(select(Candidate).where(Candidate.solution_id == marketplace_id)).all()
    assert (solution.origin, solution.title, solution.image_status) == ("request", "Routing", "pending")
    assert len(waiting) == 1 and published_files(tmp_path) == []
    assert refused.status == 400 and "solutionId" in refused.body["error"]
    assert count(engine, Solution) == 1


def test_a_form_that_submits_twice_gets_one_solution_and_one_image(settings, engine, tmp_path):
    request = {"description": DESCRIPTION, "title": "Double Submit"}
    with running(settings) as (client, _):
        replies: list[Reply] = []
        start = threading.Barrier(2)

        def one() -> None:
            start.wait()
            replies.append(client.post(request))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        later = client.post(request)
        other = client.post({**request, "description": DESCRIPTION + " Also escalations."})

    assert [r.status for r in replies] == [200, 200] and later.status == other.status == 200
    urls = {r.body["imageUrl"] for r in [*replies, later]}
    assert len(urls) == 1 and other.body["imageUrl"] not in urls
    assert count(engine, Solution) == 2 and count(engine, Attempt) == 2
    assert len(published_files(tmp_path)) == 2


# -- 400, 405, 413, 429 --------------------------------------------------------------------------------
def test_a_missing_description_gets_the_routes_exact_400(settings, engine):
    with running(settings) as (client, _):
        replies = [client.post(p) for p in ({}, {"title": "x"}, {"description": ""}, {"description": "  \n"})]
        replies.append(client.post({"description": None, "title": "x"}))

    for reply in replies:
        assert (reply.status, reply.body) == (400, {"error": "Description is required", "status": "error"})
    assert count(engine, Solution) == 0


def test_a_body_that_is_not_the_expected_json_gets_a_400_sentence(settings, engine):
    with running(settings) as (client, _):
        broken = client.post(raw=b'{"description": "half a body')
        empty = client.post(raw=b"")
        wrong_type = client.post({"description": 42})
        not_object = client.post(["a", "list"])

    for reply in (broken, empty, wrong_type, not_object):
        assert reply.status == 400 and list(reply.body) == ["error", "status"] and reply.body["status"] == "error"
    assert broken.body["error"].startswith("The body is not valid JSON")
    assert wrong_type.body["error"] == "The description must be a string."
    assert not_object.body["error"].startswith("The body must be a JSON object")
    assert count(engine, Solution) == 0


def test_the_description_limit_counts_as_javascript_does(settings, engine):
    with running(settings) as (client, _):
        over = client.post({"description": "a" * 999 + "\U0001f600"})  # 1000 code points, 1001 UTF-16 units
        at_limit = client.post({"description": "a" * 998 + "\U0001f600"})
        long_title = client.post({"description": DESCRIPTION, "title": "t" * 101})

    assert over.status == 400 and over.body["error"] == (
        "The description is 1,001 characters long; the marketplace allows at most 1,000."
    )
    assert at_limit.status == 200, at_limit.raw
    assert long_title.status == 400 and "title" in long_title.body["error"]
    assert count(engine, Solution) == 1


def test_a_body_over_the_limit_gets_413_whether_or_not_it_declares_its_length(settings, engine):
    padded = json.dumps({"description": DESCRIPTION, "padding": "x" * 17_000}).encode()
    small = json.dumps({"description": DESCRIPTION}).encode()
    with running(settings) as (client, _):
        declared = client.post(raw=padded)
        chunked = client.request(
            "POST", "/api/generate-image", (padded[i : i + 1000] for i in range(0, len(padded), 1000))
        )
        small_chunked = client.request(
            "POST", "/api/generate-image", (small[i : i + 10] for i in range(0, len(small), 10))
        )

    for reply in (declared, chunked):
        assert reply.status == 413 and reply.body == {
            "error": "The request body is larger than 16,384 bytes; send only description, title and solutionId.",
            "status": "error",
        }
    assert small_chunked.status == 200, small_chunked.raw  # a chunked body is read whole
    assert count(engine, Solution) == 1


def test_the_route_refuses_get_as_the_marketplace_route_does(settings):
    with running(settings) as (client, _):
        reply = client.request("GET", "/api/generate-image")
    assert (reply.status, reply.body) == (405, {"error": "Method not allowed", "status": "error"})


def test_the_rate_limit_is_per_client_and_trusts_forwarded_for_only_from_the_proxy(settings):
    with running(settings, rate="2/minute") as (client, _):  # the default trusted proxy: 127.0.0.1, us
        first = [client.post({}, forwarded_for="203.0.113.1") for _ in range(3)]
        other = client.post({}, forwarded_for="203.0.113.2")
    untrusting = settings.model_copy(update={"service_forwarded_allow_ips": "10.9.8.7"})
    with running(untrusting, rate="2/minute") as (client, _):
        spoofed = [client.post({}, forwarded_for=f"198.51.100.{i}") for i in range(3)]

    assert [r.status for r in first] == [400, 400, 429] and other.status == 400
    assert [r.status for r in spoofed] == [400, 400, 429]  # the header is ignored: one client, 127.0.0.1
    limited = first[-1]
    assert limited.body["status"] == "error" and limited.body["error"].startswith("Too many image requests")
    assert 1 <= int(limited.headers["retry-after"]) <= 60


# -- 500 -------------------------------------------------------------------------------------------
def test_a_description_moderation_flags_gets_the_500_shape_and_the_placeholder(settings, engine, tmp_path):
    with running(settings) as (client, _):
        reply = client.post({"description": "A dashboard full of gore and beheading scenes.", "title": "Bad"})

    assert reply.status == 500 and list(reply.body) == FAILURE_KEYS
    body = reply.body
    assert (body["error"], body["useDefaultImage"], body["defaultImagePath"]) == (
        "Image generation failed: moderation_blocked",
        True,
        "/placeholder-image.jpg",
    )
    assert body["details"] == "The prompt was flagged by moderation (beheading, gore); reword the description."
    with Session(engine) as session:
        attempt = session.exec(select(Attempt)).one()
        solution = session.exec(select(Solution)).one()
    assert attempt.error_kind == "moderation_blocked"
    assert (solution.image_status, solution.image_url) == ("placeholder", "/placeholder-image.jpg")
    assert published_files(tmp_path) == []


def test_an_exhausted_budget_answers_500_before_any_image_call(openai_settings, standin, engine):
    capped = openai_settings.model_copy(update={"image_budget_daily_usd": 0.0001})
    with running(capped) as (client, _):
        reply = client.post({"description": DESCRIPTION, "title": "Budget"})

    assert reply.status == 500 and list(reply.body) == FAILURE_KEYS
    assert reply.body["error"] == "Image generation failed: budget_exceeded"
    assert reply.body["details"] == intake.WHY["budget_exceeded"]
    assert standin.image_calls == 0
    with Session(engine) as session:
        assert session.exec(select(Attempt.error_kind)).one() == "budget_exceeded"


@pytest.fixture
def paid(openai_settings: Settings) -> Settings:
    """The openai provider (at the stand-in) under a daily cap: the service spends only with one."""
    return openai_settings.model_copy(update={"image_budget_daily_usd": 100.0})


def test_a_paid_provider_without_a_daily_cap_spends_nothing(openai_settings, standin, engine, capsys, monkeypatch):
    with running(openai_settings) as (client, _):
        reply = client.post({"description": DESCRIPTION, "title": "Uncapped"})

    assert reply.status == 500 and reply.body["details"] == intake.NO_DAILY_CAP
    assert standin.image_calls == 0 and count(engine, Attempt) == 0
    monkeypatch.setenv("IMAGE_PROVIDER", "openai")
    assert cli.main(["serve", "--port", "0"]) == 2
    assert "spends money only under a daily budget" in capsys.readouterr().err


def test_all_clients_together_are_bounded_too(settings):
    with running(settings, total="2/minute") as (client, _):
        replies = [
            client.post({"description": DESCRIPTION, "title": f"T{i}"}, forwarded_for=f"10.0.0.{i}") for i in range(3)
        ]

    assert [r.status for r in replies] == [200, 200, 429]
    assert "too many requests" in replies[2].body["error"] and replies[2].headers["retry-after"]


def test_an_ipv6_client_is_its_whole_64(settings):
    from aixchange_images.service import ClientLimiter

    limiter = ClientLimiter("1/minute")
    assert limiter.check("2001:db8:1:2::1") is None
    assert limiter.check("2001:db8:1:2:ffff::9") is not None  # the same /64: the same client
    assert limiter.check("2001:db8:1:3::1") is None


def test_upstream_errors_become_a_useful_sentence_and_never_show_the_key(paid, standin, caplog):
    caplog.set_level(logging.DEBUG)
    standin.enqueue("invalid_api_key", message=f"Incorrect API key provided: {TEST_KEY}.")
    for _ in range(3):  # the first try and both retries
        standin.enqueue("server_error", retry_after="0.01", message=f"Backend crashed serving {TEST_KEY}.")
    standin.enqueue("invalid_request", param="prompt", message=f"Bad prompt for key {TEST_KEY}.")
    with running(paid) as (client, _):
        replies = [client.post({"description": f"{DESCRIPTION} Case {i}.", "title": f"Case {i}"}) for i in range(3)]
        healthy = client.post({"description": f"{DESCRIPTION} Fine.", "title": "Fine"})

    kinds = ["auth", "server_error", "invalid_request"]
    assert [r.status for r in replies] == [500, 500, 500]
    assert [r.body["error"] for r in replies] == [f"Image generation failed: {kind}" for kind in kinds]
    assert [r.body["details"] for r in replies] == [intake.WHY[kind] for kind in kinds]
    assert healthy.status == 200, healthy.raw
    assert standin.image_calls == 6
    everything = b"".join(r.raw for r in [*replies, healthy]).decode()
    assert TEST_KEY not in everything and "Traceback" not in everything
    assert all(TEST_KEY not in record.getMessage() for record in caplog.records)


def test_an_unexpected_error_answers_the_500_shape_and_logs_a_redacted_traceback(paid, monkeypatch, caplog):
    def broken(self, session, ask):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"the database said {TEST_KEY}")

    monkeypatch.setattr(intake.Intake, "_solution_for", broken)
    with running(paid) as (client, _):
        reply = client.post({"description": DESCRIPTION})

    assert reply.status == 500 and list(reply.body) == FAILURE_KEYS
    assert (reply.body["error"], reply.body["details"]) == ("Internal server error", intake.UNEXPECTED)
    assert TEST_KEY not in reply.raw.decode()
    logged = [r.getMessage() for r in caplog.records if r.name == "aixchange_images.service"]
    assert len(logged) == 1 and "Traceback" in logged[0] and "[redacted]" in logged[0]
    assert TEST_KEY not in logged[0]


# -- review mode ----------------------------------------------------------------------------------
def test_review_mode_answers_the_placeholder_at_once_and_a_job_makes_the_candidates(settings, engine, tmp_path):
    request = {"description": DESCRIPTION, "title": "Later"}
    with running(settings, review=True, candidates=2) as (client, _):
        reply = client.post(request)
        assert count(engine, Candidate) == 0  # answered before anything is made: the workers make it
        twice = client.post(request)  # the same form again while the job waits: nothing more is queued
        assert run_jobs(engine, settings) != []
        again = client.post(request)  # and again once the candidates wait: still nothing more

    assert reply.status == twice.status == again.status == 200
    assert reply.body == {
        "imageUrl": "/placeholder-image.jpg",
        "status": "success",
        "message": "The image will appear on the card after an admin approves it in AIXchange Images.",
        "filename": "placeholder-image.jpg",
        "details": {"size": "1024x1024", "format": "jpeg", "location": "/placeholder-image.jpg"},
    }
    assert twice.body == again.body == reply.body
    with Session(engine) as session:
        waiting = queue.page(session=session)
        states = session.exec(select(Candidate.state)).all()
        queued = jobs.recent(session=session)
    assert [(j.kind, j.status, j.actor, j.total, j.options["purpose"]) for j in queued] == [
        ("generate", "done", "service", 2, "regular")
    ]
    assert [(r.solution.title, r.solution.origin, r.solution.image_status, r.candidates) for r in waiting] == [
        ("Later", "request", "pending", 2)
    ]
    assert states == ["pending", "pending"]
    assert published_files(tmp_path) == [] and count(engine, Publication) == 0


def test_review_mode_answers_500_with_a_sentence_when_the_queue_is_unreachable(settings, engine, monkeypatch):
    def unreachable(*_args: Any, **_kwargs: Any) -> None:
        raise jobs.QueueError("The job queue at redis://127.0.0.1:1 cannot be reached.")

    monkeypatch.setattr(jobs, "enqueue_generate", unreachable)
    with running(settings, review=True) as (client, _):
        reply = client.post({"description": DESCRIPTION, "title": "Nowhere"})

    assert reply.status == 500 and reply.body["details"] == intake.NOT_QUEUED
    assert reply.body["defaultImagePath"] == "/placeholder-image.jpg"
    assert count(engine, Candidate) == 0


# -- health and docs --------------------------------------------------------------------------------
def test_healthz_reports_the_database_and_provider(settings):
    with running(settings) as (client, _):
        reply = client.request("GET", "/healthz")
    assert (reply.status, reply.body) == (
        200,
        {"status": "ok", "database": "ok", "provider": "local", "mode": "publish"},
    )


def test_healthz_answers_503_when_the_database_is_unreachable(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = create_engine(f"postgresql+psycopg://nobody:pw@127.0.0.1:{port}/none", pool_pre_ping=True)
    with running(settings, engine=unreachable) as (client, _):
        reply = client.request("GET", "/healthz")
    assert reply.status == 503
    assert reply.body == {"status": "error", "database": "unreachable", "provider": "local", "mode": "publish"}


def test_the_openapi_document_describes_the_route_and_its_answers(settings):
    with running(settings) as (client, _):
        document = client.request("GET", "/openapi.json").body
        docs = client.request("GET", "/docs")

    post = document["paths"]["/api/generate-image"]["post"]
    assert set(post["responses"]) >= {"200", "400", "413", "429", "500"}
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"description", "title", "solutionId"}
    assert {"ImageAnswer", "FailureAnswer", "ErrorAnswer"} <= set(document["components"]["schemas"])
    assert "/healthz" in document["paths"]
    assert docs.status == 200 and b"swagger" in docs.raw.lower()


# -- the command ----------------------------------------------------------------------------------
def test_serve_refuses_a_bad_rate_limit_and_candidates_without_review(monkeypatch, capsys):
    monkeypatch.setenv("SERVICE_RATE_LIMIT", "ten per minute")
    assert cli.main(["serve"]) == 2
    assert "SERVICE_RATE_LIMIT: 'ten per minute' is not a rate" in capsys.readouterr().err
    monkeypatch.delenv("SERVICE_RATE_LIMIT")
    assert cli.main(["serve", "--candidates", "3"]) == 2
    assert "only with --review" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "length"), [("abc", 3), ("\U0001f600", 2), ("é", 1)])
def test_js_length_counts_utf16_code_units(text, length):
    from aixchange_images.zod import js_length

    assert js_length(text) == length
