"""The command line: `python -m aixchange_images COMMAND` (the contract is in product.md).

This module loads only the standard library: the parser (`cli_parser`) answers `--help` and bad
usage at once, and each command's handler imports the library code it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from . import cli_jobs, reports
from .cli_parser import build_parser
from .errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .config import Settings
    from .pipeline import GenerationResult

__all__ = ["UsageError", "build_parser", "main"]


class UsageError(UserError):
    """Bad usage or input: exit 2 with this one sentence."""


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    finally:
        _finish_checks()


def _finish_checks() -> None:
    """Wait for the checks the command started: a process waits for them before it exits anyway, and a
    caller in this process (a test, the next command) then finds the database as a finished command leaves it."""
    inspections = sys.modules.get("aixchange_images.inspections")  # not loaded: nothing was checked
    if inspections is not None:
        inspections.finish()


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "stats" and (figures := _quick_stats(args)) is not None:
            return 0 if _show(args, figures) else CLOSED_PIPE
        settings, engine = _open()
        _recover(engine, settings)
        handler = HANDLERS[args.command]
        payload, code = handler(args, settings, engine)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 1
    read = payload is None or _show(args, payload)
    if args.command != "marketplace":
        _deliver_waiting(settings, engine)
    _warn_about_budgets(settings, engine)
    return code if read else CLOSED_PIPE


def _open() -> tuple[Settings, Engine]:
    """The settings with the admins' overrides on top, and the engine: every command creates and
    migrates the database on first use (`init` semantics)."""
    from sqlmodel import Session

    from . import admin, provider_registry
    from .config import load_settings
    from .engines import get_engine

    settings = load_settings()
    provider_registry.check_settings(settings)  # a malformed provider variable is bad usage, whatever the command
    engine = get_engine(settings)
    with Session(engine) as session:
        settings = admin.effective_settings(session=session, settings=settings)
    return settings, engine


def _show(args: argparse.Namespace, payload: Any) -> bool:
    as_json = getattr(args, "json", False)
    return _out(json.dumps(payload, indent=2, default=_json_default) if as_json else _human(args.command, payload))


CLOSED_PIPE = 141  # 128 + SIGPIPE: what the shell's own tools report when their reader goes away


def _out(text: str) -> bool:
    """Print the result; False when stdout's reader has gone (`| head`): the command ends quietly."""
    try:
        print(text)
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the interpreter's last flush must not fail
        return False


def _recover(engine: Any, settings: Settings) -> None:
    """Settle publications a killed process left half done, before the command reads the catalogue."""
    from . import journal

    if not journal.waiting(settings):  # the usual case: one glob, and recovery is not even imported
        return
    from .recovery import recover

    for done in recover(engine, settings):
        print(f"note: {done.sentence()}", file=sys.stderr)


def _deliver_waiting(settings: Settings, engine: Any) -> None:
    """Image changes the marketplace has not received yet go out after every command (quietly)."""
    if settings.marketplace_database_url is None:
        return
    from . import deliveries

    report = deliveries.deliver_waiting(engine, settings)
    if report is not None and (report.pending or report.conflicts):
        print(
            f"note: {report.pending} image change(s) wait for the marketplace and {len(report.conflicts)} "
            "conflict(s) wait for an admin; see `marketplace status`.",
            file=sys.stderr,
        )


