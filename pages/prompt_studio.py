"""Prompt Studio: edit templates with a live preview, version history and labels, try two versions
side by side, and the yield table: which version's images reviewers approve."""

from datetime import timedelta

import pandas as pd
import streamlit as st

import jobs_panel
import ui
from aixchange_images import (
    catalogue,
    charts,
    prompts,
    provider_registry,
    style_cues,
    templates,
    trials,
    wording,
    yields,
)
from aixchange_images.models import NOT_CHOSEN, REJECT_REASONS, Solution, TemplateVersion, utcnow
from aixchange_images.provider_registry import chosen, get_provider

actor = ui.guard("edit_templates")
settings = ui.settings()
REASONS = {**REJECT_REASONS, NOT_CHOSEN: "Not chosen"}
st.title("Prompt Studio")
st.caption(
    "Every save is a new, immutable version. The **production** label is what generation uses; "
    "moving it ships a version or rolls one back. Variables: "
    + ", ".join(f"`{{{v}}}`" for v in (*prompts.VARIABLES, prompts.STYLE_VARIABLE))
)

if "ps_goto" in st.session_state:  # a save under a new name opens that template
    st.session_state["ps_name"] = st.session_state.pop("ps_goto")
with ui.db() as session:
    names = templates.names(session=session)
    refs = templates.version_refs(session=session)
    categories = catalogue.categories(session=session)
name = st.selectbox(
    "Template",
    names,
    index=names.index(prompts.DEFAULT_TEMPLATE_NAME) if prompts.DEFAULT_TEMPLATE_NAME in names else 0,
    key="ps_name",
)
with ui.db() as session:
    history = templates.versions(session=session, name=name)
    pointers = templates.labels(session=session, name=name)
by_version = {v.version: v for v in history}
production = pointers.get(templates.PRODUCTION)
newest = history[0].ref
production_ref = f"{name}@{production.version}" if production else newest
marks: dict[int, list[str]] = {p.version: [] for p in pointers.values()}
for label, pointer in sorted(pointers.items(), reverse=True):
    marks[pointer.version].append(label)


def version_label(number: int) -> str:
    """A version as a choice: short enough for any select box (the note is shown beside it)."""
    version = by_version[number]
    return " · ".join([f"v{version.version}", *marks.get(number, [])])


