"""`stats` without the ORM (quickstats): the same figures as the library on the same SQLite file, and
the general path whenever the database or the settings need more than reading."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, select
from test_metrics import D1, add_attempt, add_candidate, history  # noqa: F401 - history: a fixture

from aixchange_images import cli, journal, metrics, migrations, quickstats
from aixchange_images.admin import effective_settings, save_overrides
from aixchange_images.auth import Actor
from aixchange_images.cli_parser import build_parser
from aixchange_images.config import load_settings
from aixchange_images.engines import dispose_engines, get_engine
from aixchange_images.models import AttemptStatus, CandidateState, Purpose, SchemaMigration, utcnow

sqlite_only = pytest.mark.skipif(bool(os.environ.get("TEST_POSTGRES_URL")), reason="the quick path reads SQLite files")

ALICE = Actor("alice", "admin")
FILTERS = [
    [],
    ["--since", "2026-03-02"],
    ["--model", "local-card"],
    ["--template", "default@2"],
    ["--provider", "openai"],
    ["--provider", "openai", "--since", "2026-03-03"],
    ["--model", "no-such-model"],
]


def stats_args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["stats", "--json", *argv])


def library_stats(engine, *argv: str) -> dict:
    """What the general path answers (the ORM, metrics and budget), as `stats --json` prints it."""
    with Session(engine) as session:
        settings = effective_settings(session=session, settings=load_settings())
    figures, code = cli.cmd_stats(stats_args(*argv), settings, engine)
    assert code == 0
    return json.loads(json.dumps(figures))


@pytest.fixture
def mixed(engine, history) -> None:  # noqa: F811 - history: the fixture imported above
    """The metrics history (succeeded, failed, interrupted and running attempts, a cache hit, a
    cleaned-up candidate, an upload) plus a Prompt Studio trial and money committed today."""
    now = utcnow()
    with Session(engine) as session:
        trial = add_attempt(session, "s1", D1 + timedelta(hours=5), ms=1500, cost=0.02, template="default@3")
        trial.purpose = Purpose.trial
        candidate = add_candidate(session, trial, "s1", D1, CandidateState.rejected, 700)
        candidate.purpose = Purpose.trial
        add_attempt(session, "s2", now, ms=2500, cost=0.06)
        add_attempt(session, "s3", now, status=AttemptStatus.running, cost=0.0).reserved_usd = 0.04
        session.commit()


@sqlite_only
@pytest.mark.parametrize("argv", FILTERS, ids=lambda argv: " ".join(argv) or "everything")
def test_the_quick_path_gives_the_librarys_figures(engine, mixed, argv):
    quick = quickstats.answer(stats_args(*argv))

    assert quick is not None  # it did answer: a migrated SQLite file, no budget
    assert quick == library_stats(engine, *argv)


@sqlite_only
def test_the_figures_are_not_empty_and_count_today(engine, mixed):
    quick = quickstats.answer(stats_args())

    assert quick is not None
    assert (quick["attempts"], quick["p50_ms"], quick["approved"], quick["storage_bytes"]) == (12, 2000, 2, 15500)
    # storage: the history's 14800 bytes and the trial's 700; today: 0.06 spent and 0.04 reserved
    assert quick["budget"]["spent_today_usd"] == pytest.approx(0.10)


@sqlite_only
def test_stats_prints_the_librarys_figures(engine, mixed, capsys):
    assert cli.main(["stats", "--json", "--since", "2026-03-02"]) == 0

    assert json.loads(capsys.readouterr().out) == library_stats(engine, "--since", "2026-03-02")


@sqlite_only
def test_a_budget_leaves_stats_to_the_general_path(engine, mixed, monkeypatch, capsys):
    with Session(engine) as session:
        save_overrides(session=session, settings=load_settings(), actor=ALICE, changes={"image_model": "gpt-image-1.5"})
        session.commit()
    assert quickstats.answer(stats_args()) is not None  # an override that is not a budget changes nothing here

    with Session(engine) as session:
        save_overrides(session=session, settings=load_settings(), actor=ALICE, changes={"image_budget_daily_usd": 0.1})
        session.commit()
    assert quickstats.answer(stats_args()) is None
    assert cli.main(["stats", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["budget"]["daily_cap_usd"] == 0.1 and printed["budget"]["alerts"]
    assert printed == library_stats(engine)


@sqlite_only
def test_a_waiting_publish_journal_leaves_stats_to_the_general_path(engine, mixed):
    settings = load_settings()
    journal.incoming_dir(settings).mkdir(parents=True)
    assert quickstats.answer(stats_args()) is not None  # an empty folder: nothing to recover

    journal.path_for(settings, "s1-9.png").write_text("{}")
    assert journal.waiting(settings)
    assert quickstats.answer(stats_args()) is None


@sqlite_only
def test_a_database_missing_a_migration_is_migrated_as_before(engine, capsys):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM schemamigration WHERE version = :v"), {"v": quickstats.SCHEMA_VERSION})
    dispose_engines()  # a new process: the engine is built and the database checked again
    assert quickstats.answer(stats_args()) is None

    assert cli.main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["attempts"] == 0
    with Session(engine) as session:
        assert quickstats.SCHEMA_VERSION in session.exec(select(SchemaMigration.version)).all()
    assert quickstats.answer(stats_args()) is not None


@sqlite_only
def test_stats_on_a_fresh_data_folder_initialises_it(tmp_path, monkeypatch, capsys):
    database = tmp_path / "fresh" / "db.sqlite"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    assert quickstats.answer(stats_args()) is None  # no file yet

    assert cli.main(["stats", "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["attempts"] == 0
    assert database.is_file()
    assert quickstats.answer(stats_args()) == library_stats(get_engine(load_settings()))


def test_the_quick_path_knows_the_last_migration_and_the_statuses():
    numbers = [number for number, _, _ in migrations.MIGRATIONS]
    assert numbers == list(range(1, quickstats.SCHEMA_VERSION + 1))
    assert tuple(status.value for status in metrics.FINISHED) == quickstats.FINISHED
    assert tuple(state.value for state in metrics.APPROVED_STATES) == quickstats.APPROVED_STATES


@pytest.mark.parametrize(
    "url",
    ["postgresql://user:secret@127.0.0.1:9/images", "sqlite+pysqlite:///{file}", "sqlite:///{file}?timeout=5"],
    ids=["postgresql", "a driver named", "options"],
)
def test_other_database_urls_are_left_to_the_general_path(tmp_path, monkeypatch, url):
    (tmp_path / "images.db").write_bytes(b"")
    monkeypatch.setenv("DATABASE_URL", url.format(file=tmp_path / "images.db"))

    assert quickstats.answer(stats_args()) is None  # and nothing was opened: no server listens on port 9
