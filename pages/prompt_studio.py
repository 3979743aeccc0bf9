"""Prompt Studio: edit templates with a live preview, version history and labels, try two versions
side by side, and the yield table: which version's images reviewers approve."""

from datetime import timedelta

import plotly.express as px
import streamlit as st

import ui
from aixchange_images import catalogue, prompts, style_cues, templates, trials
from aixchange_images.config import UserError
from aixchange_images.models import NOT_CHOSEN, REJECT_REASONS, Solution, utcnow
from aixchange_images.providers import get_provider

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
marks = {p.version: [] for p in pointers.values()}
for label, pointer in sorted(pointers.items(), reverse=True):
    marks[pointer.version].append(label)


def version_label(number: int) -> str:
    version = by_version[number]
    tags = f" · {', '.join(marks[number])}" if marks.get(number) else ""
    return f"v{number}{tags} · {version.note[:50] or 'no note'}"


def shown(read):
    """A read whose PromptError (or other user error) is one sentence on the page."""
    try:
        return read()
    except UserError as exc:
        st.error(str(exc), icon=":material/error:")
        return None


def run(action, message: str):  # a write in its own session, committed when it worked
    def write():
        with ui.db(write=True) as session:
            out = action(session)
            session.commit()
            return out

    return ui.attempt(write, message)


@st.cache_data(ttl=60, show_spinner=False)
def yield_figures(days: int):
    """The yield table (two GROUP BYs); any action through ui.attempt clears this cache."""
    with ui.db() as session:
        return trials.yield_table(session=session, since=utcnow() - timedelta(days=days) if days else None)


def start_editing(version) -> None:
    st.session_state.update(
        ps_editing=True, ps_body=version.body, ps_style=version.style, ps_note="", ps_save_as=version.name
    )


tab_edit, tab_versions, tab_try, tab_yield, tab_categories = st.tabs(
    ["Edit & preview", "Versions & labels", "Try it", "Yield", "Categories"]
)

# -- edit with a live preview ----------------------------------------------------------------------
with tab_edit:
    left, right = st.columns(2, gap="large")
    editing = st.session_state.get("ps_editing", False)
    with left:
        if not editing:
            start = production.version if production and production.version in by_version else history[0].version
            viewed = by_version[
                st.selectbox(
                    "Version",
                    list(by_version),
                    index=list(by_version).index(start),
                    format_func=version_label,
                    key="ps_view",
                )
            ]
            st.code(templates.display_text(viewed), language=None, wrap_lines=True)
            st.caption(f"{viewed.ref} by {viewed.author}, {viewed.created_at:%Y-%m-%d %H:%M} UTC")
            st.button("Edit as a new version", icon=":material/edit:", on_click=start_editing, args=(viewed,))
            draft = prompts.Template(viewed.name, viewed.version, viewed.body, viewed.style)
        else:
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
                saved = run(
                    lambda s: templates.save_version(
                        session=s, actor=actor, name=save_as, body=body, style=style, note=note
                    ),
                    "Saved.",
                )
                if saved is not None:
                    st.session_state.update(ps_editing=False, ps_goto=saved.name)
                    st.rerun()
            if c2.button("Cancel"):
                st.session_state["ps_editing"] = False
                st.rerun()
            draft = prompts.Template(save_as or name, 0, body, style)
    with right:
        found = st.text_input("Preview for", placeholder="Search solutions by title or description")
        with ui.db() as session:
            sample = catalogue.list_solutions(session=session, text=found or None, limit=50)
        if not sample:
            st.info(
                "No solution matches; import solutions (Solutions page) or change the search.", icon=":material/inbox:"
            )
        else:
            chosen = st.selectbox("Solution", sample, format_func=lambda s: f"{s.title} · {s.category}")
            with ui.db() as session:
                solution = session.get(Solution, chosen.id)
            variables = prompts.solution_variables(solution)
            text = shown(lambda: prompts.render_template(draft, variables))
            if text is not None:
                st.text_area("Rendered prompt", text, height=220, disabled=True)
                limit = prompts.prompt_limit(settings.image_model)
                st.caption(f"{len(text):,} of the {limit:,} characters {settings.image_model} takes.")
                st.caption(style_cues.sentence(text, ignore=variables.values()))  # what "Try it" means offline
                provider_name = st.radio(
                    "Moderate with",
                    ["local", "openai"],
                    horizontal=True,
                    key="ps_check_with",
                    index=1 if settings.provider_name == "openai" else 0,
                    help="openai sends the prompt to /v1/moderations (free, needs the key).",
                )
                if st.button("Check length and moderation", icon=":material/policy:"):
                    report = shown(
                        lambda: prompts.run_checks(
                            text,
                            model=settings.image_model,
                            description=solution.description,
                            provider=get_provider(provider_name, settings),
                        )
                    )
                    if report is not None and report.ok:
                        st.success(
                            f"Passes: {report.length:,} characters, moderation ({report.moderation_source}) "
                            "found nothing.",
                            icon=":material/verified:",
                        )
                    elif report is not None:
                        for problem in report.problems:
                            st.error(problem, icon=":material/block:")

