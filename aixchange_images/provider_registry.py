"""The provider registry: providers registered by name, one built per configuration, never one per
page run; unknown names fail with the known ones."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date

from .config import ConfigError, Settings
from .providers import LocalProvider, Provider

_registry: dict[str, Callable[[Settings], Provider]] = {}
_instances: OrderedDict[tuple[str, tuple], Provider] = OrderedDict()  # most recently used last
_instances_lock = threading.Lock()
MAX_INSTANCES = 16  # configurations change rarely; old clients are dropped, not kept forever


def register(name: str, factory: Callable[[Settings], Provider]) -> None:
    _registry[name] = factory
    with _instances_lock:
        for key in [k for k in _instances if k[0] == name]:
            del _instances[key]


def provider_names() -> list[str]:
    return sorted(_registry)


def model_names(name: str) -> list[str]:
    """The models a provider offers (a stand-in: providers will declare their own)."""
    from .budget import DEFAULT_PRICES

    if name == "local":
        return ["local-card"]
    return [
        model for model, (*_, shutdown) in DEFAULT_PRICES.items() if not shutdown or shutdown > date.today().isoformat()
    ]


def get_provider(name: str, settings: Settings) -> Provider:
    """The provider called `name`, built once per configuration; unknown names fail clearly.

    Each dashboard run builds its own Settings object, so the cache compares their values: equal
    settings share one provider (and its HTTP client), a changed value builds a new one.
    """
    factory = _registry.get(name)
    if factory is None:
        raise ConfigError(f"Unknown image provider '{name}'; choose one of: {', '.join(provider_names())}.")
    key = (name, _settings_key(settings))
    with _instances_lock:
        provider = _instances.get(key)
        if provider is None:
            provider = _instances[key] = factory(settings)
            while len(_instances) > MAX_INSTANCES:
                _instances.popitem(last=False)
        _instances.move_to_end(key)
        return provider


def _settings_key(settings: Settings) -> tuple:
    """Every setting a provider could read, with no secret in it (the key may end up in a repr).

    The API key and the base URL (a proxy's URL may carry a password) count only as digests; the
    database URL (which may too) is left out, as no provider touches the database.
    """
    values = settings.model_dump(exclude={"openai_api_key", "openai_base_url", "database_url"})
    secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    digests = tuple(
        (f"{name}_sha256", hashlib.sha256(f"provider-cache\x00{value}".encode()).hexdigest()[:16] if value else None)
        for name, value in (("openai_api_key", secret), ("openai_base_url", settings.openai_base_url))
    )
    fields = sorted((k, v if isinstance(v, str | int | float | bool | None) else str(v)) for k, v in values.items())
    return (*digests, *fields)


register("local", LocalProvider)


def _openai_factory(settings: Settings) -> Provider:
    from .openai_provider import OpenAIProvider  # the SDK loads only when it is used

    return OpenAIProvider(settings)


register("openai", _openai_factory)