def choose(key: str, options: list, default: object) -> None:
    """Start a keyed widget at `default` unless it already holds one of `options` (set before it is drawn)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


@st.cache_data(ttl=60, show_spinner=False)
def yield_figures(days: int, by: str = yields.BY_TEMPLATE) -> pd.DataFrame:
    """The yield table per version or per provider and model (two GROUP BYs); any action through
    ui.attempt clears this cache."""
    with ui.db() as session:
        return yields.yield_table(session=session, since=utcnow() - timedelta(days=days) if days else None, by=by)


def start_editing(version: TemplateVersion) -> None:
    st.session_state.update(
        ps_editing=True,
        ps_body=version.body,
        ps_style=version.style,
        ps_note="",
        ps_save_as=version.name,
        ps_base=version.ref,
    )


def after_save(saved: TemplateVersion) -> None:
    """Show what was just saved: the editor on the new version, the diff from the version it was made from."""
    base = st.session_state.get("ps_base") or saved.ref
    st.session_state.update(ps_editing=False, ps_goto=saved.name, ps_view=saved.version)
    st.session_state.update(ps_diff_a=base if base != saved.ref else saved.ref, ps_diff_b=saved.ref)


# -- edit with a live preview ----------------------------------------------------------------------
def edit_tab() -> None:
    left, right = st.columns(2, gap="large")
    with left:
        draft = editor() if st.session_state.get("ps_editing") else viewer()
    with right:
        preview(draft)


def viewer() -> prompts.Template:
    start = production.version if production and production.version in by_version else history[0].version
    choose("ps_view", list(by_version), start)
    viewed = by_version[st.selectbox("Version", list(by_version), format_func=version_label, key="ps_view")]
    st.code(templates.display_text(viewed), language=None, wrap_lines=True)
    when = f"{viewed.created_at:%Y-%m-%d %H:%M} UTC"
    st.caption(ui.md("{} by {}, ", viewed.ref, viewed.author) + when + ui.md(": {}", viewed.note or "no note"))
    st.button("Edit as a new version", icon=":material/edit:", on_click=start_editing, args=(viewed,))
    return prompts.Template(viewed.name, viewed.version, viewed.body, viewed.style)


def editor() -> prompts.Template:
    body = st.text_area("Template text", key="ps_body", height=220)
    style = st.text_area(
        "Style block (optional)",
        key="ps_style",
        height=90,
        help="Appended on its own line, or placed where the text says {style}.",
    )
    save_as = st.text_input("Save as template", key="ps_save_as", help="A new name starts a new template.")
    note = st.text_input("Note", key="ps_note", placeholder="What changed, and why")
    c1, c2 = st.columns([1, 2])
    if c1.button("Save as new version", type="primary", icon=":material/save:"):
        saved = ui.write(
            lambda s: templates.save_version(session=s, actor=actor, name=save_as, body=body, style=style, note=note),
            "Saved.",
        )
        if saved is not None:
            after_save(saved)
            st.rerun()
    if c2.button("Cancel"):
        st.session_state["ps_editing"] = False
        st.rerun()
    return prompts.Template(save_as or name, 0, body, style)


def preview(draft: prompts.Template) -> None:
    found = st.text_input("Preview for", placeholder="Search solutions by title or description")
    with ui.db() as session:
        sample = catalogue.list_solutions(session=session, text=found or None, limit=50)
    if not sample:
        st.info("No solution matches; change the search.", icon=":material/inbox:")
        return
    chosen = st.selectbox("Solution", sample, format_func=lambda s: f"{s.title} · {s.category}")
    with ui.db() as session:
        solution = session.get(Solution, chosen.id)
    variables = prompts.solution_variables(solution)
    text = ui.read(lambda: prompts.render_template(draft, variables))
    if text is None:
        return
    st.text_area("Rendered prompt", text, height=220, disabled=True)
    limit = prompts.prompt_limit(settings.image_model)
    st.caption(ui.md("{} of the {} characters {} takes.", f"{len(text):,}", f"{limit:,}", settings.image_model))
    st.caption(
        style_cues.sentence(text, ignore=variables.values())
    )  # known cue words only: what "Try it" means offline
    check(text, solution)


def check(text: str, solution: Solution) -> None:
    names = provider_registry.provider_names()
    provider_name = st.radio(
        "Moderate with",
        names,
        horizontal=True,
        key="ps_check_with",
        index=names.index(chosen(settings)) if chosen(settings) in names else 0,
        help="OpenAI sends the prompt to its /v1/moderations (free, needs the key); the others screen it with "
        "the local rule list, as they do before every call.",
    )
    if not st.button("Check length and moderation", icon=":material/policy:"):
        return
    report = ui.read(
        lambda: prompts.run_checks(
            text,
            model=settings.image_model,
            description=solution.description,
            provider=get_provider(provider_name, settings),
        )
    )
    if report is not None and report.ok:
        st.success(
            f"Passes: {report.length:,} characters, moderation ({report.moderation_source}) found nothing.",
            icon=":material/verified:",
        )
    elif report is not None:
        for problem in report.problems:
            st.error(ui.literal(problem), icon=":material/block:")


# -- versions, diff, labels ------------------------------------------------------------------------
def versions_tab() -> None:
    with ui.db() as session:
        versions_frame = templates.version_table(session=session, name=name)
        moves = templates.label_moves_table(session=session, name=name)
    when = st.column_config.DatetimeColumn("Saved (UTC)", format="YYYY-MM-DD HH:mm")
    st.dataframe(versions_frame.rename(columns=str.capitalize), hide_index=True, column_config={"Saved": when})
    diff()
    labels_section()
    if not moves.empty:
        st.caption("Label moves")
        when = st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm")
        st.dataframe(moves.rename(columns=str.capitalize).fillna(""), hide_index=True, column_config={"When": when})


def diff() -> None:
    st.subheader("Diff")
    c1, c2 = st.columns(2)
    base = production_ref if production_ref != newest or len(history) < 2 else history[1].ref
    choose("ps_diff_a", refs, base)
    choose("ps_diff_b", refs, newest)
    older = c1.selectbox("From", refs, key="ps_diff_a")
    newer = c2.selectbox("To", refs, key="ps_diff_b")
    with ui.db() as session:
        delta = ui.read(lambda: templates.diff(session=session, old=older, new=newer))
    if delta == "":
        st.caption("The two versions read the same.")
    elif delta:
        st.code(delta, language="diff", wrap_lines=True)


def labels_section() -> None:
    st.subheader("Labels")
    for label in templates.LABELS:
        pointer = pointers.get(label)
        where = (
            ui.md("**v{}**, moved by {} on ", pointer.version, pointer.moved_by)
            + f"{pointer.moved_at:%Y-%m-%d %H:%M} UTC"
            if pointer
            else "not set"
        )
        st.markdown(f"`{label}` → {where}")
    with st.form("ps_move"):
        c1, c2, c3 = st.columns([1, 2, 3])
        label = c1.selectbox("Label", templates.LABELS)
        target = c2.selectbox("Point at", list(by_version), format_func=version_label)
        why = c3.text_input("Why", placeholder="e.g. approval rate up from 40% to 65%")
        if st.form_submit_button("Move label", type="primary", icon=":material/label:"):
            moved = ui.write(
                lambda s: templates.move_label(
                    session=s, actor=actor, name=name, label=label, version=target, note=why
                ),
                f"{label} now points at v{target}.",
            )
            if moved is not None:
                st.rerun()


# -- try two sides (versions, providers, models) on the same solutions -----------------------------
def try_tab() -> None:
    st.caption(
        "Runs two sides, each a template version with a provider and model, on the same sample through "
        "the normal pipeline (budgeted and recorded). The candidates join the review queue; once reviewed "
        "they count in the yield table."
    )
    sides, ids = trial_choices()
    if not ids:
        st.info("No solutions to try on yet: the catalogue is empty.", icon=":material/inbox:")
    else:
        allowed = trial_estimate(sides, ids)
        if st.button("Run both sides", type="primary", icon=":material/compare:", disabled=not allowed):
            start_trial(sides, ids)
    if job_ids := st.session_state.get("ps_trial_jobs"):
        trial_progress(job_ids)


def trial_choices() -> tuple[tuple[trials.Side, trials.Side], list[str]]:
    draft_pointer = pointers.get(templates.DRAFT)
    default_b = f"{name}@{draft_pointer.version}" if draft_pointer else newest
    offered = trials.providers_here(settings)
    runnable = [p for p, problem in offered.items() if problem is None]
    columns = st.columns(2)
    sides = tuple(
        side_choice(column, letter, default, runnable)
        for column, letter, default in zip(columns, "AB", (production_ref, default_b), strict=True)
    )
    if left_out := {p: problem for p, problem in offered.items() if problem}:
        st.caption(ui.literal("Not offered here: " + "; ".join(f"{p} ({why})" for p, why in left_out.items())))
    c1, c2, c3 = st.columns([2, 1, 1])
    category = c1.selectbox("Sample from", [None, *categories], format_func=lambda c: c or "all categories")
    size = c2.number_input("Solutions", 1, trials.MAX_SAMPLE, 4)
    if c3.button("Shuffle", icon=":material/shuffle:"):
        st.session_state["ps_seed"] = st.session_state.get("ps_seed", 0) + 1
    with ui.db() as session:
        ids = trials.sample_solutions(
            session=session, size=int(size), category=category, seed=st.session_state.get("ps_seed", 0)
        )
    return sides, ids  # type: ignore[return-value]


def side_choice(column, letter: str, default_ref: str, runnable: list[str]) -> trials.Side:  # type: ignore[no-untyped-def]
    """One side's version, provider (only those configured here) and model; the keys ps_try_a, ps_try_a_provider…"""
    key = f"ps_try_{letter.lower()}"
    choose(key, refs, default_ref)
    ref = column.selectbox(f"Version {letter}", refs, key=key)
    choose(f"{key}_provider", runnable, runnable[0])  # free providers come first: a trial costs nothing by default
    provider = column.selectbox(f"Provider {letter}", runnable, key=f"{key}_provider")
    models = provider_registry.model_names(provider)
    choose(f"{key}_model", models, settings.image_model if settings.image_model in models else models[0])
    model = column.selectbox(f"Model {letter}", models, key=f"{key}_model", disabled=len(models) == 1)
    return trials.Side(ref, provider, model)


