"""Importing bulk files: what the marketplace hands out, zod-literal files, bad bytes, ids, chunks, a writer alongside."""

from __future__ import annotations

import json
import threading

import pytest
from bulk_fixtures import marketplace_row, one_sentence, run_cli, snapshot, write
from conftest import get_solution, solution_record
from sqlalchemy import text
from sqlmodel import Session, select

from aixchange_images import batch, bulk, catalogue, db, pipeline
from aixchange_images.auth import CLI_ACTOR
from aixchange_images.config import load_settings
from aixchange_images.models import PUBLIC_PREFIX, AttemptStatus, AuditEvent, ImageStatus, Solution, SolutionOrigin
from aixchange_images.records import marketplace_record


def imported(capsys, path, expect: int = 0) -> dict:
    code, out, err = run_cli(capsys, "import", str(path), "--json")
    assert code == expect, err
    return json.loads(out)


def stored(engine) -> dict[str, Solution]:
    with Session(engine) as session:
        return {s.id: s for s in session.exec(select(Solution)).all()}


# -- what the marketplace hands out -----------------------------------------------------------------
def download_json() -> dict:
    """The marketplace's "Download JSON": `{"solutions": [raw rows]}`, each with its nulls, author and _count."""
    return {
        "solutions": [
            marketplace_row(1),  # made through its form: metadata null, no tags, no image
            marketplace_row(
                2,
                title="An AI solution whose title is well over the hundred characters the import form allows" * 2,
                status="PENDING",
                imageUrl=PUBLIC_PREFIX + "marketplace_solution_2-1740153503444.png",
                metadata={"apiEndpoints": [{"path": "/v1", "method": "GET"}], "rating": 4},
                tags=["nlp"],
                tokenCost=40,
                rating=4.5,
            ),
            marketplace_row(
                3, status="INACTIVE", eventId="cm7evt0000abcdefghijklmn", sourceCodeUrl="https://github.com/x"
            ),
        ]
    }


def test_the_marketplace_download_json_imports_with_its_ids_nulls_and_casing(engine, tmp_path, capsys):
    document = download_json()

    report = imported(capsys, write(tmp_path / "solutions-export.json", document))

    assert report == {"imported": 3, "updated": 0, "errors": []}
    first, second, third = (stored(engine)[row["id"]] for row in document["solutions"])
    assert (first.metadata_, first.tags, first.status, first.image_url, first.image_status) == (
        {},
        [],
        "Active",
        None,
        ImageStatus.none,
    )
    assert (second.title, second.status, second.token_cost, second.rating) == (
        document["solutions"][1]["title"],
        "Pending",
        40,
        4.5,
    )
    assert (second.image_status, second.metadata_["rating"]) == (ImageStatus.uploaded, 4)  # not one of ours
    assert (third.status, third.event_id, third.source_code_url) == (
        "Inactive",
        "cm7evt0000abcdefghijklmn",
        "https://github.com/x",
    )
    assert {s.author_id for s in (first, second, third)} == {"cm7aaaaaaaaaaaaaaaaaaaaaa"}
    assert {s.origin for s in (first, second, third)} == {SolutionOrigin.local}  # a pull, not a file, links them


def test_the_admin_api_bare_array_imports_the_same_rows(engine, tmp_path, capsys):
    rows = download_json()["solutions"]

    report = imported(capsys, write(tmp_path / "api.json", rows))

    assert (report["imported"], report["errors"]) == (3, [])
    assert sorted(stored(engine)) == sorted(row["id"] for row in rows)


def test_reimporting_the_download_updates_the_same_solutions_by_id(engine, tmp_path, capsys):
    document = download_json()
    imported(capsys, write(tmp_path / "first.json", document))
    document["solutions"][0]["title"] = "Renamed in the marketplace"

    report = imported(capsys, write(tmp_path / "again.json", document))

    assert (report["imported"], report["updated"]) == (0, 3)
    assert stored(engine)[document["solutions"][0]["id"]].title == "Renamed in the marketplace"


def test_a_marketplace_row_with_nonsense_is_one_error_and_the_rest_import(engine, tmp_path, capsys):
    rows = [marketplace_row(1), marketplace_row(2, description=None), marketplace_row(3, tokenCost="5")]

    report = imported(capsys, write(tmp_path / "api.json", rows), expect=1)

    assert report["imported"] == 1
    assert report["errors"] == [
        {"title": "Marketplace solution 2", "error": "description: must be a string, not null"},
        {"title": "Marketplace solution 3", "error": "tokenCost: must be a number, not a string"},
    ]


