"""Refine instead of regenerate: a child candidate from a provider's edit call, with its own attempt,
cost, reservation, moderation and cache; and the `refine` and `candidates` commands."""

from __future__ import annotations

import io
import json

import pytest
from conftest import get_solution
from PIL import Image
from sqlmodel import Session, select

from aixchange_images import batch, candidates, cli, pipeline, refine, review
from aixchange_images.auth import CLI_ACTOR, Actor, PermissionDenied
from aixchange_images.db import session_scope
from aixchange_images.models import Attempt, Candidate, CandidateState, ImageStatus
from aixchange_images.providers.local import LocalProvider

CANDIDATE_KEYS = {
    "id",
    "status",
    "provider",
    "model",
    "cost_usd",
    "parent_id",
    "instruction",
    "path",
    "flags",
    "checks",
}
RESULT_KEYS = {"solution_id", "status", "error_kind", "candidate_id", "cost_usd", "duration_ms", "cache_hit"}


def make_parent(engine, settings, solution_id: str) -> int:
    options = pipeline.GenerateOptions(size="256x256", use_cache=False)
    (result,), _ = batch.run_batch(engine, settings, [solution_id], options)
    assert result.status == "succeeded", result.error
    return result.candidate_id


def cli_json(capsys, *argv: str, expect: int = 0) -> dict:
    code = cli.main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == expect, err
    return json.loads(out)


def rows(engine, model) -> list:
    with Session(engine) as session:
        return list(session.exec(select(model).order_by(model.id)).all())


def test_refine_and_candidates_commands_give_the_contract_json(engine, settings, make_solutions, capsys):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, settings, sid)

    refined = cli_json(capsys, "refine", str(parent), "--instruction", "warmer and lighter")
    listed = cli_json(capsys, "candidates", sid)

    (result,) = refined["results"]
    assert set(result) >= RESULT_KEYS
    assert (result["status"], result["error_kind"], result["cache_hit"]) == ("succeeded", None, False)
    assert refined["summary"]["succeeded"] == 1
    child, original = listed["candidates"]  # newest first
    assert all(set(c) >= CANDIDATE_KEYS for c in listed["candidates"])
    assert child["id"] == result["candidate_id"]
    assert (child["parent_id"], child["instruction"], child["provider"]) == (parent, "warmer and lighter", "local")
    assert (child["status"], child["flags"]) == ("pending", [])  # the refined image is checked like a new one
    assert child["checks"]["blank"]["flagged"] is False and child["checked_at"] is not None
    assert (original["id"], original["parent_id"], original["instruction"]) == (parent, None, None)
    assert (settings.data_dir / child["path"]).is_file()
    assert not child["path"].startswith("/")


def test_a_refine_of_a_refine_keeps_the_whole_lineage(engine, settings, make_solutions):
    (sid,) = make_solutions(1)
    first = make_parent(engine, settings, sid)
    second = refine.refine(engine, settings, first, "make it teal", actor=CLI_ACTOR).candidate_id
    third = refine.refine(engine, settings, second, "more contrast", actor=CLI_ACTOR).candidate_id

    with Session(engine) as session:
        child = session.get(Candidate, third)
        chain = candidates.lineage(session=session, candidate=child)
        attempt = session.get(Attempt, child.attempt_id)

    assert [c.id for c in chain] == [second, first]
    assert candidates.lineage_text(child, chain) == (
        f"Refined from #{second}: 'more contrast' ← #{second} from #{first}: 'make it teal'"
    )
    assert (attempt.parent_id, attempt.prompt, attempt.provider) == (second, "more contrast", "local")


def test_an_openai_refine_sends_the_image_to_the_edit_endpoint_and_charges_it(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, openai_settings, sid)
    with Session(engine) as session:
        sent = session.get(Candidate, parent)
        parent_sha = sent.sha256

    result = refine.refine(engine, openai_settings, parent, "make the background teal", actor=CLI_ACTOR)

    assert result.status == "succeeded", result.error
    (edit,) = [r for r in standin.requests if r["path"] == "/v1/images/edits"]
    assert edit["json"]["prompt"] == "make the background teal"
    assert edit["json"]["image"]["sha256"] == parent_sha
    with Session(engine) as session:
        child = session.get(Candidate, result.candidate_id)
        attempt = session.get(Attempt, child.attempt_id)
    assert result.cost_usd > 0
    assert child.cost_usd == attempt.cost_usd == result.cost_usd
    assert attempt.reserved_usd > 0 and attempt.cost_source == "usage"
    assert (child.parent_id, child.instruction, child.provider, attempt.moderation) == (
        parent,
        "make the background teal",
        "openai",
        "passed",
    )


