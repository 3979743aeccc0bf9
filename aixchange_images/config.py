"""Configuration, resolved in one place from the environment and `.env`."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError, UserError  # noqa: F401 - UserError: the library imports both from here

# The automatic checks, in the order they are shown; checks.py runs them.
CHECK_NAMES = ("blank", "text_garbled", "unsafe", "duplicate", "wrong_size")

# DALL-E era quality values the seed used; the GPT image models call them medium/high.
LEGACY_QUALITY = {"standard": "medium", "hd": "high"}
QUALITIES = ("low", "medium", "high", "auto", "xhigh", "max")
FORMATS = ("png", "jpeg")
STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")

# The automatic checks' settings (checks.py reads them): which run, and each one's threshold.
CHECK_SETTINGS = (
    "checks_enabled",
    "check_blank_max_spread",
    "check_blank_max_detail",
    "check_text_min_height",
    "check_text_min_confidence",
    "check_text_max_unknown_words",
    "check_unsafe_min_score",
    "check_duplicate_max_distance",
    "check_min_side_px",
)

# Settings an admin may override from the dashboard (stored in the `setting` table).
OPERATIONAL_KEYS = (
    "image_provider",
    "image_model",
    "dalle_image_size",
    "dalle_image_quality",
    "dalle_image_format",
    "image_budget_daily_usd",
    "image_budget_monthly_usd",
    "image_budget_alert_share",
    "image_concurrency",
    "image_rate_limit_per_minute",
    "cleanup_after_days",
    *CHECK_SETTINGS,
)


class ProviderSettings(BaseSettings):
    """A provider's own variables (its key, its address), declared by its module in `providers/`.

    Every subclass is listed in `kinds` as it is defined, so `Settings.secrets` hides the secrets of
    every provider there is: a `SecretStr` field, and the password of any `..._url` field.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)
    provider: ClassVar[str] = ""
    key_field: ClassVar[str | None] = None  # the field without which the provider cannot call
    kinds: ClassVar[list[type[ProviderSettings]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ProviderSettings.kinds.append(cls)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def has_key(self) -> bool:
        return self.key_field is not None and getattr(self, self.key_field) is not None

    def secret_values(self) -> list[str]:
        found = []
        for name, value in self:
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, str) and name.endswith("_url"):
                found.extend(p for p in [urlsplit(value).password] if p)
        return found

    def fingerprint(self) -> str:
        """A digest of every value, secrets included, that shows none of them: what tells two
        configurations apart in the provider cache."""
        values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self}
        return hashlib.sha256(f"provider-settings\x00{json.dumps(values, default=str)}".encode()).hexdigest()[:16]


P = TypeVar("P", bound=ProviderSettings)


