"""The job queue: huey, on SQLite in the data folder by default, on Redis when REDIS_URL is set.

A message says only "work on job N" (as JSON: a shared Redis must never be able to make a worker
unpickle code). What a job is and how far it got lives in the database (`jobs`, `jobitems`), so a
lost message loses nothing: a worker's tick finds a job nobody works on and queues it again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.consumer import Consumer
from huey.registry import Message
from huey.serializer import Serializer
from redis.exceptions import RedisError

from .config import Settings, UserError, redis_where
from .redaction import redact

QUEUE_NAME = "aixchange-images"
QUEUE_FILE = "job-queue.db"  # in the data folder
IDLE_POLL_SECONDS = 0.5  # at most this long before an idle worker sees a new message (SQLite storage)


class QueueError(UserError):
    """The queue cannot be reached; one sentence that says where and what to do."""


class JsonMessages(Serializer):
    """huey's messages as JSON: a task name and integer arguments, nothing a reader could execute."""

    def _serialize(self, data: Message) -> bytes:
        return json.dumps({"id": data.id, "name": data.name, "args": [int(a) for a in data.args]}).encode()

    def _deserialize(self, data: bytes) -> Message:
        raw = json.loads(data)
        return Message(id=str(raw["id"]), name=str(raw["name"]), args=tuple(int(a) for a in raw["args"]), kwargs={})


class JobQueue:
    """The queue this configuration names; `handler` runs a message's job (only workers set it)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.handler: Callable[[int], None] | None = None
        self.huey = _huey(settings)
        self._work = self.huey.task(name="work")(self._run)

    @property
    def where(self) -> str:
        if self.settings.redis_url is not None:
            return f"Redis at {redis_where(self.settings.redis_url)}"
        return f"SQLite at {self.settings.data_dir / QUEUE_FILE}"

    def push(self, job_id: int, copies: int = 1) -> None:
        """Queue `copies` messages for the job: that many workers may run its items side by side."""
        try:
            for _ in range(copies):
                self._work(job_id)
        except (RedisError, sqlite3.Error, OSError) as exc:
            raise QueueError(self._unreachable(exc)) from None

    def pending(self) -> int:
        try:
            return int(self.huey.pending_count())
        except (RedisError, sqlite3.Error, OSError) as exc:
            raise QueueError(self._unreachable(exc)) from None

    def consumer(self, workers: int) -> Consumer:
        """huey's consumer: `workers` threads; SIGTERM lets running items finish, a second one stops at once."""
        return self.huey.create_consumer(
            workers=workers,
            worker_type="thread",
            periodic=False,  # schedules are the worker's tick's (each slot once, whichever worker takes it)
            initial_delay=0.05,
            backoff=1.5,
            max_delay=IDLE_POLL_SECONDS,
            graceful_signal="TERM",
        )

    def _run(self, job_id: int) -> None:
        if self.handler is None:
            raise RuntimeError("Only a worker runs jobs: start one with `python -m aixchange_images worker`.")
        self.handler(job_id)

    def _unreachable(self, exc: Exception) -> str:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = (
            redact(first, *self.settings.secrets).rstrip(".").rsplit(". ", 1)[-1]
        )  # "Error 111 ... Connection refused"
        fix = "start it or unset REDIS_URL" if self.settings.redis_url else "check that the data folder can be written"
        return f"The job queue ({self.where}) cannot be reached: {reason}; {fix}."


def _huey(settings: Settings) -> Any:
    common: dict[str, Any] = {"results": False, "serializer": JsonMessages()}
    if settings.redis_url is not None:
        return RedisHuey(QUEUE_NAME, url=settings.redis_url.get_secret_value(), read_timeout=1, **common)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(QUEUE_NAME, filename=str(settings.data_dir / QUEUE_FILE), **common)


_queues: dict[tuple[str, str], JobQueue] = {}


def queue_for(settings: Settings) -> JobQueue:
    """One queue object per configuration in a process (producers: the CLI, the dashboard, schedules)."""
    key = (settings.redis_url.get_secret_value() if settings.redis_url else "", str(settings.data_dir.resolve()))
    if key not in _queues:
        _queues[key] = JobQueue(settings)
    return _queues[key]