def _warn_about_budgets(settings: Settings, engine: Any) -> None:
    """The soft alert: one stderr line per budget at or past its alert share (stdout stays clean)."""
    if settings.image_budget_daily_usd is None and settings.image_budget_monthly_usd is None:
        return
    from sqlmodel import Session

    from . import budget

    with Session(engine) as session:
        for alert in budget.budget_state(session=session, settings=settings).alerts:
            print(f"warning: {alert}", file=sys.stderr)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _human(command: str, payload: Any) -> str:
    if command == "prompt":
        return payload["prompt"]
    if command == "stats":
        return reports.stats_text(payload)
    if command == "solutions":
        rows = payload["solutions"]
        lines = [f"{s['id']}  {s['image_status']:<11}  {s['category'][:24]:<24}  {s['title']}" for s in rows]
        return "\n".join(lines + [f"{len(rows)} solution(s)"])
    if command in ("generate", "checks") and "job_id" in payload:  # queued with --background
        unit = "image(s)" if command == "generate" else "candidate(s)"
        return f"Job {payload['job_id']} {payload['status']}: {payload['total']} {unit}. Follow it with `jobs`."
    if command == "jobs":
        return reports.jobs_text(payload)
    if command == "providers":
        return reports.providers_text(payload)
    if command == "candidates":
        return reports.candidates_text(payload)
    if command == "checks":
        return reports.checks_text(payload)
    if command == "refine":
        return reports.refine_text(payload)
    if command == "generate":
        s = payload["summary"]
        return (
            f"{s['succeeded']} succeeded, {s['failed']} failed, {s['cache_hits']} from cache, "
            f"{s['published']} published; spent ${s['cost_usd']:.4f} in {s['seconds']:.1f} s"
        )
    if command == "marketplace" and "linked_solutions" in payload:
        return _human_link(payload)
    if command == "marketplace" and "written" in payload:
        return _human_push(payload)
    if command == "marketplace" and "created" in payload:
        lines = [f"{payload['created']} new, {payload['updated']} updated, {payload['unchanged']} unchanged, "]
        lines[0] += f"{payload['adopted']} joined to the image service's solutions"
        lines += [f"not taken: {e['title'] or e['id']}: {e['error']}" for e in payload["errors"]]
        return "\n".join(lines)
    if command in ("import", "export"):
        return _human_bulk(command, payload)
    if command == "users" and "users" in payload:
        return _human_users(payload["users"])
    if command == "users" and "cleared" in payload:
        return f"{payload['username']} may sign in again now ({payload['cleared']} throttle(s) cleared)."
    if command == "users" and "email" in payload:
        return f"{payload['username']} signs in with single sign-on as {payload['email'] or 'nobody (cleared)'}."
    return "\n".join(f"{k}: {v}" for k, v in payload.items()) if isinstance(payload, dict) else str(payload)


def _human_link(status: dict[str, Any]) -> str:
    reach = {True: "answering", False: "not answering", None: "not checked"}[status["reachable"]]
    lines = [f"marketplace database: {status['connection']} ({reach if status['configured'] else 'not set'})"]
    if status["problem"]:
        lines.append(f"  {status['problem']}")
    last = status["last_pull"]
    when = f"{last['at']:%Y-%m-%d %H:%M} UTC by {last['by']}" if last else "never"
    lines += [
        f"last pull: {when}",
        f"solutions linked: {status['linked_solutions']}, made by the service and waiting for their row: "
        f"{status['awaiting_their_row']}",
        f"image changes waiting: {status['pending']}, conflicts: {status['conflicts']}, "
        f"rows gone from the marketplace: {status['failed']}, delivered: {status['delivered']}",
    ]
    return "\n".join(lines)


def _human_users(users: list[dict[str, Any]]) -> str:
    """A table for people: dates in UTC to the minute, 'never' for no sign-in yet."""
    rows = [("USERNAME", "ROLE", "EMAIL", "STATUS", "LAST SIGN-IN")]
    for u in users:
        status = "disabled" if u["disabled"] else "active"
        if u["sign_in_wait_seconds"]:
            status += f", waits {u['sign_in_wait_seconds']} s (users unlock)"
        last = u["last_login_at"].strftime("%Y-%m-%d %H:%M UTC") if u["last_login_at"] else "never"
        rows.append((u["username"], u["role"], u["email"] or "-", status, last))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4]]) for row in rows]
    return "\n".join([*lines, f"{len(users)} user(s)"])


def _human_push(payload: dict[str, Any]) -> str:
    verb = "would write" if payload["dry_run"] else "wrote"
    lines = [f"{verb} {payload['written']}, {payload['pending']} still waiting"]
    lines += [f"conflict: {c['solution_id']}: ours {c['ours']} / theirs {c['theirs']}" for c in payload["conflicts"]]
    lines += [f"error: {e.get('solution_id', 'marketplace')}: {e['error']}" for e in payload["errors"]]
    return "\n".join(lines)


