"""`candidates` with the checks' verdicts, `checks` re-running them (in the foreground or as a job), and the
Settings page's Checks tab: real SQLite, images made by the local provider, the CLI run in-process."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import open_page, run_jobs
from PIL import Image
from sqlalchemy import event
from sqlmodel import Session, col, select
from test_cli import run, run_json
from test_cli_startup import HEAVY, imported_by
from test_review_refine import shown

from aixchange_images import batch, cli, inspections, jobitems, jobqueue, jobs, runs
from aixchange_images.auth import Actor, PermissionDenied
from aixchange_images.config import load_settings
from aixchange_images.errors import UserError
from aixchange_images.jobmodels import ItemStatus, Job, JobItem, JobStatus
from aixchange_images.models import AuditEvent, Candidate, CandidateCheck, Setting
from aixchange_images.pipeline import GenerateOptions


def make_candidates(engine, make_solutions, solutions: int = 2, each: int = 2) -> dict[str, list[int]]:
    """Solutions with `each` stored (and checked) candidates apiece: {solution id: candidate ids}."""
    ids = make_solutions(solutions)
    options = GenerateOptions(size="256x256", candidates=each)
    results, _ = batch.run_batch(engine, load_settings(), ids, options)
    assert {r.status for r in results} == {"succeeded"}
    wait_for_checks()
    made: dict[str, list[int]] = {sid: [] for sid in ids}
    for r in results:
        made[r.solution_id].append(r.candidate_id)
    return {sid: sorted(c) for sid, c in made.items()}


def wait_for_checks() -> None:
    """Let every check this process handed in finish first (a command returns before its last ones)."""
    inspections.finish()


def flatten(engine, settings, candidate_id: int) -> None:
    """Overwrite a candidate's file with one flat colour: the blank check flags it next time."""
    with Session(engine) as session:
        path = settings.data_dir / session.get(Candidate, candidate_id).file_path
    Image.new("RGB", (256, 256), (200, 200, 200)).save(path, format="PNG")


def flags_of(engine, candidate_id: int) -> str:
    with Session(engine) as session:
        return session.get(Candidate, candidate_id).flags


# -- candidates: each candidate's flags and checks ---------------------------------------------------
def test_candidates_json_gives_each_candidates_flags_and_each_checks_evidence(engine, settings, make_solutions, capsys):
    made = make_candidates(engine, make_solutions, solutions=1)
    sid, (plain, flat) = next(iter(made.items()))
    flatten(engine, settings, flat)
    assert run(capsys, "checks", "--solution", sid)[0] == 0

    listed = {c["id"]: c for c in run_json(capsys, "candidates", sid)["candidates"]}

    assert listed[flat]["flags"] == ["blank"]
    blank = listed[flat]["checks"]["blank"]
    assert blank["flagged"] is True and blank["evidence"]["spread"] == 0.0
    assert blank["sentence"].startswith("The picture is almost flat")
    assert "blank" not in listed[plain]["flags"] and listed[plain]["checks"]["blank"]["flagged"] is False
    assert set(listed[plain]["checks"]) == set(settings.enabled_checks)
    assert listed[flat]["checked_at"] is not None


def test_candidates_for_people_says_the_flags_in_plain_words(engine, settings, make_solutions, capsys):
    made = make_candidates(engine, make_solutions, solutions=1)
    sid, (plain, flat) = next(iter(made.items()))
    flatten(engine, settings, flat)
    run(capsys, "checks", "--solution", sid)
    with Session(engine) as session:  # one never checked: made before the checks existed, say
        unchecked = session.get(Candidate, plain)
        unchecked.checked_at, unchecked.flags = None, ""
        session.add(unchecked)
        session.commit()

    code, out, _ = run(capsys, "candidates", sid)

    assert code == 0
    assert "flagged: Blank\n" in out and "Blank: The picture is almost flat" in out
    assert "not checked yet" in out


