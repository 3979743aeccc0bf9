"""The API key never reaches the database, a file, the command line's output, a log line or an export."""

from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import closing

import pytest
from conftest import TEST_KEY
from sqlmodel import Session, SQLModel, select

from aixchange_images import cli, engines
from aixchange_images.models import Attempt, Candidate
from aixchange_images.redaction import redact


def run_cli(capsys: pytest.CaptureFixture[str], outputs: list[str], *argv: str) -> int:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    outputs.extend([captured.out, captured.err])
    return code


def test_the_api_key_appears_nowhere_even_when_the_server_echoes_it(
    engine, openai_settings, standin, make_solutions, tmp_path, capsys, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)  # the SDK's own debug logging included
    monkeypatch.setenv("IMAGE_MAX_RETRY_WAIT_SECONDS", "2")  # the CLI reads only the environment
    make_solutions(5)
    # One solution each (concurrency 1 keeps the order): every failure's message carries the key.
    standin.enqueue("invalid_request", param="prompt", message=f"Bad prompt for key {TEST_KEY}.")
    standin.enqueue("rate_limited", retry_after="30", message=f"Too many requests from {TEST_KEY}.")
    for _ in range(3):
        standin.enqueue("server_error", retry_after="0.01", message=f"Backend crashed serving {TEST_KEY}.")
    standin.enqueue("invalid_api_key", message=f"Incorrect API key provided: {TEST_KEY}.")
    outputs: list[str] = []

    code = run_cli(capsys, outputs, "generate", "--all", "--provider", "openai", "--concurrency", "1", "--json")

    assert code == 1
    kinds = [r["error_kind"] for r in json.loads(outputs[0])["results"]]
    assert kinds == ["invalid_request", "rate_limited", "server_error", "auth", None]
    with Session(engine) as session:
        messages = [a.error_message or "" for a in session.exec(select(Attempt).order_by(Attempt.id)).all()]
        candidate_id = session.exec(select(Candidate.id)).first()
    assert sum("[redacted]" in m for m in messages) == 3  # the echoes reached us, and were cut out

    standin.expected_key = "another-key-entirely-000000"  # now the server refuses our key outright
    assert run_cli(capsys, outputs, "generate", "--all", "--no-cache", "--provider", "openai") == 1
    for argv in (
        ["approve", str(candidate_id), "--json"],
        ["export", str(tmp_path / "catalogue.json"), "--json"],
        ["solutions", "--json"],
        ["stats", "--json"],
        ["init", "--json"],
    ):
        assert run_cli(capsys, outputs, *argv) == 0, outputs[-1]

    assert TEST_KEY not in "".join(outputs)
    assert all(TEST_KEY not in record.getMessage() for record in caplog.records)
    with engine.connect() as conn:
        dump = [repr(row) for table in SQLModel.metadata.sorted_tables for row in conn.execute(table.select())]
    assert len(dump) > 20 and not [row for row in dump if TEST_KEY in row]
    engines.dispose_engines()
    with closing(sqlite3.connect(tmp_path / "test.db")) as conn:  # fold the write-ahead log into the file
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert tmp_path / "test.db" in files and tmp_path / "catalogue.json" in files
    assert [p for p in files if TEST_KEY.encode() in p.read_bytes()] == []


def key_pieces(text: str) -> list[str]:
    """Every 8-character piece of the test key that `text` holds."""
    return sorted({TEST_KEY[i : i + 8] for i in range(len(TEST_KEY) - 7)} & _windows(text))


def _windows(text: str) -> set[str]:
    return {text[i : i + 8] for i in range(len(text) - 7)}


def test_no_eight_characters_of_the_key_are_kept_or_shown_when_the_server_echoes_pieces_of_it(
    engine, openai_settings, standin, make_solutions, tmp_path, capsys, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)  # the SDK's own debug logging included: it logs each x-request-id
    monkeypatch.setenv("IMAGE_MAX_RETRY_WAIT_SECONDS", "2")  # the CLI reads only the environment
    make_solutions(4)
    standin.echo_key = True  # every reply's x-request-id is "req_" + the key

    def script() -> None:  # pieces of the key in error messages, one solution each (concurrency 1)
        standin.enqueue("invalid_request", param="prompt", message=f"Bad prompt for key {TEST_KEY[3:13]}.")
        standin.enqueue("rate_limited", retry_after="30", message=f"Too many requests from ...{TEST_KEY[-9:]}.")
        for _ in range(3):
            message = f"Backend crashed serving {TEST_KEY[:8]} and {TEST_KEY[12:24]}."
            standin.enqueue("server_error", retry_after="0.01", message=message)

    script()
    outputs: list[str] = []
    code = run_cli(capsys, outputs, "generate", "--all", "--provider", "openai", "--concurrency", "1", "--json")
    script()
    argv = ["generate", "--all", "--no-cache", "--provider", "openai", "--concurrency", "1"]
    assert run_cli(capsys, outputs, *argv) == 1  # the words a person reads, failures included

    assert code == 1
    kinds = [r["error_kind"] for r in json.loads(outputs[0])["results"]]
    assert kinds == ["invalid_request", "rate_limited", "server_error", None]
    with Session(engine) as session:
        rows = session.exec(select(Attempt).order_by(Attempt.id)).all()
    assert sum("[redacted]" in (a.error_message or "") for a in rows) == 6  # the echoes reached us, cut out
    assert {a.request_id for a in rows} == {"req_[redacted]"}  # still says a request id came back
    for argv in (["export", str(tmp_path / "catalogue.json"), "--json"], ["solutions", "--json"], ["stats", "--json"]):
        assert run_cli(capsys, outputs, *argv) == 0, outputs[-1]

    assert key_pieces("\n".join(outputs)) == []
    assert key_pieces("\n".join(record.getMessage() for record in caplog.records)) == []
    engines.dispose_engines()
    with closing(sqlite3.connect(tmp_path / "test.db")) as conn:  # fold the write-ahead log into the file
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert tmp_path / "test.db" in files
    assert [p for p in files if key_pieces(p.read_bytes().decode("latin-1"))] == []


def test_redact_cuts_any_eight_characters_of_a_secret_and_short_secrets_whole():
    assert redact(f"a {TEST_KEY[5:13]} b {TEST_KEY[5:12]} c", TEST_KEY) == f"a [redacted] b {TEST_KEY[5:12]} c"
    assert redact(f"{TEST_KEY[:12]}{TEST_KEY[20:30]}!", TEST_KEY) == "[redacted]!"  # two pieces in a row: one cut
    assert redact("user pw5x logged in", "pw5x", None) == "user [redacted] logged in"