def test_editing_a_marketplace_solution_keeps_the_metadata_its_row_had(engine, tmp_path, capsys):
    row = marketplace_row(1, tags=["nlp"], metadata={"team": "support", "rating": 4})
    imported(capsys, write(tmp_path / "api.json", [row]))
    fields = {k: v for k, v in marketplace_record(stored(engine)[row["id"]]).items() if k not in ("id", "metadata")}

    with db.session_scope(engine, write=True) as session:
        catalogue.save_solution(
            session=session, actor=CLI_ACTOR, fields={**fields, "title": "Renamed"}, solution_id=row["id"]
        )
        session.commit()

    solution = stored(engine)[row["id"]]
    assert (solution.title, solution.metadata_) == ("Renamed", {"team": "support", "rating": 4})


# -- ids and titles -----------------------------------------------------------------------------------
def test_a_record_with_an_id_never_merges_into_another_solution_by_title(engine, make_solutions, tmp_path, capsys):
    (existing,) = make_solutions(1)
    record = solution_record(0, id="cm7new0000000000000000001", description="A different solution of the same name.")

    report = imported(capsys, write(tmp_path / "bulk.json", {"solutions": [record]}))

    assert (report["imported"], report["updated"]) == (1, 0)
    solutions = stored(engine)
    assert sorted(solutions) == sorted([existing, "cm7new0000000000000000001"])
    assert solutions[existing].description != "A different solution of the same name."


@pytest.mark.parametrize("chunk_size", [1, 500], ids=["a chunk per record", "one chunk"])
def test_ids_and_titles_within_a_file_mean_the_same_whatever_the_chunks(engine, chunk_size):
    x = "cm7x00000000000000000000x"
    records = [
        solution_record(0, id=x, title="First name"),
        solution_record(1, title="First name", description="Found by the title the record with the id gave."),
        solution_record(2, id=x, title="Second name"),
        solution_record(3, title="First name", description="Nobody has this title any more: a new solution."),
    ]

    report = bulk.import_bulk(engine, records, actor=CLI_ACTOR, source="bulk.json", chunk_size=chunk_size)

    assert (report.imported, report.updated, report.errors) == (2, 2, [])  # the second record updated x
    solutions = stored(engine)
    assert len(solutions) == 2 and solutions[x].title == "Second name"
    (other,) = [s for sid, s in solutions.items() if sid != x]
    assert (other.title, other.description) == ("First name", "Nobody has this title any more: a new solution.")


def test_an_import_never_touches_the_marketplace_link(engine, make_solutions, tmp_path, capsys):
    (sid,) = make_solutions(1)
    with Session(engine) as session:
        solution = session.get(Solution, sid)
        solution.origin, solution.marketplace_url = SolutionOrigin.marketplace, "/placeholder-image.jpg"
        session.add(solution)
        session.commit()

    imported(capsys, write(tmp_path / "bulk.json", {"solutions": [solution_record(0, id=sid, title="Renamed")]}))

    solution = get_solution(engine, sid)
    assert (solution.title, solution.origin, solution.marketplace_url) == (
        "Renamed",
        "marketplace",
        "/placeholder-image.jpg",
    )


def test_a_file_record_is_taken_as_zod_reads_it(engine, tmp_path, capsys):
    records = [
        solution_record(0, title="  Padded  ", launchUrl="mailto:team@example.com", tags=[""], eventId="cm7evt0000abc"),
        solution_record(1, status="active"),
        solution_record(2, metadata={"rating": 4}),
        solution_record(3, imageUrl=None),
    ]

    report = imported(capsys, write(tmp_path / "bulk.json", {"solutions": records}), expect=1)

    assert report["imported"] == 1
    assert [e["error"] for e in report["errors"]] == [
        "status: must be exactly Active, Pending or Inactive, not 'active'",
        "metadata: unrecognized key 'rating'",
        "imageUrl: must be a string, not null",
    ]
    (solution,) = stored(engine).values()
    assert (solution.title, solution.launch_url, solution.tags, solution.event_id) == (
        "  Padded  ",
        "mailto:team@example.com",
        [""],
        "cm7evt0000abc",
    )


