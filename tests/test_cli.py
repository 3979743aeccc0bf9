"""The command line as a contract: names, JSON on stdout, one sentence on stderr, exit codes 0/1/2."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from conftest import ROOT, get_solution, solution_record
from sqlmodel import Session, SQLModel, select

from aixchange_images import cli
from aixchange_images.models import Candidate, ImageStatus, Solution, User

GENERATE_KEYS = {"solution_id", "status", "error_kind", "candidate_id", "cost_usd", "duration_ms", "cache_hit"}
STATS_KEYS = {
    "attempts",
    "succeeded",
    "failed",
    "success_rate",
    "p50_ms",
    "p95_ms",
    "spend_usd",
    "storage_bytes",
    "cost_per_approved_usd",
}
SOLUTION_KEYS = {"id", "title", "category", "image_status", "image_url"}
SMALL = ("--size", "256x256")  # the local provider draws small images quickly


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's own errors exit from inside main
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, expect: int = 0) -> dict:
    """Run with --json; stdout must be exactly one JSON document."""
    code, out, err = run(capsys, *argv, "--json")
    assert code == expect, err
    return json.loads(out)


def snapshot(engine, root: Path) -> tuple[dict, dict]:
    with engine.connect() as conn:
        rows = {t.name: sorted(map(repr, conn.execute(t.select()))) for t in SQLModel.metadata.sorted_tables}
    files = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".db" not in p.name}
    return rows, files


def import_file(tmp_path: Path, records: list[dict]) -> str:
    path = tmp_path / "bulk.json"
    path.write_text(json.dumps({"solutions": records}), encoding="utf-8")
    return str(path)


def test_every_command_prints_one_json_document_with_the_contract_keys(engine, tmp_path, capsys, monkeypatch):
    assert set(run_json(capsys, "init")) >= {"database", "data_dir", "publish_dir"}
    assert run_json(capsys, "import", import_file(tmp_path, [solution_record(i) for i in range(3)])) == {
        "imported": 3,
        "updated": 0,
        "errors": [],
    }
    listed = run_json(capsys, "solutions")["solutions"]
    assert len(listed) == 3 and all(set(s) == SOLUTION_KEYS for s in listed)
    sid = listed[0]["id"]

    generated = run_json(capsys, "generate", "--solution", sid, "--candidates", "2", *SMALL)

    assert [set(r) >= GENERATE_KEYS for r in generated["results"]] == [True, True]
    assert {r["status"] for r in generated["results"]} == {"succeeded"}
    assert generated["summary"]["succeeded"] == 2
    first, second = sorted(r["candidate_id"] for r in generated["results"])
    assert run_json(capsys, "reject", str(second), "--reason", "off_topic")["state"] == "rejected"
    approved = run_json(capsys, "approve", str(first))
    assert approved["solution_id"] == sid and approved["image_url"].startswith("/api/external-images/solutions/")
    assert run_json(capsys, "rollback", sid)["image_url"] is None
    assert run_json(capsys, "prompt", sid)["solution_id"] == sid
    assert run_json(capsys, "export", str(tmp_path / "export.json"))["exported"] == 3
    stats = run_json(capsys, "stats", "--since", "2020-01-01")
    assert set(stats) >= STATS_KEYS and (stats["attempts"], stats["succeeded"], stats["failed"]) == (2, 2, 0)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert run_json(capsys, "users", "add", "ada", "--role", "admin") == {"username": "ada", "role": "admin"}
    assert [u["username"] for u in run_json(capsys, "users", "list")["users"]] == ["ada"]


def test_generate_keeps_stdout_pure_json_while_progress_goes_to_stderr(engine, make_solutions, capsys):
    ids = make_solutions(3)

    code, out, err = run(capsys, "generate", "--all", *SMALL, "--json")

    assert code == 0
    payload = json.loads(out)
    assert sorted(r["solution_id"] for r in payload["results"]) == sorted(ids)
    assert all(r["error_kind"] is None and r["cache_hit"] is False for r in payload["results"])
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == ["[1/3", "[2/3", "[3/3"]
    assert "Generating 3 image(s) with local/local-card" in err


def test_generate_exits_1_when_some_items_fail_and_the_json_says_which(engine, make_solutions, capsys):
    broken, fine = make_solutions(2)
    with Session(engine) as session:
        solution = session.get(Solution, broken)
        solution.description = " "
        session.add(solution)
        session.commit()

    payload = run_json(capsys, "generate", "--all", *SMALL, expect=1)

    outcome = {r["solution_id"]: (r["status"], r["error_kind"]) for r in payload["results"]}
    assert outcome == {broken: ("failed", "invalid_request"), fine: ("succeeded", None)}
    assert payload["summary"]["failed"] == 1


def test_legacy_quality_is_accepted_with_a_note_on_stderr(engine, make_solutions, capsys, monkeypatch):
    make_solutions(1)
    monkeypatch.setenv("DALLE_IMAGE_QUALITY", "hd")

    code, out, err = run(capsys, "generate", "--all", *SMALL, "--json")

    assert code == 0
    assert json.loads(out)["summary"]["quality"] == "high"
    assert "note: DALLE_IMAGE_QUALITY=hd is a DALL-E value; using high" in err


BAD_USAGE = [
    ["frobnicate"],
    ["generate"],
    ["generate", "--all", "--bogus"],
    ["generate", "--all", "--candidates", "0"],
    ["generate", "--all", "--candidates", "11"],
    ["generate", "--solution", "no-such-id"],
    ["generate", "--solution", "{sid}", "no-such-id"],
    ["generate", "--all", "--size", "100x100"],
    ["generate", "--all", "--size", "big"],
    ["generate", "--all", "--quality", "ultra"],
    ["generate", "--all", "--template", "fancy@3"],
    ["generate", "--all", "--concurrency", "0"],
    ["generate", "--all", "--provider", "dalle"],
    ["approve", "999"],
    ["approve", "first"],
    ["reject", "{cid}"],
    ["reject", "{cid}", "--reason", "meh"],
    ["rollback", "{sid}"],
    ["rollback", "no-such-id"],
    ["prompt", "no-such-id"],
    ["prompt", "{sid}", "--template", "fancy"],
    ["import", "no-such-file.json"],
    ["stats", "--since", "yesterday"],
    ["solutions", "--status", "weird"],
    ["demo-data", "--solutions", "0"],
    ["users", "add", "bob", "--role", "owner"],
]


def test_a_command_run_in_process_returns_once_the_checks_it_started_are_done(engine, make_solutions, capsys):
    """As its process does before it exits. Otherwise a caller in the same process (a test comparing the
    database before and after its next command) saw the checks' verdicts land in between."""
    make_solutions(3)

    results = run_json(capsys, "generate", "--all", *SMALL)["results"]

    with Session(engine) as session:
        checked = [session.get(Candidate, r["candidate_id"]).checked_at for r in results]
    assert len(checked) == 3 and None not in checked


