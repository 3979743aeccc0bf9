"""Solution: one solution's card, candidates, published history, rollback and marketplace deliveries.

A deep link: /solution?id=<solution id>. Solutions (select a row) and Review link here, so the
history and rollback are reachable whether or not anything waits for review. User text is shown
literally: st.text, or `ui.literal` where Streamlit renders markdown.
"""

import pandas as pd
import streamlit as st

import ui
from aixchange_images import catalogue, review
from aixchange_images.history import SolutionHistory, leaves_no_image, solution_history
from aixchange_images.models import PLACEHOLDER_URL, REJECT_REASONS, CandidateState

GALLERY_COLUMNS = 4
actor = ui.guard("view")
ui.show_flash()
st.title("Solution")


def open_solution(solution_id: str) -> None:
    st.query_params["id"] = solution_id


def finder() -> None:
    """Find a solution by title, description or id; then stop."""
    text = st.text_input("Find a solution", placeholder="title, description or id")
    if text.strip():
        with ui.db() as session:
            found = catalogue.list_solutions(session=session, text=text, limit=20)
        if not found:
            st.caption("No solution matches.")
        for hit in found:
            label = ui.literal(f"{hit.title} · {hit.category}")
            st.button(label, key=f"find-{hit.id}", type="tertiary", on_click=open_solution, args=(hit.id,))
    st.stop()


solution_id = st.query_params.get("id")
if not solution_id:
    st.info("Open a solution from Solutions or Review, or find one here.", icon=":material/search:")
    finder()
with ui.db() as session:
    story = solution_history(session=session, solution_id=solution_id)
if story is None:
    st.error(ui.literal(f"There is no solution {solution_id}."), icon=":material/error:")
    finder()
solution = story.solution


# -- rollback ------------------------------------------------------------------------------------------
def roll_back() -> None:
    done = ui.write(lambda s: review.rollback(session=s, solution_id=solution.id, actor=actor))
    if done is not None:
        ui.flash("Rolled back.")
        st.rerun()


def close_rollback() -> None:
    st.session_state.pop("confirm-rollback", None)


@st.dialog("Roll back to no image?", on_dismiss=close_rollback)
def confirm_rollback() -> None:
    """Open while `confirm-rollback` names this solution (so a full rerun keeps it open)."""
    left = "the placeholder" if story.live and story.live.previous_image_url == PLACEHOLDER_URL else "no image"
    st.text(f"{solution.title} will show {left} until another image is approved or uploaded.")
    yes, no = st.columns(2)
    if yes.button("Roll back to no image", type="primary", icon=":material/undo:", width="stretch"):
        close_rollback()
        roll_back()
    if no.button("Cancel", width="stretch"):
        close_rollback()
        st.rerun()


# -- the parts of the page -----------------------------------------------------------------------------
def summary(story: SolutionHistory) -> None:
    live = story.live
    card, facts = st.columns([1, 2], gap="large")
    with card:
        thumb = story.thumbs.get(live.candidate_id) if live and live.candidate_id else None
        ui.card(solution.title, solution.category, thumb, "live now" if live else "no image of ours is live")
    with facts:
        st.subheader(ui.literal(solution.title))
        st.text(solution.description)
        st.text(f"Category: {solution.category}\nImage status: {solution.image_status}")
        st.text(f"imageUrl: {solution.image_url or 'none'}\nId: {solution.id} (from {solution.origin})")
        waiting = sum(c.state == CandidateState.pending for c in story.candidates)
        if waiting:
            label = f"Review its {waiting} waiting candidate(s)"
            ui.page_link("pages/review.py", label, ":material/fact_check:", {"q": solution.id, "show": "both"})


def published(story: SolutionHistory) -> None:
    st.subheader("Published images")
    live = story.live
    if not story.publications:
        st.caption("Nothing of ours has been published for this solution.")
        return
    if live is not None:
        st.text(f"Live: {live.image_url}, since {live.published_at:%Y-%m-%d %H:%M} UTC, by {live.published_by}")
        st.text(f"Rolling back restores {live.previous_image_url or 'no image'}.")
        if actor.can("review") and st.button("Roll back", icon=":material/undo:"):
            if leaves_no_image(live):
                st.session_state["confirm-rollback"] = solution.id
            else:
                roll_back()
        if st.session_state.get("confirm-rollback") == solution.id:
            confirm_rollback()
    else:
        st.caption("None of them is live now: the solution shows an image from elsewhere, or none.")
    rows = [
        {
            "file": p.file_name,
            "published": p.published_at,
            "by": p.published_by,
            "live": p.active,
            "replaced": p.previous_image_url,
            "rolled back": p.rolled_back_at,
            "rolled back by": p.rolled_back_by,
        }
        for p in story.publications
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def marketplace(story: SolutionHistory) -> None:
    if not story.deliveries and not story.conflicts:
        return
    st.subheader("Marketplace")
    for conflict in story.conflicts:
        st.warning("The marketplace shows another image than the one approved here.", icon=":material/sync_problem:")
        ui.conflict_panel(conflict, actor)
    rows = [
        {
            "state": d.state,
            "imageUrl": d.image_url,
            "for": d.reason,
            "queued": d.created_at,
            "by": d.created_by,
            "tries": d.tries,
            "delivered": d.delivered_at,
            "last error": d.last_error,
        }
        for d in story.deliveries
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def gallery(story: SolutionHistory) -> None:
    st.subheader("Candidates")
    if not story.candidates:
        st.caption("No candidates yet.")
        return
    if story.candidate_total > len(story.candidates):
        st.caption(f"The newest {len(story.candidates)} of {story.candidate_total:,}.")
    for start in range(0, len(story.candidates), GALLERY_COLUMNS):
        row = story.candidates[start : start + GALLERY_COLUMNS]
        for column, candidate in zip(st.columns(GALLERY_COLUMNS), row, strict=False):
            reason = REJECT_REASONS.get(candidate.reject_reason or "", candidate.reject_reason)
            why = f" · {reason}" + (f": {candidate.reject_note}" if candidate.reject_note else "") if reason else ""
            trial = " · trial" if candidate.purpose == "trial" else ""
            footer = f"#{candidate.id} · {candidate.state}{why} · {candidate.template_ref} · {candidate.model}{trial}"
            with column:
                ui.card(solution.title, solution.category, candidate.thumb_path, footer)


summary(story)
marketplace(story)
published(story)
gallery(story)
