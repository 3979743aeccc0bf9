"""Review: the queue of solutions whose candidates wait; approve, reject or upload, then on to the next.

User text (titles, categories, URLs) and the automatic checks' sentences go through `ui.literal`
wherever Streamlit renders markdown.
"""

from dataclasses import replace

import streamlit as st

import ui
from aixchange_images import batch, candidates, deliveries, inspections, pipeline, queue, refine, review
from aixchange_images.models import REJECT_REASONS, Candidate, Purpose, Solution

QUEUE_PAGE = 20
SHOW = {"regular": Purpose.regular, "trial": Purpose.trial, "both": None}
SHOW_LABELS = {"regular": "Regular", "trial": "Prompt Studio trials", "both": "Both"}
KEYS = (
    "Keys: **1**, **2**, **3** approve that candidate · **X** rejects the candidates shown, with the reason "
    "beside it · **N** next · **P** previous · **U** undoes an approval. Keys do nothing while you type in a box."
)
REFINE_HELP = (
    "What to change. The local provider knows: lighter or darker background, warmer or cooler, more or less "
    "contrast, and colour words (make it teal); OpenAI takes any instruction."
)
NO_MATCH = {  # the check filter matched nothing (while other candidates wait): what it found none of
    "flagged": "No candidate waiting here is flagged by an automatic check.",
    "unflagged": "No candidate waiting here has passed every automatic check.",
    "unchecked": "Every candidate waiting here has been checked.",
}
actor = ui.guard("review")
settings = ui.settings()
ui.show_flash()
st.title("Review")


# -- where we are ---------------------------------------------------------------------------------
def choose(solution_id: str | None) -> None:
    """Show this solution next (a click on the queue, Next, Previous); the queue's page follows it."""
    st.session_state["review_solution"] = solution_id


def move_on(solution_id: str | None, message: str) -> None:
    ui.flash(message)
    choose(solution_id)
    st.rerun()


def start_from_url() -> None:
    """`?q=`, `?show=`, `?check=` and `?sort=` set the search, the trials choice, the check filter and the
    order once, so a link can open a view (`?check=blank&sort=oldest`)."""
    params = st.query_params
    if "q" in params and "rq-text" not in st.session_state:
        st.session_state["rq-text"] = params["q"]
    for param, key, offered in (("show", "rq-show", SHOW), ("check", "rq-check", queue.CHECK_FILTERS)):
        if params.get(param) in offered and key not in st.session_state:
            st.session_state[key] = params[param]
    if params.get("sort") in queue.SORTS and "rq-sort" not in st.session_state:
        st.session_state["rq-sort"] = params["sort"]


def show_every_check() -> None:
    st.session_state["rq-check"] = "all"


def show_whole_queue() -> None:
    st.query_params.pop("batch", None)


@st.cache_data(ttl=60, show_spinner=False)
def choices(_marker: str) -> dict[str, list[str]]:
    """What the filters offer (cleared by every action, like the other cached figures)."""
    with ui.db() as session:
        return queue.choices(session=session, purpose=None)


def filter_bar() -> tuple[queue.QueueFilter, str]:
    offered = choices(str(ui.base_settings().database_url))
    any_of = lambda what: lambda v: f"any {what}" if v is None else v  # noqa: E731
    c1, c2, c3, c4, c5 = st.columns([3, 1.5, 1.3, 1.3, 1.4])
    text = c1.text_input("Search", key="rq-text", placeholder="title, description or id")
    category = c2.selectbox("Category", [None, *offered["categories"]], format_func=any_of("category"), key="rq-cat")
    model = c3.selectbox("Model", [None, *offered["models"]], format_func=any_of("model"), key="rq-model")
    template = c4.selectbox("Template", [None, *offered["templates"]], format_func=any_of("version"), key="rq-tpl")
    sort = c5.selectbox("Sort", list(queue.SORTS), format_func=queue.SORTS.get, key="rq-sort")
    c6, c7 = st.columns([2, 3])
    show = c6.radio("Candidates", list(SHOW), format_func=SHOW_LABELS.get, horizontal=True, key="rq-show")
    check = c7.selectbox(
        "Checks",
        list(queue.CHECK_FILTERS),
        format_func=queue.CHECK_FILTERS.get,
        key="rq-check",
        help="Candidates by what the automatic image checks found: any flag, none (checked and passed), "
        "not checked yet, or one flag.",
    )
    run = st.query_params.get("batch")
    if run:
        left, right = st.columns([4, 1])
        left.info("Showing the candidates of one Generate run.", icon=":material/filter_alt:")
        right.button("Show the whole queue", on_click=show_whole_queue, icon=":material/filter_alt_off:")
    filters = queue.QueueFilter(text, category, model, template, run or None, SHOW[show], checks=check)
    return filters, sort