class Settings(BaseSettings):
    """Everything the library needs to know about its surroundings."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = "sqlite:///data/aixchange.db"
    external_images_path: Path = Path("external-images")
    data_dir: Path = Field(default=Path("data"), validation_alias="AIXCHANGE_DATA_DIR")
    image_provider: str | None = None
    image_model: str = "gpt-image-2"
    dalle_image_size: str = "1024x1024"
    dalle_image_quality: str = "medium"
    dalle_image_format: str = "png"
    image_budget_daily_usd: float | None = Field(default=None, ge=0)
    image_budget_monthly_usd: float | None = Field(default=None, ge=0)
    image_budget_alert_share: float = Field(default=0.8, gt=0, le=1)
    image_concurrency: int = Field(default=4, ge=1, le=64)
    image_rate_limit_per_minute: int | None = Field(default=None, ge=1)
    image_timeout_seconds: float = Field(default=120.0, gt=0)
    image_max_retries: int = Field(default=2, ge=0, le=10)
    image_max_retry_wait_seconds: float = Field(default=60.0, ge=0)
    cleanup_after_days: int = Field(default=30, ge=0)
    # The automatic checks on every stored candidate (checks.py): which run, comma-separated ("" for none),
    # and their thresholds.
    checks_enabled: str = ",".join(CHECK_NAMES)
    check_blank_max_spread: float = Field(default=6.0, ge=0, le=128)  # luminance standard deviation, 0-255
    check_blank_max_detail: float = Field(default=1.5, ge=0, le=255)  # mean step between neighbouring pixels
    check_text_min_height: float = Field(default=0.04, gt=0, lt=1)  # lettering this share of the height is large
    check_text_min_confidence: float = Field(default=70, ge=0, le=100)  # the OCR's own confidence in a word
    check_text_max_unknown_words: int = Field(default=0, ge=0)  # misspelt large words tolerated
    check_unsafe_min_score: float = Field(default=0.5, gt=0, le=1)  # the detector's score for an exposed part
    check_duplicate_max_distance: int = Field(default=12, ge=0, le=256)  # differing bits of 256-bit hashes
    check_min_side_px: int = Field(default=512, ge=1, le=8192)  # a smaller side is too small for a card
    # The marketplace's own PostgreSQL (its app/.env DATABASE_URL): pull solutions, deliver imageUrls.
    marketplace_database_url: SecretStr | None = None
    marketplace_pull_minutes: float = Field(default=15, ge=0)  # how often `serve` pulls; 0: only on demand
    marketplace_timeout_seconds: float = Field(default=5.0, gt=0)
    # The drop-in `serve` service: it has no authentication upstream, so these bound what a client can do.
    service_rate_limit: str = "10/minute"  # per client; `limits` syntax, several joined by ';'
    service_total_rate_limit: str = "60/minute"  # all clients together: no address rotation spends more
    service_max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    service_forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-For names the client
    # The job queue: huey's SQLite storage in the data folder by default; Redis when set, so workers on
    # several machines share one queue (redis://[:password@]host:6379/0). Its password is never shown.
    redis_url: SecretStr | None = None
    # Dashboard sign-in: a browser session ends after this long without a run, and this long after sign-in.
    session_idle_hours: float = Field(default=8, gt=0)
    session_max_days: float = Field(default=7, gt=0)
    quality_notice: str | None = None
    # Tests only: a FIFO at which publishing waits between linking a file and the commit, so a test
    # can kill the process exactly there (tests/test_publish_journal.py). Never set in production.
    test_pause_after_link: Path | None = Field(default=None, validation_alias="AIXCHANGE_TEST_PAUSE_AFTER_LINK")

    @field_validator("image_budget_daily_usd", "image_budget_monthly_usd", "image_rate_limit_per_minute", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("marketplace_database_url", "redis_url", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("checks_enabled", mode="before")
    @classmethod
    def _checks(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        if not isinstance(value, str):
            return value
        names = [n.strip().lower() for n in value.replace(" ", ",").split(",") if n.strip()]
        if names == ["none"]:
            return ""
        if unknown := [n for n in names if n not in CHECK_NAMES]:
            raise ValueError(f"'{unknown[0]}' is not a check; name some of {', '.join(CHECK_NAMES)} (or none)")
        return ",".join(n for n in CHECK_NAMES if n in names)

    @property
    def enabled_checks(self) -> tuple[str, ...]:
        return tuple(n for n in self.checks_enabled.split(",") if n)

    @field_validator("service_rate_limit", "service_total_rate_limit")
    @classmethod
    def _rate(cls, value: str, info: ValidationInfo) -> str:
        if value == cls.model_fields[info.field_name or ""].default:
            return value  # pydantic-settings validates defaults too: ours parse, and `limits` stays unloaded
        from limits import parse_many  # loaded only when the variable is set

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a rate; write it like 10/minute (or 10/minute;100/hour)") from None
        return value.strip()

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        url = sqlalchemy_url(value.strip())
        check_database_url(url)
        return url

    @field_validator("marketplace_database_url", mode="after")
    @classmethod
    def _marketplace_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_database_url(sqlalchemy_url(value.get_secret_value().strip()))
        return value

    @field_validator("redis_url", mode="after")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_redis_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _normalise(self) -> Settings:
        quality = self.dalle_image_quality.strip().lower()
        if quality in LEGACY_QUALITY:
            self.quality_notice = (
                f"DALLE_IMAGE_QUALITY={quality} is a DALL-E value; using {LEGACY_QUALITY[quality]} "
                "for the GPT image models."
            )
            quality = LEGACY_QUALITY[quality]
        if quality not in QUALITIES:
            raise ConfigError(f"Image quality '{quality}' is unknown; use one of {', '.join(QUALITIES)}.")
        self.dalle_image_quality = quality
        fmt = self.dalle_image_format.strip().lower().replace("jpg", "jpeg")
        if fmt not in FORMATS:
            raise ConfigError(
                f"DALLE_IMAGE_FORMAT must be png or jpeg (the marketplace serves only those), not '{fmt}'."
            )
        self.dalle_image_format = fmt
        self.dalle_image_size = check_size(self.dalle_image_size)
        if self.image_provider:
            self.image_provider = self.image_provider.strip().lower()
        market = self.marketplace_database_url
        if market is not None and sqlalchemy_url(market.get_secret_value()) == self.database_url:
            raise ConfigError(
                "DATABASE_URL and MARKETPLACE_DATABASE_URL are the same database; give AIXchange Images a "
                "database of its own (the default SQLite file is fine)."
            )
        return self

    _providers: dict[type[ProviderSettings], ProviderSettings] = PrivateAttr(default_factory=dict)

    def provider_settings(self, kind: type[P]) -> P:
        """A provider's own variables, read from the environment and `.env` once per Settings."""
        found = self._providers.get(kind)
        if found is None:
            try:
                found = self._providers[kind] = kind()
            except ValueError as exc:
                raise ConfigError(_first_problem(exc)) from None
        return found  # type: ignore[return-value]

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values no message, log or export may show: every provider's keys and proxy passwords, the
        passwords of both databases and of the job queue's Redis."""
        market = self.marketplace_database_url.get_secret_value() if self.marketplace_database_url else None
        redis = urlsplit(self.redis_url.get_secret_value()).password if self.redis_url else None
        providers = [v for kind in ProviderSettings.kinds for v in self.provider_settings(kind).secret_values()]
        values = (*providers, redis, *_passwords(market), *_passwords(self.database_url))
        return tuple(dict.fromkeys(v for v in values if v and len(v) >= 4))  # "x" would blank every x

    @property
    def candidates_dir(self) -> Path:
        return self.data_dir / "candidates"

    @property
    def thumbnails_dir(self) -> Path:
        return self.data_dir / "thumbnails"

    @property
    def publish_dir(self) -> Path:
        return self.external_images_path / "solutions"

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        """A copy with operational overrides applied and validated again."""
        allowed = {k: v for k, v in overrides.items() if k in OPERATIONAL_KEYS}
        if not allowed:
            return self
        data = self.model_dump(exclude={"quality_notice"})
        data.update(allowed)
        try:
            return Settings.model_validate(data)
        except ValueError as exc:
            raise ConfigError(_first_problem(exc)) from None


