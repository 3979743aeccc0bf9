"""The provider registry: every `Provider` subclass in the `providers` package, found by name; one
instance built per configuration, never one per page run; unknown names fail with the known ones.

Adding a provider is adding a module to `providers/`: it is found here, listed by the pages, the
command line and Settings, and its models' prices are seeded into the price table.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections import OrderedDict
from datetime import date

from . import providers
from .config import ConfigError, Settings, url_shown
from .providers.base import Model, Provider

_instances: OrderedDict[tuple[str, tuple], Provider] = OrderedDict()  # most recently used last
_instances_lock = threading.Lock()
MAX_INSTANCES = 16  # configurations change rarely; old clients are dropped, not kept forever


def _discover() -> dict[str, type[Provider]]:
    found: dict[str, type[Provider]] = {}
    for module in pkgutil.iter_modules(providers.__path__):
        if module.name == "base":
            continue
        loaded = importlib.import_module(f"{providers.__name__}.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, type) and issubclass(value, Provider) and value.__module__ == loaded.__name__:
                if value.name != module.name:  # the command line lists providers by their modules' names
                    raise TypeError(f"providers/{module.name}.py holds provider '{value.name}'; name them alike.")
                found[value.name] = value
    return found


_registry: dict[str, type[Provider]] = _discover()


def register(cls: type[Provider]) -> None:
    """Add (or replace) a provider class; instances built for an earlier one are dropped."""
    _registry[cls.name] = cls
    with _instances_lock:
        for key in [k for k in _instances if k[0] == cls.name]:
            del _instances[key]


def provider_names() -> list[str]:
    """Every provider, the free local one first."""
    return sorted(_registry, key=lambda name: (_registry[name].paid, name))


def chosen(settings: Settings) -> str:
    """The provider to use: IMAGE_PROVIDER, else the first whose key is set (openai's first), else local."""
    if settings.image_provider:
        return settings.image_provider
    keyed = [name for name in provider_names() if _keyed(name, settings)]
    return "openai" if "openai" in keyed else (keyed[0] if keyed else "local")


def _keyed(name: str, settings: Settings) -> bool:
    config = _registry[name].config
    return config is not None and settings.provider_settings(config).has_key


def check_settings(settings: Settings) -> None:
    """Read every provider's own variables now: a malformed one fails with its one sentence (ConfigError)."""
    for cls in _registry.values():
        if cls.config is not None:
            settings.provider_settings(cls.config)


def provider_class(name: str) -> type[Provider]:
    found = _registry.get(name)
    if found is None:
        raise ConfigError(f"Unknown image provider '{name}'; choose one of: {', '.join(provider_names())}.")
    return found


def model_names(name: str, today: date | None = None) -> list[str]:
    """The models a provider serves today, its default first."""
    cls = provider_class(name)
    today = today or date.today()
    current = [m.name for m in cls.models if m.shutdown is None or m.shutdown > today]
    return sorted(current, key=lambda model: model != cls.default_model)


def all_models() -> list[tuple[str, Model]]:
    """(provider, model) for every model every provider declares: what the price table is seeded with."""
    return [(name, model) for name in provider_names() for model in _registry[name].models]


def describe(settings: Settings, today: date | None = None) -> list[dict]:
    """Every provider as the `providers` command and Settings show it: ready or what it lacks, its
    models, what it can do and the variables it reads (never their values)."""
    rows = []
    for name in provider_names():
        provider = get_provider(name, settings)
        config = provider.config
        rows.append(
            {
                "name": name,
                "label": provider.label,
                "paid": provider.paid,
                "ready": provider.missing() is None,
                "missing": provider.missing(),
                "default_model": provider.default_model,
                "models": model_names(name, today),
                "edits": provider.edits,
                "reports_usage": provider.reports_usage,
                "sizes": list(provider.sizes),
                "variables": [f.upper() for f in config.model_fields] if config else [],
                "address": _address(provider),
            }
        )
    return rows


def _address(provider: Provider) -> str | None:
    """Where a provider calls, when its settings name a place (a `..._url` or `..._endpoint`)."""
    if provider.options is None:
        return None
    places = [v for k, v in provider.options if isinstance(v, str) and v and k.endswith(("_url", "_endpoint"))]
    return url_shown(places[0]) if places else None


def get_provider(name: str, settings: Settings) -> Provider:
    """The provider called `name`, built once per configuration; unknown names fail clearly.

    Each dashboard run builds its own Settings object, so the cache compares their values: equal
    settings share one provider (and its HTTP client), a changed value builds a new one.
    """
    cls = provider_class(name)
    key = (name, _settings_key(cls, settings))
    with _instances_lock:
        provider = _instances.get(key)
        if provider is None:
            provider = _instances[key] = cls(settings)
            while len(_instances) > MAX_INSTANCES:
                _instances.popitem(last=False)
        _instances.move_to_end(key)
        return provider


def _settings_key(cls: type[Provider], settings: Settings) -> tuple:
    """Every setting a provider could read, with no secret in it (the key may end up in a repr).

    The provider's own settings count as one digest; the database URL (which may hold a password)
    is left out, as no provider touches the database.
    """
    values = settings.model_dump(exclude={"database_url", "marketplace_database_url", "redis_url"})
    own = settings.provider_settings(cls.config).fingerprint() if cls.config else None
    fields = sorted((k, v if isinstance(v, str | int | float | bool | None) else str(v)) for k, v in values.items())
    return (("provider_settings_sha256", own), *fields)
