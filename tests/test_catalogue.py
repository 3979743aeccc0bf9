"""Importing and exporting the catalogue: the marketplace's rules, upserts, bad files, round trips."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import get_solution, solution_record
from PIL import Image
from sqlmodel import Session, SQLModel, select

from aixchange_images import batch, bulk, cli, db, pipeline, review
from aixchange_images.auth import CLI_ACTOR, Actor, PermissionDenied
from aixchange_images.config import load_settings
from aixchange_images.models import PLACEHOLDER_URL, PUBLIC_PREFIX, ImageStatus, Role, Solution


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in-process; argparse's own exits count as exit codes too."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every table, to prove that nothing changed."""
    with engine.connect() as conn:
        return {t.name: sorted(map(repr, conn.execute(t.select()))) for t in SQLModel.metadata.sorted_tables}


def write_json(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps({"solutions": records}), encoding="utf-8")
    return path


def all_solutions(engine) -> list[Solution]:
    with Session(engine) as session:
        return list(session.exec(select(Solution).order_by(Solution.title)).all())


# One invalid record per marketplace rule: (title shown in the report, record, field named in the error).
INVALID = [
    ("ab", solution_record(10, title="ab"), "title"),
    ("x" * 100, solution_record(11, title="x" * 101), "title"),
    ("Short description", solution_record(12, title="Short description", description="too short"), "description"),
    ("Long description", solution_record(13, title="Long description", description="d" * 1001), "description"),
    ("Tiny category", solution_record(14, title="Tiny category", category="X"), "category"),
    ("Tiny provider", solution_record(15, title="Tiny provider", provider="P"), "provider"),
    ("Huge provider", solution_record(16, title="Huge provider", provider="P" * 101), "provider"),
    ("Bad launch URL", solution_record(17, title="Bad launch URL", launchUrl="not a url"), "launchUrl"),
    ("Empty launch URL", solution_record(18, title="Empty launch URL", launchUrl=""), "launchUrl"),
    ("No tags", solution_record(19, title="No tags", tags=[]), "tags"),
    ("Six tags", solution_record(20, title="Six tags", tags=list("abcdef")), "tags"),
    ("Odd status", solution_record(21, title="Odd status", status="Archived"), "status"),
]


def test_json_import_keeps_valid_records_and_reports_each_invalid_one_by_field(engine, tmp_path, capsys):
    records = [solution_record(0), *(record for _, record, _ in INVALID), solution_record(1, status="Pending")]
    code, out, _ = run_cli(capsys, "import", str(write_json(tmp_path / "bulk.json", records)), "--json")

    assert code == 1  # some items failed, and the JSON says which
    report = json.loads(out)
    assert (report["imported"], report["updated"]) == (2, 0)
    assert all(set(error) == {"title", "error"} for error in report["errors"])
    reported = [(e["title"], e["error"].split(":")[0]) for e in report["errors"]]
    assert reported == [(title, field) for title, _, field in INVALID]
    stored = all_solutions(engine)
    assert [s.title for s in stored] == ["Solution number 0", "Solution number 1"]
    assert stored[1].status == "Pending"


def test_csv_import_reads_the_same_columns(engine, tmp_path, capsys):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["title", "description", "category", "provider", "launchUrl", "tags", "status", "imageUrl"])
    writer.writerow(
        [
            "Ticket Router",
            "Routes support tickets to the right team.",
            "Natural Language Processing",
            "Acme Labs",
            "https://example.com/router",
            "support|routing",
            "Active",
            "",
        ]
    )
    writer.writerow(
        [
            "Shelf Scanner",
            "Counts products on shop shelves from photos.",
            "Computer Vision",
            "Acme Labs",
            "https://example.com/shelf",
            "retail;vision;stock",
            "Pending",
            PLACEHOLDER_URL,
        ]
    )
    writer.writerow(
        [
            "Broken Link",
            "Has a launch link that is not a URL at all.",
            "Other",
            "Acme Labs",
            "example dot com",
            "misc",
            "Active",
            "",
        ]
    )
    path = tmp_path / "bulk.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")

    code, out, _ = run_cli(capsys, "import", str(path), "--json")

    assert code == 1
    report = json.loads(out)
    assert (report["imported"], report["updated"]) == (2, 0)
    assert [(e["title"], e["error"].split(":")[0]) for e in report["errors"]] == [("Broken Link", "launchUrl")]
    router, scanner = sorted(all_solutions(engine), key=lambda s: s.title, reverse=True)
    assert (router.tags, router.status, router.image_status) == (["support", "routing"], "Active", ImageStatus.none)
    assert (scanner.tags, scanner.status) == (["retail", "vision", "stock"], "Pending")
    assert (scanner.image_url, scanner.image_status) == (PLACEHOLDER_URL, ImageStatus.placeholder)


def test_reimport_updates_in_place_by_id_and_by_title(engine, make_solutions, tmp_path, capsys):
    first, second = make_solutions(2)
    records = [
        solution_record(0, id=first, title="Ticket Router Pro"),  # renamed: found by its id
        solution_record(1, title="SOLUTION NUMBER 1", description="Now also drafts the first reply."),  # by title
    ]
    code, out, _ = run_cli(capsys, "import", str(write_json(tmp_path / "again.json", records)), "--json")

    assert code == 0
    assert json.loads(out) == {"imported": 0, "updated": 2, "errors": []}
    assert sorted(s.id for s in all_solutions(engine)) == sorted([first, second])
    assert get_solution(engine, first).title == "Ticket Router Pro"
    assert get_solution(engine, second).description == "Now also drafts the first reply."


