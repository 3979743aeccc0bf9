"""The Marketplace page and the conflicts on Overview and Review, through Streamlit's AppTest."""

from __future__ import annotations

import pytest
from conftest import get_solution, open_page
from sqlmodel import Session, select

from aixchange_images import batch, pipeline, pull, review
from aixchange_images.auth import CLI_ACTOR, Actor
from aixchange_images.config import load_settings
from aixchange_images.models import Delivery, DeliveryState, ImageStatus, SolutionOrigin

ADMIN = Actor("alice", "admin")


def texts(at) -> str:
    parts = [*at.text, *at.caption, *at.info, *at.warning, *at.error, *at.success, *at.metric]
    return " ".join(str(getattr(p, "value", "")) + " " + str(getattr(p, "label", "")) for p in parts)


def test_the_page_says_how_to_connect_when_no_marketplace_is_set(engine):
    at = open_page("marketplace", ADMIN)

    assert "Set MARKETPLACE_DATABASE_URL" in texts(at)
    assert next(b for b in at.button if b.label == "Pull now").disabled


def test_pull_now_brings_the_marketplaces_solutions_in(engine, marketplace):
    ids = [marketplace.add_solution(title=f"Route Optimizer {i}") for i in range(3)]
    at = open_page("marketplace", ADMIN)
    assert f"/{marketplace.database}" in texts(at) and "password" not in texts(at).lower()

    next(b for b in at.button if b.label == "Pull now").click().run()

    assert not at.exception
    assert "3 new" in texts(at)
    assert all(get_solution(engine, sid).origin == SolutionOrigin.marketplace for sid in ids)


def _conflict(engine, marketplace) -> tuple[str, str]:
    """An approval the marketplace changed under us: its delivery waits as a conflict."""
    settings = load_settings()
    sid = marketplace.add_solution()
    pull.pull(engine, settings, actor=CLI_ACTOR)
    options = pipeline.GenerateOptions(size="256x256")
    (result,), _ = batch.run_batch(engine, settings, [sid], options)
    marketplace.set_image(sid, "https://cdn.example.com/[click me](http://x/phish).png")
    with Session(engine, expire_on_commit=False) as session:
        publication = review.approve(
            session=session, settings=settings, candidate_id=result.candidate_id, actor=CLI_ACTOR
        )
        session.commit()
    from aixchange_images import deliveries

    deliveries.push(engine, settings)
    return sid, publication.image_url


def test_overview_shows_a_conflict_and_keep_theirs_settles_it(engine, marketplace):
    sid, ours = _conflict(engine, marketplace)
    at = open_page("overview", ADMIN)
    assert "changed in the marketplace" in texts(at)
    assert "https://cdn.example.com/[click me](http://x/phish).png" in [t.value for t in at.text]  # literal

    next(b for b in at.button if b.label == "Keep theirs").click().run()

    assert not at.exception
    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (marketplace.image_url(sid), ImageStatus.uploaded)
    with Session(engine) as session:
        assert session.exec(select(Delivery.state)).all() == [DeliveryState.kept_theirs]


def test_use_ours_on_the_review_page_writes_ours_into_the_row(engine, marketplace):
    sid, ours = _conflict(engine, marketplace)
    settings = load_settings()
    options = pipeline.GenerateOptions(size="256x256", use_cache=False)
    batch.run_batch(engine, settings, [sid], options)  # a new candidate puts the solution in the queue
    at = open_page("review", ADMIN)
    assert "The marketplace shows another image" in texts(at)

    next(b for b in at.button if b.label == "Use ours").click().run()

    assert not at.exception
    assert marketplace.image_url(sid) == ours


def test_a_manager_cannot_open_the_marketplace_page(engine, marketplace):
    at = open_page("overview", Actor("mia", "manager"))
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not routed for the role
        at.switch_page("pages/marketplace.py")
    assert not [b for b in at.button if b.label in ("Pull now", "Keep theirs", "Use ours")]
