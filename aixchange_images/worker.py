"""The worker: `python -m aixchange_images worker [--concurrency C]` runs the queued jobs.

huey's consumer, with C threads, takes "work on job N" messages; each thread runs that job's items
one at a time, so C is the most provider calls this worker makes at once. Beside it a tick, every
two seconds (and first thing at start), hands on the items of workers that died, queues again the
jobs whose messages were lost, and fires the schedules.

SIGTERM (`up` sends it on Ctrl-C) stops taking items: those in flight finish and are recorded, the
job's other items are left queued for the next worker, and it exits. A second SIGTERM stops at once;
what was in flight is then settled as interrupted by the next run, as after a `kill -9`.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback

from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import admin, jobitems, leases, runs, schedules
from .config import Settings, UserError
from .engines import get_engine
from .jobqueue import JobQueue
from .redaction import redact

log = logging.getLogger(__name__)
TICK_SECONDS = 2.0


def current(engine: Engine, base: Settings) -> Settings:
    """The environment's settings with the admins' overrides, read afresh for each job."""
    with Session(engine) as session:
        return admin.effective_settings(session=session, settings=base)


class Ticker(threading.Thread):
    """The worker's housekeeping: dead workers' items, lost messages, schedules."""

    def __init__(self, engine: Engine, settings: Settings, queue: JobQueue, stopping: threading.Event):
        super().__init__(name="worker-tick", daemon=True)
        self.engine, self.settings, self.queue, self.stopping = engine, settings, queue, stopping

    def run(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            self.tick()
        log.info("Stopping: no new item starts; those in flight finish and are recorded first.")

    def tick(self) -> None:
        try:
            again = jobitems.reap(self.engine)
            if self.queue.pending() == 0:  # nothing waits on the queue, yet work is left: its messages are gone
                again = {**jobitems.stuck(self.engine), **again}
            self._push(again)
            schedules.fire_due(self.engine, current(self.engine, self.settings))
        except UserError as exc:
            log.warning("Worker tick: %s", exc)
        except Exception:  # noqa: BLE001 - the tick goes on; the log says what broke
            log.error(redact(f"Worker tick failed\n{traceback.format_exc()}", *self.settings.secrets))

    def _push(self, jobs: dict[int, int]) -> None:
        for job_id, copies in jobs.items():
            log.info("Job %s: %s message(s) queued again for its remaining items.", job_id, copies)
            self.queue.push(job_id, copies)
        jobitems.touch(self.engine, list(jobs))


def run(settings: Settings, *, concurrency: int) -> int:
    """Run jobs until told to stop (SIGTERM: gracefully). Returns the exit code."""
    _log_to_stderr()
    engine = get_engine(settings)
    queue = JobQueue(settings)
    consumer = queue.consumer(workers=concurrency)
    stopping: threading.Event = consumer.stop_flag
    queue.handler = lambda job_id: runs.work(engine, current(engine, settings), job_id, stopping)
    with leases.presence(engine, kind="worker", concurrency=concurrency):
        ticker = Ticker(engine, settings, queue, stopping)
        ticker.tick()  # a restarted worker takes up what its predecessor was running, at once
        ticker.start()
        print(f"Worker: {concurrency} thread(s) on the job queue ({queue.where}).", file=sys.stderr, flush=True)
        consumer.run()
        ticker.join(timeout=60)
        _hand_back(engine, queue)
    print("Worker stopped.", file=sys.stderr, flush=True)
    return 0


def _hand_back(engine: Engine, queue: JobQueue) -> None:
    """Jobs this worker leaves with queued items get their messages back, for the next worker."""
    try:
        for job_id, copies in jobitems.left_over(engine, sorted(runs.worked_on)).items():
            queue.push(job_id, copies)
    except UserError as exc:  # the queue is away: the next worker's tick finds the jobs anyway
        log.warning("Worker stopping: %s", exc)


def _log_to_stderr() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("huey").setLevel(logging.WARNING)  # a line per message is noise; ours say what matters