def trial_estimate(sides: tuple[trials.Side, trials.Side], ids: list[str]) -> bool:
    """The cost of a trial before it runs, per side; True when it may run."""
    found = ui.read(lambda: trials.estimate_sides(ui.engine(), settings, actor=actor, sides=sides, solution_ids=ids))
    if not found:
        return False
    for letter, (_, side, part) in zip("AB", found, strict=True):
        cost = f"{part.calls} paid call(s), about {ui.money(part.cost_usd)}" if part.calls else "free"
        st.caption(ui.md("{}: {}", letter, side.describe()) + f" · {len(ids)} solution(s), {cost}")
    estimate = trials.estimate_total([part for *_, part in found])
    if not estimate.paid:
        return True
    m1, m2, m3 = st.columns(3)
    m1.metric("Paid calls", estimate.calls, help=f"{estimate.expected_cache_hits} reused from the cache")
    m2.metric("Estimated cost", ui.money(estimate.cost_usd))
    left = estimate.budget_left_usd
    m3.metric("Budget left", "no cap" if left is None else ui.money(left))
    if not estimate.fits_budget:
        st.warning("The estimate is more than the budget has left; try fewer solutions.")
        return False
    return st.checkbox(ui.md("Spend about {} on this trial", ui.money(estimate.cost_usd)))


