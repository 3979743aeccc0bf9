"""Prompt templates: rendering, immutable versions, labels, category overrides, moderation before
the paid call, trials, and the yield table on a small known history."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from conftest import run_jobs
from openai_standin import IMAGES_PATH, MODERATIONS_PATH
from sqlmodel import Session, select

from aixchange_images import batch, cli, jobs, pipeline, prompts, templates, trials
from aixchange_images.auth import Actor, PermissionDenied
from aixchange_images.config import load_settings
from aixchange_images.models import (
    Attempt,
    AuditEvent,
    Candidate,
    CategoryTemplate,
    Solution,
    TemplateLabel,
    TemplateLabelMove,
    TemplateVersion,
    utcnow,
)
from aixchange_images.prompts import PromptError, Template

PAT = Actor("pat", "product")
ADA = Actor("ada", "admin")
MIA = Actor("mia", "manager")
ALL_VARIABLES = "T={title} D={description} C={category} G={tags} P={provider}"


def solution(**fields) -> Solution:
    base = {
        "title": "Shelf Scanner",
        "description": "Counts products on shelves.",
        "category": "Computer Vision",
        "provider": "Acme Labs",
        "tags": ["retail", "vision"],
    }
    return Solution(**{**base, **fields})


def render(text: str, style: str = "", **fields) -> str:
    return prompts.render_template(Template("t", 1, text, style), prompts.solution_variables(solution(**fields)))


def save(engine, body: str, *, name: str = "default", style: str = "", note: str = "", actor: Actor = PAT):
    with Session(engine, expire_on_commit=False) as session:
        version = templates.save_version(session=session, actor=actor, name=name, body=body, style=style, note=note)
        session.commit()
    return version


def move(engine, version: int, *, label: str = "production", name: str = "default", actor: Actor = PAT):
    with Session(engine, expire_on_commit=False) as session:
        pointer = templates.move_label(
            session=session, actor=actor, name=name, label=label, version=version, note="why not"
        )
        session.commit()
    return pointer


def resolve(engine, ref: str | None = None, category: str | None = None) -> Template:
    with Session(engine) as session:
        return templates.resolve(session=session, ref=ref, category=category)


def rows(engine, model) -> list:
    with Session(engine) as session:
        return list(session.exec(select(model)).all())


# -- rendering -------------------------------------------------------------------------------------
def test_rendering_fills_every_variable_from_the_solution():
    text = render(ALL_VARIABLES)

    assert text == ("T=Shelf Scanner D=counts products on shelves. C=Computer Vision G=retail, vision P=Acme Labs")


def test_an_unknown_variable_fails_with_a_message_naming_it_and_the_available_ones():
    with pytest.raises(PromptError) as caught:
        render("A card for {title} by {author}")

    assert str(caught.value) == (
        "The template uses unknown variable {author}; available: category, description, provider, tags, title."
    )


@pytest.mark.parametrize("field", ["{title.__class__}", "{title[0]}", "{title!r}", "{title:>40}"])
def test_anything_but_a_plain_variable_is_refused(field):
    with pytest.raises(PromptError, match="plain"):
        render(f"A card for {field}")


@pytest.mark.parametrize("text", ["An open { brace", "A stray } brace", "An empty {} field"])
def test_a_malformed_template_says_how_to_write_a_literal_brace(text):
    with pytest.raises(PromptError, match=r"\{\{"):
        render(text)


def test_values_go_in_exactly_as_written_nothing_escaped_or_re_read():
    description = 'Reads "{title}" & <b>tags</b>: 日本語, émigré, 🚀 — {{not a field}}\nsecond line'
    text = render("{title} | {description}", title='Ça "marche" {category}', description=description)

    assert text == f'Ça "marche" {{category}} | {description[0].lower() + description[1:]}'


def test_literal_braces_in_the_template_come_out_single():
    assert render('{title} as JSON: {{"name": "{title}"}}') == 'Shelf Scanner as JSON: {"name": "Shelf Scanner"}'


def test_a_1000_character_description_is_rendered_whole_and_passes_the_checks():
    description = ("counts every product on every shelf in the store. " * 25)[:1000]
    assert len(description) == 1000
    text = render(prompts.DEFAULT_TEMPLATE, description=description)

    assert description.strip() in text
    prompts.check_prompt(text, model="gpt-image-2", description=description)


def test_the_style_block_goes_on_its_own_line_or_where_the_text_puts_it():
    assert render("A card for {title}.", style="Flat {category} palette.") == (
        "A card for Shelf Scanner.\nFlat Computer Vision palette."
    )
    assert render("{style} A card for {title}.", style="Watercolour.") == "Watercolour. A card for Shelf Scanner."
    assert render("A card for {title}.", style="   ") == "A card for Shelf Scanner."


@pytest.mark.parametrize("description", ["", "   \n\t "])
def test_an_empty_or_blank_description_fails_the_check(description):
    with pytest.raises(PromptError, match="empty description"):
        prompts.check_prompt("A prompt", model="gpt-image-2", description=description)


def test_the_length_check_uses_the_models_limit():
    prompts.check_prompt("x" * 32_000, model="gpt-image-2", description="d")
    with pytest.raises(PromptError, match="32,001 characters; gpt-image-2 takes at most 32,000"):
        prompts.check_prompt("x" * 32_001, model="gpt-image-2", description="d")
    with pytest.raises(PromptError, match="at most 4,000"):
        prompts.check_prompt("x" * 4_001, model="dall-e-3", description="d")


# -- stored versions -------------------------------------------------------------------------------
def test_default_at_1_is_seeded_as_production_with_the_built_in_text(engine):
    template = resolve(engine)

    assert (template.ref, template.text, template.style) == ("default@1", prompts.DEFAULT_TEMPLATE, "")
    assert render(template.text) == render(prompts.DEFAULT_TEMPLATE)
    [moved] = rows(engine, TemplateLabelMove)
    assert (moved.label, moved.from_version, moved.to_version, moved.actor) == ("production", None, 1, "seed")


def test_running_the_migrations_again_seeds_nothing_twice(engine):
    from aixchange_images.migrations import MIGRATIONS

    step = next(fn for number, _, fn in MIGRATIONS if number == 4)
    step(engine)

    assert len(rows(engine, TemplateVersion)) == 1 and len(rows(engine, TemplateLabel)) == 1


def test_each_save_is_a_new_version_with_author_time_and_note(engine):
    before = utcnow()
    v2 = save(engine, "A card for {title}.", note="shorter")
    v3 = save(engine, "A card for {title} in {category}.", style="Isometric.", note="with category", actor=ADA)

    with Session(engine) as session:
        stored = templates.versions(session=session, name="default")
    assert [(v.version, v.author, v.note) for v in stored] == [
        (3, "ada", "with category"),
        (2, "pat", "shorter"),
        (1, "seed", templates.SEED_NOTE),
    ]
    assert stored[2].body == prompts.DEFAULT_TEMPLATE  # version 1 untouched by the saves
    assert (v2.ref, v3.ref, v3.style) == ("default@2", "default@3", "Isometric.")
    assert stored[0].created_at.replace(tzinfo=before.tzinfo) >= before
    assert {e.target for e in rows(engine, AuditEvent) if e.action == "template.save"} == {"default@2", "default@3"}


def test_a_stored_version_cannot_be_changed(engine):
    with Session(engine) as session:
        version = templates.get_version(session=session, name="default", version=1)
        version.body = "Something else entirely about {title}."
        session.add(version)
        with pytest.raises(ValueError, match="immutable"):
            session.commit()

    assert resolve(engine, "default@1").text == prompts.DEFAULT_TEMPLATE


def test_saving_the_same_text_again_makes_no_version(engine):
    with pytest.raises(PromptError, match="same text as default@1"):
        save(engine, prompts.DEFAULT_TEMPLATE)

    assert len(rows(engine, TemplateVersion)) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("A card for {author}", "unknown variable {author}"),
        ("   ", "empty"),
        ("A card for {title}", "cannot contain {style}"),  # with the style below
    ],
)
def test_a_template_that_could_not_render_is_not_saved(engine, body, message):
    style = "Ink and {style}" if "cannot" in message else ""
    with pytest.raises(PromptError, match=message):
        save(engine, body, style=style)

    assert len(rows(engine, TemplateVersion)) == 1


@pytest.mark.parametrize("name", ["", "has space", "at@sign", "x" * 41, "-leading"])
def test_a_template_name_must_be_simple(engine, name):
    with pytest.raises(PromptError, match="template name"):
        save(engine, "A card for {title}.", name=name)


def test_a_save_moves_draft_but_not_production(engine):
    save(engine, "A card for {title}.")

    with Session(engine) as session:
        pointers = templates.labels(session=session, name="default")
    assert (pointers["production"].version, pointers["draft"].version) == (1, 2)
    assert pointers["draft"].moved_by == "pat"
    assert resolve(engine).ref == "default@1"
    assert resolve(engine, "default@draft").ref == "default@2"


def test_a_new_templates_first_version_is_its_production_version(engine):
    save(engine, "A camera-lens card for {title}.", name="vision")

    assert resolve(engine, "vision").ref == "vision@1"
    assert resolve(engine).ref == "default@1"  # nothing else changes until a category points at it


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nosuch", "no prompt template 'nosuch'; the templates are: default"),
        ("default@7", "Template default has no version 7; its versions are 1 to 1"),
        ("default@latest", "the version is a number, or the label production or draft"),
        ("default@draft", "Template default has no draft version yet"),
    ],
)
def test_a_reference_that_names_nothing_fails_with_one_sentence(engine, ref, message):
    with pytest.raises(PromptError, match=message):
        resolve(engine, ref)


def test_a_diff_shows_what_changed_between_two_versions(engine):
    save(engine, prompts.DEFAULT_TEMPLATE.replace("minimalist", "bold"), style="Neon palette.")
    with Session(engine) as session:
        delta = templates.diff(session=session, old="default@1", new="default@2")
        same = templates.diff(session=session, old="default@2", new="default@2")

    assert delta.splitlines()[:2] == ["--- default@1", "+++ default@2"]
    assert "-The image should be clean, minimalist, and suitable" in delta
    assert "+The image should be clean, bold, and suitable" in delta
    assert "+Neon palette." in delta
    assert same == ""


# -- labels: shipping and rolling back -------------------------------------------------------------
def test_moving_production_ships_a_version_and_moving_it_back_rolls_back(engine, make_solutions):
    save(engine, "A card for {title}.")
    move(engine, 2)
    assert resolve(engine).ref == "default@2"

    move(engine, 1, actor=ADA)

    assert resolve(engine).ref == "default@1"
    moves = [(m.label, m.from_version, m.to_version, m.actor) for m in rows(engine, TemplateLabelMove)]
    assert moves[-2:] == [("production", 1, 2, "pat"), ("production", 2, 1, "ada")]
    audited = [
        (e.actor, e.detail["label"], e.detail["from_version"], e.detail["to_version"])
        for e in rows(engine, AuditEvent)
        if e.action == "template.label"
    ]
    assert ("pat", "production", 1, 2) in audited and ("ada", "production", 2, 1) in audited


def test_generation_uses_the_production_version_and_records_it(engine, make_solutions):
    (sid,) = make_solutions(1)
    save(engine, "A blueprint-style card for {title}.")
    move(engine, 2)
    settings = load_settings(dalle_image_size="256x256")

    (result,), _ = batch.run_batch(engine, settings, [sid], pipeline.GenerateOptions())

    with Session(engine) as session:
        attempt = session.get(Attempt, result.attempt_id)
        candidate = session.get(Candidate, result.candidate_id)
    assert (attempt.template_ref, candidate.template_ref) == ("default@2", "default@2")
    assert attempt.prompt == "A blueprint-style card for Solution number 0."


def test_a_manager_can_neither_save_nor_move_labels_and_nothing_changes(engine):
    save(engine, "A card for {title}.")
    before = (rows(engine, TemplateVersion), rows(engine, TemplateLabel), len(rows(engine, AuditEvent)))

    with pytest.raises(PermissionDenied, match="manager role may not edit prompt templates"):
        save(engine, "A card about {title}.", actor=MIA)
    with pytest.raises(PermissionDenied):
        move(engine, 2, actor=MIA)
    with Session(engine) as session, pytest.raises(PermissionDenied):
        templates.set_category_template(session=session, actor=MIA, category="Computer Vision", template="default")

    after = (rows(engine, TemplateVersion), rows(engine, TemplateLabel), len(rows(engine, AuditEvent)))
    assert [v.ref for v in after[0]] == [v.ref for v in before[0]]
    assert [(p.label, p.version) for p in after[1]] == [(p.label, p.version) for p in before[1]]
    assert after[2] == before[2]


@pytest.mark.parametrize(
    ("label", "version", "message"),
    [
        ("production", 1, "production already points at default@1"),
        ("production", 9, "no template version default@9"),
        ("latest", 1, "label must be one of: production, draft"),
    ],
)
def test_a_label_move_that_makes_no_sense_is_refused(engine, label, version, message):
    with pytest.raises(PromptError, match=message):
        move(engine, version, label=label)

    assert len(rows(engine, TemplateLabelMove)) == 1


# -- per-category templates ------------------------------------------------------------------------
def test_a_category_can_use_its_own_template(engine, make_solutions):
    ids = make_solutions(3)  # NLP, Computer Vision, Generative AI
    save(engine, "A camera-lens card for {title}.", name="vision")
    with Session(engine) as session:
        templates.set_category_template(session=session, actor=PAT, category="Computer Vision", template="vision")
        session.commit()
    settings = load_settings(dalle_image_size="256x256")

    results, _ = batch.run_batch(engine, settings, ids, pipeline.GenerateOptions())

    used = {r.solution_id: r.attempt_id for r in results}
    with Session(engine) as session:
        refs = [session.get(Attempt, used[sid]).template_ref for sid in ids]
    assert refs == ["default@1", "vision@1", "default@1"]
    assert resolve(engine, "default", category="Computer Vision").ref == "default@1"  # a named ref wins


def test_pointing_a_category_back_at_default_removes_its_override(engine):
    save(engine, "A camera-lens card for {title}.", name="vision")
    with Session(engine) as session:
        templates.set_category_template(session=session, actor=PAT, category="Computer Vision", template="vision")
        templates.set_category_template(session=session, actor=PAT, category="Computer Vision", template="default")
        session.commit()

    assert rows(engine, CategoryTemplate) == []
    assert resolve(engine, category="Computer Vision").ref == "default@1"


@pytest.mark.parametrize(("template", "message"), [("nosuch", "no prompt template"), ("default@1", "name only")])
def test_a_category_cannot_point_at_an_unknown_template_or_a_pinned_version(engine, template, message):
    with Session(engine) as session, pytest.raises(PromptError, match=message):
        templates.set_category_template(session=session, actor=PAT, category="Computer Vision", template=template)


# -- moderation before the paid call ---------------------------------------------------------------
def test_a_template_that_makes_the_prompt_unsafe_is_blocked_before_any_image_call(
    engine, openai_settings, standin, make_solutions
):
    (sid,) = make_solutions(1)  # a harmless description
    save(engine, prompts.DEFAULT_TEMPLATE, style="Show graphic violence in the background.")

    (blocked,), _ = batch.run_batch(engine, openai_settings, [sid], pipeline.GenerateOptions(template="default@2"))

    assert blocked.error_kind == "moderation_blocked"
    assert (standin.moderation_calls, standin.image_calls) == (1, 0)
    [checked] = [r["json"]["input"] for r in standin.requests if r["path"] == MODERATIONS_PATH]
    assert checked.endswith("Show graphic violence in the background.")  # the rendered prompt, style and all
    with Session(engine) as session:
        attempt = session.get(Attempt, blocked.attempt_id)
    assert (attempt.moderation, attempt.template_ref, attempt.cost_usd) == ("flagged", "default@2", 0.0)

    (passed,), _ = batch.run_batch(engine, openai_settings, [sid], pipeline.GenerateOptions(template="default@1"))

    assert passed.status == "succeeded"
    assert (standin.moderation_calls, standin.image_calls) == (2, 1)
    assert [r["path"] for r in standin.requests] == [MODERATIONS_PATH, MODERATIONS_PATH, IMAGES_PATH]


def test_with_the_local_provider_the_local_rules_block_the_prompt(engine, make_solutions):
    (sid,) = make_solutions(1)
    save(engine, prompts.DEFAULT_TEMPLATE, style="Add some gore for drama.")

    (result,), _ = batch.run_batch(
        engine, load_settings(dalle_image_size="256x256"), [sid], pipeline.GenerateOptions(template="default@2")
    )

    assert (result.error_kind, result.candidate_id) == ("moderation_blocked", None)
    assert rows(engine, Candidate) == []


def test_checks_on_demand_report_length_and_moderation_without_an_image_call(openai_settings, standin):
    from aixchange_images.provider_registry import get_provider

    clean = prompts.run_checks(
        "A calm card.", model="gpt-image-2", description="d", provider=get_provider("openai", openai_settings)
    )
    flagged = prompts.run_checks(
        "A card full of gore. " * 1550,
        model="gpt-image-2",
        description="d",
        provider=get_provider("local", openai_settings),
    )
    unchecked = prompts.run_checks("A card.", model="gpt-image-2", description=" ")

    assert (clean.ok, clean.moderation, clean.moderation_source, clean.problems) == (True, "passed", "openai", [])
    assert (flagged.ok, flagged.moderation, flagged.moderation_source, flagged.flagged) == (
        False,
        "flagged",
        "local",
        ("gore",),
    )
    assert flagged.length == 32_550 and "32,550 characters" in flagged.problems[0]
    assert "moderation_blocked" in flagged.problems[1]
    assert (unchecked.moderation, unchecked.ok) == ("skipped", False)
    assert "empty description" in unchecked.problems[0]
    assert (standin.moderation_calls, standin.image_calls) == (1, 0)


def test_local_rules_name_what_they_found():
    report = prompts.run_checks(
        "A card about self-harm and gore.", model="gpt-image-2", description="d", provider=_local()
    )

    assert report.moderation == "flagged" and report.flagged == ("gore", "self-harm")
    assert "moderation_blocked" in report.problems[0]


def _local():
    from aixchange_images.provider_registry import get_provider

    return get_provider("local", load_settings())


# -- the command line ------------------------------------------------------------------------------
def test_the_prompt_command_renders_any_version(engine, make_solutions, capsys):
    (sid,) = make_solutions(1)
    save(engine, "A card for {title} ({category}).")

    assert cli.main(["prompt", sid, "--template", "default@2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["template"], shown["prompt"]) == (
        "default@2",
        "A card for Solution number 0 (Natural Language Processing).",
    )
    assert cli.main(["prompt", sid]) == 0
    assert capsys.readouterr().out.startswith(
        'Create a professional, modern visualization for an AI solution called "Solution number 0"'
    )


def test_an_unknown_template_is_bad_usage_for_prompt_and_generate(engine, make_solutions, capsys):
    (sid,) = make_solutions(1)

    assert cli.main(["prompt", sid, "--template", "default@5"]) == 2
    assert "no version 5" in capsys.readouterr().err
    assert cli.main(["generate", "--solution", sid, "--template", "nosuch"]) == 2
    assert "no prompt template 'nosuch'" in capsys.readouterr().err
    assert rows(engine, Attempt) == []


def test_generate_with_a_template_records_that_version(engine, make_solutions, capsys):
    (sid,) = make_solutions(1)
    save(engine, "A card for {title}.")

    assert cli.main(["generate", "--solution", sid, "--template", "default@2", "--size", "256x256", "--json"]) == 0
    [attempt] = rows(engine, Attempt)
    assert (attempt.template_ref, attempt.prompt) == ("default@2", "A card for Solution number 0.")


# -- trials ----------------------------------------------------------------------------------------
def test_a_trial_runs_both_versions_on_the_same_solutions(engine, make_solutions):
    ids = make_solutions(2)
    save(engine, "A blueprint card for {title}.")
    settings = load_settings(dalle_image_size="256x256")
    seen = []

    trial = trials.run_trial(
        engine,
        settings,
        actor=PAT,
        refs=("default@1", "default@draft"),
        solution_ids=ids,
        provider="local",
        progress=lambda done, total, _r: seen.append((done, total)),
    )

    assert trial.refs == ("default@1", "default@2")
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    made = sorted((c.solution_id, c.template_ref, c.state) for c in rows(engine, Candidate))
    assert made == sorted((sid, ref, "pending") for sid in ids for ref in ("default@1", "default@2"))
    with Session(engine) as session:
        compared = trials.comparison(session=session, trial=trial)
    assert [row["solution_id"] for row in compared] == ids
    for row in compared:
        assert all(side["thumb_path"] and side["error"] is None for side in row["sides"].values())


def test_a_trial_queued_as_jobs_is_compared_once_the_workers_have_run_both_versions(engine, make_solutions):
    ids = make_solutions(2)
    save(engine, "A blueprint card for {title}.")
    settings = load_settings(dalle_image_size="256x256")

    job_ids = trials.start_trial(
        engine, settings, actor=PAT, refs=("default@1", "default@draft"), solution_ids=ids, provider="local"
    )

    assert rows(engine, Attempt) == []  # queued for the workers, nothing made here
    with Session(engine) as session:
        queued = [jobs.get(session=session, job_id=i) for i in job_ids]
        assert not trials.trial_ended(session=session, job_ids=job_ids)
    assert [(j.kind, j.total, j.options["template"], j.options["purpose"]) for j in queued] == [
        ("generate", 2, "default@1", "trial"),
        ("generate", 2, "default@2", "trial"),
    ]
    assert sorted(run_jobs(engine, settings)) == sorted(job_ids)
    with Session(engine) as session:
        assert trials.trial_ended(session=session, job_ids=job_ids)
        trial = trials.trial_of(session=session, job_ids=job_ids)
        compared = trials.comparison(session=session, trial=trial)
    assert (trial.refs, trial.solution_ids) == (("default@1", "default@2"), ids)
    assert [trial.summaries[ref]["succeeded"] for ref in trial.refs] == [2, 2]
    assert [row["solution_id"] for row in compared] == ids
    for row in compared:
        assert all(side["thumb_path"] and side["error"] is None for side in row["sides"].values())
    made = sorted((c.solution_id, c.template_ref, c.state) for c in rows(engine, Candidate))
    assert made == sorted((sid, ref, "pending") for sid in ids for ref in ("default@1", "default@2"))


def test_a_trial_of_one_version_twice_queues_nothing(engine, make_solutions):
    ids = make_solutions(1)

    with pytest.raises(PromptError, match="choose two different versions"):
        trials.start_trial(
            engine, load_settings(), actor=PAT, refs=("default@1", "default@1"), solution_ids=ids, provider="local"
        )

    with Session(engine) as session:
        assert jobs.recent(session=session) == []


def test_jobs_that_are_not_a_trial_are_refused_in_one_sentence(engine, make_solutions):
    job = jobs.enqueue_generate(engine, load_settings(), make_solutions(1), pipeline.GenerateOptions(actor=PAT))

    with Session(engine) as session, pytest.raises(PromptError, match=f"Jobs {job.id}, {job.id} are not a Prompt"):
        trials.trial_of(session=session, job_ids=[job.id, job.id])


@pytest.mark.parametrize(
    ("refs", "actor", "error"),
    [
        (("default@1", "default"), PAT, PromptError),
        (("default@1", "nosuch@1"), PAT, PromptError),
        (("default@1", "default@1"), MIA, PermissionDenied),
    ],
)
def test_a_trial_needs_two_different_versions_and_the_right_role(engine, make_solutions, refs, actor, error):
    ids = make_solutions(1)

    with pytest.raises(error):
        trials.run_trial(engine, load_settings(), actor=actor, refs=refs, solution_ids=ids, provider="local")

    assert rows(engine, Attempt) == []


def test_a_paid_trial_is_estimated_before_any_call(engine, openai_settings, standin, make_solutions):
    ids = make_solutions(3)
    save(engine, "A card for {title}.")

    estimate = trials.estimate_trial(
        engine, openai_settings, actor=PAT, refs=("default@1", "default@2"), solution_ids=ids, provider="openai"
    )

    assert (estimate.paid, estimate.calls, estimate.fits_budget) == (True, 6, True)
    assert 6 * 0.03 < estimate.cost_usd < 6 * 0.04  # about $0.032 a medium 1024x1024 image
    assert standin.requests == []


def test_a_sample_is_repeatable_and_stays_in_its_category(engine, make_solutions):
    make_solutions(9)
    with Session(engine) as session:
        first = trials.sample_solutions(session=session, size=4, seed=3)
        again = trials.sample_solutions(session=session, size=4, seed=3)
        vision = trials.sample_solutions(session=session, size=10, category="Computer Vision")
        categories = {session.get(Solution, sid).category for sid in vision}
    assert first == again and len(set(first)) == 4
    assert len(vision) == 3 and categories == {"Computer Vision"}


# -- the yield table -------------------------------------------------------------------------------
def _history(engine, sid: str) -> None:
    """default@1: 5 attempts (4 made, $0.04 each): approved, superseded, rolled back, rejected (off_brand).
    default@2: 2 attempts (both made, $0.05 each), rejected 1 (low_quality), 1 pending.
    An upload, and a 40-day-old default@2 attempt and candidate, complete the picture."""
    now, old = utcnow(), utcnow() - timedelta(days=40)
    plan = [
        ("default@1", "succeeded", 0.04, "approved", None),
        ("default@1", "succeeded", 0.04, "superseded", None),
        ("default@1", "succeeded", 0.04, "rejected", "off_brand"),
        ("default@1", "failed", 0.0, None, None),
        ("default@1", "succeeded", 0.04, "rolled_back", None),
        ("default@2", "succeeded", 0.05, "rejected", "low_quality"),
        ("default@2", "succeeded", 0.05, "pending", None),
    ]
    with Session(engine) as session:
        for ref, status, cost, state, reason in plan:
            _row(session, sid, ref, status, cost, state, reason, now)
        _row(session, sid, "default@2", "succeeded", 1.0, "rejected", "not_chosen", old)
        session.add(
            Candidate(
                solution_id=sid,
                file_path="u.png",
                thumb_path="u.jpg",
                image_format="png",
                width=1,
                height=1,
                bytes=1,
                sha256="u",
                template_ref="upload",
                source="uploaded",
                state="approved",
            )
        )
        session.commit()


def _row(session, sid, ref, status, cost, state, reason, when) -> None:  # type: ignore[no-untyped-def]
    attempt = Attempt(
        solution_id=sid,
        provider="openai",
        model="gpt-image-2",
        size="1024x1024",
        quality="medium",
        template_ref=ref,
        prompt="p",
        request_key="k",
        status=status,
        cost_usd=cost,
        started_at=when,
    )
    session.add(attempt)
    session.flush()
    if state:
        session.add(
            Candidate(
                solution_id=sid,
                attempt_id=attempt.id,
                file_path="c.png",
                thumb_path="c.jpg",
                image_format="png",
                width=1,
                height=1,
                bytes=1,
                sha256="c",
                template_ref=ref,
                state=state,
                reject_reason=reason,
                created_at=when,
            )
        )


def test_the_yield_table_on_a_small_known_history(engine, make_solutions):
    (sid,) = make_solutions(1)
    save(engine, "A card for {title}.")
    save(engine, "A camera card for {title}.", name="vision")
    _history(engine, sid)

    with Session(engine) as session:
        table = trials.yield_table(session=session, since=utcnow() - timedelta(days=30)).set_index("template")

    assert list(table.index) == ["default@2", "default@1", "vision@1"]  # stored versions first, newest first
    one, two, vision = table.loc["default@1"], table.loc["default@2"], table.loc["vision@1"]
    assert (one["labels"], two["labels"], vision["labels"]) == ("production", "draft", "production, draft")
    assert (one["attempts"], one["succeeded"], one["success_rate"]) == (5, 4, 0.8)
    assert (one["candidates"], one["reviewed"], one["approved"], one["rolled_back"], one["pending"]) == (4, 4, 3, 1, 0)
    assert one["approval_rate"] == pytest.approx(3 / 4)
    assert one["spend_usd"] == pytest.approx(0.16) and one["cost_per_approved_usd"] == pytest.approx(0.16 / 3, abs=1e-6)
    assert one["rejections"] == {"off_brand": 1}
    assert (two["attempts"], two["success_rate"], two["reviewed"], two["approved"], two["pending"]) == (2, 1.0, 1, 0, 1)
    assert two["approval_rate"] == 0.0 and pd.isna(two["cost_per_approved_usd"])
    assert two["rejections"] == {"low_quality": 1}
    assert (vision["attempts"], vision["candidates"]) == (0, 0)
    assert pd.isna(vision["success_rate"]) and pd.isna(vision["approval_rate"])
    assert "upload" not in table.index


def test_the_yield_table_over_all_time_counts_the_older_history_too(engine, make_solutions):
    (sid,) = make_solutions(1)
    save(engine, "A card for {title}.")
    _history(engine, sid)

    with Session(engine) as session:
        two = trials.yield_table(session=session).set_index("template").loc["default@2"]

    assert (two["attempts"], two["reviewed"], two["approved"]) == (3, 2, 0)
    assert two["spend_usd"] == pytest.approx(1.10)
    assert two["rejections"] == {"low_quality": 1, "not_chosen": 1}
