"""Refine instead of regenerate: a candidate sent to its provider's edit call with an instruction, kept
as a child candidate (`parent_id`, `instruction`) with its own attempt, cost, reservation and moderation.

An identical refine (same parent image, instruction, provider, model, size, quality, format) is served
from the cache at $0, like an identical generate.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import calls, storage
from .auth import Actor, require
from .config import ConfigError, Settings, check_size
from .db import session_scope
from .models import Attempt, Candidate
from .pipeline import GenerateOptions, GenerationResult, Generator, Plan, make_plan
from .process import HOST, RUNNER
from .provider_registry import chosen, get_provider, provider_names
from .providers.base import ImageRequest, ProviderError

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
    attempt = new_attempt(plan, parent, instruction)
    request = ImageRequest(
        prompt=instruction,
        model=plan.model,
        size=plan.size,
        quality=plan.quality,
        output_format=plan.output_format,
        image=parent.data,
    )
    result = run(engine, settings, plan, attempt, request)
    label_child(engine, result, parent.candidate, instruction, plan)
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
        able = edit_providers(settings)
        raise ConfigError(f"The {name} provider cannot change an image; refine with one of: {', '.join(able)}.")
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


def refine_key(plan: Plan, parent: Candidate, instruction: str) -> str:
    """The cache's identity of a refine: the parent's image, the instruction and what will be called."""
    parts = ("refine", plan.provider.name, plan.model, plan.size, plan.quality, plan.output_format)
    return hashlib.sha256("\x1f".join((*parts, parent.sha256, instruction)).encode()).hexdigest()


def new_attempt(plan: Plan, parent: Parent, instruction: str) -> Attempt:
    candidate = parent.candidate
    return Attempt(
        solution_id=candidate.solution_id,
        batch_id=plan.batch_id,
        purpose=candidate.purpose,
        actor=plan.options.actor.username,
        provider=plan.provider.name,
        model=plan.model,
        size=plan.size,
        quality=plan.quality,
        output_format=plan.output_format,
        template_ref=candidate.template_ref,
        prompt=instruction,
        request_key=refine_key(plan, candidate, instruction),
        parent_id=candidate.id,
        pid=os.getpid(),
        host=HOST,
        runner=RUNNER,
    )


def run(engine: Engine, settings: Settings, plan: Plan, attempt: Attempt, request: ImageRequest) -> GenerationResult:
    """The generator's steps (cache, retirement, moderation, rate limit, reservation, call, charge,
    keep) with the provider's edit call."""
    generator = Generator(engine, settings, plan)
    started = time.perf_counter()  # TEMPORARY until the generator's shared steps land on main
    cached = generator._from_cache(attempt, started)
    if cached is not None:
        return cached
    if generator._retired(attempt) or not generator._moderate(attempt):
        return generator._store(attempt, started)
    if not generator.limiter.acquire():
        generator._fail(attempt, "rate_limited", "The batch was stopped before this call was made.")
        return generator._store(attempt, started)
    if not generator._reserve(attempt):
        return generator._result(attempt)
    try:
        try:
            reply = plan.provider.edit(request)
        except ProviderError as exc:
            generator._fail(attempt, exc.kind, exc.message)
            return generator._store(attempt, started)
        generator._charge(attempt, request, reply)
        return generator._keep_image(attempt, reply, started)
    finally:
        calls.ended(attempt.id)


def label_child(engine: Engine, result: GenerationResult, parent: Candidate, instruction: str, plan: Plan) -> None:
    """The kept candidate says what it was refined from, with what, and who made it."""
    if result.candidate_id is None:
        return
    with session_scope(engine, write=True) as session:
        child = session.get(Candidate, result.candidate_id)
        if child is None or child.id == parent.id or child.solution_id != parent.solution_id:
            return
        child.parent_id, child.instruction, child.provider = parent.id, instruction, plan.provider.name
        session.add(child)
        session.commit()