# -- versions, diff, labels ------------------------------------------------------------------------
with tab_versions:
    with ui.db() as session:
        versions_frame = templates.version_table(session=session, name=name)
        moves = templates.label_moves_table(session=session, name=name)
    when = st.column_config.DatetimeColumn("saved (UTC)", format="YYYY-MM-DD HH:mm")
    st.dataframe(versions_frame, hide_index=True, column_config={"saved": when})
    st.subheader("Diff")
    c1, c2 = st.columns(2)
    base = production_ref if production_ref != newest or len(history) < 2 else history[1].ref
    older = c1.selectbox("From", refs, index=refs.index(base), key="ps_diff_a")
    newer = c2.selectbox("To", refs, index=refs.index(newest), key="ps_diff_b")
    with ui.db() as session:
        delta = shown(lambda: templates.diff(session=session, old=older, new=newer))
    if delta == "":
        st.caption("The two versions read the same.")
    elif delta:
        st.code(delta, language="diff", wrap_lines=True)

    st.subheader("Labels")
    for label in templates.LABELS:
        pointer = pointers.get(label)
        where = (
            f"**v{pointer.version}**, moved by {pointer.moved_by} on {pointer.moved_at:%Y-%m-%d %H:%M} UTC"
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
            moved = run(
                lambda s: templates.move_label(
                    session=s, actor=actor, name=name, label=label, version=target, note=why
                ),
                f"{label} now points at v{target}.",
            )
            if moved is not None:
                st.rerun()
    if not moves.empty:
        st.caption("Label moves")
        when = st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm")
        st.dataframe(moves, hide_index=True, column_config={"when": when})

# -- try two versions on the same solutions --------------------------------------------------------
with tab_try:
    st.caption(
        "Runs both versions on the same sample through the normal pipeline (budgeted and recorded). "
        "The candidates join the review queue; once reviewed they count in the yield table."
    )
    draft_pointer = pointers.get(templates.DRAFT)
    c1, c2 = st.columns(2)
    side_a = c1.selectbox("Version A", refs, index=refs.index(production_ref), key="ps_try_a")
    default_b = f"{name}@{draft_pointer.version}" if draft_pointer else newest
    side_b = c2.selectbox("Version B", refs, index=refs.index(default_b), key="ps_try_b")
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
    category = c1.selectbox("Sample from", [None, *categories], format_func=lambda c: c or "all categories")
    size = c2.number_input("Solutions", 1, trials.MAX_SAMPLE, 4)
    if c3.button("Shuffle", icon=":material/shuffle:"):
        st.session_state["ps_seed"] = st.session_state.get("ps_seed", 0) + 1
    has_key = settings.openai_api_key is not None
    provider = c4.radio(
        "Provider",
        ["local", "openai"] if has_key else ["local"],
        horizontal=True,
        help=None if has_key else "openai needs OPENAI_API_KEY on the server.",
    )
    with ui.db() as session:
        ids = trials.sample_solutions(
            session=session, size=int(size), category=category, seed=st.session_state.get("ps_seed", 0)
        )
    if not ids:
        st.info("No solutions to try on yet: import some on the Solutions page.", icon=":material/inbox:")
    else:
        estimate = shown(
            lambda: trials.estimate_trial(
                ui.engine(), settings, actor=actor, refs=(side_a, side_b), solution_ids=ids, provider=provider
            )
        )
        allowed = estimate is not None
        if estimate and estimate["paid"]:
            m1, m2, m3 = st.columns(3)
            m1.metric("Paid calls", estimate["calls"], help=f"{estimate['expected_cache_hits']} reused from cache")
            m2.metric("Estimated cost", ui.money(estimate["estimated_cost_usd"]))
            m3.metric(
                "Budget left",
                "no cap" if estimate["budget_left_usd"] is None else ui.money(estimate["budget_left_usd"]),
            )
            if not estimate["fits_budget"]:
                st.warning("The estimate is more than the budget has left; try fewer solutions.")
            allowed = estimate["fits_budget"] and st.checkbox(
                f"Spend about {ui.money(estimate['estimated_cost_usd'])} on this trial"
            )
        elif estimate:
            st.caption(f"{len(ids)} solution(s) × 2 versions with the local provider: free.")
        if st.button("Run both versions", type="primary", icon=":material/compare:", disabled=not allowed):
            bar = st.progress(0.0, text="Starting…")
            with st.status(f"Trying {side_a} and {side_b} on {len(ids)} solution(s)…", expanded=True) as status:

                def progress(done: int, total: int, result) -> None:
                    bar.progress(done / total, text=f"{done} of {total} done")
                    if result.status == "failed":
                        st.write(f":red[✗] `{result.solution_id}`: {result.error}")

                trial = ui.attempt(
                    lambda: trials.run_trial(
                        ui.engine(),
                        settings,
                        actor=actor,
                        refs=(side_a, side_b),
                        solution_ids=ids,
                        provider=provider,
                        progress=progress,
                    )
                )
                status.update(
                    label="Done." if trial else "Stopped.", state="complete" if trial else "error", expanded=False
                )
            if trial is not None:
                st.session_state["ps_trial"] = trial
    trial = st.session_state.get("ps_trial")
    if trial is not None:
        with ui.db() as session:
            rows = trials.comparison(session=session, trial=trial)
        heads = st.columns(2)
        for head, ref in zip(heads, trial.refs, strict=True):
            summary = trial.summaries.get(ref, {})
            head.markdown(f"**{ref}** · {summary.get('succeeded', 0)} made · {ui.money(summary.get('cost_usd'))}")
        for row in rows:
            for column, ref in zip(st.columns(2), trial.refs, strict=True):
                side = row["sides"][ref]
                with column:
                    if side["error"]:
                        st.error(f"{row['title']}: {side['error']}", icon=":material/error:")
                    else:
                        ui.card(
                            row["title"],
                            row["category"],
                            side["thumb_path"],
                            f"{ref} · #{side['candidate_id']} · {ui.money(side['cost_usd'])}"
                            + (" · cache" if side["cache_hit"] else ""),
                        )

# -- yield: which version earns approvals ----------------------------------------------------------
with tab_yield:
    days = st.segmented_control(
        "Period",
        [0, 30, 90],
        default=0,
        key="ps_yield_days",
        format_func=lambda d: f"last {d} days" if d else "all time",
    )
    table = yield_figures(days or 0)
    if not table["attempts"].any():
        st.info(
            "No generations yet. Run **Try it** above or the Generate page; the figures fill in as "
            "admins review the candidates.",
            icon=":material/query_stats:",
        )
    else:
        reviewed = table[table["reviewed"] > 0]
        if not reviewed.empty:
            chart = px.bar(
                reviewed,
                x="approval_rate",
                y="template",
                orientation="h",
                text_auto=".0%",
                labels={"approval_rate": "approval rate", "template": ""},
                title="Share of reviewed candidates that were approved",
            )
            chart.update_layout(
                height=90 + 34 * len(reviewed),
                margin=dict(l=10, r=10, t=40, b=10),
                xaxis_tickformat=".0%",
                yaxis_autorange="reversed",
            )
            st.plotly_chart(chart, width="stretch")
        table["rejections"] = table["rejections"].map(
            lambda found: " · ".join(f"{REASONS.get(k, k)} {n}" for k, n in found.items())
        )
        shown_columns = [
            "template",
            "labels",
            "attempts",
            "success_rate",
            "approval_rate",
            "cost_per_approved_usd",
            "reviewed",
            "approved",
            "pending",
            "spend_usd",
            "rejections",
        ]
        st.dataframe(
            table[shown_columns],
            hide_index=True,
            column_config={
                "success_rate": st.column_config.NumberColumn("success", format="percent"),
                "approval_rate": st.column_config.NumberColumn(
                    "approval", format="percent", help="approved / reviewed (not chosen counts as reviewed)"
                ),
                "cost_per_approved_usd": st.column_config.NumberColumn("$ per approved", format="$%.4f"),
                "spend_usd": st.column_config.NumberColumn("spend", format="dollar"),
                "rejections": st.column_config.TextColumn("rejection reasons", width="large"),
            },
        )
        st.caption("Pending candidates are not in the approval rate yet; review them on the Review page.")

# -- per-category templates ------------------------------------------------------------------------
with tab_categories:
    with ui.db() as session:
        overrides = templates.category_table(session=session)
    st.caption("A category can use another template's production version instead of `default`'s.")
    if not overrides.empty:
        when = st.column_config.DatetimeColumn("set (UTC)", format="YYYY-MM-DD HH:mm")
        st.dataframe(overrides, hide_index=True, column_config={"set": when})
    else:
        st.caption("Every category uses `default` now.")
    with st.form("ps_category"):
        c1, c2 = st.columns(2)
        which = c1.selectbox("Category", sorted(set(categories) | set(overrides["category"])) or ["Other"])
        use = c2.selectbox("Template", names, help="Choose default to put the category back on default.")
        submitted = st.form_submit_button("Use for this category", icon=":material/category:")
    if submitted:
        used = run(
            lambda s: templates.set_category_template(session=s, actor=actor, category=which, template=use),
            f"{which} now uses {use}.",
        )
        if used is not None:
            st.rerun()