def test_the_same_title_twice_in_one_file_is_one_solution(engine, tmp_path, capsys):
    records = [solution_record(0), solution_record(0, description="The second word on this solution wins.")]
    code, out, _ = run_cli(capsys, "import", str(write_json(tmp_path / "twice.json", records)), "--json")

    assert code == 0
    assert json.loads(out) == {"imported": 1, "updated": 1, "errors": []}
    (only,) = all_solutions(engine)
    assert only.description == "The second word on this solution wins."


def test_reimporting_a_record_without_an_image_keeps_the_published_one(engine, make_solutions, tmp_path, capsys):
    (sid,) = make_solutions(1)
    published = PUBLIC_PREFIX + "solution_number_0-1740153503444.png"
    run_cli(capsys, "import", str(write_json(tmp_path / "with.json", [solution_record(0, imageUrl=published)])))
    assert get_solution(engine, sid).image_status == ImageStatus.uploaded  # in the folder, but not published by us

    code, _, _ = run_cli(capsys, "import", str(write_json(tmp_path / "without.json", [solution_record(0)])))

    assert code == 0
    assert (get_solution(engine, sid).image_url, get_solution(engine, sid).image_status) == (
        published,
        ImageStatus.uploaded,
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("broken.json", '{"solutions": [{"title": "Half a record"'),
        ("wrong-key.json", '{"items": [{"title": "Ticket Router"}]}'),
        ("not-a-list.json", '{"solutions": {"title": "Ticket Router"}}'),
        ("a-string.json", '"Ticket Router"'),
        ("empty-list.json", '{"solutions": []}'),
        ("empty-file.json", ""),
        ("empty.csv", ""),
        ("header-only.csv", "title,description,category,provider,launchUrl,tags\n"),
        ("no-title.csv", "name,description\nTicket Router,Routes tickets to teams.\n"),
        ("missing.json", None),
    ],
)
def test_an_unusable_import_file_exits_2_with_one_sentence_and_changes_nothing(
    engine, make_solutions, tmp_path, capsys, name, content
):
    make_solutions(2)
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    before = snapshot(engine)

    code, out, err = run_cli(capsys, "import", str(path), "--json")

    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith(".")
    assert snapshot(engine) == before


def test_export_round_trips_with_the_current_image_urls(engine, make_solutions, tmp_path, capsys, monkeypatch):
    settings = load_settings(dalle_image_size="256x256")
    fresh, placeheld, approved = make_solutions(3)
    with Session(engine) as session:
        solution = session.get(Solution, placeheld)
        solution.image_url, solution.image_status = PLACEHOLDER_URL, ImageStatus.placeholder
        session.add(solution)
        session.commit()
    (result,), _ = batch.run_batch(engine, settings, [approved], pipeline.GenerateOptions())
    with db.session_scope(engine, write=True) as session:
        publication = review.approve(
            session=session, settings=settings, candidate_id=result.candidate_id, actor=CLI_ACTOR
        )
        session.commit()

    code, out, _ = run_cli(capsys, "export", str(tmp_path / "out" / "catalogue.json"), "--json")

    assert code == 0
    assert json.loads(out)["exported"] == 3
    exported = json.loads((tmp_path / "out" / "catalogue.json").read_text(encoding="utf-8"))
    urls = {record["id"]: record.get("imageUrl") for record in exported["solutions"]}  # left out when there is none
    assert urls == {fresh: None, placeheld: PLACEHOLDER_URL, approved: publication.image_url}

    # The export is valid bulk-import JSON: a second database built from it exports the same document.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'second.db'}")
    code, out, _ = run_cli(capsys, "import", str(tmp_path / "out" / "catalogue.json"), "--json")
    assert (code, json.loads(out)) == (0, {"imported": 3, "updated": 0, "errors": []})
    run_cli(capsys, "export", str(tmp_path / "again.json"))
    assert json.loads((tmp_path / "again.json").read_text(encoding="utf-8")) == exported


def test_reimporting_an_older_export_never_undoes_an_approval(engine, make_solutions, tmp_path, capsys):
    settings = load_settings(dalle_image_size="256x256")
    (sid,) = make_solutions(1)
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 200)).save(out, format="PNG")
    with db.session_scope(engine, write=True) as session:
        authors = review.upload(
            session=session, settings=settings, solution_id=sid, data=out.getvalue(), actor=CLI_ACTOR
        )
        session.commit()
    (result,), _ = batch.run_batch(engine, settings, [sid], pipeline.GenerateOptions())
    with db.session_scope(engine, write=True) as session:
        review.approve(session=session, settings=settings, candidate_id=result.candidate_id, actor=CLI_ACTOR)
        session.commit()
    assert get_solution(engine, sid).image_status == ImageStatus.approved

    approved = get_solution(engine, sid).image_url

    # An older export names the author's image: a file never undoes an approval (it would tell nobody).
    old_export = write_json(tmp_path / "old.json", [solution_record(0, id=sid, imageUrl=authors.image_url)])
    code, _, _ = run_cli(capsys, "import", str(old_export))

    assert code == 0
    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (approved, ImageStatus.approved)


@pytest.mark.parametrize("role", [Role.manager, Role.product])
def test_only_admins_may_import_solutions(engine, make_solutions, role):
    make_solutions(1)
    before = snapshot(engine)

    with db.session_scope(engine, write=True) as session, pytest.raises(PermissionDenied, match="admin"):
        bulk.import_records(session=session, records=[solution_record(5)], actor=Actor("pat", role))
    with pytest.raises(PermissionDenied, match="admin"):
        bulk.import_bulk(engine, [solution_record(5)], actor=Actor("pat", role), source="bulk.json")

    assert snapshot(engine) == before
