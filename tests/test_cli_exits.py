"""The command line as a person meets it, each run as a real process: `stats` in lines for people, a
closed pipe ends quietly, and bad configuration gives exit 2 with one sentence, never a traceback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, solution_record

PASSWORD = "s3cretpw-9f2"
CLEARED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "IMAGE_PROVIDER", "MARKETPLACE_DATABASE_URL", "DALLE_IMAGE_SIZE")


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=os.environ["DATABASE_URL"],  # the test's own database (SQLite, or PostgreSQL in that run)
        AIXCHANGE_DATA_DIR=str(tmp_path / "data"),
        EXTERNAL_IMAGES_PATH=str(tmp_path / "external-images"),
    )
    return env | extra


def cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aixchange_images", *args],
        cwd=tmp_path,
        env=environment(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_sentence(proc: subprocess.CompletedProcess, variable: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr that names the variable, no traceback, no password."""
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert variable in lines[0] and "Traceback" not in proc.stderr and PASSWORD not in proc.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


# -- stats for people -------------------------------------------------------------------------------
def test_stats_prints_lines_for_people(engine, make_solutions, tmp_path):
    (sid,) = make_solutions(1)
    assert cli(tmp_path, "generate", "--solution", sid, "--size", "256x256").returncode == 0

    proc = cli(tmp_path, "stats", IMAGE_BUDGET_DAILY_USD="5")

    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert not re.search(r"[{}\[\]]|datetime|None|_usd|_ms\b", text), text
    assert re.search(r"^Attempts +1 \(1 succeeded, 0 failed: 100\.0% succeeded\)$", text, re.MULTILINE), text
    assert re.search(r"^Generation time +p50 \d+\.\d\d s, p95 \d+\.\d\d s$", text, re.MULTILINE), text
    assert re.search(r"^Spend +\$0\.00", text, re.MULTILINE), text
    assert re.search(r"^Budget +today \$0\.00 of \$5\.00, this month \$0\.00 \(no cap\)$", text, re.MULTILINE), text
    stored = json.loads(cli(tmp_path, "stats", "--json").stdout)["storage_bytes"]
    assert re.search(rf"^Storage +[\d.]+ (kB|MB) \({stored:,} bytes\)$", text, re.MULTILINE), text


def test_stats_on_an_empty_catalogue_says_so(engine, tmp_path):
    proc = cli(tmp_path, "stats")
    assert proc.returncode == 0
    assert re.search(r"^Attempts +none yet$", proc.stdout, re.MULTILINE), proc.stdout
    assert re.search(r"^Generation time +— \(no image made by a provider yet\)$", proc.stdout, re.MULTILINE)
    assert re.search(r"^Approved images +0$", proc.stdout, re.MULTILINE), proc.stdout


# -- a closed pipe ----------------------------------------------------------------------------------
def test_a_closed_pipe_ends_the_command_quietly(engine, tmp_path):
    from sqlmodel import Session

    from aixchange_images import bulk
    from aixchange_images.auth import CLI_ACTOR

    with Session(engine) as session:  # enough lines to fill the pipe: the write after `head` leaves must fail
        bulk.import_records(session=session, records=[solution_record(i) for i in range(1500)], actor=CLI_ACTOR)
        session.commit()
    child = subprocess.Popen(
        [sys.executable, "-m", "aixchange_images", "solutions"],
        cwd=tmp_path,
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = child.stdout.readline()  # what `| head -1` does: read a line, then close the pipe
    child.stdout.close()
    code, err = child.wait(timeout=120), child.stderr.read().decode()
    child.stderr.close()

    assert first.strip()
    assert (code, err) == (141, ""), err  # 128 + SIGPIPE, as the shell's own tools report it


# -- bad configuration --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "foo://host/db",
        "mysql://bob@host/db",  # a database SQLAlchemy knows, whose driver is not installed
        f"postgresql://bob:{PASSWORD}@[::1/db",
        f"postgresql://bob:{PASSWORD}@host:notaport/db",
    ],
)
def test_a_bad_database_url_is_one_sentence_and_exit_2(tmp_path, url: str):
    sentence = one_sentence(cli(tmp_path, "solutions", DATABASE_URL=url), "DATABASE_URL")
    assert "sqlite:///" in sentence  # says what a good one looks like


def test_an_unreachable_database_is_one_sentence_and_exit_2(tmp_path):
    url = f"postgresql://bob:{PASSWORD}@127.0.0.1:{closed_port()}/aixchange"
    sentence = one_sentence(cli(tmp_path, "stats", DATABASE_URL=url), "DATABASE_URL")
    assert "127.0.0.1" in sentence and "refused" in sentence.lower()


def test_a_database_file_that_cannot_be_opened_is_one_sentence_and_exit_2(tmp_path):
    (tmp_path / "folder.db").mkdir()  # a directory where the SQLite file should be
    sentence = one_sentence(cli(tmp_path, "stats", DATABASE_URL=f"sqlite:///{tmp_path}/folder.db"), "DATABASE_URL")
    assert "folder.db" in sentence


@pytest.mark.parametrize(
    "base_url",
    [
        "not a url",
        "ftp://example.com/v1",
        "http://",
        "http://[::1",
        "localhost:8080",
        f"http://u:{PASSWORD}@host:99999/v1",
    ],
)
def test_a_malformed_openai_base_url_is_one_sentence_and_exit_2(tmp_path, base_url: str):
    proc = cli(tmp_path, "solutions", OPENAI_BASE_URL=base_url, OPENAI_API_KEY="test-key-not-real-00000000")
    assert "https://" in one_sentence(proc, "OPENAI_BASE_URL")


def test_a_good_openai_base_url_is_still_accepted(tmp_path):
    proc = cli(tmp_path, "solutions", OPENAI_BASE_URL=f"http://u:{PASSWORD}@127.0.0.1:8080/v1")
    assert proc.returncode == 0, proc.stderr
