"""The automatic checks on images the tests draw, and what auto-approve does with their flags."""

from __future__ import annotations

import io
import os
import threading

import nudenet
import pytest
from conftest import get_solution
from PIL import Image, ImageDraw, ImageEnhance
from sqlmodel import Session, select

from aixchange_images import admin, auth, batch, checks, inspections, lettering, pipeline
from aixchange_images.config import ConfigError, load_settings
from aixchange_images.models import (
    NOT_CHOSEN,
    AuditEvent,
    Candidate,
    CandidateCheck,
    CandidateState,
    ImageStatus,
    Solution,
)


def card_settings(**overrides):
    """The checks as they are out of the box (conftest lowers the minimum side for small test images)."""
    return load_settings(check_min_side_px=512, **overrides)


def flat(size=(1024, 1024), colour=(236, 238, 240)) -> Image.Image:
    return Image.new("RGB", size, colour)


def lettered(text: str, size: int = 96, canvas=(1024, 1024)) -> Image.Image:
    """Dark lettering in Inter (the font the local cards use) on a light background with a band of colour."""
    image = Image.new("RGB", canvas, (245, 243, 236))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, canvas[1] - 160, canvas[0], canvas[1]), fill=(40, 90, 160))
    draw.text((60, 300), text, font=lettering.font(size, 700), fill=(20, 20, 30))
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def run(engine, settings, ids, **options):
    """A batch, then its last checks (a batch without auto-approve returns before they are done)."""
    results, summary = batch.run_batch(engine, settings, ids, pipeline.GenerateOptions(**options))
    inspections.finish()
    return results, summary


def candidate_of(engine, candidate_id) -> tuple[Candidate, dict[str, CandidateCheck]]:
    with Session(engine) as session:
        candidate = session.get(Candidate, candidate_id)
        rows = session.exec(select(CandidateCheck).where(CandidateCheck.candidate_id == candidate_id)).all()
    return candidate, {r.name: r for r in rows}


# -- each check ------------------------------------------------------------------------------------
def test_a_flat_picture_is_blank_and_the_sentence_says_why():
    verdict = checks.blank(flat(), card_settings())

    assert verdict.flagged
    assert verdict.sentence.startswith("The picture is almost flat: its colours vary by 0.0")
    assert verdict.evidence == {"spread": 0.0, "detail": 0.0}


def test_a_nearly_empty_picture_with_a_speck_is_blank_but_lettering_is_not():
    speck = flat()
    ImageDraw.Draw(speck).ellipse((500, 500, 506, 506), fill=(0, 0, 0))

    assert checks.blank(speck, card_settings()).flagged
    assert not checks.blank(lettered("Quarterly Planner"), card_settings()).flagged


def test_a_clean_card_from_the_local_provider_raises_nothing(engine, make_solutions):
    settings = card_settings()
    (sid,) = make_solutions(1, title="Forge Churn Analyzer", description="Predicts which customers will leave")

    (result,), _ = run(engine, settings, [sid], size="1024x1024")

    candidate, rows = candidate_of(engine, result.candidate_id)
    assert candidate.checked_at is not None and candidate.flags == ""
    assert sorted(rows) == sorted(checks.NAMES)
    assert not any(r.flagged for r in rows.values()), {r.name: r.sentence for r in rows.values()}
    assert "Forge" in rows["text_garbled"].evidence["words"]  # the title was read, and counts as correct
    assert rows["wrong_size"].sentence == "The image is 1024x1024 pixels."


def test_misspelt_large_lettering_is_garbled_with_the_words_as_evidence():
    verdict = checks.text_garbled(
        lettered("Welcom to Analitycs"), checks.known_words("Sales Forecast"), card_settings()
    )

    assert verdict.flagged
    assert verdict.evidence["unknown"] == ["Welcom", "Analitycs"]
    assert verdict.sentence == 'The lettering reads "Welcom", "Analitycs": not English words, nor the solution\'s own.'


def test_the_solutions_own_words_count_as_correct():
    image = lettered("Zyntrix Qorvana")
    settings = card_settings()

    own = checks.text_garbled(image, checks.known_words("Zyntrix Qorvana: invoices read for you"), settings)
    other = checks.text_garbled(image, checks.known_words("Sales Forecast"), settings)

    assert not own.flagged and own.sentence == 'The large lettering ("Zyntrix", "Qorvana") is spelt correctly.'
    assert other.flagged and other.evidence["unknown"] == ["Zyntrix", "Qorvana"]


