"""The marketplace connector against a real PostgreSQL holding the marketplace's own tables.

Pull reads its "Solution" rows as they are; every approve, rollback, upload and auto-approve reaches
the row's imageUrl (and nothing else) at once, or later when the marketplace was down; a change made
in the marketplace meanwhile is never overwritten without an admin's word.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ROOT, get_solution, run_jobs
from marketplace_db import ROLE_PASSWORD, Marketplace
from pg_server import PostgresServer
from sqlmodel import Session, select

from aixchange_images import catalogue, cli, deliveries, pull
from aixchange_images.auth import CLI_ACTOR
from aixchange_images.config import load_settings
from aixchange_images.models import (
    PLACEHOLDER_URL,
    PUBLIC_PREFIX,
    Candidate,
    CandidateState,
    Delivery,
    DeliveryState,
    ImageStatus,
    Publication,
    Solution,
    SolutionOrigin,
)

SMALL = ("--size", "256x256")


def run(capsys, *argv: str, expect: int | None = 0) -> tuple[dict | str, str]:
    """Run the CLI in-process; with --json among argv, stdout is parsed."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    if expect is not None:
        assert code == expect, (code, out, err)
    return (json.loads(out) if "--json" in argv and out.strip() else out), err


def _candidate(capsys, solution_id: str) -> int:
    """A new candidate for the solution (a new image, never the cache's)."""
    generated, _ = run(capsys, "generate", "--solution", solution_id, *SMALL, "--no-cache", "--json")
    return generated["results"][0]["candidate_id"]


def pulled(capsys, expect: int = 0) -> dict:
    report, _ = run(capsys, "marketplace", "pull", "--json", expect=expect)
    return report


def approve_new_image(capsys, solution_id: str) -> dict:
    """Generate one candidate with the local provider and approve it through the CLI."""
    approved, _ = run(capsys, "approve", str(_candidate(capsys, solution_id)), "--json")
    return approved


# -- pull ------------------------------------------------------------------------------------------
def test_pull_takes_the_rows_as_they_are_and_keeps_their_ids(capsys, engine, marketplace: Marketplace):
    plain = marketplace.add_solution(metadata=None, tags=[], status="PENDING")
    twin_a = marketplace.add_solution(title="Same Title", sourceCodeUrl=None)
    twin_b = marketplace.add_solution(title="Same Title", metadata={"customFields": {"team": "ops"}})
    long_title = marketplace.add_solution(title="T" * 140, description="short", tags=None)

    report = pulled(capsys)

    assert report == {"created": 4, "updated": 0, "unchanged": 0, "adopted": 0, "errors": []}
    first = get_solution(engine, plain)
    assert (first.status, first.tags, first.metadata_, first.origin) == ("Pending", [], {}, SolutionOrigin.marketplace)
    assert get_solution(engine, twin_b).metadata_ == {"customFields": {"team": "ops"}}
    assert get_solution(engine, twin_a).title == get_solution(engine, twin_b).title == "Same Title"
    assert get_solution(engine, long_title).title == "T" * 140


def test_a_second_pull_updates_in_place_and_counts_what_did_not_change(capsys, engine, marketplace):
    ids = [marketplace.add_solution(title=f"Solution {i}") for i in range(3)]
    pulled(capsys)
    marketplace.execute('UPDATE "Solution" SET description = %s WHERE id = %s', ("A new description.", ids[0]))

    assert pulled(capsys) == {"created": 0, "updated": 1, "unchanged": 2, "adopted": 0, "errors": []}
    assert get_solution(engine, ids[0]).description == "A new description."
    with Session(engine) as session:
        assert len(session.exec(select(Solution)).all()) == 3


def test_a_row_we_cannot_hold_is_reported_and_the_others_land(capsys, engine, marketplace):
    good = marketplace.add_solution(title="Good One")
    marketplace.add_solution(id="c" + "x" * 44, title="Long Id")
    marketplace.add_solution(title="Not A Number", rating=float("nan"))

    report = pulled(capsys, expect=1)

    assert (report["created"], sorted(e["title"] for e in report["errors"])) == (1, ["Long Id", "Not A Number"])
    assert "longer than 40" in next(e["error"] for e in report["errors"] if e["title"] == "Long Id")
    assert get_solution(engine, good).title == "Good One"


