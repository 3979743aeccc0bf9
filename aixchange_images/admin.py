"""Administration: operational settings stored in the database, prices, the audit log."""

from __future__ import annotations

import math
from typing import Any

from sqlmodel import Session, col, select

from . import provider_registry
from .auth import Actor, audit, require
from .config import OPERATIONAL_KEYS, ConfigError, Settings
from .models import AuditEvent, Price, Setting, utcnow


def overrides(*, session: Session) -> dict[str, Any]:
    return {row.key: row.value for row in session.exec(select(Setting)).all() if row.key in OPERATIONAL_KEYS}


def effective_settings(*, session: Session, settings: Settings) -> Settings:
    """The environment's settings with the admins' overrides on top (a bad override is ignored)."""
    try:
        return settings.with_overrides(overrides(session=session))
    except ConfigError:
        return settings


def save_overrides(*, session: Session, settings: Settings, actor: Actor, changes: dict[str, Any]) -> Settings:
    """Validate and store overrides; None removes one (back to the environment's value)."""
    require(actor, "manage")
    unknown = sorted(set(changes) - set(OPERATIONAL_KEYS))
    if unknown:
        raise ConfigError(f"{unknown[0]} is not a setting that can be changed here.")
    current = overrides(session=session)
    merged = {**current, **{k: v for k, v in changes.items() if v is not None}}
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
    result = settings.with_overrides(merged)  # raises ConfigError with one sentence
    for key, value in changes.items():
        row = session.get(Setting, key)
        if value is None:
            if row is not None:
                session.delete(row)
        else:
            row = row or Setting(key=key)
            row.value, row.updated_at, row.updated_by = value, utcnow(), actor.username
            session.add(row)
        if current.get(key) != value:
            audit(session, actor, "settings.change", key, old=current.get(key), new=value)
    return result


def effective_value(settings: Settings, key: str) -> Any:
    """What a setting is now; the provider is the one in use, also when only the key decides it."""
    return provider_registry.chosen(settings) if key == "image_provider" else getattr(settings, key)


def changed_settings(*, settings: Settings, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of a submitted form that differ from the effective settings, so only they are stored."""
    return {key: value for key, value in values.items() if value != effective_value(settings, key)}


def prices(*, session: Session) -> list[Price]:
    return list(session.exec(select(Price).order_by(Price.model)).all())


def _price(model: str, label: str, value: float | None) -> float:
    """A price as a finite number of 0 or more; anything else is refused in one sentence."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        shown = "empty" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(value)
        raise ConfigError(f"The {label} price of {model} must be a number of 0 or more, not {shown}.")
    return number


def set_price(
    *,
    session: Session,
    actor: Actor,
    model: str,
    text_input: float | None,
    image_input: float | None,
    image_output: float | None,
) -> Price:
    """Change (or add) a model's price; it applies to calls from now on. An empty cell is None."""
    require(actor, "manage")
    model = model.strip()
    if not model:
        raise ConfigError("A price needs a model name.")
    text_input = _price(model, "text input", text_input)
    image_input = _price(model, "image input", image_input)
    image_output = _price(model, "image output", image_output)
    row = session.get(Price, model)
    old = None if row is None else (row.text_input_per_m, row.image_input_per_m, row.image_output_per_m)
    row = row or Price(model=model, text_input_per_m=0, image_input_per_m=0, image_output_per_m=0)
    row.text_input_per_m, row.image_input_per_m, row.image_output_per_m = text_input, image_input, image_output
    row.updated_at, row.updated_by = utcnow(), actor.username
    session.add(row)
    audit(session, actor, "price.change", model, old=old, new=[text_input, image_input, image_output])
    return row


def audit_log(*, session: Session, actor: Actor, offset: int = 0, limit: int = 100) -> list[AuditEvent]:
    require(actor, "manage")
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).offset(offset).limit(limit)
    return list(session.exec(query).all())