@pytest.mark.parametrize("argv", BAD_USAGE, ids=lambda argv: " ".join(argv))
def test_bad_usage_exits_2_with_one_line_on_stderr_and_changes_nothing(engine, make_solutions, tmp_path, capsys, argv):
    (sid,) = make_solutions(1)
    (result,) = run_json(capsys, "generate", "--all", *SMALL)["results"]
    argv = [a.format(sid=sid, cid=result["candidate_id"]) for a in argv]
    before = snapshot(engine, tmp_path)

    code, out, err = run(capsys, *argv, "--json")

    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and len(err.strip()) > 20
    assert snapshot(engine, tmp_path) == before


def test_bad_usage_through_python_m_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "aixchange_images", "generate", "--all", "--candidates", "0"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.strip() == "error: --candidates must be between 1 and 10."


def test_users_add_reads_the_password_from_stdin_and_users_list_never_shows_hashes(engine, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery staple\n"))

    added = run_json(capsys, "users", "add", "maria", "--role", "manager")

    assert added == {"username": "maria", "role": "manager"}
    with Session(engine) as session:
        user = session.exec(select(User)).one()
    assert PasswordHasher().verify(user.password_hash, "correct horse battery staple")

    code, out, _ = run(capsys, "users", "list", "--json")
    code_text, out_text, _ = run(capsys, "users", "list")

    assert code == code_text == 0
    (listed,) = json.loads(out)["users"]
    assert listed["username"] == "maria" and listed["role"] == "manager"
    assert not [key for key in listed if "hash" in key or "password" in key]
    for shown in (out, out_text):
        assert user.password_hash not in shown and "$argon2" not in shown and "correct horse" not in shown


def test_users_add_refuses_a_short_password_and_adds_no_one(engine, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))

    code, out, err = run(capsys, "users", "add", "maria", "--role", "admin", "--json")

    assert (code, out) == (2, "")
    assert err.strip() == "error: The password must be at least 8 characters long."
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []


