"""The tables behind background jobs: jobs and their items, per-solution claims, live processes, schedules.

The queue (huey) only carries "work on job N"; everything a job is and has done lives here, so a
worker killed at any moment loses nothing that a restarted (or another) worker cannot pick up.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from .models import utcnow


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"  # every item ran and succeeded
    failed = "failed"  # it ended with failures (or could not run at all: `error` says why)
    cancelled = "cancelled"


ACTIVE = (JobStatus.queued, JobStatus.running)


class JobKind(StrEnum):
    generate = "generate"
    marketplace_pull = "marketplace_pull"
    catalogue_import = "catalogue_import"  # a bulk file, read by the worker from the data folder
    checks = "checks"  # the automatic checks again on stored candidates: an item per solution, images = candidates


class ItemStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class Job(SQLModel, table=True):
    """One batch of work, whoever started it and whichever workers run it."""

    __table_args__ = (Index("ix_job_status_id", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    status: str = Field(default=JobStatus.queued, max_length=16)
    actor: str = Field(max_length=64)  # who started it (a schedule's jobs: "schedule")
    role: str = Field(max_length=16)  # the role it runs with, as checked when it was queued
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    batch_id: str | None = Field(default=None, max_length=40)  # its attempts' batch (Review's ?batch=)
    schedule: str | None = Field(default=None, max_length=40)  # the schedule that queued it
    retry_of: int | None = None
    total: int = 0  # images (a pull: 1; checks: candidates)
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    cancel_requested: bool = False
    error: str | None = None  # why it could not run at all, in one sentence
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class JobItem(SQLModel, table=True):
    """One solution of a job (all its candidates), or a pull: the unit a worker claims and finishes."""

    __table_args__ = (
        Index("ix_jobitem_job_status", "job_id", "status"),
        Index("ix_jobitem_status_runner", "status", "runner"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    solution_id: str | None = Field(default=None, max_length=40)
    images: int = 1
    status: str = Field(default=ItemStatus.queued, max_length=16)
    runner: str | None = Field(default=None, max_length=40)  # the process running it (process.RUNNER)
    succeeded: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SolutionClaim(SQLModel, table=True):
    """A run generating for a solution: others wait, so two runs never both pay for it."""

    solution_id: str = Field(primary_key=True, max_length=40)
    owner: str = Field(max_length=40)  # the run (a random token): its own parallel candidates share it
    runner: str = Field(max_length=40)  # the process; the claim lapses when it is no longer alive
    claimed_at: datetime = Field(default_factory=utcnow)


class Runner(SQLModel, table=True):
    """A process holding claims or running jobs, and its heartbeat: "alive" across machines."""

    token: str = Field(primary_key=True, max_length=40)
    host: str = Field(max_length=255)
    pid: int
    kind: str = Field(default="cli", max_length=16)  # worker | cli | dashboard | service
    concurrency: int | None = None
    started_at: datetime = Field(default_factory=utcnow)
    seen_at: datetime = Field(default_factory=utcnow, index=True)


class JobSchedule(SQLModel, table=True):
    """A periodic job: every `every_minutes` from midnight UTC + `offset_minutes`."""

    name: str = Field(primary_key=True, max_length=40)
    enabled: bool = False
    every_minutes: int = 1440
    offset_minutes: int = 0
    last_slot: datetime | None = None  # the latest slot a job was queued for (each slot once, any worker)
    updated_by: str = Field(default="system", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)