# -- files that cannot be read as a whole: exit 2, one sentence, nothing changed -----------------------
GOOD = json.dumps({"solutions": [solution_record(5)]})
UNREADABLE = [
    ("bad-utf8.json", GOOD.encode()[:40] + b"\xff\xfe" + GOOD.encode()[40:], "is not UTF-8: byte 0xff at offset 40"),
    ("utf16.json", GOOD.encode("utf-16"), "is UTF-16 text"),
    ("nan.json", GOOD.replace('"tags"', '"rating": NaN, "tags"').encode(), "NaN (line 1) is not a JSON value"),
    ("inf.json", b'{"solutions": [\n{"rating": -Infinity}]}', "-Infinity (line 2) is not a JSON value"),
    ("deep.json", b'{"solutions": ' + b"[" * 100_000, "nests arrays or objects more than 34 levels deep"),
    ("deep-ok.json", b'{"solutions": [' + b"[" * 500 + b"]" * 500 + b"]}", "nests arrays or objects more than 34"),
    ("scalar.json", b"42", 'has no "solutions" list'),
    ("null.json", b"null", 'has no "solutions" list'),
    ("solutions-number.json", b'{"solutions": 5}', 'has no "solutions" list'),
    ("empty-array.json", b"[]", "holds no solutions"),
    ("huge.csv", b"title,description\nA," + b"x" * 200_000 + b"\n", "line 2 cannot be read as CSV: a field is longer"),
    ("bad-utf8.csv", b"title,description\nCaf\xe9,Serves coffee to the whole office.\n", "offset 21 (line 2)"),
]