def test_image_status_follows_the_rows_image_url(capsys, engine, settings, marketplace):
    settings.publish_dir.mkdir(parents=True)
    (settings.publish_dir / "theirs-1.png").write_bytes(b"a file the old route wrote")
    rows = {
        "none": marketplace.add_solution(imageUrl=None),
        "placeholder": marketplace.add_solution(imageUrl=PLACEHOLDER_URL),
        "author": marketplace.add_solution(imageUrl="https://cdn.example.com/logo.png"),
        "old-route": marketplace.add_solution(imageUrl=PUBLIC_PREFIX + "theirs-1.png"),
        "dangling": marketplace.add_solution(imageUrl=PUBLIC_PREFIX + "gone-2.png"),
    }

    pulled(capsys)

    status = {name: get_solution(engine, sid).image_status for name, sid in rows.items()}
    assert status == {
        "none": ImageStatus.none,
        "placeholder": ImageStatus.placeholder,
        "author": ImageStatus.uploaded,
        "old-route": ImageStatus.uploaded,
        "dangling": ImageStatus.none,
    }
    with Session(engine) as session:
        missing = set(catalogue.missing_ids(session=session))
    assert missing == {rows["none"], rows["placeholder"], rows["dangling"]}


def test_pull_needs_a_configured_marketplace(capsys):
    _, err = run(capsys, "marketplace", "pull", "--json", expect=2)
    assert "MARKETPLACE_DATABASE_URL is not set" in err


# -- delivery --------------------------------------------------------------------------------------
def test_an_approval_sets_the_rows_image_url_and_updated_at_and_nothing_else(capsys, engine, marketplace):
    sid = marketplace.add_solution(imageUrl=None, updatedAt=datetime(2025, 1, 1))
    pulled(capsys)
    before = marketplace.snapshot()
    started = datetime.now(UTC).replace(tzinfo=None)

    approved = approve_new_image(capsys, sid)

    row = marketplace.row(sid)
    assert row["imageUrl"] == approved["image_url"]
    assert approved["image_url"].startswith(PUBLIC_PREFIX)
    assert started - timedelta(seconds=5) <= row["updatedAt"] <= datetime.now(UTC).replace(tzinfo=None)
    assert marketplace.snapshot() == before
    with Session(engine) as session:
        (delivery,) = session.exec(select(Delivery)).all()
    assert (delivery.state, delivery.image_url) == (DeliveryState.delivered, approved["image_url"])
    assert get_solution(engine, sid).marketplace_url == approved["image_url"]


def test_rollback_and_upload_reach_the_row_too(capsys, engine, marketplace, tmp_path):
    settings = load_settings()  # after the marketplace fixture set MARKETPLACE_DATABASE_URL
    sid = marketplace.add_solution(imageUrl=PLACEHOLDER_URL)
    pulled(capsys)
    first = approve_new_image(capsys, sid)["image_url"]
    second = approve_new_image(capsys, sid)["image_url"]
    assert marketplace.image_url(sid) == second

    run(capsys, "rollback", sid, "--json")
    assert marketplace.image_url(sid) == first
    run(capsys, "rollback", sid, "--json")
    assert marketplace.image_url(sid) == PLACEHOLDER_URL

    from PIL import Image

    from aixchange_images import review

    image = tmp_path / "author.png"
    Image.new("RGB", (640, 360), (20, 90, 160)).save(image)
    with Session(engine, expire_on_commit=False) as session:
        publication = review.upload(
            session=session, settings=settings, solution_id=sid, data=image.read_bytes(), actor=CLI_ACTOR
        )
        session.commit()
    deliveries.deliver_waiting(engine, settings)
    assert marketplace.image_url(sid) == publication.image_url
    assert get_solution(engine, sid).image_status == ImageStatus.uploaded


def test_auto_approve_delivers_every_published_image(capsys, engine, marketplace):
    ids = [marketplace.add_solution(title=f"Forecast Engine {i}") for i in range(4)]
    pulled(capsys)

    report, _ = run(capsys, "generate", "--missing", "--auto-approve", *SMALL, "--json")

    assert report["summary"]["published"] == 4
    for sid in ids:
        assert marketplace.image_url(sid) == get_solution(engine, sid).image_url
        assert marketplace.image_url(sid).startswith(PUBLIC_PREFIX)