start_from_url()
filters, sort = filter_bar()
with ui.db() as session:
    seen = queue.view(session=session, filters=filters, sort=sort, current=st.session_state.get("review_solution"))
total, place, current = seen.total, seen.place, seen.current
choose(current)
apart = f"; {seen.trials_apart:,} with Prompt Studio trial candidates are kept apart (see Candidates)"
st.caption(f"{total:,} solution(s) wait for review{apart if seen.trials_apart else ''}.")
st.caption(KEYS)


# -- undo a moment's approval ----------------------------------------------------------------------
def undo_bar() -> None:
    undo = st.session_state.get("review_undo")
    if not undo:
        return
    publication_id, solution_id, title = undo
    with st.container(border=True):
        said, act, drop = st.columns([6, 1, 1], vertical_alignment="center")
        said.text(f"Published {title}.")
        if act.button("Undo", key="undo", icon=":material/undo:", shortcut="U", width="stretch"):
            st.session_state.pop("review_undo", None)
            done = ui.write(lambda s: review.undo_approval(session=s, publication_id=publication_id, actor=actor))
            if done is not None:
                move_on(solution_id, f"Undone: {ui.literal(title)} waits for review again.")
        if drop.button("Dismiss", key="undo-dismiss", width="stretch"):
            st.session_state.pop("review_undo", None)
            st.rerun()


def bulk_outcome() -> None:
    report = st.session_state.pop("review_bulk", None)
    if report is None:
        return
    approved, failed = report
    st.success(f"Approved the first candidate of {approved} solution(s).", icon=":material/done_all:")
    for title, sentence in failed:
        st.error(ui.literal(f"{title}: {sentence}"), icon=":material/error:")


undo_bar()
bulk_outcome()


def nothing_flagged(check: str) -> None:
    """The check filter's empty state: say what it found none of, and offer the whole queue back."""
    label = queue.CHECK_FILTERS[check].lower()
    said = NO_MATCH.get(check, f"No candidate waiting here is flagged {label}.")
    st.info(f"{said} Show all to see the rest of the queue.", icon=":material/filter_alt_off:")
    st.button("Show all", icon=":material/filter_alt_off:", on_click=show_every_check, key="rq-show-all")


def others_wait() -> bool:
    """Whether candidates would show with the check filter set back to All."""
    with ui.db() as session:
        return queue.count(session=session, filters=replace(filters, checks="all")) > 0


if current is None:
    if filters.checks != "all" and others_wait():
        nothing_flagged(filters.checks)
        st.stop()
    st.info("Nothing to review in this view. Generate candidates, or clear the filters.", icon=":material/inbox:")
    ui.page_link("pages/generate.py", "Go to Generate", ":material/auto_awesome:")
    st.stop()


# -- the queue ---------------------------------------------------------------------------------------
def close_bulk() -> None:
    st.session_state.pop("rq-confirm", None)