def start_trial(sides: tuple[trials.Side, trials.Side], ids: list[str]) -> None:
    """Queue the trial for the workers; its job ids stay in the session so the page follows it across reruns."""
    job_ids = ui.attempt(lambda: trials.start_trial(ui.engine(), settings, actor=actor, sides=sides, solution_ids=ids))
    if job_ids is not None:
        st.session_state["ps_trial_jobs"] = job_ids


def trial_progress(job_ids: list[int]) -> None:
    """Each side's job live (Stop, failures by title), then the side-by-side comparison once both have ended."""
    st.caption("The workers run it: leave or close this page whenever you like; Jobs shows every job.")
    for job_id in job_ids:
        jobs_panel.job_progress(job_id, actor)  # reruns the page when its job ends
    trial = ui.read(lambda: trial_if_ended(job_ids))
    if trial is None:
        st.caption("The comparison appears here when both sides are done.")
        return
    if st.session_state.get("ps_trial_counted") != job_ids:  # its attempts join the yield table below
        st.session_state["ps_trial_counted"] = job_ids
        yield_figures.clear()
    trial_results(trial)


def trial_if_ended(job_ids: list[int]) -> trials.Trial | None:
    with ui.db() as session:
        if not trials.trial_ended(session=session, job_ids=job_ids):
            return None
        return trials.trial_of(session=session, job_ids=job_ids)