def sqlalchemy_url(url: str) -> str:
    """`postgresql://…` (as the marketplace's .env writes it) with the installed driver, psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def check_database_url(url: str) -> None:
    """A URL SQLAlchemy can parse, with a driver it knows; else a ValueError that never repeats the URL."""
    if url.startswith("sqlite:///"):
        return  # always parses, with the standard library's driver: SQLAlchemy stays unloaded (quick `stats`)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if url.partition("://")[2].split("/", 1)[0].count("@") > 1:  # a raw @ in the password moves the host
        raise ValueError("its password holds an '@'; write it as %40 (and /, # or ? as %2F, %23, %3F)")
    try:
        parsed = make_url(url)
        _ = parsed.port  # a port that is not a number fails here
    except (ArgumentError, ValueError, TypeError):
        raise ValueError(
            "this is not a database URL; write it like sqlite:///data/aixchange.db or "
            "postgresql://user:password@host:5432/aixchange"
        ) from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(
            f"'{parsed.drivername}' is not a database this tool knows; use sqlite:///data/aixchange.db or "
            "postgresql://user:password@host:5432/aixchange"
        ) from None


def check_base_url(url: str) -> None:
    """An http(s) URL with a host (and a port that is a port); else a ValueError that never repeats the URL."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "this is not an http(s) address the images client can call; write it like https://api.openai.com/v1 "
            "(or your compatible server's address), or leave it unset"
        )


def url_shown(url: str) -> str:
    """An http(s) address without any user:password part (a proxy's URL may carry one)."""
    from urllib.parse import urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")))


def check_redis_url(url: str) -> None:
    """A redis://, rediss:// or unix:// URL with a host or path; else a ValueError that never repeats the URL."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ValueError("this is not a Redis URL; write it like redis://:password@host:6379/0, or leave it unset")


def redis_where(url: SecretStr) -> str:
    """The queue's Redis as it may be shown: scheme, host, port and database, never the password."""
    parts = urlsplit(url.get_secret_value().strip())
    host = parts.hostname or parts.path
    port = f":{parts.port}" if parts.port else ""
    database = parts.path if parts.scheme != "unix" and parts.path not in ("", "/") else ""
    return f"{parts.scheme}://{host}{port}{database}"


def _passwords(url: str | None) -> tuple[str, ...]:
    """A URL's password as written (percent-encoded) and as meant: either may turn up in a message."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(sqlalchemy_url(url)).password if url else None
    except (ArgumentError, ValueError):
        return ()
    return (password, quote(password, safe="")) if password else ()


_SIZE = re.compile(r"^(\d{2,4})x(\d{2,4})$")


def check_size(size: str) -> str:
    """Validate an image size (`WxH` or `auto`) and return it normalised."""
    size = size.strip().lower()
    if size == "auto":
        return size
    match = _SIZE.match(size)
    if not match:
        raise ConfigError(f"Image size '{size}' is not WIDTHxHEIGHT (for example 1024x1024).")
    width, height = int(match[1]), int(match[2])
    if width % 16 or height % 16:
        raise ConfigError(f"Image size {size}: both sides must be divisible by 16.")
    if not (1 / 3 <= width / height <= 3):
        raise ConfigError(f"Image size {size}: the aspect ratio must be between 1:3 and 3:1.")
    if width * height > 3840 * 2160 or max(width, height) > 3840:
        raise ConfigError(f"Image size {size} is larger than the 3840x2160 maximum.")
    if min(width, height) < 256:
        raise ConfigError(f"Image size {size} is too small for a card image; use at least 256 on each side.")
    return size


def parse_size(size: str) -> tuple[int, int]:
    """(width, height) for a size; `auto` means 1024x1024."""
    if size == "auto":
        return 1024, 1024
    width, height = size.split("x")
    return int(width), int(height)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, with explicit overrides on top."""
    try:
        return Settings(**overrides)
    except ValueError as exc:  # pydantic's ValidationError: one sentence per problem
        raise ConfigError(_first_problem(exc)) from None


def _first_problem(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    first = errors()[0]
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ").rstrip(".")
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"Setting {where.upper()}: {message}." if where else f"{message}."
