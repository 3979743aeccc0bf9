"""Prompt Studio through Streamlit's AppTest: one behaviour per test, checked in the page and the database."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import open_page, run_jobs, stored_actor
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from aixchange_images import prompts, templates
from aixchange_images.auth import Actor
from aixchange_images.config import load_settings
from aixchange_images.models import Attempt, Candidate, CategoryTemplate, TemplateLabelMove, TemplateVersion

ROOT = Path(__file__).resolve().parents[1]
PAT = Actor("pat", "product")


def studio(actor: Actor = PAT) -> AppTest:
    return open_page("prompt_studio", actor)


def shown(markdown: str) -> str:
    """Text the page escaped with ui.literal, as a reader sees it."""
    return re.sub(r"\\(.)", r"\1", markdown)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def selectbox(at: AppTest, label: str, keyed: bool | None = None):
    """The selectbox with this label (keyed=False: the one the page gave no key, e.g. inside a form)."""
    return next(s for s in at.selectbox if s.label == label and (keyed is None or keyed == (s.key is not None)))


def text_area(at: AppTest, label: str):
    return next(t for t in at.text_area if t.label == label)


def save(engine, body: str, name: str = "default") -> None:
    with Session(engine) as session:
        templates.save_version(session=session, actor=PAT, name=name, body=body, note="from a test")
        session.commit()


def stored(engine, model) -> list:
    with Session(engine) as session:
        return list(session.exec(select(model)).all())


def test_the_page_shows_the_production_version_and_its_preview(engine, make_solutions):
    make_solutions(2)
    at = studio()

    assert at.code[0].value == prompts.DEFAULT_TEMPLATE
    assert at.selectbox(key="ps_view").value == 1
    preview = text_area(at, "Rendered prompt").value
    assert preview.startswith('Create a professional, modern visualization for an AI solution called "Solution number')
    assert any("of the 32,000 characters gpt-image-2 takes" in shown(c.value) for c in at.caption)


def test_editing_previews_live_and_saves_a_new_version(engine, make_solutions):
    make_solutions(1)
    at = studio()
    button(at, "Edit as a new version").click().run()
    assert text_area(at, "Template text").value == prompts.DEFAULT_TEMPLATE

    text_area(at, "Template text").input("A blueprint card for {title} ({category}).").run()
    assert (
        text_area(at, "Rendered prompt").value
        == "A blueprint card for Solution number 0 (Natural Language Processing)."
    )
    at.text_input(key="ps_note").input("shorter, blueprint style")
    button(at, "Save as new version").click().run()

    assert not at.exception
    [_, saved] = sorted(stored(engine, TemplateVersion), key=lambda v: v.version)
    assert (saved.ref, saved.author, saved.note) == ("default@2", "pat", "shorter, blueprint style")
    assert at.selectbox(key="ps_view").options[0].startswith("v2 · draft")


def test_an_unknown_variable_is_one_sentence_and_nothing_is_saved(engine, make_solutions):
    make_solutions(1)
    at = studio()
    button(at, "Edit as a new version").click().run()
    text_area(at, "Template text").input("A card for {title} by {author}.").run()

    assert any("unknown variable {author}" in shown(e.value) for e in at.error)
    button(at, "Save as new version").click().run()
    assert not at.exception
    assert len(stored(engine, TemplateVersion)) == 1


def test_the_check_reports_a_prompt_that_moderation_would_block(engine, make_solutions):
    make_solutions(1, description="Shows gore from crime scenes to train forensic investigators.")
    at = studio()

    button(at, "Check length and moderation").click().run()

    assert any("Moderation flags this prompt (gore)" in shown(e.value) for e in at.error)
    assert stored(engine, Attempt) == []  # a check is not a generation


def test_the_check_passes_a_clean_prompt(engine, make_solutions):
    make_solutions(1)
    at = studio()

    button(at, "Check length and moderation").click().run()

    assert any(s.value.startswith("Passes:") for s in at.success)


def test_the_versions_tab_shows_a_diff_and_moves_production(engine, make_solutions):
    save(engine, "A card for {title}.")
    at = studio()
    assert any(c.language == "diff" and "+A card for {title}." in c.value for c in at.code)

    point_at = selectbox(at, "Point at")
    assert point_at.options[0].startswith("v2 · draft")
    point_at.select_index(0)
    button(at, "Move label").click().run()

    assert not at.exception
    with Session(engine) as session:
        assert templates.resolve(session=session).ref == "default@2"
    move = stored(engine, TemplateLabelMove)[-1]
    assert (move.label, move.from_version, move.to_version, move.actor) == ("production", 1, 2, "pat")
    assert any("production` → **v2**, moved by pat" in m.value for m in at.markdown)


def test_try_it_queues_both_versions_as_jobs_and_compares_them_once_the_workers_are_done(engine, make_solutions):
    make_solutions(2)
    save(engine, "A blueprint card for {title}.")
    at = studio()
    assert (at.selectbox(key="ps_try_a").value, at.selectbox(key="ps_try_b").value) == ("default@1", "default@2")
    next(n for n in at.number_input if n.label == "Solutions").set_value(2).run()

    button(at, "Run both sides").click().run()

    assert not at.exception
    assert stored(engine, Candidate) == []  # queued for the workers, not run in the page
    bars = [shown(p.proto.text) for p in at.get("progress")]
    assert sum("Prompt Studio trial of default@" in bar and "0 of 2 done" in bar for bar in bars) == 2, bars
    assert any("comparison appears here" in c.value for c in at.caption)
    run_jobs(engine, load_settings())
    at.run()  # a later run of the page: the trial's jobs are still followed, now ended
    assert not at.exception
    refs = sorted(c.template_ref for c in stored(engine, Candidate))
    assert refs == ["default@1", "default@1", "default@2", "default@2"]
    cards = [h.value for h in at.html if "Category:" in h.value]
    assert len(cards) == 4 and sum("default@2 · #" in card for card in cards) == 2


def test_the_yield_table_has_a_row_per_version_with_its_figures(engine, make_solutions):
    make_solutions(2)
    save(engine, "A blueprint card for {title}.")
    at = studio()
    assert any("No generations yet" in i.value for i in at.info)
    next(n for n in at.number_input if n.label == "Solutions").set_value(2).run()
    button(at, "Run both sides").click().run()
    run_jobs(engine, load_settings())  # the workers' part
    at.run()

    table = at.dataframe[-1].value.set_index("Template version")  # the yield table is the last on the page

    assert list(table.loc[["default@2", "default@1"], "Attempts"]) == [2, 2]
    assert list(table.loc[["default@2", "default@1"], "Awaiting review"]) == [2, 2]


def test_a_category_can_be_pointed_at_another_template(engine, make_solutions):
    make_solutions(3)
    save(engine, "A camera-lens card for {title}.", name="vision")
    at = studio()

    selectbox(at, "Category").set_value("Computer Vision")
    selectbox(at, "Template", keyed=False).set_value("vision")
    button(at, "Use for this category").click().run()

    assert not at.exception
    assert [(o.category, o.template, o.set_by) for o in stored(engine, CategoryTemplate)] == [
        ("Computer Vision", "vision", "pat")
    ]


def test_a_manager_is_stopped_at_the_guard(engine):
    at = AppTest.from_file(str(ROOT / "pages" / "prompt_studio.py"), default_timeout=30)
    at.session_state["actor"] = stored_actor(Actor("mia", "manager"))
    at.run()

    assert any("does not give access" in e.value for e in at.error)
    assert not at.title and not at.text_area


def test_try_it_runs_one_version_on_two_providers_and_shows_which_side_used_which(
    engine, openai_settings, standin, make_solutions
):
    make_solutions(2)
    at = studio()
    assert at.selectbox(key="ps_try_a_provider").value == "local"  # free first: today's default
    at.selectbox(key="ps_try_b").set_value("default@1")
    at.selectbox(key="ps_try_b_provider").set_value("openai").run()
    assert at.selectbox(key="ps_try_b_model").value == "gpt-image-2"
    next(n for n in at.number_input if n.label == "Solutions").set_value(2).run()
    assert any(
        "B: default@1 with openai · gpt-image-2 · 2 solution(s), 2 paid call(s)" in shown(c.value) for c in at.caption
    )

    next(c for c in at.checkbox if c.label.startswith("Spend about")).check().run()
    button(at, "Run both sides").click().run()
    bars = [shown(p.proto.text) for p in at.get("progress")]
    assert any("Prompt Studio trial of default@1 with local · local-card" in bar for bar in bars), bars
    assert any("Prompt Studio trial of default@1 with openai · gpt-image-2" in bar for bar in bars), bars
    run_jobs(engine, openai_settings)
    at.run()

    assert not at.exception
    assert sorted((a.provider, a.model) for a in stored(engine, Attempt)) == [
        ("local", "local-card"),
        ("local", "local-card"),
        ("openai", "gpt-image-2"),
        ("openai", "gpt-image-2"),
    ]
    assert standin.image_calls == 2
    heads = [shown(m.value) for m in at.markdown]
    assert any(h.startswith("**local · local-card** · 2 made") for h in heads), heads
    assert any(h.startswith("**openai · gpt-image-2** · 2 made") for h in heads), heads
    cards = [h.value for h in at.html if "Category:" in h.value]
    assert len(cards) == 4 and sum("openai · gpt-image-2 · #" in card for card in cards) == 2


def test_try_it_refuses_two_identical_sides_in_one_sentence(engine, make_solutions):
    make_solutions(2)
    at = studio()

    at.selectbox(key="ps_try_b").set_value("default@1").run()

    assert any(
        "Both sides are default@1 with local · local-card; choose two different versions, providers or models"
        in shown(e.value)
        for e in at.error
    )
    assert button(at, "Run both sides").disabled


UNKEYED = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "flux": "BFL_API_KEY",
}


def test_a_provider_without_its_key_is_not_offered_and_the_page_says_why(engine, make_solutions):
    make_solutions(1)
    at = studio()

    assert at.selectbox(key="ps_try_a_provider").options == ["local"]
    (why,) = [shown(c.value) for c in at.caption if "Not offered here:" in shown(c.value)]
    assert all(f"{name} ({variable} is not set" in why for name, variable in UNKEYED.items())


def test_the_yield_tab_compares_providers_and_models(engine, openai_settings, standin, make_solutions):
    make_solutions(1)
    at = studio()
    at.selectbox(key="ps_try_b").set_value("default@1")
    at.selectbox(key="ps_try_b_provider").set_value("openai").run()
    next(n for n in at.number_input if n.label == "Solutions").set_value(1).run()
    next(c for c in at.checkbox if c.label.startswith("Spend about")).check().run()
    button(at, "Run both sides").click().run()
    run_jobs(engine, openai_settings)

    at.session_state["ps_yield_by"] = "pair"
    at.run()

    assert not at.exception
    table = at.dataframe[-1].value.set_index(["Provider", "Model"])
    assert list(table.index) == [("local", "local-card"), ("openai", "gpt-image-2")]
    assert list(table["Attempts"]) == [1, 1] and list(table["Awaiting review"]) == [1, 1]
