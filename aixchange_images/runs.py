"""Running a job's items in this process: what a worker thread does with a "work on job N" message.

The threads of one process that work on the same job share one `JobRun`: one plan, one generator
(its rate limiter, its auto-approve bookkeeping), one set of claims, as a foreground batch does.
Each thread takes the job's next item, runs it, records it, and looks for a cancel in between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import batch, bulk, bulkfiles, jobitems, jobs, rechecks
from .auth import Actor
from .claims import Claims
from .config import Settings, UserError
from .deliveries import deliver_waiting
from .inspections import Inspector
from .jobitems import Outcome
from .jobmodels import ItemStatus, Job, JobItem, JobKind
from .pipeline import GenerateOptions, Generator, Stopped
from .pull import pull
from .redaction import redact

log = logging.getLogger(__name__)
CANCEL_CHECK_SECONDS = 0.5
UNEXPECTED = "An unexpected error stopped this item; the worker's log has the details."


class JobRun:
    """One job's work in this process."""

    def __init__(self, engine: Engine, settings: Settings, job: Job):
        self.engine, self.settings, self.job = engine, settings, job
        self.stop = threading.Event()
        self._checked = 0.0
        self.options: GenerateOptions | None = None
        self.generator: Generator | None = None
        self.claims: Claims | None = None
        self.inspector: Inspector | None = None  # checks: one pool (and hash index) for the job's threads here
        if job.kind == JobKind.checks:
            rechecks.require_enabled(settings)  # turned off since it was queued: the job fails with why
            self.inspector = Inspector(engine, settings)
        if job.kind == JobKind.generate:
            self.options = jobs.options_of(job)
            self.generator = batch.start_run(engine, settings, self.options, self.stop)  # bad values fail here
            self.claims = Claims(engine, self.stop, kind="worker")

    def cancelled(self) -> bool:
        """Whether the job is being cancelled (read at most twice a second, shared by the threads)."""
        now = time.monotonic()
        if not self.stop.is_set() and now - self._checked >= CANCEL_CHECK_SECONDS:
            self._checked = now
            if jobitems.cancel_requested(self.engine, self.job.id):
                self.stop.set()  # also stops waiting for claims and calls not yet made
        return self.stop.is_set()

    def execute(self, item: JobItem) -> Outcome:
        try:
            if self.job.kind == JobKind.marketplace_pull:
                return self._pull()
            if self.job.kind == JobKind.catalogue_import:
                return self._import()
            if self.job.kind == JobKind.checks:
                assert self.inspector is not None and item.solution_id is not None
                return rechecks.run_item(self.engine, self.inspector, item.solution_id, self.job.options.get("up_to"))
            return self._generate(item)
        except UserError as exc:
            return Outcome(ItemStatus.failed, failed=item.images, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one item's surprise must not end the job
            log.error(redact(f"Job {self.job.id}, item {item.id} failed: {exc!r}", *self.settings.secrets))
            return Outcome(ItemStatus.failed, failed=item.images, error=UNEXPECTED)

    def _generate(self, item: JobItem) -> Outcome:
        assert self.claims and self.generator and self.options and item.solution_id is not None
        sid, results = item.solution_id, []
        with self.claims.hold(sid) as held:
            if not held:
                return Outcome(ItemStatus.cancelled)
            with Session(self.engine) as session:  # read under the claim: what another run just did counts
                first = batch.first_variants(session, [sid], self.options).get(sid, 0)
            for n in range(item.images):
                if self.stop.is_set():
                    break
                try:
                    results.append(self.generator.generate(sid, first + n))
                except Stopped:
                    break  # cancelled before its call was made: nothing recorded, the item counts as cancelled
            self.generator.settle(sid)  # auto-approve: the best of its checked candidates, under the claim
        failed = [r for r in results if r.status != "succeeded"]
        status = ItemStatus.cancelled if len(results) < item.images else ItemStatus.failed if failed else None
        return Outcome(
            status or ItemStatus.succeeded,
            succeeded=len(results) - len(failed),
            failed=len(failed),
            cost_usd=round(sum(r.cost_usd for r in results), 6),
            error=failed[0].error if failed else None,
        )

    def _pull(self) -> Outcome:
        report = pull(self.engine, self.settings, actor=Actor(self.job.actor, self.job.role))
        deliver_waiting(self.engine, self.settings)
        note = f"{len(report.errors)} marketplace row(s) not taken; see the audit log." if report.errors else None
        return Outcome(ItemStatus.succeeded, succeeded=1, error=note)

    def _import(self) -> Outcome:
        path, source = Path(self.job.options["file"]), self.job.options["source"]
        if not path.is_file():
            raise UserError(f"The file of this import ({source}) is gone from the data folder; import it again.")
        records = bulkfiles.parse_bulk(source, path.read_bytes())
        report = bulk.import_bulk(self.engine, records, actor=Actor(self.job.actor, self.job.role), source=source)
        path.unlink(missing_ok=True)  # written: the catalogue holds it now
        note = f"{len(report.errors):,} record(s) refused; see the audit log." if report.errors else None
        return Outcome(ItemStatus.succeeded, succeeded=1, error=note)


_runs: dict[int, tuple[JobRun, int]] = {}
_runs_lock = threading.Lock()
worked_on: set[int] = set()  # jobs this process ran items of (a stopping worker hands their rest back)


@contextmanager
def shared_run(engine: Engine, settings: Settings, job: Job) -> Iterator[JobRun]:
    """This process's JobRun for the job, made by the first thread in and dropped by the last out."""
    assert job.id is not None
    with _runs_lock:
        run, users = _runs.get(job.id) or (None, 0)
        if run is None:
            run = JobRun(engine, settings, job)
        _runs[job.id] = (run, users + 1)
        worked_on.add(job.id)
    try:
        with run.claims or nullcontext():
            yield run
    finally:
        with _runs_lock:
            run, users = _runs[job.id]
            if users == 1:
                del _runs[job.id]
            else:
                _runs[job.id] = (run, users - 1)
        if users == 1 and run.generator is not None:
            run.generator.close()  # the checks of the job's last images finish before it is over
        if users == 1 and run.inspector is not None:
            run.inspector.close()


def work(engine: Engine, settings: Settings, job_id: int, stopping: threading.Event) -> None:
    """Run the job's items one after another until none is left, it is cancelled, or we are stopping."""
    job = jobitems.start(engine, job_id)
    if job is None:
        return  # over, cancelled, or gone: an extra message for it finds nothing to do
    try:
        with shared_run(engine, settings, job) as run:
            drain(engine, run, stopping.is_set)
    except UserError as exc:  # its settings no longer work (a key removed, a template deleted)
        jobitems.fail(engine, job_id, str(exc))
    jobitems.finalize(engine, job_id)


def drain(engine: Engine, run: JobRun, stopping: Callable[[], bool]) -> None:
    while not stopping() and not run.cancelled():
        item = jobitems.claim_next(engine, run.job.id)
        if item is None:
            return
        jobitems.finish(engine, item, run.execute(item))
