"""Exporting bulk files the marketplace's importer accepts, and CSV for people that a spreadsheet cannot run."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from bulk_fixtures import marketplace_row, one_sentence, run_cli
from conftest import app_test, solution_record
from sqlalchemy import text
from sqlmodel import Session

from aixchange_images import batch, bulk, bulkfiles, db, pipeline
from aixchange_images.auth import CLI_ACTOR, Actor
from aixchange_images.config import load_settings
from aixchange_images.models import PLACEHOLDER_URL
from aixchange_images.records import validate_document
from aixchange_images.zod import METADATA_KEYS


def load(engine, records: list) -> None:
    with db.session_scope(engine, write=True) as session:
        report = bulk.import_records(session=session, records=records, actor=CLI_ACTOR)
        session.commit()
    assert report.errors == []


def export(capsys, target: Path, expect: int = 0) -> dict:
    code, out, err = run_cli(capsys, "export", str(target), "--json")
    assert code == expect, err
    return json.loads(out)


def documents(paths: list[str]) -> list[dict]:
    return [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]


def nulls(value, path="") -> list[str]:
    if value is None:
        return [path]
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [found for key, child in children for found in nulls(child, f"{path}.{key}")]


def test_every_exported_record_passes_the_marketplace_rules(engine, tmp_path, capsys):
    load(engine, [solution_record(0, metadata={"customFields": {"team": "support"}}), solution_record(1)])
    load(
        engine,
        [marketplace_row(1, tags=["nlp"], metadata={"rating": 4, "apiEndpoints": [{"path": "/", "method": "GET"}]})],
    )
    load(engine, [solution_record(2, imageUrl=PLACEHOLDER_URL, sourceCodeUrl="")])

    payload = export(capsys, tmp_path / "out" / "catalogue.json")

    assert payload == {"files": [str(tmp_path / "out" / "catalogue.json")], "exported": 4, "refused": []}
    (document,) = documents(payload["files"])
    assert validate_document(document) == []
    assert nulls(document) == []
    records = {r["title"]: r for r in document["solutions"]}
    assert all(set(r.get("metadata", {})) <= set(METADATA_KEYS) for r in records.values())
    assert records["Marketplace solution 1"]["metadata"] == {"apiEndpoints": [{"path": "/", "method": "GET"}]}
    assert records["Marketplace solution 1"]["status"] == "Active"
    assert "imageUrl" not in records["Solution number 1"] and "metadata" not in records["Solution number 1"]
    assert records["Solution number 2"]["imageUrl"] == PLACEHOLDER_URL
    assert "sourceCodeUrl" not in records["Solution number 2"]


def test_more_than_100_solutions_go_to_numbered_files_next_to_the_one_named(engine, tmp_path, capsys):
    load(engine, [solution_record(i) for i in range(250)])

    payload = export(capsys, tmp_path / "out" / "cat.json")

    names = [f"cat-{n:03d}.json" for n in (1, 2, 3)]
    assert payload["files"] == [str(tmp_path / "out" / name) for name in names]
    assert (payload["exported"], payload["refused"]) == (250, [])
    found = documents(payload["files"])
    assert [len(d["solutions"]) for d in found] == [100, 100, 50]
    assert all(validate_document(d) == [] for d in found)
    assert len({r["id"] for d in found for r in d["solutions"]}) == 250
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names  # no cat.json, no temporary file


def test_exactly_100_solutions_fit_in_the_file_named(engine, tmp_path, capsys):
    load(engine, [solution_record(i) for i in range(100)])

    payload = export(capsys, tmp_path / "cat.json")

    assert (payload["files"], payload["exported"]) == ([str(tmp_path / "cat.json")], 100)


def test_a_solution_the_marketplace_would_refuse_is_named_and_not_written(engine, tmp_path, capsys):
    load(engine, [solution_record(0)])
    load(engine, [marketplace_row(1), marketplace_row(2, tags=["ok"], title="T" * 101)])

    payload = export(capsys, tmp_path / "cat.json", expect=1)

    assert payload["exported"] == 1
    assert payload["refused"] == [
        {
            "id": marketplace_row(1)["id"],
            "title": "Marketplace solution 1",
            "error": "tags: must hold 1 to 5 tags, not 0",
        },
        {
            "id": marketplace_row(2)["id"],
            "title": "T" * 101,
            "error": "title: must be at most 100 characters long, not 101",
        },
    ]
    (document,) = documents(payload["files"])
    assert [r["title"] for r in document["solutions"]] == ["Solution number 0"]
    code, out, _ = run_cli(capsys, "export", str(tmp_path / "cat.json"))
    assert code == 1 and "refused cm7row0001abcdefghijklmno Marketplace solution 1: tags:" in out


def test_an_export_imports_into_a_fresh_database_with_the_same_ids(engine, tmp_path, capsys, monkeypatch):
    load(engine, [solution_record(i, rating=i % 5) for i in range(120)])
    first = export(capsys, tmp_path / "one" / "cat.json")

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'second.db'}")
    for path in first["files"]:
        code, out, err = run_cli(capsys, "import", path, "--json")
        assert (code, json.loads(out)["imported"]) == (0, 100 if path.endswith("001.json") else 20), err
    again = export(capsys, tmp_path / "two" / "cat.json")

    assert documents(again["files"]) == documents(first["files"])


def test_an_export_that_cannot_be_written_exits_2_and_leaves_nothing(engine, tmp_path, capsys):
    load(engine, [solution_record(0)])
    (tmp_path / "blocker").write_text("a file where the folder should be", encoding="utf-8")

    code, out, err = run_cli(capsys, "export", str(tmp_path / "blocker" / "cat.json"), "--json")

    assert (code, out) == (2, "")
    assert "Could not write into" in one_sentence(err)


def test_parts_of_an_earlier_export_are_pointed_out(engine, tmp_path, capsys):
    load(engine, [solution_record(i) for i in range(150)])
    export(capsys, tmp_path / "cat.json")
    with db.session_scope(engine, write=True) as session:
        session.execute(text("DELETE FROM solution WHERE title LIKE 'Solution number 1%'"))
        session.commit()

    code, out, err = run_cli(capsys, "export", str(tmp_path / "cat.json"), "--json")

    assert (code, json.loads(out)["files"]) == (0, [str(tmp_path / "cat.json")])
    assert [line.split(" is left")[0] for line in err.splitlines()] == [
        f"note: {tmp_path / 'cat-001.json'}",
        f"note: {tmp_path / 'cat-002.json'}",
    ]


def test_the_solutions_page_offers_one_file_or_a_zip_of_numbered_files(engine):
    load(engine, [solution_record(i) for i in range(150)])
    at = app_test(Actor("alice", "admin"))
    at.run()
    at.switch_page("pages/solutions.py").run()

    next(b for b in at.button if b.label == "Prepare export").click().run()

    assert not at.exception
    assert [b.label for b in at.get("download_button")] == ["Download 2 files (aixchange-solutions.zip)"]
    parts, refused = at.session_state["export"]
    assert ([name for name, _ in parts], refused) == (
        ["aixchange-solutions-001.json", "aixchange-solutions-002.json"],
        [],
    )
    archive = zipfile.ZipFile(io.BytesIO(bulkfiles.zip_parts(parts)))
    assert [len(json.loads(archive.read(n))["solutions"]) for n in archive.namelist()] == [100, 50]


# -- CSV for people -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("plain text", "plain text"),
        (-5, -5),
        (None, None),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_made_text(cell, safe):
    assert bulkfiles.neutralise_cell(cell) == safe


def test_safe_csv_neutralises_text_cells_and_keeps_numbers():
    frame = pd.DataFrame({"actor": ["=1+1", "ada"], "cost_usd": [-0.5, 1.0]})
    assert bulkfiles.safe_csv(frame).splitlines() == ["actor,cost_usd", "'=1+1,-0.5", "ada,1.0"]


def test_the_metrics_csv_download_neutralises_formula_cells(engine, make_solutions):
    (sid,) = make_solutions(1)
    batch.run_batch(engine, load_settings(dalle_image_size="256x256"), [sid], pipeline.GenerateOptions())
    with Session(engine) as session:
        session.execute(text("UPDATE attempt SET actor = :a"), {"a": '=HYPERLINK("http://evil.example")'})
        session.commit()
    at = app_test(Actor("alice", "admin"))
    at.run()
    at.switch_page("pages/metrics.py").run()

    next(b for b in at.button if b.label.startswith("Prepare the attempts")).click().run()

    assert not at.exception
    csv_text = at.session_state["csv"]
    assert '\'=HYPERLINK(""http://evil.example"")' in csv_text and ",=HYPERLINK" not in csv_text


def test_a_written_part_gets_the_mode_any_new_file_gets(tmp_path):
    (tmp_path / "reference").write_bytes(b"")
    (path,) = bulkfiles.write_parts([("cat.json", b"{}")], tmp_path)
    assert path.stat().st_mode == (tmp_path / "reference").stat().st_mode  # not a private temporary file's 0600


def test_an_empty_catalogue_exports_no_file(engine, tmp_path, capsys):
    assert export(capsys, tmp_path / "cat.json") == {"files": [], "exported": 0, "refused": []}
    assert not (tmp_path / "cat.json").exists()