def test_candidates_reads_every_candidates_verdicts_in_one_query(engine, settings, make_solutions):
    from aixchange_images import candidates

    ((sid, made),) = make_candidates(engine, make_solutions, solutions=1, each=4).items()
    seen: list[str] = []

    def listener(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        with Session(engine) as session:
            rows = candidates.listing(session=session, solution_id=sid)
    finally:
        event.remove(engine, "before_cursor_execute", listener)

    assert sorted(r["id"] for r in rows) == made and all(r["checks"] for r in rows)
    assert len([s for s in seen if "FROM candidatecheck" in s]) == 1, seen


# -- checks: in the foreground --------------------------------------------------------------------
def test_checks_all_rechecks_every_stored_candidate_and_counts_each_checks_flags(
    engine, settings, make_solutions, capsys
):
    made = make_candidates(engine, make_solutions, solutions=3)
    every = sorted(c for ids in made.values() for c in ids)
    flat = every[1]
    flatten(engine, settings, flat)
    assert "blank" not in flags_of(engine, flat)  # checked when made, before it went flat

    code, out, err = run(capsys, "checks", "--all", "--json")

    assert code == 0, err
    report = json.loads(out)
    assert report["checked"] == len(every) and report["not_checked"] == []
    assert list(report["flagged"]) == list(settings.enabled_checks)
    assert report["flagged"]["blank"] == 1
    assert flags_of(engine, flat).split().count("blank") == 1
    with Session(engine) as session:
        flagged_any = len(session.exec(select(Candidate).where(Candidate.flags != "")).all())
    assert report["no_flag"] == len(every) - flagged_any
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert len(progress) == len(every) and progress[-1].startswith(f"[{len(every)}/{len(every)}] #")
    assert any(line.endswith(f"#{flat} Blank") or f"#{flat} Blank," in line for line in progress)


def test_checks_for_people_names_each_check_in_plain_words(engine, settings, make_solutions, capsys):
    made = make_candidates(engine, make_solutions, solutions=1)
    sid, (_, flat) = next(iter(made.items()))
    flatten(engine, settings, flat)

    code, out, err = run(capsys, "checks", "--solution", sid)

    assert code == 0, err
    assert out.startswith("Checked 2 candidate(s): ")
    assert "Blank 1" in out and "Garbled lettering 0" in out and "Wrong size 0" in out
    assert err.startswith("Checking 2 candidate(s): Blank, Garbled lettering")


def test_checks_of_some_solutions_leaves_the_others_candidates_alone(engine, settings, make_solutions, capsys):
    made = make_candidates(engine, make_solutions, solutions=2)
    (mine, ours), (theirs, other) = made.items()
    for candidate_id in (*ours, *other):
        flatten(engine, settings, candidate_id)

    report = run_json(capsys, "checks", "--solution", mine)

    assert report["checked"] == 2 and report["flagged"]["blank"] == 2
    assert all("blank" in flags_of(engine, c) for c in ours)
    assert not any("blank" in flags_of(engine, c) for c in other)


def test_a_candidate_whose_file_is_gone_is_named_and_the_command_exits_1(engine, settings, make_solutions, capsys):
    made = make_candidates(engine, make_solutions, solutions=1)
    sid, (kept, gone) = next(iter(made.items()))
    with Session(engine) as session:
        (settings.data_dir / session.get(Candidate, gone).file_path).unlink()

    code, out, err = run(capsys, "checks", "--solution", sid, "--json")

    assert code == 1
    report = json.loads(out)
    assert report["checked"] == 1
    assert [m["candidate_id"] for m in report["not_checked"]] == [gone]
    assert "could not be read" in report["not_checked"][0]["problem"]
    assert f"#{gone} not checked: " in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["checks"], "one of the arguments --solution --all is required (see --help)."),
        (["checks", "--all", "--solution", "x"], "not allowed with argument"),
        (["checks", "--solution", "nope"], "error: There is no solution with id nope; see `solutions` for the ids."),
    ],
    ids=["no option", "both", "unknown solution"],
)
def test_bad_input_is_one_sentence_and_exit_2_and_changes_nothing(engine, make_solutions, capsys, argv, said):
    made = make_candidates(engine, make_solutions, solutions=1)
    with Session(engine) as session:
        before = sorted(map(repr, session.exec(select(CandidateCheck)).all()))

    code, out, err = run(capsys, *argv)

    assert (code, out) == (2, "")
    assert said in err and len(err.strip().splitlines()) == 1
    with Session(engine) as session:
        assert sorted(map(repr, session.exec(select(CandidateCheck)).all())) == before
    assert made


def test_with_every_check_off_checks_refuses_rather_than_wipe_the_verdicts(engine, make_solutions, capsys, monkeypatch):
    make_candidates(engine, make_solutions, solutions=1)
    monkeypatch.setenv("CHECKS_ENABLED", "none")
    with Session(engine) as session:
        kept = len(session.exec(select(CandidateCheck)).all())

    code, out, err = run(capsys, "checks", "--all")

    assert (code, out) == (2, "")
    assert err.strip() == (
        "error: Every automatic check is turned off; turn one on in Settings > Checks (or CHECKS_ENABLED)."
    )
    with Session(engine) as session:
        assert len(session.exec(select(CandidateCheck)).all()) == kept > 0


