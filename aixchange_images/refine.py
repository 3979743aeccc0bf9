"""Refine instead of regenerate: a candidate sent to its provider's edit call with an instruction, kept
as a child candidate (`parent_id`, `instruction`) with its own attempt, cost, reservation and moderation.

It runs the generator's steps like a new image (`Generator.run` with the parent's bytes as the request's
image, so the provider's `edit` is called): moderation of the instruction, the budget's reservation and
charge, the rate limit, and the cache, whose key holds the parent image's digest, so an identical refine
(same image, instruction, provider, model, size, quality, format) is served at $0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import storage
from .auth import Actor, require
from .config import ConfigError, Settings, check_size
from .db import session_scope
from .models import Attempt, Candidate
from .pipeline import GenerateOptions, GenerationResult, Generator, Plan, make_plan, request_key
from .provider_registry import chosen, get_provider, provider_names

MAX_INSTRUCTION = 1000  # characters; an instruction says what to change, not the whole picture


@dataclass(frozen=True)
class Parent:
    """What a refine needs of the candidate it changes, read in one session."""

    candidate: Candidate
    provider: str  # who made it ("" for an upload)
    size: str
    quality: str | None
    data: bytes


def refine(
    engine: Engine,
    settings: Settings,
    candidate_id: int,
    instruction: str,
    *,
    provider: str | None = None,
    model: str | None = None,
    actor: Actor,
) -> GenerationResult:
    """A child of candidate `candidate_id` changed as `instruction` says; bad input fails with one
    sentence (UserError) before anything is recorded."""
    require(actor, "generate")
    instruction = check_instruction(instruction)
    parent = read_parent(engine, settings, candidate_id)
    plan = refine_plan(settings, parent, provider=provider, model=model, actor=actor)
    result = run(engine, settings, plan, parent, instruction)
    label_child(engine, result, parent.candidate, instruction)
    return result


def edit_providers(settings: Settings) -> list[str]:
    """The providers that can refine now: they change images and have what they need (a key)."""
    ready = [get_provider(name, settings) for name in provider_names()]
    return [p.name for p in ready if p.edits and p.missing() is None]


def check_instruction(instruction: str) -> str:
    text = (instruction or "").strip()
    if not text:
        raise ConfigError("Say how to change the image: the instruction is empty.")
    if len(text) > MAX_INSTRUCTION:
        raise ConfigError(
            f"The instruction is {len(text):,} characters long; keep it under {MAX_INSTRUCTION:,} (say only what to change)."
        )
    return text


def read_parent(engine: Engine, settings: Settings, candidate_id: int) -> Parent:
    with Session(engine) as session:
        candidate = session.get(Candidate, candidate_id)
        if candidate is None:
            raise ConfigError(f"There is no candidate #{candidate_id}; `candidates SOLUTION_ID` lists a solution's.")
        made_by = session.get(Attempt, candidate.attempt_id) if candidate.attempt_id else None
    try:
        if candidate.deleted_at is not None:
            raise FileNotFoundError(candidate.file_path)
        data = storage.read_data_file(settings, candidate.file_path)
    except (OSError, storage.StorageError):
        raise ConfigError(
            f"Candidate #{candidate_id}'s image file is gone (cleaned up or moved); refine another candidate."
        ) from None
    size = made_by.size if made_by is not None else f"{candidate.width}x{candidate.height}"
    provider = candidate.provider or (made_by.provider if made_by is not None else "")
    return Parent(candidate, provider, size, made_by.quality if made_by is not None else None, data)


def refine_plan(settings: Settings, parent: Parent, *, provider: str | None, model: str | None, actor: Actor) -> Plan:
    """The parent's provider, model, size and format unless others are asked for."""
    name = provider or parent.provider or chosen(settings)
    chosen_provider = get_provider(name, settings)
    if not chosen_provider.edits:
        able = ", ".join(edit_providers(settings)) or "none is ready now (see `providers`)"
        raise ConfigError(f"The {name} provider cannot change an image; refine with one of: {able}.")
    if (missing := chosen_provider.missing()) is not None:
        raise ConfigError(missing)
    if model is None and name == parent.provider and chosen_provider.serves(parent.candidate.model):
        model = parent.candidate.model
    try:
        size = check_size(parent.size)
    except ConfigError:
        size = settings.dalle_image_size
    options = GenerateOptions(
        provider=name,
        model=model,
        size=size,
        quality=parent.quality,
        output_format=parent.candidate.image_format,
        purpose=parent.candidate.purpose,
        actor=actor,
    )
    return make_plan(settings, options)


def run(engine: Engine, settings: Settings, plan: Plan, parent: Parent, instruction: str) -> GenerationResult:
    """The generator's steps (cache, retirement, moderation, rate limit, reservation, the provider's
    edit call, charge, keeping the image) for one refine."""
    candidate = parent.candidate
    generator = Generator(engine, settings, plan)
    key = request_key(plan, instruction, 0, changing=candidate.sha256)
    attempt = generator.new_attempt(
        candidate.solution_id, instruction, 0, key, candidate.template_ref, parent_id=candidate.id
    )
    request = dataclasses.replace(plan.request(instruction), image=parent.data)  # an image to change: `edit`
    try:
        return generator.guarded(
            candidate.solution_id,
            lambda started: generator.run(attempt, request, started, parent_id=candidate.id, instruction=instruction),
        )
    finally:
        generator.close()  # the new image is checked before the refine is over


def label_child(engine: Engine, result: GenerationResult, parent: Candidate, instruction: str) -> None:
    """A copy the cache made from another solution's refine names that one's parent: name ours."""
    if result.candidate_id is None or not result.cache_hit:
        return
    with session_scope(engine, write=True) as session:
        child = session.get(Candidate, result.candidate_id)
        if child is None or child.id == parent.id or (child.parent_id, child.instruction) == (parent.id, instruction):
            return
        child.parent_id, child.instruction = parent.id, instruction
        session.add(child)
        session.commit()