def test_small_lettering_is_not_large_lettering():
    image = lettered("Welcom to Analitycs", size=22)  # about 2% of the height: body text, not a headline

    verdict = checks.text_garbled(image, set(), card_settings())

    assert not verdict.flagged and verdict.evidence["unknown"] == []
    tolerant = checks.text_garbled(image, set(), card_settings(check_text_min_height=0.01))
    assert tolerant.flagged  # the threshold is a setting: read smaller lettering too


def test_without_tesseracts_english_model_the_lettering_check_says_it_did_not_run(monkeypatch):
    monkeypatch.delenv("TESSDATA_PREFIX", raising=False)
    monkeypatch.setattr(checks, "TESSDATA", ("/nonexistent",))
    found = []
    thread = threading.Thread(  # a new check thread: its tesseract is made, and cannot be
        target=lambda: found.append(checks.text_garbled(lettered("Welcom"), set(), card_settings()))
    )
    thread.start()
    thread.join()

    (verdict,) = found

    assert not verdict.flagged
    assert verdict.sentence == (
        "Not checked: Debian's tesseract-ocr is not installed (sudo apt-get install tesseract-ocr)."
    )


def test_the_nudity_detector_runs_on_the_model_in_its_package_and_finds_nothing_on_a_card():
    assert os.path.isfile(os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx"))  # shipped, not downloaded
    card = lettered("Route Optimizer")

    assert checks.detections(card) == []
    verdict = checks.unsafe(card, card_settings())
    assert not verdict.flagged and verdict.sentence == "The nudity detector found nothing unsafe (highest score 0.00)."


def test_exposed_parts_scored_past_the_threshold_are_unsafe_and_covered_ones_are_not():
    found = [
        {"class": "BUTTOCKS_EXPOSED", "score": 0.81, "box": [10, 10, 50, 50]},
        {"class": "FACE_FEMALE", "score": 0.95, "box": [0, 0, 9, 9]},
        {"class": "BELLY_COVERED", "score": 0.9, "box": [0, 0, 9, 9]},
    ]

    verdict = checks.unsafe(flat(), card_settings(), found=found)

    assert verdict.flagged and verdict.score == 0.81
    assert verdict.sentence == "The nudity detector found exposed buttocks (score 0.81)."
    assert verdict.evidence == {"detections": [found[0]]}
    assert not checks.unsafe(flat(), card_settings(check_unsafe_min_score=0.9), found=found).flagged


def test_wrong_size_names_what_was_asked_and_the_smallest_side_allowed():
    settings = card_settings()

    assert checks.wrong_size(1536, 1024, "1024x1024", settings).sentence == (
        "The image is 1536x1024 pixels, not the 1024x1024 asked for."
    )
    small = checks.wrong_size(400, 400, None, settings)  # an upload: nothing was asked
    assert (
        small.flagged and small.sentence == "The image is 400x400 pixels; a side under 512 px is too small for a card."
    )
    assert not checks.wrong_size(1536, 1024, "auto", settings).flagged


def test_a_near_copy_of_another_solutions_card_is_a_duplicate_naming_it_and_does_not_block(
    engine, make_solutions, standin, openai_settings, monkeypatch
):
    monkeypatch.setenv("CHECK_MIN_SIDE_PX", "512")
    settings = load_settings(image_max_retry_wait_seconds=2.0, image_timeout_seconds=5.0)
    first, second = make_solutions(2)
    original = lettered("Forge Churn Analyzer")
    near = ImageEnhance.Brightness(original.resize((1000, 1000)).resize((1024, 1024))).enhance(1.08)
    standin.enqueue("picture", data=png(original))
    (made,), _ = run(engine, settings, [first], size="1024x1024", auto_approve=True)
    standin.enqueue("picture", data=png(near))

    (copy,), _ = run(engine, settings, [second], size="1024x1024", auto_approve=True)

    candidate, rows = candidate_of(engine, copy.candidate_id)
    title = get_solution(engine, first).title
    assert candidate.flags.split() == ["duplicate"]
    assert rows["duplicate"].sentence.startswith(f"It looks like {title}'s card (")
    assert rows["duplicate"].evidence["solution_id"] == first
    assert rows["duplicate"].evidence["candidate_id"] == made.candidate_id
    assert copy.published_url is not None  # a duplicate warns; it is still published when it is the only one


def test_two_different_local_cards_are_not_duplicates(engine, make_solutions):
    ids = make_solutions(1, title="Legal Clause Finder") + make_solutions(1, title="Code Review Helper")

    results, _ = run(engine, card_settings(), ids, size="1024x1024", concurrency=1)

    for result in results:
        _, rows = candidate_of(engine, result.candidate_id)
        assert not rows["duplicate"].flagged, rows["duplicate"].sentence


# -- settings --------------------------------------------------------------------------------------
def test_which_checks_run_is_a_setting(engine, make_solutions):
    (sid,) = make_solutions(1)

    (result,), _ = run(engine, load_settings(checks_enabled="wrong_size, blank"), [sid])

    _, rows = candidate_of(engine, result.candidate_id)
    assert sorted(rows) == ["blank", "wrong_size"]
    with pytest.raises(ConfigError, match="'blurry' is not a check; name some of blank, text_garbled"):
        load_settings(checks_enabled="blank,blurry")


def test_changing_a_threshold_is_audited(engine, settings):
    admin_actor = auth.Actor("ada", "admin")
    with Session(engine) as session:
        admin.save_overrides(
            session=session, settings=settings, actor=admin_actor, changes={"check_duplicate_max_distance": 6}
        )
        session.commit()
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "settings.change")).one()
        with pytest.raises(ConfigError):
            admin.save_overrides(
                session=session, settings=settings, actor=admin_actor, changes={"check_unsafe_min_score": 7}
            )
    assert (event.target, event.detail) == ("check_duplicate_max_distance", {"old": None, "new": 6})
    with Session(engine) as session:
        assert admin.effective_settings(session=session, settings=settings).check_duplicate_max_distance == 6