def test_demo_data_then_stats_reports_the_history(engine, capsys):
    loaded = run_json(capsys, "demo-data", "--solutions", "15", "--generations", "80")

    stats = run_json(capsys, "stats")

    assert loaded["solutions"] == 15 and loaded["attempts"] > 0
    assert set(stats) >= STATS_KEYS
    assert stats["attempts"] == loaded["attempts"] == stats["succeeded"] + stats["failed"]
    assert stats["success_rate"] == round(stats["succeeded"] / stats["attempts"], 4)
    assert 0 < stats["p50_ms"] <= stats["p95_ms"]
    assert stats["spend_usd"] > 0 and stats["storage_bytes"] > 0
    assert stats["cost_per_approved_usd"] == pytest.approx(stats["spend_usd"] / loaded["publications"], abs=1e-5)
    solutions = run_json(capsys, "solutions")["solutions"]
    assert len(solutions) == 15
    assert {s["image_status"] for s in solutions} <= {status.value for status in ImageStatus}


def test_prompt_prints_the_rendered_prompt_with_the_description(engine, make_solutions, capsys):
    (sid,) = make_solutions(1, description="drafts replies to customer emails in the company's tone.")

    code, out, _ = run(capsys, "prompt", sid)
    as_json = run_json(capsys, "prompt", sid)

    assert code == 0
    assert "drafts replies to customer emails in the company's tone." in out
    assert '"Solution number 0"' in out
    assert as_json == {
        "solution_id": sid,
        "template": "default@1",
        "prompt": out.rstrip("\n"),
        "length": len(out.rstrip("\n")),
    }


def test_solutions_filters_by_image_status(engine, make_solutions, capsys):
    waiting, untouched = make_solutions(2)
    run_json(capsys, "generate", "--solution", waiting, *SMALL)

    pending = run_json(capsys, "solutions", "--status", "pending")["solutions"]
    none = run_json(capsys, "solutions", "--status", "none")["solutions"]

    assert [(s["id"], s["image_status"], s["image_url"]) for s in pending] == [(waiting, "pending", None)]
    assert [s["id"] for s in none] == [untouched]


def test_generate_json_gives_the_published_url_of_an_auto_approved_candidate_and_null_otherwise(
    engine, make_solutions, capsys
):
    auto, manual = make_solutions(2)

    published = run_json(capsys, "generate", "--solution", auto, "--candidates", "2", "--auto-approve", *SMALL)
    waiting = run_json(capsys, "generate", "--solution", manual, *SMALL)

    urls = sorted((r["published_url"] for r in published["results"]), key=str)
    shown = get_solution(engine, auto).image_url
    assert urls == sorted([shown, None], key=str) and shown.startswith("/api/external-images/solutions/")
    assert [r["published_url"] for r in waiting["results"]] == [None]