def trial_results(trial: trials.Trial) -> None:
    with ui.db() as session:
        rows = trials.comparison(session=session, trial=trial)
    for head, label, side in zip(st.columns(2), trial.labels, trial.sides, strict=True):
        summary = trial.summaries.get(label, {})
        made = f"{summary.get('succeeded', 0)} made · {ui.money(summary.get('cost_usd'))}"
        head.markdown(ui.md("**{}** · {}", label, made))
        head.caption(ui.literal(side.describe()))
    for row in rows:
        for column, label in zip(st.columns(2), trial.labels, strict=True):
            side = row["sides"][label]
            with column:
                if side["error"]:
                    st.error(ui.md("{}: {}", row["title"], wording.plain_error(side["error"])), icon=":material/error:")
                else:
                    ui.card(
                        row["title"],
                        row["category"],
                        side["thumb_path"],
                        f"{label} · #{side['candidate_id']} · {ui.money(side['cost_usd'], exact=True)}"
                        + (" · cache" if side["cache_hit"] else ""),
                    )


# -- yield: which version, provider and model earn approvals -----------------------------------------
YIELD_VIEWS = {yields.BY_TEMPLATE: "Template versions", yields.BY_PAIR: "Providers and models"}


def yield_tab() -> None:
    c1, c2 = st.columns(2)
    with c1:
        days = st.segmented_control(
            "Period",
            [0, 30, 90],
            default=0,
            key="ps_yield_days",
            format_func=lambda d: f"Last {d} days" if d else "All time",
        )
    with c2:
        by = st.segmented_control(
            "Compare", list(YIELD_VIEWS), default=yields.BY_TEMPLATE, key="ps_yield_by", format_func=YIELD_VIEWS.get
        )
    by = by or yields.BY_TEMPLATE
    table = yield_figures(days or 0, by)
    if not table["attempts"].any():
        st.info(
            "No generations yet. Run **Try it** above or the Generate page; the figures fill in as "
            "admins review the candidates.",
            icon=":material/query_stats:",
        )
        return
    reviewed = table[table["reviewed"] > 0]
    if not reviewed.empty:
        st.plotly_chart(charts.approval_rates(reviewed), width="stretch")
    columns = {
        "Approval rate": st.column_config.TextColumn(
            "Approval rate", help="approved ÷ reviewed (not chosen counts as reviewed)"
        ),
        "Rejection reasons": st.column_config.TextColumn("Rejection reasons", width="large"),
        "Flagged": st.column_config.TextColumn(
            "Flagged", help="Share of the checked candidates any automatic check flagged; each check's share follows"
        ),
    }
    st.dataframe(yields.yield_readable(table, REASONS), hide_index=True, column_config=columns)
    st.caption("Candidates awaiting review are not in the approval rate yet; admins review them on the Review page.")


# -- per-category templates ------------------------------------------------------------------------
def categories_tab() -> None:
    with ui.db() as session:
        overrides = templates.category_table(session=session)
    st.caption("A category can use another template's production version instead of `default`'s.")
    if not overrides.empty:
        when = st.column_config.DatetimeColumn("Set (UTC)", format="YYYY-MM-DD HH:mm")
        st.dataframe(overrides.rename(columns=str.capitalize), hide_index=True, column_config={"Set": when})
    else:
        st.caption("Every category uses `default` now.")
    with st.form("ps_category"):
        c1, c2 = st.columns(2)
        which = c1.selectbox("Category", sorted(set(categories) | set(overrides["category"])) or ["Other"])
        use = c2.selectbox("Template", names, help="Choose default to put the category back on default.")
        submitted = st.form_submit_button("Use for this category", icon=":material/category:")
    if submitted:
        used = ui.write(
            lambda s: templates.set_category_template(session=s, actor=actor, category=which, template=use),
            f"{which} now uses {use}.",
        )
        if used is not None:
            st.rerun()


tabs = st.tabs(["Edit & preview", "Versions & labels", "Try it", "Yield", "Categories"])
for tab, show in zip(tabs, (edit_tab, versions_tab, try_tab, yield_tab, categories_tab), strict=True):
    with tab:
        show()
