"""Jobs in the dashboard: live progress from any page, the Jobs page's list, Stop and Retry, schedules.

Streamlit glue only: the library (`aixchange_images.jobs`, `schedules`) does the work. Progress
is read from the database every few seconds (`st.fragment(run_every=...)`), so every admin sees
every job, whichever tab or browser started it, and closing a tab stops nothing.
"""

from __future__ import annotations

from datetime import time

import pandas as pd
import streamlit as st

import ui
from aixchange_images import catalogue, jobs, leases, schedules, wording
from aixchange_images.auth import Actor
from aixchange_images.jobmodels import ACTIVE, Job, JobKind
from aixchange_images.models import Purpose

REFRESH_SECONDS = 2
KINDS = {
    JobKind.generate: "Generate",
    JobKind.marketplace_pull: "Marketplace pull",
    JobKind.catalogue_import: "Import",
    JobKind.checks: "Checks again",
}


def _kind(job: Job) -> str:
    if job.kind == JobKind.generate and job.options.get("purpose") == Purpose.trial:
        ran = " · ".join(str(job.options[k]) for k in ("provider", "model") if job.options.get(k))
        return f"Prompt Studio trial of {job.options.get('template')}" + (f" with {ran}" if ran else "")
    return KINDS.get(job.kind, job.kind)


def _summary(job: Job) -> str:
    what = f"{_kind(job)} · job {job.id} · {job.actor}"
    if job.cancel_requested and job.status in ACTIVE:
        what += " · stopping"
    figures = f"{job.done:,} of {job.total:,} done"
    if job.failed:
        figures += f", {job.failed:,} failed"
    return f"{what}: {figures}, {ui.money(job.cost_usd)}"


def _fraction(job: Job) -> float:
    return min(1.0, job.done / job.total) if job.total else 0.0


def _may_change(actor: Actor, job: Job) -> bool:
    return actor.can("generate") and (actor.role == "admin" or actor.username == job.actor)


def _stop_button(actor: Actor, job: Job, key: str) -> None:
    if job.status in ACTIVE and not job.cancel_requested and _may_change(actor, job):
        help_text = "Starts nothing new; calls already in flight finish and are kept."
        if st.button("Stop", key=f"{key}-stop-{job.id}", icon=":material/stop_circle:", help=help_text):
            ui.attempt(lambda: jobs.cancel(ui.engine(), job.id, actor=actor), f"Job {job.id} is stopping.")


@st.fragment(run_every=REFRESH_SECONDS)
def sidebar_panel() -> None:
    """The running jobs, small, in the sidebar of every page."""
    with ui.db() as session:
        active = jobs.recent(session=session, limit=5, active=True)
    st.caption("Jobs" if active else "No jobs running.")
    for job in active:
        st.progress(_fraction(job), text=ui.literal(_summary(job)))
    ui.page_link("pages/jobs.py", "All jobs", ":material/work_history:")


@st.fragment(run_every=REFRESH_SECONDS)
def job_progress(job_id: int, actor: Actor) -> None:
    """One job's live progress with its Stop button and its failures by title (the Generate page's last
    run). When the job ends it reruns the whole page, which then lists what the job made."""
    with ui.db() as session:
        job = session.get(Job, job_id)
    if job is None:
        return
    live = f"job-live-{job_id}"
    if job.status in ACTIVE:
        st.session_state[live] = True
    elif st.session_state.pop(live, False):
        st.rerun()  # the page around this fragment draws the ended job (Generate's results table)
    st.progress(_fraction(job), text=ui.literal(_summary(job)))
    if job.status in ACTIVE:
        _stop_button(actor, job, "progress")
    elif job.status == "cancelled":
        st.warning(
            f"Stopped after {job.done:,} of {job.total:,}: calls in flight finished and were kept; the rest did "
            "not start. See Review and Metrics.",
            icon=":material/stop_circle:",
        )
    elif not job.failed and not job.error:
        st.success(f"Job {job.id} is done.", icon=":material/task_alt:")
    if job.error:
        st.error(ui.literal(wording.plain_error(job.error)), icon=":material/error:")
    if job.failed:
        _failure_lines(job)


FAILURE_LINES = 20


def _failure_lines(job: Job) -> None:
    """The job's failures so far, one line each: the solution's title and why, in words."""
    with ui.db() as session:
        failed = jobs.results(session=session, job=job, failed=True, limit=FAILURE_LINES)
        named = catalogue.titles(session=session, ids=[r.solution_id for r in failed])
    for result in failed:
        if result.attempt_id is None and result.error == job.error:
            continue  # the job's own error, said once above
        ui.failure_line(named.get(result.solution_id, result.solution_id), result.error_kind, result.error)
    if job.failed > len(failed):
        st.caption(f"The first {len(failed):,} of {job.failed:,} failures.")