@st.dialog("Approve the first candidate of each?", on_dismiss=close_bulk)
def confirm_bulk(picked: dict[str, str]) -> None:
    """Open while `rq-confirm` holds the ticked solutions (so a full rerun keeps it open)."""
    st.write(f"{len(picked)} solution(s) will be published now, each with its first candidate:")
    for title in list(picked.values())[:12]:
        st.text(f"• {title}")
    if len(picked) > 12:
        st.caption(f"…and {len(picked) - 12} more.")
    yes, no = st.columns(2)
    if yes.button(f"Approve {len(picked)}", type="primary", icon=":material/done_all:", width="stretch"):
        bar = st.progress(0.0, text="Approving…")
        outcome = ui.attempt(
            lambda: queue.approve_first(
                ui.engine(),
                settings,
                list(picked),
                actor=actor,
                filters=filters,
                progress=lambda done, n: bar.progress(done / n, text=f"{done} of {n} done"),
            )
        )
        if outcome is not None:
            failed = [(picked[sid], sentence) for sid, sentence in outcome.failed.items()]
            st.session_state["review_bulk"] = (len(outcome.approved), failed)
            st.session_state["rq-pick-gen"] = st.session_state.get("rq-pick-gen", 0) + 1  # clears the ticks
            st.session_state.pop("review_undo", None)
            close_bulk()
            st.rerun()
    if no.button("Cancel", width="stretch"):
        close_bulk()
        st.rerun()


