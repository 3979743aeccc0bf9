"""The command line starts quickly: `--help` and bad usage load no database, dataframe or image code.

Figures are in benchmarks/cli_startup.py; this only guards what is imported, so the gain cannot
slip back unnoticed when a module gains a top-level import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from aixchange_images import cli_parser
from aixchange_images.models import ImageStatus

HEAVY = ("sqlalchemy", "sqlmodel", "pandas", "PIL", "openai", "huey", "pydantic", "numpy")


def imported_by(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the command in a fresh interpreter; the top-level packages it imported (`-X importtime`)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aixchange_images", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return proc, {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines}


@pytest.mark.parametrize(
    "args",
    [["--help"], ["generate", "--help"], ["users", "add", "--help"], ["jobs", "cancel", "--help"]],
    ids=" ".join,
)
def test_help_loads_no_database_dataframe_or_image_code(args: list[str]):
    proc, packages = imported_by(*args)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "usage: python -m aixchange_images" in proc.stdout
    assert "aixchange_images" in packages  # the listing works: an empty one would pass vacuously
    assert not packages & set(HEAVY), sorted(packages & set(HEAVY))


def test_bad_usage_is_answered_before_anything_heavy_loads():
    proc, packages = imported_by("generate", "--candidates", "2")
    assert proc.returncode == 2
    assert "one of the arguments --solution --missing --all is required" in proc.stderr
    assert not packages & set(HEAVY), sorted(packages & set(HEAVY))


def test_the_parsers_image_statuses_are_the_models():
    assert [status.value for status in ImageStatus] == cli_parser.IMAGE_STATUSES


@pytest.mark.skipif(bool(os.environ.get("TEST_POSTGRES_URL")), reason="the quick path reads SQLite files")
def test_stats_on_a_migrated_sqlite_file_loads_neither_sqlalchemy_nor_the_tables(engine):
    proc, packages = imported_by("stats", "--json")  # the database is the test's, migrated by `engine`
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}

    assert proc.returncode == 0, proc.stderr[-500:]
    assert json.loads(proc.stdout)["attempts"] == 0
    assert "aixchange_images.quickstats" in modules  # it took the quick path
    assert not packages & {*HEAVY} - {"pydantic"}, sorted(packages & set(HEAVY))  # pydantic: the settings
    assert not {"aixchange_images.models", "aixchange_images.metrics"} & modules
