"""The command line's arguments: every command, option and help text, built from the standard library alone.

`--help` and bad usage are answered from here without loading the database, pydantic or image
code; each command's handler in `cli.py` imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import pkgutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import NoReturn

from . import cli_jobs
from .wording import IMAGE_STATUS_WORDS, REJECT_REASONS

IMAGE_STATUSES = list(IMAGE_STATUS_WORDS)  # models.ImageStatus's values, in its order (a test holds them equal)
# Each provider is a module named after it in providers/ (provider_registry holds them to that): read
# from the folder, so `--help` names them without importing any.
PROVIDERS = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent / "providers")]) if m.name != "base")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help).\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m aixchange_images", description="Generate, review and publish AIXchange solution images."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        return cmd

    command("init", "create the database and folders (idempotent)")
    cmd = command("import", "import AIXchange bulk JSON, the marketplace's own download, or CSV")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--background", action="store_true", help="queue it as a job for a worker; return at once")
    cmd = command("solutions", "list solutions")
    cmd.add_argument("--status", choices=IMAGE_STATUSES)
    _add_generate(command("generate", "generate candidate images"))
    cmd = command("approve", "publish a candidate")
    cmd.add_argument("candidate_id", type=int)
    cmd = command("reject", "reject a candidate with a reason")
    cmd.add_argument("candidate_id", type=int)
    cmd.add_argument("--reason", required=True, help=", ".join(REJECT_REASONS))
    cmd.add_argument("--note")
    cmd = command("refine", "change a candidate as an instruction says: a new candidate beside it")
    cmd.add_argument("candidate_id", type=int)
    cmd.add_argument("--instruction", required=True, help="what to change, e.g. 'warmer and lighter'")
    cmd.add_argument("--provider", choices=PROVIDERS, help="default: the candidate's own")
    cmd.add_argument("--model", help="default: the candidate's own")
    cmd = command("candidates", "list a solution's candidates, newest first, with what each was refined from")
    cmd.add_argument("solution_id")
    _add_checks(command("checks", "run the automatic checks again on stored candidates; how many each flagged"))
    cmd = command("rollback", "restore a solution's previous image")
    cmd.add_argument("solution_id")
    cmd = command("prompt", "print the rendered prompt for a solution")
    cmd.add_argument("solution_id")
    cmd.add_argument("--template", metavar="NAME[@VERSION]")
    cmd = command("export", "write the catalogue as AIXchange bulk JSON (at most 100 solutions a file)")
    cmd.add_argument("file", type=Path)
    cmd = command("stats", "headline figures")
    cmd.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD")
    cmd.add_argument("--model")
    cmd.add_argument("--template", metavar="NAME@VERSION")
    cmd.add_argument("--provider")
    command("providers", "the image providers: which are ready, their models, what they can do")
    cmd = command("cleanup", "delete files of old rejected and superseded candidates")
    cmd.add_argument("--older-than", type=int, metavar="DAYS", help="default: the cleanup_after_days setting")
    cmd.add_argument("--dry-run", action="store_true", help="only report what would be freed")
    _add_users(command("users", "manage dashboard users"))
    _add_marketplace(command("marketplace", "the marketplace's database: pull solutions, push image changes"))
    _add_serving(command)
    cli_jobs.add_commands(command, _Parser)
    cmd = command("demo-data", "load a realistic synthetic catalogue and history")
    cmd.add_argument("--solutions", type=int, default=120, metavar="N")
    cmd.add_argument("--generations", type=int, default=600, metavar="M")
    return parser


def _add_generate(cmd: argparse.ArgumentParser) -> None:
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--solution", nargs="+", metavar="ID", help="these solutions (also ones with an uploaded image)")
    which.add_argument("--missing", action="store_true", help="solutions with no image or the placeholder")
    which.add_argument("--all", action="store_true", help="every solution except those with an uploaded image")
    cmd.add_argument("--candidates", type=int, default=1, metavar="N", help="images per solution (1-10)")
    cmd.add_argument("--provider", choices=PROVIDERS)
    cmd.add_argument("--model")
    cmd.add_argument("--size", metavar="WxH")
    cmd.add_argument("--quality")
    cmd.add_argument("--template", metavar="NAME[@VERSION]")
    cmd.add_argument("--auto-approve", action="store_true", help="publish the first good candidate at once")
    cmd.add_argument("--no-cache", action="store_true", help="always make a new call")
    cmd.add_argument("--concurrency", type=int, metavar="C")
    cmd.add_argument("--background", action="store_true", help="queue it as a job for a worker; return at once")


def _add_checks(cmd: argparse.ArgumentParser) -> None:
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--solution", nargs="+", metavar="ID", help="these solutions' candidates")
    which.add_argument("--all", action="store_true", help="every stored candidate")
    cmd.add_argument("--background", action="store_true", help="queue it as a job for a worker; return at once")


def _add_users(users: argparse.ArgumentParser) -> None:
    users_sub = users.add_subparsers(dest="users_command", required=True, parser_class=_Parser)
    add = users_sub.add_parser("add", help="add a user; the password is read from stdin")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["admin", "product", "manager"])
    add.add_argument("--email", help="the identity single sign-on signs them in with")
    add.add_argument("--json", action="store_true")
    lst = users_sub.add_parser("list", help="list users")
    lst.add_argument("--json", action="store_true")
    email = users_sub.add_parser("email", help="set the email single sign-on signs a user in with (none: clear it)")
    email.add_argument("username")
    email.add_argument("email", nargs="?")
    email.add_argument("--json", action="store_true")
    unlock = users_sub.add_parser("unlock", help="forget a user's failed sign-ins, so they may try again at once")
    unlock.add_argument("username")
    unlock.add_argument("--json", action="store_true")


def _add_marketplace(market: argparse.ArgumentParser) -> None:
    market_sub = market.add_subparsers(dest="marketplace_command", required=True, parser_class=_Parser)
    for name, text in (
        ("pull", "read the marketplace's solutions into the catalogue (ids kept, updated in place)"),
        ("push", "write the image changes waiting for the marketplace"),
        ("status", "the connection, the last pull, deliveries waiting and conflicts"),
    ):
        step = market_sub.add_parser(name, help=text, description=text)
        step.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        if name == "push":
            step.add_argument("--dry-run", action="store_true", help="say what would be written; change nothing")
    step = market_sub.add_parser("resolve", help="settle a conflict: keep the marketplace's image or send ours")
    step.add_argument("solution_id")
    choice = step.add_mutually_exclusive_group(required=True)
    choice.add_argument("--keep-theirs", action="store_true")
    choice.add_argument("--use-ours", action="store_true")
    step.add_argument("--json", action="store_true")


def _add_serving(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    cmd = command("serve", "run the drop-in POST /api/generate-image service for the marketplace")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    cmd.add_argument(
        "--review",
        action="store_true",
        help="answer with the placeholder; a job for the workers makes the candidates, which wait in Review",
    )
    cmd.add_argument("--candidates", type=int, default=1, metavar="N", help="with --review: images per request (1-10)")
    cmd = command("up", "start the dashboard and, beside it, the image service (what `make run` does)")
    cmd.add_argument("--port", type=int, default=8501, help="the dashboard's port (default 8501)")
    cmd.add_argument("--service-port", type=int, default=8000, help="the image service's port (default 8000)")