def test_checks_bad_usage_loads_nothing_heavy():
    proc, packages = imported_by("checks")
    assert proc.returncode == 2 and "one of the arguments --solution --all is required" in proc.stderr
    assert not packages & set(HEAVY), sorted(packages & set(HEAVY))


# -- checks as a background job --------------------------------------------------------------------
def test_checks_background_queues_a_job_a_worker_runs_one_solution_per_item(
    queue_backend, engine, make_solutions, capsys
):
    made = make_candidates(engine, make_solutions, solutions=3)
    settings = load_settings()
    flat = made[next(iter(made))][0]
    flatten(engine, settings, flat)

    code, out, err = run(capsys, "checks", "--all", "--background", "--json")

    assert code == 0, err
    queued = json.loads(out)
    assert (queued["status"], queued["total"]) == ("queued", 6) and "no worker is running" in err
    assert "blank" not in flags_of(engine, flat)  # the worker checks, not the command
    assert jobqueue.queue_for(settings).pending() == 3  # a message per item: three threads may share it
    with Session(engine) as session:
        rows = session.exec(select(JobItem).where(JobItem.job_id == queued["job_id"])).all()
    assert sorted((r.solution_id, r.images) for r in rows) == sorted((sid, 2) for sid in made)

    assert run_jobs(engine, settings) == [queued["job_id"]]

    with Session(engine) as session:
        job = session.get(Job, queued["job_id"])
    assert (job.kind, job.status, job.done, job.succeeded, job.failed) == ("checks", JobStatus.done, 6, 6, 0)
    assert "blank" in flags_of(engine, flat)
    code, out, _ = run(capsys, "jobs")
    assert code == 0 and "checks" in out and "6/6" in out


def test_two_worker_threads_share_a_checks_job_and_check_each_candidate_once(engine, settings, make_solutions):
    made = make_candidates(engine, make_solutions, solutions=4, each=1)
    for (candidate_id,) in made.values():
        flatten(engine, settings, candidate_id)
    job = jobs.enqueue_checks(engine, settings, actor=Actor("alice", "admin"))
    stopping = threading.Event()

    threads = [threading.Thread(target=runs.work, args=(engine, settings, job.id, stopping)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    with Session(engine) as session:
        done = session.get(Job, job.id)
        statuses = session.exec(select(JobItem.status).where(JobItem.job_id == job.id)).all()
    assert (done.status, done.done, done.total) == (JobStatus.done, 4, 4)
    assert statuses == [ItemStatus.succeeded] * 4
    assert all("blank" in flags_of(engine, c) for (c,) in made.values())


def test_a_checks_job_leaves_out_candidates_made_after_it_was_queued(engine, settings, make_solutions):
    made = make_candidates(engine, make_solutions, solutions=1, each=1)
    (sid,) = made
    job = jobs.enqueue_checks(engine, settings, actor=Actor("alice", "admin"), solution_ids=[sid])
    fresh = GenerateOptions(size="256x256", use_cache=False)
    (later,), _ = batch.run_batch(engine, settings, [sid], fresh)  # made (and checked by its run) meanwhile
    assert later.candidate_id not in made[sid]
    wait_for_checks()
    flatten(engine, settings, later.candidate_id)

    run_jobs(engine, settings)

    with Session(engine) as session:
        done = session.get(Job, job.id)
    assert (done.status, done.done, done.total) == (JobStatus.done, 1, 1)
    assert "blank" not in flags_of(engine, later.candidate_id)  # not re-checked by the job


def test_a_checks_job_with_an_unreadable_file_fails_that_item_and_retry_runs_only_it(
    engine, settings, make_solutions, capsys
):
    made = make_candidates(engine, make_solutions, solutions=2, each=1)
    (broken_sid, (broken,)), (_, _) = made.items()
    with Session(engine) as session:
        path = settings.data_dir / session.get(Candidate, broken).file_path
    content = path.read_bytes()
    path.write_bytes(b"not a picture")
    job = jobs.enqueue_checks(engine, settings, actor=Actor("alice", "admin"))
    run_jobs(engine, settings)

    with Session(engine) as session:
        ended = session.get(Job, job.id)
        failed = jobs.failures(session=session, job_id=job.id)
    assert (ended.status, ended.done, ended.succeeded, ended.failed) == (JobStatus.failed, 2, 1, 1)
    assert [f.solution_id for f in failed] == [broken_sid] and "could not be read" in failed[0].error

    path.write_bytes(content)
    retried = run_json(capsys, "jobs", "retry", str(job.id))
    run_jobs(engine, settings)

    with Session(engine) as session:
        again = session.get(Job, retried["job_id"])
        item_solutions = session.exec(select(JobItem.solution_id).where(JobItem.job_id == again.id)).all()
    assert (again.kind, again.status, again.total, again.retry_of) == ("checks", JobStatus.done, 1, job.id)
    assert item_solutions == [broken_sid]


def test_a_checks_job_whose_checks_were_turned_off_meanwhile_fails_with_why(engine, settings, make_solutions):
    make_candidates(engine, make_solutions, solutions=1)
    job = jobs.enqueue_checks(engine, settings, actor=Actor("alice", "admin"))

    runs.work(engine, load_settings(checks_enabled=""), job.id, threading.Event())

    with Session(engine) as session:
        ended = session.get(Job, job.id)
    assert ended.status == JobStatus.failed and "Every automatic check is turned off" in ended.error
    assert jobitems.left_over(engine, [job.id]) == {}


def test_a_manager_may_not_queue_checks_and_an_unknown_solution_queues_nothing(engine, settings, make_solutions):
    make_candidates(engine, make_solutions, solutions=1, each=1)
    with pytest.raises(PermissionDenied):
        jobs.enqueue_checks(engine, settings, actor=Actor("mia", "manager"))
    with pytest.raises(UserError, match="There is no solution with id nope"):
        jobs.enqueue_checks(engine, settings, actor=Actor("pat", "product"), solution_ids=["nope"])
    with Session(engine) as session:
        assert session.exec(select(Job)).all() == []


# -- the Settings page's Checks tab ----------------------------------------------------------------
def checks_form(engine):  # type: ignore[no-untyped-def]
    return open_page("settings", Actor("alice", "admin"))


def save_checks(at):  # type: ignore[no-untyped-def]
    next(b for b in at.button if b.label == "Save checks").click().run()
    assert not at.exception, at.exception
    return at


def test_changing_a_checks_threshold_is_saved_and_audited(engine):
    at = checks_form(engine)
    next(n for n in at.number_input if n.key == "check_duplicate_max_distance").set_value(20)
    save_checks(at)

    with Session(engine) as session:
        saved = {row.key: row.value for row in session.exec(select(Setting)).all()}
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "settings.change")).all()
    assert saved == {"check_duplicate_max_distance": 20}
    assert [(e.target, e.detail["new"]) for e in events] == [("check_duplicate_max_distance", 20)]
    assert [shown(t.value) for t in at.toast] == ["Saved 1 setting(s)."]


