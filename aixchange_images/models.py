"""The tables: solutions, generation attempts, candidates, publications, users and the rest.

Timestamps are aware UTC (SQLModel stores them as UTC); `utcnow()` is the one clock.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from .wording import REJECT_REASONS  # noqa: F401 - re-exported: review, the audit log and pages read it here

PLACEHOLDER_URL = "/placeholder-image.jpg"
PUBLIC_PREFIX = "/api/external-images/solutions/"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_solution_id() -> str:
    """A cuid-shaped id (the marketplace's Prisma default) for solutions that come without one."""
    alphabet = string.ascii_lowercase + string.digits
    return "c" + "".join(secrets.choice(alphabet) for _ in range(24))


class ImageStatus(StrEnum):
    none = "none"
    placeholder = "placeholder"
    pending = "pending"
    approved = "approved"
    uploaded = "uploaded"


MISSING_STATUSES = (ImageStatus.none, ImageStatus.placeholder)


class CandidateState(StrEnum):
    pending = "pending"
    approved = "approved"  # the one published now
    superseded = "superseded"  # published before, replaced by a later approval
    rejected = "rejected"
    rolled_back = "rolled_back"


NOT_CHOSEN = "not_chosen"  # the other pending candidates when one is approved


class Purpose(StrEnum):
    """Why an image was made: for the catalogue, or in a Prompt Studio trial (kept apart on Review)."""

    regular = "regular"
    trial = "trial"


class AttemptStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    interrupted = "interrupted"  # the process died mid-call; found and closed by a later run


class Role(StrEnum):
    admin = "admin"
    product = "product"
    manager = "manager"


ERROR_KINDS = (
    "moderation_blocked",
    "budget_exceeded",
    "rate_limited",
    "quota_exceeded",
    "timeout",
    "connection",
    "auth",
    "invalid_request",
    "model_unavailable",
    "server_error",
    "bad_image",
    "storage",
)


class SolutionBase(SQLModel):
    # No length limits here: marketplace rows are taken as they are (the zod rules are for files).
    title: str = Field(index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    category: str = Field(index=True)
    provider: str = "Unknown"
    launch_url: str = ""
    source_code_url: str | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: str = "1.0.0"
    is_published: bool = True
    status: str = "Active"
    token_cost: int = 0
    rating: float = 0.0
    metadata_: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    author_id: str | None = None
    event_id: str | None = None
    image_url: str | None = None


class SolutionOrigin(StrEnum):
    local = "local"  # imported from a file or added here
    marketplace = "marketplace"  # a row of the marketplace's "Solution" table, seen by a pull
    request = "request"  # made by the drop-in service for a request without solutionId; a pull adopts it


class Solution(SolutionBase, table=True):
    id: str = Field(default_factory=new_solution_id, primary_key=True, max_length=40)
    image_status: str = Field(default=ImageStatus.none, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    origin: str = Field(default=SolutionOrigin.local, index=True, max_length=16)
    marketplace_url: str | None = None  # the marketplace row's imageUrl as we last saw or delivered it
    marketplace_synced_at: datetime | None = None  # when a pull or a delivery last agreed with the row


class Attempt(SQLModel, table=True):
    """One request for an image, whatever became of it: the ledger of calls, time and money."""

    __table_args__ = (
        Index("ix_attempt_started_status", "started_at", "status"),
        Index("ix_attempt_request_key_status", "request_key", "status"),
        # where each solution's next variant starts (batch._tasks), read from the index alone
        Index("ix_attempt_solution_candidate_variant", "solution_id", "candidate_id", "variant"),
        # Covering indexes: the figures on Metrics, `stats` and every budget check read only these.
        Index("ix_attempt_template_status_cost", "template_ref", "status", "cost_usd"),
        Index(
            "ix_attempt_time_cover",
            "started_at",
            "status",
            "cache_hit",
            "duration_ms",
            "cost_usd",
            "saved_usd",
            "reserved_usd",
            "model",
            "template_ref",
            "provider",
            "error_kind",
        ),
        Index(
            "ix_attempt_duration_cover",
            "status",
            "cache_hit",
            "duration_ms",
            "started_at",
            "model",
            "template_ref",
            "provider",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    solution_id: str = Field(index=True, foreign_key="solution.id")
    batch_id: str | None = Field(default=None, index=True)
    purpose: str = Field(default=Purpose.regular, max_length=16)
    actor: str = "cli"
    provider: str
    model: str = Field(index=True)
    size: str
    quality: str
    output_format: str = "png"
    template_ref: str = Field(default="default@1", index=True)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    variant: int = 0
    request_key: str = Field(max_length=64)
    status: str = Field(default=AttemptStatus.running, index=True)
    error_kind: str | None = Field(default=None, index=True)
    error_message: str | None = None
    cache_hit: bool = False
    moderation: str | None = None  # passed | flagged | skipped
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration_ms: int | None = None
    provider_ms: int | None = None
    retries: int = 0
    input_text_tokens: int | None = None
    input_image_tokens: int | None = None
    output_image_tokens: int | None = None
    output_text_tokens: int | None = None
    reserved_usd: float = 0.0
    cost_usd: float = 0.0
    saved_usd: float = 0.0  # a cache hit: what the reused image cost when it was made
    cost_source: str | None = None  # usage | per_image | cache | estimate | none
    request_id: str | None = None
    bytes: int | None = None
    candidate_id: int | None = None
    pid: int | None = None
    host: str | None = None
    runner: str | None = Field(default=None, max_length=40)  # the process making the call (a random token)
    deadline_at: datetime | None = None  # a live call is over by then (budget.longest_call, its own settings)
    parent_id: int | None = Field(default=None, index=True)  # a refine: the candidate it changes


class Candidate(SQLModel, table=True):
    """A stored image awaiting (or past) review."""

    __table_args__ = (
        # the yield table per template version, all time or since a day, read from the index alone
        Index("ix_candidate_yield_cover", "template_ref", "state", "reject_reason", "source", "created_at"),
        Index("ix_candidate_time_cover", "created_at", "source", "state", "cost_usd", "model", "template_ref"),
        # the checks' flag rates per model or template version, in a period (metrics.flags_by)
        Index("ix_candidate_check_cover", "created_at", "source", "model", "template_ref", "checked_at", "flags"),
        # storage in use, over time and by solution (metrics.storage_bytes and its neighbours)
        Index("ix_candidate_disk_cover", "cache_hit", "deleted_at", "solution_id", "bytes", "created_at", "state"),
        # the review queue: pending candidates of one purpose, grouped by solution, oldest first
        Index("ix_candidate_queue", "state", "purpose", "solution_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    solution_id: str = Field(index=True, foreign_key="solution.id")
    attempt_id: int | None = Field(default=None, index=True)
    state: str = Field(default=CandidateState.pending, index=True)
    file_path: str  # relative to the data folder
    thumb_path: str
    image_format: str
    width: int
    height: int
    bytes: int
    sha256: str = Field(index=True, max_length=64)
    template_ref: str = "default@1"
    model: str = ""
    cost_usd: float = 0.0
    cache_hit: bool = False
    source: str = "generated"  # generated | uploaded
    purpose: str = Field(default=Purpose.regular, max_length=16)  # a trial's candidates wait apart
    reject_reason: str | None = None
    reject_note: str | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    deleted_at: datetime | None = None  # its file was removed by a storage clean-up
    provider: str = Field(default="", max_length=40)  # who made it ("" for an upload)
    parent_id: int | None = Field(default=None, index=True)  # a refine: the candidate it was made from
    instruction: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # what the refine asked for
    # The automatic checks (inspections.py): when they last ran (None: not yet), the names of the
    # flags they raised (" blank duplicate ", spaces around each, so a queue filters with LIKE), and the
    # image's perceptual hash (256 bits in hex), which the duplicate check compares.
    checked_at: datetime | None = None
    flags: str = Field(default="", max_length=120)
    phash: str | None = Field(default=None, max_length=64)


class CandidateCheck(SQLModel, table=True):
    """One automatic check's verdict on a candidate: raised or not, its score, its evidence and the
    one sentence that says why. Checking again replaces the candidate's rows."""

    __table_args__ = (Index("ix_candidatecheck_name_flagged", "name", "flagged", "candidate_id"),)

    candidate_id: int = Field(primary_key=True)
    name: str = Field(primary_key=True, max_length=20)
    flagged: bool = False
    score: float | None = None
    sentence: str = Field(default="", sa_column=Column(Text, nullable=False))
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    checked_at: datetime = Field(default_factory=utcnow)


class Publication(SQLModel, table=True):
    """An approval written to the publish folder, with what it replaced (for rollback)."""

    id: int | None = Field(default=None, primary_key=True)
    solution_id: str = Field(index=True, foreign_key="solution.id")
    candidate_id: int | None = None
    file_name: str
    image_url: str
    bytes: int = 0
    previous_image_url: str | None = None
    previous_status: str = ImageStatus.none
    published_at: datetime = Field(default_factory=utcnow, index=True)
    published_by: str = "cli"
    active: bool = True
    rolled_back_at: datetime | None = None
    rolled_back_by: str | None = None


class DeliveryState(StrEnum):
    pending = "pending"  # waiting to be written into the marketplace row
    delivered = "delivered"
    conflict = "conflict"  # the row changed in the marketplace since we last saw it: an admin decides
    superseded = "superseded"  # a later change of the same solution replaced it before it was written
    kept_theirs = "kept_theirs"  # an admin kept the marketplace's image instead
    failed = "failed"  # the marketplace has no such row


OPEN_DELIVERIES = (DeliveryState.pending, DeliveryState.conflict)


class Delivery(SQLModel, table=True):
    """The outbox: an imageUrl to write into the marketplace's row, written with the change itself."""

    id: int | None = Field(default=None, primary_key=True)
    solution_id: str = Field(index=True, foreign_key="solution.id")
    image_url: str | None = None  # what the row's imageUrl should become
    state: str = Field(default=DeliveryState.pending, index=True, max_length=16)
    reason: str = Field(default="approve", max_length=40)  # the action that made it
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = "cli"
    tries: int = 0
    last_tried_at: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    theirs: str | None = None  # the row's imageUrl when a conflict was found
    resolved_by: str | None = None


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    password_hash: str
    role: str = Role.admin
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    failed_logins: int = 0  # unused since migration 10: sign-in throttles count failures (throttle.py)
    locked_until: datetime | None = None  # unused since migration 10
    disabled: bool = False
    email: str | None = Field(default=None, max_length=254, unique=True, index=True)  # single sign-on identity


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str
    action: str = Field(index=True)
    target: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Price(SQLModel, table=True):
    """USD per 1M tokens for one model; admins edit it, attempts keep what they were charged."""

    model: str = Field(primary_key=True, max_length=80)
    text_input_per_m: float = Field(ge=0)
    image_input_per_m: float = Field(ge=0)
    image_output_per_m: float = Field(ge=0)
    shutdown_date: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = "seed"


class Setting(SQLModel, table=True):
    """An operational override of the environment's configuration."""

    key: str = Field(primary_key=True, max_length=64)
    value: Any = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = "cli"


class Lock(SQLModel, table=True):
    """A row whose update serialises a critical section across threads and processes."""

    name: str = Field(primary_key=True, max_length=40)
    counter: int = 0


class SchemaMigration(SQLModel, table=True):
    version: int = Field(primary_key=True)
    name: str
    applied_at: datetime = Field(default_factory=utcnow)


# -- Prompt Studio: versioned templates, labels that point at versions, per-category choices ----
class TemplateLabelName(StrEnum):
    production = "production"  # what every generation uses unless told otherwise
    draft = "draft"  # the version being worked on; each save moves it


class TemplateVersion(SQLModel, table=True):
    """One version of a prompt template: written once, never changed (a save makes the next one)."""

    __table_args__ = (UniqueConstraint("name", "version", name="uq_templateversion_name_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=40)
    version: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    style: str = Field(default="", sa_column=Column(Text, nullable=False))
    note: str = ""
    author: str
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@event.listens_for(TemplateVersion, "before_update")
def _template_versions_are_immutable(_mapper, _connection, target: TemplateVersion) -> None:  # type: ignore[no-untyped-def]
    raise ValueError(f"Template version {target.ref} is immutable; save a new version instead.")


class TemplateLabel(SQLModel, table=True):
    """Where a template's label points now; `TemplateLabelMove` keeps every move."""

    name: str = Field(primary_key=True, max_length=40)
    label: str = Field(primary_key=True, max_length=20)
    version: int
    moved_by: str
    moved_at: datetime = Field(default_factory=utcnow)


class TemplateLabelMove(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=40)
    label: str = Field(max_length=20)
    from_version: int | None = None
    to_version: int
    actor: str
    at: datetime = Field(default_factory=utcnow, index=True)
    note: str = ""


class CategoryTemplate(SQLModel, table=True):
    """A category that uses its own template's production version instead of `default`'s."""

    category: str = Field(primary_key=True, max_length=100)
    template: str = Field(max_length=40)
    set_by: str
    set_at: datetime = Field(default_factory=utcnow)
