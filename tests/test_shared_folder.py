"""The publish folder is shared with the marketplace's web container (another uid): what it finds there."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlmodel import Session
from test_reencode import same_picture

from aixchange_images import batch, cli, pipeline, review
from aixchange_images.auth import CLI_ACTOR
from aixchange_images.config import Settings, load_settings
from aixchange_images.db import session_scope
from aixchange_images.models import Candidate

SMALL = ("--size", "256x256")


@pytest.fixture
def local_settings() -> Settings:
    return load_settings(dalle_image_size="256x256")


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def generate_and_approve(engine, settings: Settings, solution_id: str) -> tuple[Path, Path]:
    """A candidate from the local provider, approved: (its file in the data folder, the published file)."""
    (result,) = batch.run_batch(
        engine, settings, [solution_id], pipeline.GenerateOptions(use_cache=False, concurrency=1)
    )[0]
    with session_scope(engine, write=True) as session:
        publication = review.approve(
            session=session, settings=settings, candidate_id=result.candidate_id, actor=CLI_ACTOR
        )
        session.commit()
    with Session(engine) as session:
        candidate = session.get(Candidate, result.candidate_id)
    return settings.data_dir / candidate.file_path, settings.publish_dir / publication.file_name


@pytest.mark.parametrize("mask", [0o077, 0o027], ids=["umask-077", "umask-027"])
def test_published_files_are_world_readable_and_new_folders_traversable_under_any_umask(
    engine, local_settings, make_solutions, mask
):
    (sid,) = make_solutions(1)

    with umask(mask):
        kept, published = generate_and_approve(engine, local_settings, sid)

    assert mode(published) == 0o644
    root = local_settings.external_images_path
    assert {p.name: mode(p) for p in (root, root / "solutions", root / ".incoming")} == {
        "external-images": 0o755,
        "solutions": 0o755,
        ".incoming": 0o755,
    }
    # Candidates are ours alone: they keep what the umask gives, and publishing did not widen them.
    assert mode(kept) == 0o666 & ~mask
    assert same_picture(published.read_bytes(), kept.read_bytes()) and not os.path.samefile(published, kept)


def test_a_publish_folder_that_exists_keeps_the_mode_its_operator_gave_it(engine, local_settings, make_solutions):
    (sid,) = make_solutions(1)
    shared = local_settings.publish_dir
    shared.mkdir(parents=True)
    os.chmod(shared, 0o2775)  # group-writable and setgid, shared with the marketplace on purpose
    os.chmod(local_settings.external_images_path, 0o775)

    with umask(0o077):
        _, published = generate_and_approve(engine, local_settings, sid)

    assert (mode(shared), mode(local_settings.external_images_path)) == (0o2775, 0o775)
    assert mode(published) == 0o644 and mode(local_settings.external_images_path / ".incoming") == 0o755


def test_init_makes_the_publish_folder_traversable_under_a_strict_umask(engine, capsys):
    with umask(0o077):
        assert cli.main(["init", "--json"]) == 0

    publish_dir = Path(json.loads(capsys.readouterr().out)["publish_dir"])
    assert mode(publish_dir) == mode(publish_dir.parent) == 0o755