def test_solutions_the_marketplace_does_not_hold_deliver_nothing(capsys, engine, make_solutions, marketplace):
    (local,) = make_solutions(1)
    before = marketplace.snapshot()

    approve_new_image(capsys, local)

    with Session(engine) as session:
        assert session.exec(select(Delivery)).all() == []
    assert marketplace.snapshot() == before


# -- the marketplace down, and back ------------------------------------------------------------------
@pytest.fixture
def own_marketplace(monkeypatch):
    """A marketplace on a server of its own, so a test may stop and start it."""
    from marketplace_db import ROLE

    with PostgresServer(password="own-" + ROLE_PASSWORD) as server:
        server.sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}'")
        market = Marketplace(server)
        monkeypatch.setenv("MARKETPLACE_DATABASE_URL", market.url)
        yield market


def test_an_approval_succeeds_while_the_marketplace_is_down_and_reaches_it_later(capsys, engine, own_marketplace):
    sid = own_marketplace.add_solution()
    pulled(capsys)
    own_marketplace.server.stop()

    approved, err = run(capsys, "approve", str(_candidate(capsys, sid)), "--json")

    assert get_solution(engine, sid).image_url == approved["image_url"]
    assert "wait for the marketplace" in err
    report, _ = run(capsys, "marketplace", "push", "--json", expect=1)
    assert (report["written"], report["pending"], report["conflicts"]) == (0, 1, [])
    assert "could not be reached" in report["errors"][0]["error"]
    assert ROLE_PASSWORD not in json.dumps(report) + err

    own_marketplace.server.start()
    next_command = subprocess.run(  # any next command (a process of its own) delivers what waits
        [sys.executable, "-m", "aixchange_images", "solutions", "--json"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert next_command.returncode == 0, next_command.stderr

    assert own_marketplace.image_url(sid) == approved["image_url"]
    status, _ = run(capsys, "marketplace", "status", "--json")
    assert (status["pending"], status["reachable"], status["delivered"]) == (0, True, 1)


def test_a_batch_keeps_publishing_when_the_marketplace_stops_mid_way(engine, own_marketplace):
    from aixchange_images import batch, pipeline

    settings = load_settings()
    ids = [own_marketplace.add_solution(title=f"Churn Model {i}") for i in range(6)]
    pull.pull(engine, settings, actor=CLI_ACTOR)
    order: list[str] = []

    def stop_after_three(done: int, _total: int, result) -> None:
        order.append(result.solution_id)
        if done == 3:  # results come after their delivery was tried (concurrency 1: one at a time)
            own_marketplace.server.stop()

    options = pipeline.GenerateOptions(size="256x256", auto_approve=True, concurrency=1)
    results, summary = batch.run_batch(engine, settings, ids, options, progress=stop_after_three)
    assert summary["published"] == 6

    own_marketplace.server.start()
    assert [own_marketplace.image_url(sid) is not None for sid in order] == [True] * 3 + [False] * 3
    report = deliveries.push(engine, settings)
    assert (report.written, report.pending, report.errors) == (3, 0, [])
    for sid in ids:
        assert own_marketplace.image_url(sid) == get_solution(engine, sid).image_url


# -- conflicts -------------------------------------------------------------------------------------
def conflict_setup(capsys, engine, marketplace: Marketplace) -> tuple[str, str]:
    """An approval that finds the row changed in the marketplace since our last pull."""
    sid = marketplace.add_solution(imageUrl=None)
    pulled(capsys)
    candidate = _candidate(capsys, sid)
    marketplace.set_image(sid, "https://cdn.example.com/their-new-logo.png")
    approved, err = run(capsys, "approve", str(candidate), "--json")
    return sid, approved["image_url"]


def test_a_change_made_in_the_marketplace_is_kept_and_reported_as_a_conflict(capsys, engine, marketplace):
    sid, ours = conflict_setup(capsys, engine, marketplace)

    assert marketplace.image_url(sid) == "https://cdn.example.com/their-new-logo.png"
    report, _ = run(capsys, "marketplace", "push", "--json", expect=1)
    (conflict,) = report["conflicts"]
    assert {k: conflict[k] for k in ("solution_id", "title", "ours", "theirs")} == {
        "solution_id": sid,
        "title": "Ticket Triage Assistant",
        "ours": ours,
        "theirs": "https://cdn.example.com/their-new-logo.png",
    }
    assert pulled(capsys)["errors"] == []  # a pull meanwhile decides nothing
    assert get_solution(engine, sid).image_url == ours


def test_keep_theirs_settles_a_conflict_for_the_marketplaces_image(capsys, engine, marketplace):
    sid, ours = conflict_setup(capsys, engine, marketplace)

    run(capsys, "marketplace", "resolve", sid, "--keep-theirs", "--json")

    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (
        "https://cdn.example.com/their-new-logo.png",
        ImageStatus.uploaded,
    )
    with Session(engine) as session:
        assert not session.exec(select(Publication).where(Publication.active)).all()
    report, _ = run(capsys, "marketplace", "push", "--json")
    assert report["conflicts"] == []


def test_use_ours_writes_ours_over_their_change(capsys, engine, marketplace):
    sid, ours = conflict_setup(capsys, engine, marketplace)

    run(capsys, "marketplace", "resolve", sid, "--use-ours", "--json")

    assert marketplace.image_url(sid) == ours
    report, _ = run(capsys, "marketplace", "push", "--json")
    assert (report["conflicts"], report["pending"]) == ([], 0)


def test_a_pull_takes_their_change_when_nothing_of_ours_waits(capsys, engine, marketplace):
    sid = marketplace.add_solution()
    pulled(capsys)
    ours = approve_new_image(capsys, sid)["image_url"]
    marketplace.set_image(sid, "https://cdn.example.com/replaced.png")

    pulled(capsys)

    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == ("https://cdn.example.com/replaced.png", "uploaded")
    with Session(engine) as session:
        publication = session.exec(select(Publication).where(Publication.image_url == ours)).one()
        candidate = session.get(Candidate, publication.candidate_id)
    assert (publication.active, candidate.state) == (False, CandidateState.superseded)


def test_dry_run_push_says_what_it_would_write_and_changes_nothing(capsys, engine, own_marketplace):
    sid = own_marketplace.add_solution()
    pulled(capsys)
    own_marketplace.server.stop()
    approve_new_image_offline = _candidate(capsys, sid)
    run(capsys, "approve", str(approve_new_image_offline), "--json")
    own_marketplace.server.start()
    before = own_marketplace.snapshot(), own_marketplace.image_url(sid)

    report, _ = run(capsys, "marketplace", "push", "--dry-run", "--json")

    assert (report["written"], report["dry_run"], report["errors"]) == (1, True, [])
    assert (own_marketplace.snapshot(), own_marketplace.image_url(sid)) == before
    with Session(engine) as session:
        assert session.exec(select(Delivery.state)).all() == [DeliveryState.pending]


# -- joining what the drop-in service made before the row existed ---------------------------------
def test_pull_adopts_a_service_solution_whose_image_the_row_shows(capsys, engine, settings, marketplace):
    from aixchange_images import batch, pipeline

    with Session(engine, expire_on_commit=False) as session:
        request = Solution(
            title="Anomaly Radar", description="Finds anomalies in metrics.", category="Other", origin="request"
        )
        session.add(request)
        session.commit()
    options = pipeline.GenerateOptions(size="256x256", auto_approve=True)
    (result,), _ = batch.run_batch(engine, settings, [request.id], options)
    url = get_solution(engine, request.id).image_url
    row = marketplace.add_solution(title="Anomaly Radar", imageUrl=url)

    assert pulled(capsys)["adopted"] == 1

    solution = get_solution(engine, row)
    assert (solution.image_url, solution.image_status, solution.origin) == (url, ImageStatus.approved, "marketplace")
    assert get_solution(engine, request.id) is None
    with Session(engine) as session:
        assert session.get(Candidate, result.candidate_id).solution_id == row


def test_pull_adopts_a_service_solution_waiting_for_review_by_its_title(capsys, engine, settings, marketplace):
    from aixchange_images import batch, pipeline

    with Session(engine, expire_on_commit=False) as session:
        request = Solution(title="Invoice Reader", description="Reads invoices.", category="Other", origin="request")
        session.add(request)
        session.commit()
    (result,), _ = batch.run_batch(engine, settings, [request.id], pipeline.GenerateOptions(size="256x256"))
    row = marketplace.add_solution(title="Invoice Reader ", imageUrl=PLACEHOLDER_URL)

    assert pulled(capsys)["adopted"] == 1

    assert get_solution(engine, row).image_status == ImageStatus.pending
    run(capsys, "approve", str(result.candidate_id), "--json")
    assert marketplace.image_url(row) == get_solution(engine, row).image_url != PLACEHOLDER_URL


def test_an_approval_made_before_the_first_pull_reaches_the_row(capsys, engine, marketplace, tmp_path):
    sid = marketplace.add_solution(imageUrl=None)
    document = {"solutions": [{**_record(), "id": sid}]}
    (tmp_path / "bulk.json").write_text(json.dumps(document))
    run(capsys, "import", str(tmp_path / "bulk.json"), "--json")
    ours = approve_new_image(capsys, sid)["image_url"]
    assert marketplace.image_url(sid) is None  # not linked yet: nothing to deliver to

    pulled(capsys)

    assert marketplace.image_url(sid) == ours == get_solution(engine, sid).image_url


def _record() -> dict:
    return {
        "title": "Ticket Triage Assistant",
        "description": "Summarises support tickets and routes them to the right team.",
        "category": "Natural Language Processing",
        "provider": "Acme Labs",
        "launchUrl": "https://example.com/triage",
        "tags": ["support"],
    }


# -- safety ----------------------------------------------------------------------------------------
def test_our_database_url_pointing_at_the_marketplace_is_refused(capsys, monkeypatch, marketplace):
    url = marketplace.server.url(marketplace.database)  # the superuser: it could create tables there
    monkeypatch.setenv("DATABASE_URL", url.replace("postgresql+psycopg://", "postgresql://"))
    before = marketplace.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")

    _, err = run(capsys, "init", expect=2)

    assert "DATABASE_URL points at the marketplace's own database" in err
    after = marketplace.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    assert sorted(after) == sorted(before)


def test_the_password_is_never_shown_stored_or_logged(capsys, engine, settings, marketplace, monkeypatch):
    sid = marketplace.add_solution()
    pulled(capsys)
    approve_new_image(capsys, sid)
    status, _ = run(capsys, "marketplace", "status", "--json")
    assert status["connection"] == f"127.0.0.1:{marketplace.server.port}/{marketplace.database}"

    monkeypatch.setenv("MARKETPLACE_DATABASE_URL", marketplace.url.replace(ROLE_PASSWORD, ROLE_PASSWORD + "x"))
    report, err = run(capsys, "marketplace", "push", "--json")
    failed, err2 = run(capsys, "marketplace", "pull", "--json", expect=2)

    with engine.connect() as conn:
        stored = " ".join(
            str(row)
            for table in ("auditevent", "delivery", "setting")
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
        )
    everything = json.dumps(status, default=str) + json.dumps(report) + err + failed + err2 + stored
    assert "password authentication failed" in err2
    for piece in (ROLE_PASSWORD[i : i + 8] for i in range(len(ROLE_PASSWORD) - 7)):
        assert piece not in everything
    assert load_settings().marketplace_database_url is not None


def test_one_url_for_both_databases_is_refused_before_anything_connects(capsys, monkeypatch, marketplace):
    monkeypatch.setenv("DATABASE_URL", marketplace.url)

    _, err = run(capsys, "solutions", expect=2)

    assert "are the same database" in err
    assert ROLE_PASSWORD not in err


# -- the drop-in service beside the marketplace ----------------------------------------------------
def test_the_service_reads_an_unknown_row_first_and_delivers_its_image_there(engine, marketplace, monkeypatch):
    from test_service import running

    sid = marketplace.add_solution(title="Supply Radar", imageUrl=None)
    monkeypatch.setenv("MARKETPLACE_PULL_MINUTES", "0")  # no schedule: the request itself reads the row
    with running(load_settings()) as (client, _):
        reply = client.post({"description": "Watches supplier risk.", "title": "Supply Radar", "solutionId": sid})

    assert reply.status == 200, reply.raw
    assert marketplace.image_url(sid) == reply.body["imageUrl"] == get_solution(engine, sid).image_url
    assert get_solution(engine, sid).origin == SolutionOrigin.marketplace


def test_the_service_leaves_an_authors_image_in_the_marketplace_alone(engine, marketplace, monkeypatch):
    from test_service import running

    sid = marketplace.add_solution(imageUrl="https://cdn.example.com/author.png")
    monkeypatch.setenv("MARKETPLACE_PULL_MINUTES", "0")
    with running(load_settings()) as (client, _):
        reply = client.post({"description": "Anything at all.", "solutionId": sid})

    assert (reply.status, reply.body["imageUrl"]) == (200, "https://cdn.example.com/author.png")
    assert marketplace.image_url(sid) == "https://cdn.example.com/author.png"
    with Session(engine) as session:
        assert session.exec(select(Candidate)).all() == []


def test_a_request_made_while_the_marketplace_was_down_never_replaces_an_authors_image(capsys, engine, own_marketplace):
    from test_service import running

    sid = own_marketplace.add_solution(imageUrl="https://cdn.example.com/author.png")
    own_marketplace.server.stop()
    with running(load_settings()) as (client, _):
        reply = client.post({"description": "Our take on it.", "title": "Ticket Triage Assistant", "solutionId": sid})
    run_jobs(engine, load_settings())  # an unverified id's candidates are a job for the workers
    assert (reply.status, reply.body["imageUrl"]) == (200, PLACEHOLDER_URL)  # an unverified id: review, not publish
    own_marketplace.server.start()

    pulled(capsys)

    assert own_marketplace.image_url(sid) == "https://cdn.example.com/author.png"
    solution = get_solution(engine, sid)
    assert (solution.origin, solution.image_status) == (SolutionOrigin.marketplace, ImageStatus.pending)
    assert deliveries.conflicts(session=Session(engine)) == []


def test_serve_pulls_on_its_schedule(engine, marketplace, monkeypatch):
    from test_service import running

    ids = [marketplace.add_solution(title=f"Scheduled {i}") for i in range(3)]
    monkeypatch.setenv("MARKETPLACE_PULL_MINUTES", "60")
    with running(load_settings()) as (client, _):
        assert client.app.state.schedule.first_round.wait(60)

    assert all(get_solution(engine, sid).origin == SolutionOrigin.marketplace for sid in ids)


def test_status_reads_as_sentences_for_people(capsys, marketplace):
    marketplace.add_solution()
    pulled(capsys)

    text, _ = run(capsys, "marketplace", "status")

    assert f"marketplace database: 127.0.0.1:{marketplace.server.port}/{marketplace.database} (answering)" in text
    assert "last pull: 20" in text and "UTC by cli" in text
    assert "datetime" not in text and "{" not in text


# -- recovery and the marketplace ----------------------------------------------------------------------
KILLED_APPROVAL = """
import os, sys
from aixchange_images import review
from aixchange_images.auth import CLI_ACTOR
from aixchange_images.config import load_settings
from aixchange_images.db import session_scope
from aixchange_images.engines import get_engine
settings = load_settings()
session = session_scope(get_engine(settings), write=True).__enter__()
review.approve(session=session, settings=settings, candidate_id=int(sys.argv[1]), actor=CLI_ACTOR)
os._exit(9)  # dies between the link and the commit
"""


def test_a_half_done_approval_is_not_finished_over_an_image_the_marketplace_set_meanwhile(capsys, engine, marketplace):
    from aixchange_images import recovery

    settings = load_settings()
    sid = marketplace.add_solution(imageUrl=None)
    pulled(capsys)
    candidate = _candidate(capsys, sid)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", KILLED_APPROVAL, str(candidate)], env=env, timeout=120)
    marketplace.set_image(sid, "https://cdn.example.com/author.png")
    pull.pull(engine, settings, actor=CLI_ACTOR)

    done = recovery.recover(engine, settings)

    assert [d.outcome for d in done] == ["removed"]
    deliveries.push(engine, settings)
    assert marketplace.image_url(sid) == "https://cdn.example.com/author.png"
    assert get_solution(engine, sid).image_status == ImageStatus.pending  # the candidate still waits for a person


def _frozen(server: PostgresServer):
    """SIGSTOP the server's processes: the kernel still acknowledges TCP, nothing answers (a paused container)."""
    import signal

    main = int((server.data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(main)], capture_output=True, text=True).stdout.split()
    pids = [main, *map(int, children)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return lambda: [os.kill(pid, signal.SIGCONT) for pid in pids]


def test_a_frozen_marketplace_costs_an_action_seconds_and_never_holds_our_database(
    capsys, engine, own_marketplace, monkeypatch
):
    import threading

    from aixchange_images import review

    monkeypatch.setenv("MARKETPLACE_TIMEOUT_SECONDS", "1")
    settings = load_settings()
    sid = own_marketplace.add_solution(imageUrl=None)
    pull.pull(engine, settings, actor=CLI_ACTOR)
    candidate = _candidate(capsys, sid)
    thaw = _frozen(own_marketplace.server)
    try:
        with Session(engine) as session:
            review.approve(session=session, settings=settings, candidate_id=candidate, actor=CLI_ACTOR)
            session.commit()
        done = threading.Event()
        threading.Thread(target=lambda: (deliveries.deliver_waiting(engine, settings), done.set()), daemon=True).start()
        assert done.wait(30), "an action waited on a frozen marketplace"
        probe = (
            subprocess.run(  # another process may write our database meanwhile
                [
                    sys.executable,
                    "-c",
                    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=5); "
                    "c.execute('BEGIN IMMEDIATE'); c.rollback(); print('ok')",
                    settings.database_url.removeprefix("sqlite:///"),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if engine.dialect.name == "sqlite"
            else None
        )
        assert probe is None or probe.stdout.strip() == "ok", probe and probe.stderr
    finally:
        thaw()
    report = deliveries.push(engine, settings)
    assert (report.written, report.pending) == (1, 0)
    assert own_marketplace.image_url(sid) == get_solution(engine, sid).image_url


def test_the_first_pull_never_sends_ours_over_an_image_the_author_set_after_our_import(
    capsys, engine, marketplace, tmp_path
):
    sid = marketplace.add_solution(imageUrl=None)
    (tmp_path / "bulk.json").write_text(json.dumps({"solutions": [{**_record(), "id": sid}]}))
    run(capsys, "import", str(tmp_path / "bulk.json"), "--json")
    ours = approve_new_image(capsys, sid)["image_url"]
    marketplace.set_image(sid, "https://cdn.example.com/author.png")  # meanwhile, in the marketplace

    pulled(capsys)

    assert marketplace.image_url(sid) == "https://cdn.example.com/author.png"
    with Session(engine) as session:
        (conflict,) = deliveries.conflicts(session=session)
    assert (conflict["ours"], conflict["theirs"]) == (ours, "https://cdn.example.com/author.png")


def _request_solution(engine, title: str) -> str:
    with Session(engine, expire_on_commit=False) as session:
        request = Solution(title=title, description="Made by the image service.", category="Other", origin="request")
        session.add(request)
        session.commit()
    return request.id


def test_a_request_solution_with_a_call_in_flight_waits_for_the_next_pull(capsys, engine, settings, marketplace):
    from aixchange_images.models import Attempt, AttemptStatus

    request = _request_solution(engine, "Fleet Planner")
    with Session(engine) as session:  # its image is being made right now
        running = Attempt(
            solution_id=request,
            provider="local",
            model="local-card",
            size="256x256",
            quality="medium",
            prompt="p",
            request_key="k",
            status=AttemptStatus.running,
        )
        session.add(running)
        session.commit()
        running_id = running.id
    row = marketplace.add_solution(title="Fleet Planner", imageUrl=PLACEHOLDER_URL)

    assert (pulled(capsys)["adopted"], get_solution(engine, request).origin) == (0, SolutionOrigin.request)

    with Session(engine) as session:
        session.get(Attempt, running_id).status = AttemptStatus.succeeded
        session.commit()
    marketplace.set_image(row, PLACEHOLDER_URL)  # the form saves the row again
    assert pulled(capsys)["adopted"] == 1
    assert get_solution(engine, request) is None


def test_a_row_we_know_adopts_the_image_the_service_published_for_it(capsys, engine, settings, marketplace):
    from aixchange_images import batch, pipeline

    row = marketplace.add_solution(title="Route Optimizer", imageUrl=None)
    pulled(capsys)
    request = _request_solution(engine, "Route Optimizer")  # the marketplace's edit dialog asked the service
    batch.run_batch(engine, settings, [request], pipeline.GenerateOptions(size="256x256", auto_approve=True))
    url = get_solution(engine, request).image_url
    marketplace.set_image(row, url)  # and saved the row with the image it got

    assert pulled(capsys)["adopted"] == 1

    solution = get_solution(engine, row)
    assert (solution.image_url, solution.image_status) == (url, ImageStatus.approved)
    assert get_solution(engine, request) is None
    run(capsys, "rollback", row, "--json")  # ours now: rollback works on it and reaches the row
    assert marketplace.image_url(row) is None


def test_a_row_we_know_adopts_review_candidates_made_under_its_title(capsys, engine, settings, marketplace):
    from aixchange_images import batch, pipeline

    row = marketplace.add_solution(title="Claims Sorter", imageUrl=PLACEHOLDER_URL)
    pulled(capsys)
    request = _request_solution(engine, "Claims Sorter")
    (result,), _ = batch.run_batch(engine, settings, [request], pipeline.GenerateOptions(size="256x256"))
    marketplace.set_image(row, PLACEHOLDER_URL)  # the edit dialog saved the row with the placeholder

    assert pulled(capsys)["adopted"] == 1

    run(capsys, "approve", str(result.candidate_id), "--json")
    assert marketplace.image_url(row) == get_solution(engine, row).image_url != PLACEHOLDER_URL


def _count(engine, query: str) -> int:
    """A fresh transaction each time: PostgreSQL keeps pg_stat_activity as it first read it within one."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(query).scalar()


def test_a_pull_waits_for_an_approval_being_committed_and_keeps_it(capsys, engine, marketplace):
    """PostgreSQL only: SQLite's write lock already serialises a pull with every other writer."""
    import threading

    from test_browser import _wait_until

    from aixchange_images import review

    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL lets a pull's reads interleave with an approval's transaction")
    settings = load_settings()
    sid = marketplace.add_solution(imageUrl=None)
    pulled(capsys)
    candidate = _candidate(capsys, sid)
    marketplace.set_image(sid, "https://cdn.example.com/author.png")
    approving = Session(engine, expire_on_commit=False)
    try:
        publication = review.approve(session=approving, settings=settings, candidate_id=candidate, actor=CLI_ACTOR)
        puller = threading.Thread(target=pull.pull, args=(engine, settings), kwargs={"actor": CLI_ACTOR}, daemon=True)
        puller.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        # until the pull waits on the approval's solution lock
        _wait_until(lambda: _count(engine, waiting) or not puller.is_alive(), 60, "the pull to wait")
        assert puller.is_alive(), "the pull finished without waiting for the approval"
        approving.commit()
    finally:
        approving.close()  # a failed check must not leave the pull waiting on an open transaction
    puller.join(60)
    assert not puller.is_alive()

    solution = get_solution(engine, sid)
    assert solution.image_url == publication.image_url  # our approval stands
    report = deliveries.push(engine, settings)
    assert [c["theirs"] for c in report.conflicts] == ["https://cdn.example.com/author.png"]
    assert marketplace.image_url(sid) == "https://cdn.example.com/author.png"


def test_importing_an_older_download_never_undoes_an_approval(capsys, engine, marketplace, tmp_path):
    sid = marketplace.add_solution(imageUrl="https://cdn.example.com/author.png")
    pulled(capsys)
    download = {"solutions": [marketplace.row(sid) | {"createdAt": "2026-01-01T00:00:00.000Z"}]}
    (tmp_path / "download.json").write_text(json.dumps(download, default=str))
    ours = approve_new_image(capsys, sid)["image_url"]

    run(capsys, "import", str(tmp_path / "download.json"), "--json")

    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (ours, ImageStatus.approved)
    assert marketplace.image_url(sid) == ours


def test_a_raw_at_sign_in_the_password_is_one_sentence_and_never_shown(capsys, monkeypatch, marketplace):
    monkeypatch.setenv(
        "MARKETPLACE_DATABASE_URL", f"postgresql://aixchange_images:Zr7@Lw2Vb@127.0.0.1:{marketplace.server.port}/x"
    )

    out, err = run(capsys, "marketplace", "status", expect=2)

    assert "password holds an '@'" in err and "Lw2Vb" not in out + err


def test_an_encoded_password_is_hidden_in_both_forms(capsys, monkeypatch, marketplace):
    secret = "Wrong/Pass#word9"
    encoded = "Wrong%2FPass%23word9"
    monkeypatch.setenv("MARKETPLACE_DATABASE_URL", marketplace.url.replace(ROLE_PASSWORD, encoded))
    assert set(load_settings().secrets) >= {secret, encoded}

    _, err = run(capsys, "marketplace", "pull", "--json", expect=2)

    assert "password authentication failed" in err
    for piece in (text[i : i + 8] for text in (secret, encoded) for i in range(len(text) - 7)):
        assert piece not in err
