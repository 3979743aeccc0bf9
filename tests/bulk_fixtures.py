"""What bulk-file tests share: the marketplace's rows as it hands them out, and the CLI run in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel

from aixchange_images import cli

AUTHOR = {"id": "cm7aaaaaaaaaaaaaaaaaaaaaa", "name": "Ada Admin", "email": "ada@example.com"}


def marketplace_row(i: int, **overrides: Any) -> dict[str, Any]:
    """One solution as the marketplace's admin API and its "Download JSON" give it: a raw Prisma row
    of its "Solution" table with the author and the review count it includes, timestamps in ISO."""
    row = {
        "id": f"cm7row{i:04d}abcdefghijklmno",
        "title": f"Marketplace solution {i}",
        "description": f"Answers questions about invoices for customer number {i}.",
        "version": "1.0.0",
        "isPublished": True,
        "authorId": AUTHOR["id"],
        "tags": [],
        "createdAt": "2025-02-21T15:58:23.444Z",
        "updatedAt": "2025-02-22T09:01:02.003Z",
        "publishedAt": None,
        "metadata": None,
        "category": "AppliedDataScience",
        "imageUrl": None,
        "launchUrl": "https://example.com/app",
        "provider": "Acme Labs",
        "rating": 0,
        "sourceCodeUrl": None,
        "status": "ACTIVE",
        "tokenCost": 0,
        "downvotes": 0,
        "totalVotes": 3,
        "upvotes": 3,
        "eventId": None,
        "author": dict(AUTHOR),
        "_count": {"reviews": 2},
    }
    row.update(overrides)
    return row


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command line in-process; argparse's own exits count as exit codes too."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def snapshot(engine) -> dict[str, list[str]]:
    """Every row of every table, to prove that nothing changed."""
    with engine.connect() as conn:
        return {t.name: sorted(map(repr, conn.execute(t.select()))) for t in SQLModel.metadata.sorted_tables}


def one_sentence(err: str) -> str:
    """The single `error: ...` line a refused file leaves on stderr."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and lines[0].endswith("."), lines[0]
    return lines[0]
