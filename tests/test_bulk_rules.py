"""The record rules: the marketplace's zod schema literally for files, its rows as its database has them."""

from __future__ import annotations

import pytest
from bulk_fixtures import marketplace_row
from conftest import solution_record

from aixchange_images.records import check_file_record, check_record, validate_document

EMOJI = "\N{GRINNING FACE}"  # one character in Python, two UTF-16 code units in JavaScript


def problems(record: dict) -> list[str]:
    return check_record(record).problems()


# (overrides of a valid record, the one problem zod would report); lengths and URLs as JavaScript sees them
REFUSED = [
    (
        {"title": EMOJI * 50 + "a"},
        "title: must be at most 100 characters long, not 101 (JavaScript counts an emoji as 2)",
    ),
    ({"title": "ab"}, "title: must be at least 3 characters long, not 2"),
    ({"title": " a"}, "title: must be at least 3 characters long, not 2"),
    ({"description": "d" * 1001}, "description: must be at most 1000 characters long, not 1001"),
    ({"category": "X"}, "category: must be at least 2 characters long, not 1"),
    ({"provider": None}, "provider: must be a string, not null"),
    ({"launchUrl": "not a url"}, "launchUrl: must be a URL"),
    ({"launchUrl": ""}, "launchUrl: must be a URL"),
    ({"sourceCodeUrl": None}, "sourceCodeUrl: must be a string, not null"),
    ({"sourceCodeUrl": "github dot com"}, "sourceCodeUrl: must be a URL or empty"),
    ({"tokenCost": -1}, "tokenCost: must be 0 or more, not -1"),
    ({"tokenCost": 2.5}, "tokenCost: must be a whole number (the marketplace stores an integer), not 2.5"),
    ({"tokenCost": "5"}, "tokenCost: must be a number, not a string"),
    ({"tokenCost": True}, "tokenCost: must be a number, not a boolean"),
    ({"tokenCost": 2**31}, "tokenCost: must be at most 2147483647 (the marketplace stores an integer)"),
    ({"rating": 5.5}, "rating: must be between 0 and 5, not 5.5"),
    ({"status": "active"}, "status: must be exactly Active, Pending or Inactive, not 'active'"),
    ({"status": "ACTIVE"}, "status: must be exactly Active, Pending or Inactive, not 'ACTIVE'"),
    ({"tags": []}, "tags: must hold 1 to 5 tags, not 0"),
    ({"tags": list("abcdef")}, "tags: must hold 1 to 5 tags, not 6"),
    ({"tags": ["ok", 3]}, "tags.1: must be a string, not a number"),
    ({"imageUrl": None}, "imageUrl: must be a string, not null"),
    ({"eventId": "event-7"}, "eventId: must be a cuid (the id of one of the marketplace's events)"),
    ({"isPublished": "true"}, "isPublished: must be true or false, not a string"),
    ({"metadata": None}, "metadata: must be an object, not null"),
    ({"metadata": {"rating": 4.5}}, "metadata: unrecognized key 'rating'"),
    ({"metadata": {"resourceConfig": {"cpu": 4}}}, "metadata.resourceConfig.cpu: must be a string, not a number"),
    ({"metadata": {"apiEndpoints": [{"path": "/v1"}]}}, "metadata.apiEndpoints.0.method: is required"),
    ({"metadata": {"documentation": {"url": "docs"}}}, "metadata.documentation.url: must be a URL"),
    ({"metadata": {"customFields": []}}, "metadata.customFields: must be an object, not an array"),
    (
        {"id": "=HYPERLINK(1)"},
        "id: must be 1 to 40 letters, digits, '-' or '_' (a cuid), starting with a letter or digit",
    ),
    (
        {"description": "Holds a NUL \x00 character."},
        "description: holds a NUL character, which PostgreSQL cannot store",
    ),
    ({"title": "Lone \ud800 surrogate"}, "title: holds a lone UTF-16 surrogate, which is not text"),
    ({"rating": float("nan")}, "rating: must be a number, not NaN"),
    ({"tokenCost": float("inf")}, "tokenCost: is a number too large to store"),
    ({"metadata": {"customFields": {"n": 10**400}}}, "metadata.customFields.n: is a number too large to store"),
]


@pytest.mark.parametrize(("overrides", "problem"), REFUSED, ids=[p for _, p in REFUSED])
def test_a_file_record_is_refused_as_zod_would_with_one_sentence_by_path(overrides, problem):
    assert problems(solution_record(0, **overrides)) == [problem]


ACCEPTED = [
    {"title": EMOJI * 50},  # 100 code units
    {"title": "  Padded title  "},  # not trimmed
    {"launchUrl": "mailto:team@example.com"},
    {"launchUrl": "http://localhost:5678"},
    {"sourceCodeUrl": ""},
    {"tags": [""]},
    {"tokenCost": 3.0},
    {"rating": 4.5},
    {"eventId": "cm7evt0000abcdef"},
    {"imageUrl": "/api/external-images/solutions/x-1.png"},
    {"version": 2, "createdBy": "someone"},  # unknown and our own extras of the wrong type: dropped
    {"metadata": {"resourceConfig": {"cpu": "4", "disk": 9}, "customFields": {"team": "support", "n": [1, 2]}}},
    {"metadata": {"apiEndpoints": [{"path": "/v1", "method": "POST", "extra": 1}], "documentation": {"format": "md"}}},
]


