"""Review: candidates side by side as marketplace cards; approve, reject, regenerate, roll back."""

import pandas as pd
import streamlit as st

import ui
from aixchange_images import batch, deliveries, pipeline, review
from aixchange_images.models import Candidate, CandidateState, Solution

QUEUE_PAGE = 30
actor = ui.guard("review")
st.title("Review")

with ui.db() as session:
    waiting = review.queue_size(session=session)
st.caption(f"{waiting:,} solution(s) have candidates awaiting review.")
if waiting == 0 and "review_solution" not in st.session_state:
    st.info("Nothing to review. Generate candidates first.", icon=":material/inbox:")
    ui.page_link("pages/generate.py", "Go to Generate", ":material/auto_awesome:")
    st.stop()

left, right = st.columns([1, 3], gap="large")
with left:
    offset = ui.pager("queue-page", waiting, QUEUE_PAGE, narrow=False)
    with ui.db() as session:
        queue = review.review_queue(session=session, offset=offset, limit=QUEUE_PAGE)
    labels = {s.id: f"{s.title} · {n}" for s, n in queue}
    current = st.session_state.get("review_solution")
    if current not in labels and current is not None:
        with ui.db() as session:
            sol = session.get(Solution, current)
        if sol is not None:
            labels = {current: f"{sol.title} · reviewed", **labels}
    picked = (
        st.radio(
            "Queue",
            list(labels),
            format_func=labels.get,
            key="review_pick",
            index=list(labels).index(current) if current in labels else 0,
        )
        if labels
        else None
    )
    if picked:
        st.session_state["review_solution"] = picked

if not picked:
    st.stop()

with ui.db() as session:
    solution = session.get(Solution, picked)
    pending = review.candidates_for(session=session, solution_id=picked, states=(CandidateState.pending,))
    attempts = {c.id: review.attempt_for(session=session, candidate=c) for c in pending}
    history = review.publications_for(session=session, solution_id=picked)
    conflicts = deliveries.conflicts(session=session, solution_id=picked)
    thumbs = {c.id: c.thumb_path for c in review.candidates_for(session=session, solution_id=picked)}
settings = ui.settings()


def act(fn, message: str) -> None:
    def run():
        with ui.db(write=True) as session:
            out = fn(session)
            session.commit()
            return out

    if ui.attempt(run, message) is not None:
        st.rerun()


def candidate_panel(candidate: Candidate) -> None:
    at = attempts.get(candidate.id)
    secs = f"{(at.duration_ms or 0) / 1000:.1f}s" if at else "—"
    ui.card(
        solution.title,
        solution.category,
        candidate.thumb_path,
        f"#{candidate.id} · {candidate.model} · {ui.money(candidate.cost_usd)} · {secs}"
        + (" · cache" if candidate.cache_hit else ""),
    )
    if at:
        with st.expander("Prompt"):
            st.caption(f"template {at.template_ref} · {at.size} · {at.quality}")
            st.code(at.prompt, language=None, wrap_lines=True)  # literal: a prompt is not markdown
    if st.button("Approve", key=f"approve-{candidate.id}", type="primary", icon=":material/check:", width="stretch"):
        act(
            lambda s: review.approve(session=s, settings=settings, candidate_id=candidate.id, actor=actor), "Published."
        )
    with st.popover("Reject", icon=":material/close:", width="stretch"):
        reason = st.selectbox(
            "Reason", list(review.REJECT_REASONS), format_func=review.REJECT_REASONS.get, key=f"reason-{candidate.id}"
        )
        note = st.text_input("Note (optional)", key=f"note-{candidate.id}")
        if st.button("Reject candidate", key=f"reject-{candidate.id}"):
            act(
                lambda s: review.reject(session=s, candidate_id=candidate.id, reason=reason, note=note, actor=actor),
                "Rejected.",
            )


with right:
    st.subheader(solution.title)
    for conflict in conflicts:
        st.warning("The marketplace shows another image than the one approved here.", icon=":material/sync_problem:")
        ui.conflict_panel(conflict, actor)
    st.caption(f"{solution.category} · image status **{solution.image_status}** · `{solution.id}`")
    if pending:
        for row_start in range(0, len(pending), 3):
            cols = st.columns(3)
            for col, candidate in zip(cols, pending[row_start : row_start + 3], strict=False):
                with col:
                    candidate_panel(candidate)
    else:
        st.info("No candidates await review for this solution.")

    c1, c2 = st.columns(2)
    if c1.button("Regenerate", icon=":material/refresh:", help="A new paid call (or a new local variant)."):
        options = pipeline.GenerateOptions(candidates=1, use_cache=False, actor=actor)
        with st.spinner("Generating a new candidate…"):
            out = ui.attempt(lambda: batch.run_batch(ui.engine(), settings, [solution.id], options))
        if out is not None:
            result = out[0][0] if out[0] else None
            if result is not None and result.status == "failed":
                st.error(result.error)
            else:
                st.rerun()
    with c2.popover("Upload instead", icon=":material/upload:"):
        image = st.file_uploader("Image", type=["png", "jpg", "jpeg", "webp"], key="review-upload")
        if image is not None and st.button("Publish upload"):
            act(
                lambda s: review.upload(
                    session=s, settings=settings, solution_id=solution.id, data=image.getvalue(), actor=actor
                ),
                "Published.",
            )

    st.subheader("Published images")
    if not history:
        st.caption("Nothing of ours published for this solution yet.")
    else:
        active = next((p for p in history if p.active), None)
        if active is not None:
            c1, c2 = st.columns([1, 3])
            with c1:
                ui.card(solution.title, solution.category, thumbs.get(active.candidate_id), "live now")
            with c2:
                st.write(
                    f"Live: `{active.image_url}` since {active.published_at:%Y-%m-%d %H:%M} by {active.published_by}"
                )
                st.write(f"Rolling back restores `{active.previous_image_url or 'no image'}`.")
                if st.button("Roll back", icon=":material/undo:"):
                    act(lambda s: review.rollback(session=s, solution_id=solution.id, actor=actor), "Rolled back.")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "file": p.file_name,
                        "published": p.published_at,
                        "by": p.published_by,
                        "live": p.active,
                        "rolled back": p.rolled_back_at,
                    }
                    for p in history
                ]
            ),
            hide_index=True,
        )