def test_a_refine_the_budget_cannot_cover_is_refused_before_any_call(
    engine, openai_settings, standin, make_solutions, monkeypatch, capsys
):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, openai_settings, sid)
    monkeypatch.setenv("IMAGE_BUDGET_DAILY_USD", f"{rows(engine, Attempt)[0].cost_usd + 0.0001:.6f}")

    payload = cli_json(capsys, "refine", str(parent), "--instruction", "cooler", expect=1)

    assert payload["results"][0]["error_kind"] == "budget_exceeded"
    assert payload["summary"]["failed"] == 1
    assert standin.edit_calls == 0
    assert [c.id for c in rows(engine, Candidate)] == [parent]


def test_the_same_refine_again_comes_from_the_cache_at_no_cost(engine, openai_settings, standin, make_solutions):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, openai_settings, sid)

    first = refine.refine(engine, openai_settings, parent, "warmer", actor=CLI_ACTOR)
    again = refine.refine(engine, openai_settings, parent, "warmer", actor=CLI_ACTOR)
    other = refine.refine(engine, openai_settings, parent, "cooler", actor=CLI_ACTOR)

    assert first.cost_usd > 0 and not first.cache_hit
    assert (again.cache_hit, again.cost_usd, again.candidate_id) == (True, 0.0, first.candidate_id)
    assert not other.cache_hit and other.candidate_id != first.candidate_id
    assert standin.edit_calls == 2


def test_a_blocked_instruction_is_stopped_by_moderation(engine, openai_settings, standin, make_solutions):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, openai_settings, sid)

    result = refine.refine(engine, openai_settings, parent, "add gore to the background", actor=CLI_ACTOR)

    assert (result.status, result.error_kind) == ("failed", "moderation_blocked")
    assert standin.edit_calls == 0
    assert rows(engine, Attempt)[-1].moderation == "flagged"
    assert [c.id for c in rows(engine, Candidate)] == [parent]


def test_a_failed_refine_leaves_the_parent_and_the_published_image_alone(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, openai_settings, sid)
    with session_scope(engine, write=True) as session:
        published = review.approve(session=session, settings=openai_settings, candidate_id=parent, actor=CLI_ACTOR)
        session.commit()
    before = rows(engine, Candidate)
    standin.enqueue("invalid_request", message="The image could not be edited.")

    result = refine.refine(engine, openai_settings, parent, "lighter", actor=CLI_ACTOR)

    assert (result.status, result.error_kind) == ("failed", "invalid_request")
    assert [c.model_dump() for c in rows(engine, Candidate)] == [c.model_dump() for c in before]
    solution = get_solution(engine, sid)
    assert (solution.image_url, solution.image_status) == (published.image_url, ImageStatus.approved)
    assert (openai_settings.publish_dir / published.file_name).is_file()


def test_an_instruction_the_local_provider_does_not_know_fails_with_the_list(engine, settings, make_solutions):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, settings, sid)

    result = refine.refine(engine, settings, parent, "make it pop", actor=CLI_ACTOR)

    assert (result.status, result.error_kind) == ("failed", "invalid_request")
    assert "lighter, darker, warmer, cooler" in result.error
    assert len(rows(engine, Candidate)) == 1