@pytest.mark.parametrize("overrides", ACCEPTED, ids=[next(iter(o)) for o in ACCEPTED])
def test_a_file_record_zod_accepts_is_accepted_as_written(overrides):
    checked = check_record(solution_record(0, **overrides))
    assert checked.issues == []
    for key, column in (("title", "title"), ("launchUrl", "launch_url"), ("tags", "tags")):
        if key in overrides:
            assert checked.values[column] == overrides[key]


def test_zod_output_is_stored_defaults_applied_and_inner_unknown_keys_dropped():
    checked = check_record(
        solution_record(0, tokenCost=3.0, metadata={"resourceConfig": {"cpu": "4", "disk": 9}}, id="cm7x0000000000")
    )
    values = checked.values
    assert (values["token_cost"], type(values["token_cost"])) == (3, int)
    assert (values["status"], values["rating"], values["is_published"]) == ("Active", 0.0, True)
    assert values["metadata_"] == {"resourceConfig": {"cpu": "4"}}
    assert values["id"] == "cm7x0000000000"
    assert "image_url" not in values and "source_code_url" not in values  # left out: ours are kept


def test_every_problem_of_a_record_is_named():
    found = problems(solution_record(0, title="ab", tags=[], metadata={"rating": 1}))
    assert found == [
        "title: must be at least 3 characters long, not 2",
        "tags: must hold 1 to 5 tags, not 0",
        "metadata: unrecognized key 'rating'",
    ]


def test_a_record_that_is_not_an_object_is_named_as_such():
    assert problems("Ticket Router") == ["record: must be an object, not a string"]


def test_a_marketplace_row_is_taken_as_its_database_has_it():
    row = marketplace_row(
        1, title="T" * 150, status="PENDING", tags=[], metadata={"rating": 4, "team": "x"}, tokenCost=12, rating=4.5
    )
    checked = check_record(row)
    assert checked.issues == []
    values = checked.values
    assert (values["title"], values["status"], values["tags"], values["metadata_"]) == (
        "T" * 150,
        "Pending",
        [],
        {"rating": 4, "team": "x"},
    )
    assert (values["id"], values["token_cost"], values["rating"]) == (row["id"], 12, 4.5)
    assert (values["image_url"], values["source_code_url"], values["event_id"]) == (None, None, None)
    assert "author" not in values and "createdAt" not in values


def test_a_marketplace_row_with_null_metadata_and_tags_gets_empty_ones():
    values = check_record(marketplace_row(1, metadata=None, tags=None)).values
    assert (values["metadata_"], values["tags"]) == ({}, [])


ROW_NONSENSE = [
    ({"description": None}, "description: must be a string, not null"),
    ({"title": 42}, "title: must be a string, not a number"),
    ({"tokenCost": "5"}, "tokenCost: must be a number, not a string"),
    ({"tokenCost": 1.5}, "tokenCost: must be a whole number the marketplace can store, not 1.5"),
    ({"status": "ARCHIVED"}, "status: must be ACTIVE, PENDING or INACTIVE, not 'ARCHIVED'"),
    ({"metadata": [1]}, "metadata: must be an object or null, not an array"),
    ({"isPublished": "yes"}, "isPublished: must be true or false, not a string"),
]


@pytest.mark.parametrize(("overrides", "problem"), ROW_NONSENSE, ids=[p for _, p in ROW_NONSENSE])
def test_a_marketplace_row_is_refused_only_for_structural_nonsense(overrides, problem):
    assert problems(marketplace_row(1, **overrides)) == [problem]


def test_a_row_without_its_title_is_refused():
    row = marketplace_row(1)
    del row["title"]
    assert problems(row) == ["title: is required"]


def test_a_record_without_the_database_timestamps_is_a_file_record():
    row = marketplace_row(1)
    del row["createdAt"]
    assert "status: must be exactly Active, Pending or Inactive, not 'ACTIVE'" in problems(row)


def test_the_file_check_names_problems_by_zod_path_and_counts_records():
    good = solution_record(0)
    assert validate_document({"solutions": [good]}) == []
    assert validate_document({"solutions": [good, solution_record(1, title="ab"), 7]}) == [
        "solutions.1.title: must be at least 3 characters long, not 2",
        "solutions.2: must be an object, not a number",
    ]
    assert validate_document({"solutions": [good] * 101}) == ["solutions: must hold 1 to 100 records, not 101"]
    assert validate_document({"solutions": []}) == ["solutions: must hold 1 to 100 records, not 0"]
    assert validate_document([good]) == ["(file): must be an object, not an array"]


def test_the_file_check_holds_rows_to_zod_too():
    assert check_file_record(marketplace_row(1)).problems()[0] == "sourceCodeUrl: must be a string, not null"


# What Node 20's `new URL()` (the marketplace's zod) said of each, checked once with node on this machine.
NODE_SAYS = {
    "https://xn--a.com": False,
    "https://XN--A.com": False,
    "https://a.xn--a": False,
    "http://xn--/": False,
    "https://xn--1.com": False,
    "https://xn--abc-.com": True,
    "https://xn--ls8h.la": True,
    "https://xn--bcher-kva.example": True,
    "https://b%C3%BCcher.example": True,
    "mailto:someone@example.com": True,
    "http://localhost:5678": True,
    "https://a b.com": False,
}


@pytest.mark.parametrize(("url", "accepted"), NODE_SAYS.items(), ids=list(NODE_SAYS))
def test_a_url_is_a_url_exactly_when_node_says_so(url, accepted):
    from aixchange_images.zod import is_url

    assert is_url(url) is accepted