def _human_bulk(command: str, payload: dict[str, Any]) -> str:
    if "job_id" in payload:  # import --background
        return f"Import queued as job {payload['job_id']}: {payload['records']:,} record(s); `jobs` shows its progress."
    if command == "import":
        problems = [f"  {e['title']}: {e['error']}" for e in payload["errors"]]
        head = f"Imported {payload['imported']}, updated {payload['updated']}, refused {len(problems)}."
    else:
        problems = [f"  refused {e['id']} {e['title']}: {e['error']}" for e in payload["refused"]]
        head = f"Exported {payload['exported']} solution(s) in {len(payload['files'])} file(s):" + "".join(
            f"\n  {name}" for name in payload["files"]
        )
    return "\n".join([head, *problems])


Handler = Callable[[argparse.Namespace, "Settings", Any], tuple[Any, int]]
# `generate --json`, per result: product.md's keys, the error's sentence, and the imageUrl that an
# auto-approved candidate now has (null otherwise).
CONTRACT_KEYS = ("solution_id", "status", "error_kind", "candidate_id", "cost_usd", "duration_ms", "cache_hit")
RESULT_KEYS = (*CONTRACT_KEYS, "error", "published_url")


def cmd_init(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlalchemy.engine import make_url

    from . import storage

    for folder in (settings.data_dir, settings.candidates_dir, settings.thumbnails_dir):
        folder.mkdir(parents=True, exist_ok=True)  # ours alone: the umask decides
    storage.make_public_folder(settings.publish_dir)  # the marketplace's web server reads it
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    return {"database": url, "data_dir": str(settings.data_dir), "publish_dir": str(settings.publish_dir)}, 0


def cmd_import(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import auth, bulk, bulkfiles

    if args.background:
        return cli_jobs.queue_import(settings, engine, args.file), 0
    records = bulkfiles.read_bulk(args.file)
    report = bulk.import_bulk(
        engine, records, actor=auth.CLI_ACTOR, source=args.file.name, progress=_print_import_progress
    )
    return report.as_dict(), 1 if report.errors else 0


def _print_import_progress(done: int, total: int) -> None:
    print(f"[{done}/{total}] solutions written", file=sys.stderr, flush=True)


def cmd_solutions(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import catalogue

    with Session(engine) as session:
        return {"solutions": catalogue.solution_summaries(session=session, status=args.status)}, 0


def _select_ids(args, engine) -> list[str]:  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import catalogue, rechecks

    with Session(engine) as session:
        if args.solution:
            return rechecks.known(session, args.solution)  # an unknown id: one sentence, exit 2
        if args.missing:
            return catalogue.missing_ids(session=session)
        return catalogue.regenerable_ids(session=session)


def cmd_generate(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import batch, budget, inspections, pipeline, templates

    if not 1 <= args.candidates <= 10:
        raise UsageError("--candidates must be between 1 and 10.")
    if args.concurrency is not None and not 1 <= args.concurrency <= 64:
        raise UsageError("--concurrency must be between 1 and 64.")
    options = pipeline.GenerateOptions(
        provider=args.provider,
        model=args.model,
        size=args.size,
        quality=args.quality,
        template=args.template,
        candidates=args.candidates,
        use_cache=not args.no_cache,
        auto_approve=args.auto_approve,
        concurrency=args.concurrency,
    )
    plan = pipeline.make_plan(settings, options)  # bad values fail here, before anything changes
    with Session(engine) as session:  # an unknown template is bad usage too, not one failure per solution
        templates.resolve(session=session, ref=args.template)
    for notice in (settings.quality_notice, plan.provider.notice(plan.model, date.today())):
        if notice:
            print(f"note: {notice}", file=sys.stderr)
    ids = _select_ids(args, engine)
    if args.background:
        return cli_jobs.queue_generation(settings, engine, ids, options), 0
    estimate = batch.estimate_batch(engine, settings, ids, options)
    if ids:
        print(
            f"Generating {len(ids) * args.candidates} image(s) with {plan.provider.name}/{plan.model}"
            f" (about ${estimate.cost_usd:.4f}).",
            file=sys.stderr,
        )
    results, summary = batch.run_batch(engine, settings, ids, options, progress=_print_progress, checked=False)
    if checking := inspections.unfinished():  # the process exits once they are done
        print(f"Checking the last {checking} new image(s) before exiting.", file=sys.stderr)
    summary["estimate"] = estimate.as_dict()
    with Session(engine) as session:
        summary["budget"] = budget.budget_state(session=session, settings=settings).as_dict()
    payload = {"results": [{k: r.as_dict()[k] for k in RESULT_KEYS} for r in results], "summary": summary}
    return payload, 1 if summary["failed"] else 0


def _print_progress(done: int, total: int, result: GenerationResult) -> None:
    mark = "ok  " if result.status == "succeeded" else "FAIL"
    cache = " (cache)" if result.cache_hit else ""
    tail = f"${result.cost_usd:.4f}{cache}" if result.status == "succeeded" else f"{result.error_kind}: {result.error}"
    print(
        f"[{done}/{total}] {mark} {result.solution_id} {result.duration_ms / 1000:.1f}s {tail}",
        file=sys.stderr,
        flush=True,
    )


def cmd_refine(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import auth, refine

    result = refine.refine(
        engine,
        settings,
        args.candidate_id,
        args.instruction,
        provider=args.provider,
        model=args.model,
        actor=auth.CLI_ACTOR,
    )
    failed = result.status == "failed"
    summary = {
        "succeeded": int(not failed),
        "failed": int(failed),
        "cache_hits": int(result.cache_hit),
        "cost_usd": result.cost_usd,
        "seconds": result.duration_ms / 1000,
        "parent_id": args.candidate_id,
    }
    return {"results": [{k: result.as_dict()[k] for k in RESULT_KEYS}], "summary": summary}, 1 if failed else 0


def cmd_candidates(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import candidates

    with Session(engine) as session:
        return {"candidates": candidates.listing(session=session, solution_id=args.solution_id)}, 0


def cmd_checks(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import inspections, rechecks

    rechecks.require_enabled(settings)
    with Session(engine) as session:
        ids = rechecks.known(session, args.solution) if args.solution else None
    if args.background:
        return cli_jobs.queue_checks(settings, engine, ids), 0
    with Session(engine) as session:
        candidate_ids = inspections.stored_candidates(session, ids)
    names = ", ".join(rechecks.label(n) for n in settings.enabled_checks)
    print(f"Checking {len(candidate_ids)} candidate(s): {names}.", file=sys.stderr, flush=True)
    outcomes = inspections.check_again(engine, settings, candidate_ids, progress=_print_check_progress)
    report = rechecks.summary(settings, outcomes)
    return report, 1 if report["not_checked"] else 0


def _print_check_progress(done: int, total: int, outcome: Any) -> None:
    from . import rechecks

    found = ", ".join(rechecks.label(n) for n in outcome.flags) or "no flag"
    said = f"not checked: {outcome.problem}" if outcome.problem else found
    print(f"[{done}/{total}] #{outcome.candidate_id} {said}", file=sys.stderr, flush=True)


def cmd_approve(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import auth, review
    from .db import session_scope

    with session_scope(engine, write=True) as session:
        pub = review.approve(session=session, settings=settings, candidate_id=args.candidate_id, actor=auth.CLI_ACTOR)
        session.commit()
    return {
        "candidate_id": args.candidate_id,
        "solution_id": pub.solution_id,
        "image_url": pub.image_url,
        "file_name": pub.file_name,
    }, 0


def cmd_reject(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import auth, review
    from .db import session_scope

    with session_scope(engine, write=True) as session:
        cand = review.reject(
            session=session, candidate_id=args.candidate_id, reason=args.reason, note=args.note, actor=auth.CLI_ACTOR
        )
        session.commit()
    return {
        "candidate_id": cand.id,
        "solution_id": cand.solution_id,
        "state": cand.state,
        "reason": cand.reject_reason,
    }, 0


def cmd_rollback(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import auth, review
    from .db import session_scope
    from .models import Solution

    with session_scope(engine, write=True) as session:
        pub = review.rollback(session=session, solution_id=args.solution_id, actor=auth.CLI_ACTOR)
        solution = session.get(Solution, args.solution_id)
        session.commit()
    return {
        "solution_id": args.solution_id,
        "image_url": solution.image_url,
        "image_status": solution.image_status,
        "rolled_back": pub.file_name,
    }, 0


def cmd_prompt(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import templates
    from .models import Solution

    with Session(engine) as session:
        solution = session.get(Solution, args.solution_id)
        if solution is None:
            raise UsageError(f"There is no solution with id {args.solution_id}.")
        template, text = templates.render(session=session, solution=solution, ref=args.template)
    return {"solution_id": solution.id, "template": template.ref, "prompt": text, "length": len(text)}, 0


def cmd_providers(args, settings, engine):  # type: ignore[no-untyped-def]
    from .provider_registry import describe

    return {"providers": describe(settings)}, 0


def cmd_export(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import bulk, bulkfiles

    with Session(engine) as session:
        export = bulk.export_records(session=session)
    parts = bulkfiles.export_parts(export.records, args.file.name)
    files = bulkfiles.write_parts(parts, args.file.parent)
    for stale in bulkfiles.stale_parts(args.file.parent, args.file.name, files):
        print(f"note: {stale} is left from an earlier export and is not part of this one.", file=sys.stderr)
    payload = {"files": [str(path) for path in files], "exported": len(export.records), "refused": export.refused}
    return payload, 1 if export.refused else 0


def _quick_stats(args: argparse.Namespace) -> dict[str, Any] | None:
    """`stats` on a migrated SQLite file, read without the ORM (quickstats); None: `cmd_stats` answers."""
    from . import quickstats

    return quickstats.answer(args)


def cmd_stats(args, settings, engine):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from . import budget, metrics

    since = datetime.combine(args.since, datetime.min.time(), tzinfo=UTC) if args.since else None
    scope = metrics.Scope(since=since, model=args.model, template=args.template, provider=args.provider)
    with Session(engine) as session:
        figures = metrics.headline(session=session, scope=scope)
        figures["budget"] = budget.budget_state(session=session, settings=settings).as_dict()
    return figures, 0


def cmd_cleanup(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import auth, review
    from .db import session_scope

    days = settings.cleanup_after_days if args.older_than is None else args.older_than
    with session_scope(engine, write=True) as session:
        report = review.clean_up(
            session=session, settings=settings, actor=auth.CLI_ACTOR, older_than_days=days, dry_run=args.dry_run
        )
        session.commit()
    return report, 0


def cmd_users(args, settings, engine):  # type: ignore[no-untyped-def]
    import getpass

    from sqlmodel import Session

    from . import auth
    from .db import session_scope

    if args.users_command == "list":
        with Session(engine) as session:
            users = auth.list_users(session=session)
            waits = {u.username: auth.account_wait(session=session, username=u.username) for u in users}
        return {
            "users": [
                {
                    "username": u.username,
                    "role": u.role,
                    "disabled": u.disabled,
                    "email": u.email,
                    "last_login_at": u.last_login_at,
                    "sign_in_wait_seconds": waits[u.username],
                }
                for u in users
            ]
        }, 0
    if args.users_command == "unlock":
        with session_scope(engine, write=True) as session:
            cleared = auth.unlock(session=session, actor=auth.CLI_ACTOR, username=args.username)
            session.commit()
        return {"username": args.username, "cleared": cleared}, 0
    if args.users_command == "email":
        with session_scope(engine, write=True) as session:
            user = auth.set_email(session=session, actor=auth.CLI_ACTOR, username=args.username, email=args.email)
            session.commit()
        return {"username": user.username, "email": user.email}, 0
    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    with session_scope(engine, write=True) as session:
        user = auth.add_user(
            session=session,
            actor=auth.CLI_ACTOR,
            username=args.username,
            password=password,
            role=args.role,
            email=args.email,
        )
        session.commit()
    (settings.data_dir / auth.SETUP_TOKEN_FILE).unlink(missing_ok=True)
    return {"username": user.username, "role": user.role, **({"email": user.email} if user.email else {})}, 0


def cmd_demo(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import auth, demo

    if args.solutions < 1 or args.generations < 0:
        raise UsageError("--solutions must be at least 1 and --generations at least 0.")
    return demo.load(
        engine,
        settings,
        solutions=args.solutions,
        generations=args.generations,
        actor=auth.CLI_ACTOR,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    ), 0


def cmd_marketplace(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import auth, deliveries, marketplace, pull

    step = args.marketplace_command
    if step == "status":
        return marketplace.status(engine, settings), 0
    if step == "resolve":
        return _resolve(args, settings, engine), 0
    marketplace.engine_for(settings)  # not configured: one sentence, exit 2
    if step == "pull":
        progress = None if args.json else (lambda n, total: print(f"[{n}/{total}]", file=sys.stderr, flush=True))
        report = pull.pull(engine, settings, actor=auth.CLI_ACTOR, progress=progress)
        deliveries.deliver_waiting(engine, settings)  # approvals made before a solution was linked
        return report.as_dict(), 1 if report.errors else 0
    pushed = deliveries.push(engine, settings, dry_run=args.dry_run)
    return pushed.as_dict(), 1 if (pushed.errors or pushed.pending or pushed.conflicts) else 0


def _resolve(args, settings, engine) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from . import auth, deliveries
    from .db import session_scope

    with session_scope(engine, write=True) as session:
        open_ones = deliveries.conflicts(session=session, solution_id=args.solution_id)
        if not open_ones:
            raise UsageError(f"Solution {args.solution_id} has no marketplace conflict; see `marketplace status`.")
        delivery_id = open_ones[-1]["delivery_id"]
        if args.keep_theirs:
            deliveries.keep_theirs(session=session, settings=settings, delivery_id=delivery_id, actor=auth.CLI_ACTOR)
        else:
            deliveries.use_ours(session=session, delivery_id=delivery_id, actor=auth.CLI_ACTOR)
        session.commit()
    pushed = deliveries.push(engine, settings) if args.use_ours else None
    return {
        "solution_id": args.solution_id,
        "kept": "theirs" if args.keep_theirs else "ours",
        "push": pushed and pushed.as_dict(),
    }


def cmd_serve(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import service
    from .config import load_settings

    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535.")
    if not 1 <= args.candidates <= 10 or (args.candidates > 1 and not args.review):
        raise UsageError("--candidates must be between 1 and 10, and more than 1 only with --review.")
    # The service reads the dashboard's overrides per request, so it starts from the environment's settings.
    service.serve(
        load_settings(),
        host=args.host,
        port=args.port,
        review=args.review,
        candidates=args.candidates,
        concurrency=settings.image_concurrency,
    )
    return None, 0


def cmd_up(args, settings, engine):  # type: ignore[no-untyped-def]
    from . import launch

    cmd_init(args, settings, engine)
    return None, launch.up(port=args.port, service_port=args.service_port)


HANDLERS: dict[str, Handler] = {
    "init": cmd_init,
    "import": cmd_import,
    "solutions": cmd_solutions,
    "generate": cmd_generate,
    "refine": cmd_refine,
    "candidates": cmd_candidates,
    "checks": cmd_checks,
    "approve": cmd_approve,
    "reject": cmd_reject,
    "rollback": cmd_rollback,
    "prompt": cmd_prompt,
    "export": cmd_export,
    "stats": cmd_stats,
    "providers": cmd_providers,
    "cleanup": cmd_cleanup,
    "users": cmd_users,
    "demo-data": cmd_demo,
    "marketplace": cmd_marketplace,
    "serve": cmd_serve,
    "up": cmd_up,
    "worker": cli_jobs.cmd_worker,
    "jobs": cli_jobs.cmd_jobs,
}