# -- auto-approve ----------------------------------------------------------------------------------
def test_auto_approve_publishes_the_unflagged_candidate_and_closes_the_flagged_one(
    engine, make_solutions, standin, openai_settings
):
    (sid,) = make_solutions(1)
    standin.enqueue("picture", data=png(flat((256, 256))))  # one of the two replies is a flat picture

    results, summary = run(engine, openai_settings, [sid], size="256x256", candidates=2, auto_approve=True)

    assert summary["published"] == 1
    published = next(r for r in results if r.published_url)
    other = next(r for r in results if not r.published_url)
    good, _ = candidate_of(engine, published.candidate_id)
    blank, rows = candidate_of(engine, other.candidate_id)
    assert good.state == CandidateState.approved and good.flags == ""
    assert (blank.state, blank.reject_reason, blank.flags.split()) == (CandidateState.rejected, NOT_CHOSEN, ["blank"])
    assert rows["blank"].flagged
    assert get_solution(engine, sid).image_url == published.published_url


def test_auto_approve_leaves_a_solution_with_only_flagged_candidates_pending_for_a_person(
    engine, make_solutions, standin, openai_settings
):
    (sid,) = make_solutions(1)
    standin.enqueue("picture", data=png(flat((256, 256))))

    (result,), summary = run(engine, openai_settings, [sid], size="256x256", auto_approve=True)

    assert result.status == "succeeded" and result.published_url is None and summary["published"] == 0
    candidate, _ = candidate_of(engine, result.candidate_id)
    assert (candidate.state, candidate.flags.split()) == (CandidateState.pending, ["blank"])
    solution = get_solution(engine, sid)
    assert solution.image_status == ImageStatus.pending  # waiting in Review, the placeholder still shown
    with Session(engine) as session:
        assert inspections.pick(session, [candidate.id]) is None


def test_auto_approve_prefers_a_candidate_with_no_flag_over_a_duplicate(engine, make_solutions):
    (sid,) = make_solutions(1)
    results, _ = run(engine, load_settings(), [sid], candidates=2)
    first, second = sorted(r.candidate_id for r in results)
    with Session(engine) as session:
        session.get(Candidate, first).flags = inspections.stored_flags(["duplicate"])
        session.commit()
        assert inspections.pick(session, [first, second]) == second
        session.get(Candidate, second).flags = inspections.stored_flags(["text_garbled"])
        session.commit()
        assert inspections.pick(session, [first, second]) == first  # a duplicate only warns
        session.get(Candidate, first).checked_at = None
        session.commit()
        assert inspections.pick(session, [first, second]) is None  # not checked yet: never published


def test_checking_again_replaces_the_verdicts_and_sees_a_changed_file(engine, make_solutions, settings):
    (sid,) = make_solutions(1)
    (result,), _ = run(engine, settings, [sid])
    candidate, rows = candidate_of(engine, result.candidate_id)
    assert not rows["blank"].flagged
    (settings.data_dir / candidate.file_path).write_bytes(png(flat((256, 256))))

    (outcome,) = inspections.check_again(engine, settings, [candidate.id])

    assert outcome.flags == ["blank"]
    candidate, rows = candidate_of(engine, candidate.id)
    assert candidate.flags == " blank " and rows["blank"].flagged and len(rows) == len(checks.NAMES)
    with Session(engine) as session:
        assert session.get(Solution, sid) is not None