@pytest.mark.parametrize(
    ("instruction", "change", "sentence"),
    [
        ("   ", None, "the instruction is empty"),
        ("warmer " * 200, None, "keep it under 1,000"),
        ("warmer", "unknown", "There is no candidate #999"),
        ("warmer", "deleted", "image file is gone"),
        ("warmer", "no-edits", "cannot change an image; refine with one of: none is ready now (see `providers`)."),
    ],
)
def test_bad_refines_are_one_sentence_and_change_nothing(
    engine, settings, make_solutions, monkeypatch, capsys, instruction, change, sentence
):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, settings, sid)
    target = 999 if change == "unknown" else parent
    if change == "deleted":
        with Session(engine) as session:
            (settings.data_dir / session.get(Candidate, parent).file_path).unlink()
    if change == "no-edits":
        monkeypatch.setattr(LocalProvider, "edits", False)
    before = (rows(engine, Attempt), rows(engine, Candidate))

    code = cli.main(["refine", str(target), "--instruction", instruction])

    assert code == 2
    err = capsys.readouterr().err
    assert sentence in err and err.count("\n") == 1
    assert (rows(engine, Attempt), rows(engine, Candidate)) == before


def test_candidates_of_an_unknown_solution_is_bad_usage(engine, capsys):
    assert cli.main(["candidates", "no-such-solution", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "There is no solution with id no-such-solution" in err


def test_a_manager_may_not_refine_and_product_may(engine, settings, make_solutions):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, settings, sid)

    with pytest.raises(PermissionDenied):
        refine.refine(engine, settings, parent, "warmer", actor=Actor("mia", "manager"))
    assert len(rows(engine, Attempt)) == 1
    made = refine.refine(engine, settings, parent, "warmer", actor=Actor("pat", "product"))
    assert made.status == "succeeded"
    assert rows(engine, Attempt)[-1].actor == "pat"


def test_refined_candidate_waits_in_review_like_any_other(engine, settings, make_solutions):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, settings, sid)
    child = refine.refine(engine, settings, parent, "darker", actor=CLI_ACTOR).candidate_id

    with session_scope(engine, write=True) as session:
        published = review.approve(session=session, settings=settings, candidate_id=child, actor=CLI_ACTOR)
        session.commit()
    states = {c.id: c.state for c in rows(engine, Candidate)}

    assert (states[child], states[parent]) == (CandidateState.approved, CandidateState.rejected)
    assert get_solution(engine, sid).image_status == ImageStatus.approved
    assert (settings.publish_dir / published.file_name).is_file()


def test_the_two_commands_read_well_without_json(engine, settings, make_solutions, capsys):
    (sid,) = make_solutions(1)
    parent = make_parent(engine, settings, sid)

    assert cli.main(["refine", str(parent), "--instruction", "warmer"]) == 0
    said = capsys.readouterr().out
    assert cli.main(["refine", str(parent), "--instruction", "sparkle"]) == 1
    failed = capsys.readouterr().out
    assert cli.main(["candidates", sid]) == 0
    listed = capsys.readouterr().out.splitlines()

    assert said.startswith(f"Candidate #{parent + 1} refined from #{parent}: $0.00 in ")
    assert failed.startswith(f"Candidate #{parent} was not refined (invalid_request): The local provider understands")
    assert listed[0].split() == ["id", "status", "made", "by", "cost", "file"]
    assert listed[1].split()[:4] == [str(parent + 1), "pending", "local/local-card", "$0.0000"]
    assert listed[2].strip() == f"refined from #{parent}: 'warmer'"
    assert listed[-1] == "2 candidate(s)"


def test_an_uploaded_image_refines_and_a_cached_copy_names_its_own_parent(engine, settings, make_solutions):
    first, second = make_solutions(2)
    image = io.BytesIO()
    Image.new("RGB", (256, 256), (30, 40, 90)).save(image, format="PNG")
    with session_scope(engine, write=True) as session:
        ours = [
            review.upload(session=session, settings=settings, solution_id=sid, data=image.getvalue(), actor=CLI_ACTOR)
            for sid in (first, second)
        ]
        session.commit()
    uploads = [p.candidate_id for p in ours]

    made = refine.refine(engine, settings, uploads[0], "warmer", actor=CLI_ACTOR)
    copied = refine.refine(engine, settings, uploads[1], "warmer", actor=CLI_ACTOR)

    assert (made.status, made.cache_hit, copied.cache_hit) == ("succeeded", False, True)
    with Session(engine) as session:
        child = session.get(Candidate, copied.candidate_id)
    assert (child.solution_id, child.parent_id, child.instruction) == (second, uploads[1], "warmer")
