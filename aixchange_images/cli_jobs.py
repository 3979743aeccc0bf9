"""The command line's job commands: `generate|import|checks ... --background`, `worker`, `jobs [cancel|retry ID]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:  # the parser imports this module: only the standard library is loaded at import
    from .config import Settings
    from .pipeline import GenerateOptions


def add_commands(command: Callable[[str, str], argparse.ArgumentParser], parser_class: type) -> None:
    cmd = command("worker", "run queued jobs (background generations, schedules) until stopped")
    cmd.add_argument(
        "--concurrency", type=int, metavar="C", help="jobs' items (provider calls) at once; default IMAGE_CONCURRENCY"
    )
    jobs_cmd = command("jobs", "list jobs with their progress; cancel one, or retry what failed")
    jobs_cmd.add_argument("--limit", type=int, default=50, metavar="N", help="the newest N jobs (default 50)")
    jobs_sub = jobs_cmd.add_subparsers(dest="jobs_command", parser_class=parser_class)
    for name, text in (
        ("cancel", "stop a job: nothing new starts, calls in flight finish and are kept"),
        ("retry", "queue again, as a new job, what a job did not get done"),
    ):
        step = jobs_sub.add_parser(name, help=text, description=text)
        step.add_argument("job_id", type=int, metavar="ID")
        step.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def queue_generation(settings: Settings, engine: Any, ids: list[str], options: GenerateOptions) -> dict[str, Any]:
    """`generate ... --background`: the job, queued; a note when no worker is there to run it."""
    from . import jobs

    job = jobs.enqueue_generate(engine, settings, ids, options)
    _note_without_workers(engine)
    return {"job_id": job.id, "status": job.status, "total": job.total}


def queue_import(settings: Settings, engine: Any, path: Path) -> dict[str, Any]:
    """`import FILE --background`: the file read and checked, then queued as a job for a worker."""
    from . import auth, bulkfiles, jobs

    data = bulkfiles.read_bytes(path)  # a missing or unreadable file: its one sentence, nothing queued
    job = jobs.enqueue_import(engine, settings, actor=auth.CLI_ACTOR, source=path.name, data=data)
    _note_without_workers(engine)
    return {"job_id": job.id, "status": job.status, "records": job.options["records"]}


def queue_checks(settings: Settings, engine: Any, solution_ids: list[str] | None) -> dict[str, Any]:
    """`checks ... --background`: a job with an item per solution; its total counts candidates."""
    from . import auth, jobs

    job = jobs.enqueue_checks(engine, settings, actor=auth.CLI_ACTOR, solution_ids=solution_ids)
    _note_without_workers(engine)
    return {"job_id": job.id, "status": job.status, "total": job.total}


def _note_without_workers(engine: Any) -> None:
    from sqlmodel import Session

    from . import leases

    with Session(engine) as session:
        if not leases.live_workers(session):
            print("note: no worker is running; start one with `python -m aixchange_images worker`.", file=sys.stderr)


def cmd_worker(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import worker
    from .config import load_settings

    concurrency = settings.image_concurrency if args.concurrency is None else args.concurrency
    if not 1 <= concurrency <= 64:
        raise UserError("--concurrency must be between 1 and 64.")
    return None, worker.run(load_settings(), concurrency=concurrency)  # the environment's: overrides are read per job


def cmd_jobs(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import auth, jobs

    if args.jobs_command == "cancel":
        job = jobs.cancel(engine, args.job_id, actor=auth.CLI_ACTOR)
        return {"job_id": job.id, "status": job.status, "cancel_requested": job.cancel_requested}, 0
    if args.jobs_command == "retry":
        job = jobs.retry(engine, settings, args.job_id, actor=auth.CLI_ACTOR)
        return {"job_id": job.id, "status": job.status, "total": job.total, "retry_of": args.job_id}, 0
    if args.limit < 1:
        raise UserError("--limit must be at least 1.")
    with Session(engine) as session:
        return {"jobs": [jobs.as_dict(job) for job in jobs.recent(session=session, limit=args.limit)]}, 0