def test_with_every_check_off_nothing_is_checked_and_auto_approve_publishes_as_before(engine, make_solutions):
    (sid,) = make_solutions(1)

    (result,), _ = run(engine, load_settings(checks_enabled="none"), [sid], auto_approve=True)

    candidate, rows = candidate_of(engine, result.candidate_id)
    assert (candidate.checked_at, rows) == (None, {})
    assert candidate.state == CandidateState.approved and result.published_url is not None


def test_a_new_image_like_an_uploaded_card_of_another_solution_is_a_duplicate(
    engine, make_solutions, standin, openai_settings
):
    from aixchange_images import review

    first, second = make_solutions(2)
    card = lettered("Forge Churn Analyzer", canvas=(256, 256), size=24)
    with Session(engine) as session:
        review.upload(
            session=session,
            settings=openai_settings,
            solution_id=first,
            data=png(card),
            actor=auth.Actor("ada", "admin"),
        )
        session.commit()
    standin.enqueue("picture", data=png(card))

    (result,), _ = run(engine, openai_settings, [second], size="256x256")

    _, rows = candidate_of(engine, result.candidate_id)
    assert rows["duplicate"].flagged and rows["duplicate"].evidence["published"] is True
    assert (
        rows["duplicate"].sentence
        == f"It looks like {get_solution(engine, first).title}'s card (0 of 256 bits differ)."
    )


# -- the decoded picture ---------------------------------------------------------------------------
def test_a_new_image_is_checked_from_its_decoded_pixels_not_by_reading_its_file_again(
    engine, make_solutions, monkeypatch
):
    """The pipeline decoded the reply to verify it: the checks take those pixels (a 1.9 MB PNG decodes in
    some 20 ms), and reach the same verdicts as checks that read the stored file."""
    (sid,) = make_solutions(1, title="Forge Churn Analyzer", description="Predicts which customers will leave")

    def unreadable(settings, candidate):
        raise OSError("the file was not to be read")

    with monkeypatch.context() as patched:
        patched.setattr(inspections, "_read", unreadable)
        (result,), _ = run(engine, card_settings(), [sid], size="1024x1024")
    candidate, from_pixels = candidate_of(engine, result.candidate_id)
    assert candidate.checked_at is not None and sorted(from_pixels) == sorted(checks.NAMES)
    phash = candidate.phash

    (again,) = inspections.check_again(engine, card_settings(), [candidate.id])  # reads the file

    assert again.verdicts and again.flags == []
    candidate, from_file = candidate_of(engine, candidate.id)
    assert candidate.phash == phash
    for name, row in from_file.items():
        assert (row.flagged, row.score, row.evidence) == (
            from_pixels[name].flagged,
            from_pixels[name].score,
            from_pixels[name].evidence,
        ), name


def test_a_converted_reply_is_checked_from_the_file_stored_not_from_the_reply(
    engine, make_solutions, standin, openai_settings, monkeypatch
):
    """A WebP reply is stored as PNG (the marketplace cannot serve WebP): the checks read that file."""
    (sid,) = make_solutions(1)
    read, real = [], inspections._read
    monkeypatch.setattr(
        inspections, "_read", lambda settings, candidate: read.append(candidate.id) or real(settings, candidate)
    )

    (result,), _ = run(engine, openai_settings, [sid], output_format="webp")

    candidate, rows = candidate_of(engine, result.candidate_id)
    asked = [r["json"].get("output_format") for r in standin.requests if r["path"].endswith("/images/generations")]
    assert asked == ["webp"] and candidate.image_format == "png"
    assert candidate.checked_at is not None and sorted(rows) == sorted(checks.NAMES)
    assert read == [candidate.id]


def test_the_checks_judge_the_picture_they_are_given(engine, make_solutions, settings):
    (sid,) = make_solutions(1)
    (result,), _ = run(engine, settings, [sid])
    index = inspections.HashIndex(engine)

    outcome = inspections.inspect_candidate(engine, settings, result.candidate_id, index, picture=flat((256, 256)))

    assert outcome.flags == ["blank"]  # the stored card is not flat; the picture handed in is


def test_only_so_many_decoded_pictures_wait_in_memory_for_their_checks():
    picture = flat((64, 64))
    held = [inspections._hold(picture) for _ in range(inspections.PICTURES_HELD)]
    try:
        assert all(h is picture for h in held)
        assert inspections._hold(picture) is None  # past the bound, the checks read the file instead
    finally:
        for _ in held:
            inspections._pictures.release()
    assert inspections._hold(picture) is picture
    inspections._pictures.release()