def test_turning_a_check_off_saves_the_others_as_the_checks_that_run(engine):
    at = checks_form(engine)
    next(c for c in at.checkbox if c.key == "check-on-unsafe").uncheck()
    save_checks(at)

    with Session(engine) as session:
        assert session.get(Setting, "checks_enabled").value == "blank,text_garbled,duplicate,wrong_size"


def test_a_bad_threshold_shows_one_sentence_and_changes_nothing(engine):
    at = checks_form(engine)
    next(n for n in at.number_input if n.key == "check_text_min_height").set_value(2.0)
    next(n for n in at.number_input if n.key == "check_duplicate_max_distance").set_value(20)
    save_checks(at)

    assert [shown(e.value) for e in at.error] == ["Garbled lettering: smallest lettering read should be less than 1."]
    assert not at.toast
    with Session(engine) as session:
        assert session.exec(select(Setting)).all() == []
        assert session.exec(select(AuditEvent).where(col(AuditEvent.action) == "settings.change")).all() == []


def test_the_checks_tab_queues_every_stored_candidate_for_a_worker(engine, make_solutions):
    make_candidates(engine, make_solutions, solutions=1)
    at = checks_form(engine)
    next(b for b in at.button if b.label == "Check every candidate again").click().run()
    assert not at.exception, at.exception

    with Session(engine) as session:
        (job,) = session.exec(select(Job)).all()
    assert (job.kind, job.total, job.actor) == ("checks", 2, "alice")
    assert any(f"job {job.id}" in shown(s.value) for s in at.success)


def test_cli_handlers_name_every_parser_command():
    parser_commands = set(cli.build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert "checks" in parser_commands and parser_commands == set(cli.HANDLERS)


def test_the_jobs_page_shows_a_checks_jobs_progress_in_candidates(engine, settings, make_solutions):
    from test_jobs_pages import progress_texts

    make_candidates(engine, make_solutions, solutions=2)
    job = jobs.enqueue_checks(engine, settings, actor=Actor("alice", "admin"))

    at = open_page("jobs", Actor("alice", "admin"))

    assert any(f"Checks again · job {job.id} · alice: 0 of 4 done" in shown(t) for t in progress_texts(at.main))