@st.fragment(run_every=REFRESH_SECONDS)
def jobs_page(actor: Actor) -> None:
    """Running jobs with their progress and Stop, then the recent ones, and Retry."""
    with ui.db() as session:
        recent = jobs.recent(session=session, limit=50)
        workers = leases.live_workers(session)
    _workers_line(workers)
    active = [j for j in recent if j.status in ACTIVE]
    st.subheader("Running")
    if not active:
        st.caption("Nothing is queued or running.")
    for job in active:
        with st.container(border=True):
            st.progress(_fraction(job), text=ui.literal(_summary(job)))
            _stop_button(actor, job, "page")
    st.subheader("Recent")
    ended = [j for j in recent if j.status not in ACTIVE]
    if not ended:
        st.caption("No job has ended yet.")
        return
    st.dataframe(_table(ended), hide_index=True)
    _retry(actor, [j for j in ended if j.status in ("failed", "cancelled") and _may_change(actor, j)])


def _workers_line(workers: list) -> None:
    if workers:
        threads = sum(w.concurrency or 0 for w in workers)
        st.caption(f"{len(workers)} worker(s) running, {threads} thread(s) in all.")
    else:
        st.warning(
            "No worker is running: queued jobs wait. Start one with `python -m aixchange_images worker` "
            "(`make run` starts one).",
            icon=":material/engineering:",
        )


STATUS_WORDS = {"queued": "Queued", "running": "Running", "done": "Done", "failed": "Failed", "cancelled": "Stopped"}


def _table(ended: list[Job]) -> pd.DataFrame:
    """The ended jobs as people read them: words, money as money, times to the minute, no empty cells."""
    return pd.DataFrame(
        [
            {
                "Job": j.id,
                "Kind": _kind(j),
                "Status": STATUS_WORDS.get(j.status, j.status),
                "Done": f"{j.done:,} of {j.total:,}",
                "Failed": j.failed,
                "Cost": ui.money(j.cost_usd),
                "Started by": f"schedule {j.schedule}" if j.schedule else j.actor,
                "Ended": f"{j.finished_at:%Y-%m-%d %H:%M} UTC" if j.finished_at else "",
                "Note": wording.plain_error(j.error) if j.error else "",
            }
            for j in ended
        ],
        columns=["Job", "Kind", "Status", "Done", "Failed", "Cost", "Started by", "Ended", "Note"],
    )


def _retry(actor: Actor, retriable: list[Job]) -> None:
    if not retriable:
        return
    left, right = st.columns([2, 1])
    choice = left.selectbox(
        "Retry what a job did not get done", [j.id for j in retriable], format_func=lambda i: f"Job {i}"
    )
    if right.button("Retry", icon=":material/replay:"):
        again = ui.attempt(lambda: jobs.retry(ui.engine(), ui.settings(), choice, actor=actor))
        if again is not None:
            st.toast(f"Job {again.id} queued: {again.total} image(s).", icon=":material/check_circle:")


def schedules_form(actor: Actor) -> None:
    """Settings' Schedules tab: the nightly generation and the marketplace pull (admins; audited)."""
    st.caption(
        "Periodic jobs, run by the workers (each run once, whichever worker gets there first; a run is skipped "
        "while the previous one still runs). Times are UTC."
    )
    with ui.db() as session:
        rows = schedules.read(session=session, settings=ui.settings())
    for row in rows:
        with st.form(f"schedule-{row.name}"):
            st.markdown(f"**{schedules.TITLES[row.name]}**")
            enabled = st.toggle("On", value=row.enabled)
            if row.name == schedules.NIGHTLY:
                when = st.time_input("At (UTC)", value=time(row.offset_minutes // 60, row.offset_minutes % 60))
                every, offset = 1440, when.hour * 60 + when.minute
            else:
                every, offset = st.number_input("Every (minutes)", 1, 1440, row.every_minutes), 0
            if st.form_submit_button("Save schedule", type="primary"):
                _save_schedule(actor, row.name, enabled, int(every), offset)


def _save_schedule(actor: Actor, name: str, enabled: bool, every: int, offset: int) -> None:
    values = {"name": name, "enabled": enabled, "every_minutes": every, "offset_minutes": offset}
    ui.write(lambda s: schedules.save(session=s, settings=ui.settings(), actor=actor, **values), "Schedule saved.")