@pytest.mark.parametrize(("name", "data", "says"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_an_unreadable_file_exits_2_with_one_sentence_and_changes_nothing(
    engine, make_solutions, tmp_path, capsys, name, data, says
):
    make_solutions(1)
    (tmp_path / name).write_bytes(data)
    before = snapshot(engine)

    code, out, err = run_cli(capsys, "import", str(tmp_path / name), "--json")

    assert (code, out) == (2, "")
    assert says in one_sentence(err)
    assert snapshot(engine) == before


# -- records no database could hold: one error each, the rest imported ------------------------------------
def test_absurd_numbers_nul_and_lone_surrogates_are_errors_of_their_own_records(engine, tmp_path, capsys):
    body = ",\n".join(
        [
            json.dumps(solution_record(0)),
            json.dumps(solution_record(1))[:-1] + ', "tokenCost": 1' + "0" * 5000 + "}",
            json.dumps(solution_record(2, metadata={"customFields": {}}))[:-3] + '"n": 1e400}}}',
            json.dumps(solution_record(3, description="Holds a NUL \u0000 character here.")),
            json.dumps(solution_record(4)).replace("Solution number 4", "Lone \\ud800 4"),
        ]
    )
    (tmp_path / "odd.json").write_text('{"solutions": [\n' + body + "\n]}", encoding="utf-8")

    report = imported(capsys, tmp_path / "odd.json", expect=1)

    assert report["imported"] == 1
    assert [e["error"] for e in report["errors"]] == [
        "tokenCost: is a number too large to store",
        "metadata.customFields.n: is a number too large to store",
        "description: holds a NUL character, which PostgreSQL cannot store",
        "title: holds a lone UTF-16 surrogate, which is not text",
    ]
    assert [s.title for s in stored(engine).values()] == ["Solution number 0"]


def test_a_csv_with_nul_bytes_and_typed_columns(engine, tmp_path, capsys):
    lines = [
        "title,description,category,provider,launchUrl,tags,tokenCost,rating,isPublished,metadata",
        'Ticket Router,Routes support tickets to teams.,NLP,Acme Labs,https://e.com/r,support|nlp,5,4.5,false,"{""customFields"": {""a"": 1}}"',
        "Nul Router,Routes \x00 tickets to the teams.,NLP,Acme Labs,https://e.com/n,support,0,0,true,",
        "Text Cost,Routes support tickets to teams.,NLP,Acme Labs,https://e.com/t,support,five,0,true,",
    ]
    (tmp_path / "bulk.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = imported(capsys, tmp_path / "bulk.csv", expect=1)

    assert report["imported"] == 1
    assert [(e["title"], e["error"]) for e in report["errors"]] == [
        ("Nul Router", "description: holds a NUL character, which PostgreSQL cannot store"),
        ("Text Cost", "tokenCost: must be a number, not a string"),
    ]
    (router,) = stored(engine).values()
    assert (router.token_cost, router.rating, router.is_published, router.metadata_) == (
        5,
        4.5,
        False,
        {"customFields": {"a": 1}},
    )


# -- large files: chunks, progress, one audit event, a writer alongside ---------------------------------
def test_a_large_import_writes_in_chunks_with_progress_and_one_audit_event(engine, tmp_path, capsys):
    records = [solution_record(i) for i in range(1_200)]

    code, out, err = run_cli(capsys, "import", str(write(tmp_path / "big.json", {"solutions": records})), "--json")

    assert (code, json.loads(out)["imported"]) == (0, 1_200)
    assert [line for line in err.splitlines() if line.startswith("[")] == [
        "[500/1200] solutions written",
        "[1000/1200] solutions written",
        "[1200/1200] solutions written",
    ]
    with Session(engine) as session:
        (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == "catalogue.import")).all()
    assert (event.target, event.detail["imported"], event.detail["refused"]) == ("big.json", 1_200, 0)


def test_another_writer_is_not_starved_while_a_large_import_runs(engine, make_solutions, tmp_path):
    """Between two chunks the import holds no lock: a generation started then finishes before the next chunk."""
    (sid,) = make_solutions(1, title="Waiting for its image")
    settings = load_settings(dalle_image_size="256x256")
    first_chunk_done, generated = threading.Event(), threading.Event()
    outcome: list = []

    def generate() -> None:
        first_chunk_done.wait(timeout=60)
        try:
            outcome.extend(batch.run_batch(engine, settings, [sid], pipeline.GenerateOptions())[0])
        except Exception as exc:  # noqa: BLE001 - the test reports whatever stopped the writer
            outcome.append(exc)
        generated.set()

    def progress(done: int, total: int) -> None:
        if done == 100:
            first_chunk_done.set()
            assert generated.wait(timeout=60), "the generation did not finish while the import paused"

    writer = threading.Thread(target=generate)
    writer.start()
    report = bulk.import_bulk(
        engine, [solution_record(i) for i in range(1, 301)], actor=CLI_ACTOR, source="big.json", progress=progress,
        chunk_size=100,
    )  # fmt: skip
    writer.join(timeout=60)

    assert report.imported == 300
    (result,) = outcome
    assert getattr(result, "status", result) == AttemptStatus.succeeded


def test_a_row_the_database_refuses_costs_only_itself(engine, tmp_path, capsys):
    """A failure only the database sees (here a trigger) is retried a savepoint per record: the chunk survives."""
    poison(engine, "Solution number 2")
    records = [solution_record(i) for i in range(5)]

    report = imported(capsys, write(tmp_path / "bulk.json", {"solutions": records}), expect=1)

    assert report["imported"] == 4
    (error,) = report["errors"]
    assert error["title"] == "Solution number 2"
    assert error["error"].startswith("record: the database refused it (") and "poisoned" in error["error"]
    assert sorted(s.title for s in stored(engine).values()) == [f"Solution number {i}" for i in (0, 1, 3, 4)]


def poison(engine, title: str) -> None:
    """A trigger that makes the database itself refuse one title."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.title = '{title}' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(text("CREATE TRIGGER poison BEFORE INSERT ON solution FOR EACH ROW EXECUTE FUNCTION poison()"))
        else:
            conn.execute(
                text(
                    f"CREATE TRIGGER poison BEFORE INSERT ON solution WHEN NEW.title = '{title}' "
                    "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
                )
            )


def test_the_in_session_import_counts_like_the_file_import(engine):
    with db.session_scope(engine, write=True) as session:
        report = bulk.import_records(
            session=session, records=[solution_record(0), solution_record(0), "junk"], actor=CLI_ACTOR
        )
        session.commit()

    assert (report.imported, report.updated) == (1, 1)
    assert report.errors == [{"title": "(record 3)", "error": "record: must be an object, not a string"}]


def test_a_title_in_any_script_matches_itself_in_any_case_on_every_database(engine, tmp_path, capsys):
    first = solution_record(1, title="Ärzte-Assistent für Befunde")
    write(tmp_path / "a.json", {"solutions": [first]})
    write(tmp_path / "b.json", {"solutions": [{**first, "title": "ÄRZTE-ASSISTENT FÜR BEFUNDE"}]})

    imported(capsys, tmp_path / "a.json")
    report = imported(capsys, tmp_path / "b.json")

    assert (report["imported"], report["updated"]) == (0, 1)
    assert [s.title for s in stored(engine).values()] == ["ÄRZTE-ASSISTENT FÜR BEFUNDE"]