def queue_page() -> int:
    """The page of the queue to list: the current solution's, unless the reviewer turned the page."""
    pages = max(1, -(-total // QUEUE_PAGE))
    if not st.session_state.pop("rq-browsing", False) or "rq-page" not in st.session_state:
        st.session_state["rq-page"] = (place.index or 0) // QUEUE_PAGE + 1
    st.session_state["rq-page"] = min(st.session_state["rq-page"], pages)
    if pages > 1:
        st.number_input(
            f"Page (of {pages:,})",
            1,
            pages,
            step=1,
            key="rq-page",
            on_change=st.session_state.update,
            args=({"rq-browsing": True},),
        )
    return (st.session_state["rq-page"] - 1) * QUEUE_PAGE


QUEUE_STYLE = (  # the queue reads as a list: names start at the left
    "<style>[class*='st-key-open-'] button, [class*='st-key-open-'] button div "
    "{width: 100%; justify-content: flex-start; text-align: left}</style>"
)


def queue_list() -> None:
    st.html(QUEUE_STYLE)
    with ui.db() as session:
        rows = queue.page(session=session, filters=filters, sort=sort, offset=queue_page(), limit=QUEUE_PAGE)
    generation = st.session_state.get("rq-pick-gen", 0)
    picked: dict[str, str] = {}
    bulk = st.container()  # above the list, filled once the ticks are known
    for row in rows:
        sid, title = row.solution.id, row.solution.title
        tick, name = st.columns([1, 8], vertical_alignment="center", gap="small")
        if tick.checkbox(ui.literal(f"Select {title}"), key=f"pick-{generation}-{sid}", label_visibility="collapsed"):
            picked[sid] = title
        flagged = f" · :orange-badge[:material/flag: {row.flagged}]" if row.flagged else ""  # how many a check flagged
        name.button(
            ui.literal(f"{title} · {row.candidates}") + flagged,
            key=f"open-{sid}",
            type="primary" if sid == current else "tertiary",
            on_click=choose,
            args=(sid,),
            width="stretch",
            help=f"{row.flagged} of its candidates flagged by an automatic check" if row.flagged else None,
        )
    with bulk:
        if picked and st.button(
            f"Approve {len(picked)} selected",
            icon=":material/done_all:",
            width="stretch",
            help="Publishes each ticked solution's first candidate, after asking.",
        ):
            st.session_state["rq-confirm"] = picked
        elif not picked:
            st.caption("Tick solutions to approve each one's first candidate at once.")
    if st.session_state.get("rq-confirm"):
        confirm_bulk(st.session_state["rq-confirm"])


# -- the current solution ------------------------------------------------------------------------------
with ui.db() as session:
    solution = session.get(Solution, current)
    shown = candidates.family_order(queue.candidates(session=session, solution_id=current, filters=filters))
    attempts = {c.id: review.attempt_for(session=session, candidate=c) for c in shown}
    lineages = {c.id: candidates.lineage_text(c, candidates.lineage(session=session, candidate=c)) for c in shown}
    conflicts = deliveries.conflicts(session=session, solution_id=current)
    found = inspections.findings(session, shown)
after = place.next or place.previous  # where the queue goes once this solution is decided
editors = refine.edit_providers(settings)  # who can change an image now


def approve(candidate: Candidate) -> None:
    st.session_state.pop("review_undo", None)
    done = ui.write(lambda s: review.approve(session=s, settings=settings, candidate_id=candidate.id, actor=actor))
    if done is not None:
        st.session_state["review_undo"] = (done.id, solution.id, solution.title)
        move_on(after, f"Published {ui.literal(solution.title)}.")


def reject(candidate_ids: list[int], reason: str, note: str | None = None) -> None:
    st.session_state.pop("review_undo", None)
    done = ui.write(
        lambda s: review.reject_all(session=s, candidate_ids=candidate_ids, reason=reason, note=note, actor=actor)
    )
    if done is not None:  # on to the next solution once nothing of this one is left to decide
        move_on(current if len(candidate_ids) < len(shown) else after, f"Rejected {len(candidate_ids)}.")


def candidate_panel(number: int, candidate: Candidate) -> None:
    at = attempts.get(candidate.id)
    secs = f"{(at.duration_ms or 0) / 1000:.1f}s" if at else "—"
    extra = (" · cache" if candidate.cache_hit else "") + (" · trial" if candidate.purpose == Purpose.trial else "")
    footer = f"{number}. #{candidate.id} · {candidate.model} · {ui.money(candidate.cost_usd)} · {secs}{extra}"
    ui.card(solution.title, solution.category, candidate.thumb_path, footer)
    checks_note(candidate)
    if lineages.get(candidate.id):
        st.caption(ui.literal(lineages[candidate.id]))  # an instruction is what someone typed: never markdown
    if at:
        with st.expander("Prompt"):
            st.text(f"template {at.template_ref} · {at.size} · {at.quality}")
            st.code(at.prompt, language=None, wrap_lines=True)  # literal: a prompt is not markdown
    key = str(number) if number <= 3 else None
    if st.button(
        "Approve",
        key=f"approve-{candidate.id}",
        type="primary",
        icon=":material/check:",
        width="stretch",
        shortcut=key,
        help=f"Key {key}" if key else None,
    ):
        approve(candidate)
    with st.popover("Reject", icon=":material/close:", width="stretch"):
        reason = st.selectbox(
            "Reason", list(REJECT_REASONS), format_func=REJECT_REASONS.get, key=f"reason-{candidate.id}"
        )
        note = st.text_input("Note (optional)", key=f"note-{candidate.id}")
        if st.button("Reject candidate", key=f"reject-{candidate.id}"):
            reject([candidate.id], reason, note)
    refine_box(candidate, at.provider if at else "")


def checks_note(candidate: Candidate) -> None:
    """What the automatic checks found: a badge per flag with its check's sentence (literal), or a note."""
    findings = found.get(candidate.id)
    if findings is None or findings.state == "none":
        return
    if findings.state == "passed":
        st.caption(":material/verified: Checks passed")
    elif findings.state == "running":
        st.caption(":material/hourglass_top: Checks running; they show here once done.")
    elif findings.state == "unchecked":
        st.caption(":material/help: Not checked yet.")
        check_now(candidate)
    for flag in findings.flags:
        icon, colour = (":material/error:", "red") if flag.blocking else (":material/warning:", "orange")
        with st.container(gap=None):  # the sentence right under its badge
            st.badge(flag.label, icon=icon, color=colour)
            if flag.sentence:
                st.caption(ui.literal(flag.sentence))  # a check's sentence may quote lettering read off the image


def check_now(candidate: Candidate) -> None:
    """Run the automatic checks on a candidate made before they existed (or while they were off)."""
    if not st.button("Check now", key=f"check-{candidate.id}", type="tertiary", icon=":material/fact_check:"):
        return
    with st.spinner(f"Checking #{candidate.id}…"):
        outcomes = ui.attempt(lambda: inspections.check_again(ui.engine(), settings, [candidate.id]))
    problem = next((o.problem for o in outcomes or [] if o.problem), None)
    if problem:
        st.error(ui.literal(problem), icon=":material/error:")
    elif outcomes is not None:
        move_on(current, f"Checked #{candidate.id}.")


def refine_box(candidate: Candidate, made_by: str) -> None:
    """Change this candidate as an instruction says: the result waits beside it."""
    with st.popover("Refine", icon=":material/auto_fix_high:", width="stretch"):
        if not editors:
            st.caption("No provider that can change an image is ready; see Settings.")
            return
        text = st.text_input(
            "Instruction",
            key=f"refine-text-{candidate.id}",
            max_chars=refine.MAX_INSTRUCTION,
            placeholder="warmer and a lighter background",
            help=REFINE_HELP,
        )
        mine = candidate.provider or made_by
        name = st.selectbox(
            "Provider", editors, index=editors.index(mine) if mine in editors else 0, key=f"refine-with-{candidate.id}"
        )
        if st.button("Refine candidate", key=f"refine-{candidate.id}", icon=":material/auto_fix_high:"):
            with st.spinner(f"Refining #{candidate.id} with {name}…"):
                result = ui.attempt(
                    lambda: refine.refine(ui.engine(), settings, candidate.id, text, provider=name, actor=actor)
                )
            if result is not None and result.status == "failed":
                st.error(ui.literal(result.error), icon=":material/error:")
            elif result is not None:
                move_on(current, f"Refined #{candidate.id} into #{result.candidate_id}.")


def step_bar() -> None:
    back, forward, why, all_ = st.columns([1, 1, 1.6, 1.4], vertical_alignment="bottom")
    back.button(
        "Previous",
        icon=":material/arrow_back:",
        shortcut="P",
        disabled=place.previous is None,
        on_click=choose,
        args=(place.previous,),
        width="stretch",
    )
    forward.button(
        "Next",
        icon=":material/arrow_forward:",
        shortcut="N",
        disabled=place.next is None,
        on_click=choose,
        args=(place.next,),
        width="stretch",
    )
    reason = why.selectbox("Reason for X", list(REJECT_REASONS), format_func=REJECT_REASONS.get, key="rq-reason")
    if all_.button(
        f"Reject {'all ' if len(shown) > 1 else ''}{len(shown)}",
        icon=":material/block:",
        shortcut="X",
        disabled=not shown,
        width="stretch",
    ):
        reject([c.id for c in shown], reason)


def solution_panel() -> None:
    st.subheader(ui.literal(solution.title))
    position = f"{place.index + 1:,} of {total:,}" if place.index is not None else ""
    st.caption(
        f"{position} · {ui.literal(solution.category)} · image status **{solution.image_status}** · "
        f"{ui.literal(solution.id)}"
    )
    ui.page_link("pages/solution.py", "Its page: history and rollback", ":material/history:", {"id": solution.id})
    for conflict in conflicts:
        st.warning("The marketplace shows another image than the one approved here.", icon=":material/sync_problem:")
        ui.conflict_panel(conflict, actor)
    step_bar()
    for row_start in range(0, len(shown), 3):
        for col, (number, candidate) in zip(
            st.columns(3), list(enumerate(shown, 1))[row_start : row_start + 3], strict=False
        ):
            with col:
                candidate_panel(number, candidate)
    regenerate, upload = st.columns(2)
    if regenerate.button("Regenerate", icon=":material/refresh:", help="A new paid call (or a new local variant)."):
        options = pipeline.GenerateOptions(candidates=1, use_cache=False, actor=actor)
        with st.spinner("Generating a new candidate…"):
            out = ui.attempt(lambda: batch.run_batch(ui.engine(), settings, [solution.id], options))
        result = out[0][0] if out and out[0] else None
        if result is not None and result.status == "failed":
            st.error(ui.literal(result.error), icon=":material/error:")
        elif out is not None:
            st.rerun()
    with upload.popover("Upload instead", icon=":material/upload:"):
        image = st.file_uploader(
            "Image", type=["png", "jpg", "jpeg", "webp"], key=f"review-upload-{solution.id}"
        )  # a fresh box per solution
        if image is not None and st.button("Publish upload"):
            st.session_state.pop("review_undo", None)
            done = ui.write(
                lambda s: review.upload(
                    session=s, settings=settings, solution_id=solution.id, data=image.getvalue(), actor=actor
                )
            )
            if done is not None:
                move_on(after, f"Published the upload for {ui.literal(solution.title)}.")


left, right = st.columns([1, 3], gap="large")
with left:
    queue_list()
with right:
    solution_panel()
