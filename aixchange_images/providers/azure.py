"""The `azure` provider: the GPT image models deployed on an Azure OpenAI resource, through the same
`openai` SDK (`openai.AzureOpenAI`) and everything the `openai` provider does with a reply.

What differs is where a call goes and how Azure says no:
- the resource's address (AZURE_OPENAI_ENDPOINT), its key in an `api-key` header (AZURE_OPENAI_API_KEY),
  a dated API version (OPENAI_API_VERSION, the variable the SDK itself reads);
- a *deployment*, not a model, is what a call names: `/openai/deployments/{deployment}/images/...`.
  One deployment serves one model. IMAGE_MODEL names the model (its prices, sizes, retirement);
  AZURE_OPENAI_DEPLOYMENT names the deployment that serves it and defaults to the model's own name,
  which is what the Azure portal suggests. A model picked for one run (`--model`) is called at the
  deployment named like that model.
- Azure has no moderation endpoint: its content filter refuses a prompt at generation (HTTP 400,
  `content_policy_violation` or `content_filter` with an inner error naming the categories), which
  is recorded as `moderation_blocked`; the screen before a paid call is the local rule list.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator

from ..config import ProviderSettings, check_base_url
from .base import Model, ProviderError
from .openai import OpenAIProvider

# The last dated API version, the first to serve the GPT image models on deployments (Azure's "API
# version lifecycle" page; its image-edit how-to uses it). Newer features move to the undated v1 API.
API_VERSION = "2025-04-01-preview"
EXAMPLE_ENDPOINT = "https://YOUR-RESOURCE.openai.azure.com"


class AzureSettings(ProviderSettings):
    provider = "azure"
    key_field = "azure_openai_api_key"
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: SecretStr | None = None
    openai_api_version: str | None = None  # None: API_VERSION
    azure_openai_deployment: str | None = None  # None: the model's own name

    @field_validator("azure_openai_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        try:
            check_base_url(value)
            parts = urlsplit(value)
            if parts.path.strip("/") or parts.username or parts.password or parts.query:
                raise ValueError("a path, query or user")
        except ValueError:
            raise ValueError(
                f"this is not the address of an Azure OpenAI resource; write it like {EXAMPLE_ENDPOINT} "
                "(no path, user or password), or leave it unset"
            ) from None
        return value

    @field_validator("openai_api_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", value.strip()):
            raise ValueError(f"this is not an Azure OpenAI API version; write it like {API_VERSION}, or leave it unset")
        return value.strip() if value else None

    @field_validator("azure_openai_deployment")
    @classmethod
    def _deployment(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value.strip()):
            raise ValueError(
                "this is not a deployment name; write the name your deployment has in Azure "
                "(letters, digits, '-', '_' and '.'), or leave it unset"
            )
        return value.strip() if value else None


# USD per 1M tokens: text in, image in, image out. Azure's list prices for Global deployments (the
# Azure retail price list, https://prices.azure.com/api/retail/prices, product "Azure OpenAI Media",
# as shown on https://azure.microsoft.com/pricing/details/azure-openai/, mid-2026) equal OpenAI's for
# these models, so the price table (keyed by model) holds one row for both providers. Data Zone
# deployments cost 10% more: an admin edits the price row. Retirement dates: Azure's "Model
# retirement schedule" (gpt-image-2 is scheduled for 2027-04-21 with no replacement named yet, so it
# carries none: a warning would have nowhere to send IMAGE_MODEL).
AZURE_IMAGE_MODELS = (
    Model("gpt-image-2", 5.00, 8.00, 30.00),
    Model("gpt-image-1.5", 5.00, 8.00, 32.00, date(2026, 12, 16)),
    Model("gpt-image-1-mini", 2.00, 2.50, 8.00, date(2027, 4, 7)),
    Model("gpt-image-1", shutdown=date(2026, 10, 23)),
)


class AzureProvider(OpenAIProvider):
    """Azure OpenAI: the openai provider with Azure's client, paths, settings and refusals."""

    name = "azure"
    label = "Azure OpenAI"
    models = AZURE_IMAGE_MODELS
    default_model = "gpt-image-2"
    any_model = False  # a deployment's model must be one we can price
    edits = True  # images.edit on the same deployment
    qualities = ("low", "medium", "high")
    config: Any = AzureSettings
    key_variable = "AZURE_OPENAI_API_KEY"
    address_variable = "AZURE_OPENAI_ENDPOINT"
    moderation = False  # no moderation endpoint: the local rules, then Azure's content filter

    def missing(self) -> str | None:
        if problem := super().missing():
            return problem
        if not self.options.azure_openai_endpoint:
            return (
                f"AZURE_OPENAI_ENDPOINT is not set: put your resource's address ({EXAMPLE_ENDPOINT}) in the "
                "environment or .env, or use the local provider."
            )
        return None

    @property
    def api_version(self) -> str:
        return self.options.openai_api_version or API_VERSION

    def make_client(self) -> Any:
        import openai

        from ..deadline import DeadlineClient  # the HTTP stack loads with the SDK, at the first call

        # No azure_deployment: the SDK puts each call's `model` (our deployment) in its path.
        return openai.AzureOpenAI(
            azure_endpoint=self.options.azure_openai_endpoint,
            api_key=self.options.azure_openai_api_key.get_secret_value(),
            api_version=self.api_version,
            timeout=self.settings.image_timeout_seconds,
            max_retries=0,
            http_client=DeadlineClient(limits=openai.DEFAULT_CONNECTION_LIMITS, follow_redirects=True),
        )

    def configured_model(self) -> str:
        """The model a run uses unless it picks another: IMAGE_MODEL when Azure serves it."""
        model = self.settings.image_model
        return model if self.serves(model) else self.default_model

    def deployment(self, model: str) -> str:
        named = self.options.azure_openai_deployment
        return named if named and model == self.configured_model() else model

    def _classify(self, exc: Exception, model: str) -> ProviderError:
        error = super()._classify(exc, model)
        if found := self._azure_meaning(exc, model):
            error.kind, error.message = found[0], self._clean(found[1]) or ""
        return error

    def _azure_meaning(self, exc: Exception, model: str) -> tuple[str, str] | None:
        """What Azure's own answers mean, where they differ from OpenAI's."""
        import openai

        body = getattr(exc, "body", None)
        body = body if isinstance(body, dict) else {}
        code = str(body.get("code") or "").lower()
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return "auth", (
                "Azure OpenAI refused the key; check AZURE_OPENAI_API_KEY, and that AZURE_OPENAI_ENDPOINT is the "
                "resource the key belongs to."
            )
        if code in ("content_policy_violation", "content_filter", "contentfilter"):
            found = ", ".join(filtered_categories(body))
            return "moderation_blocked", (
                f"Azure OpenAI's content filter refused this prompt{f' ({found})' if found else ''}; "
                "reword the description."
            )
        if code == "deploymentnotfound":
            return "model_unavailable", self._no_deployment(model)
        if isinstance(exc, openai.NotFoundError) or "api version not supported" in str(body.get("message")).lower():
            return "invalid_request", (
                "Azure OpenAI has no image endpoint at this address; check that AZURE_OPENAI_ENDPOINT is your "
                f"resource's address and OPENAI_API_VERSION is {API_VERSION} or later."
            )
        return None

    def _no_deployment(self, model: str) -> str:
        deployment = self.deployment(model)
        if model == self.configured_model():
            return (
                f"Azure OpenAI has no deployment named {deployment} on this resource; set AZURE_OPENAI_DEPLOYMENT "
                f"to the name of your {model} deployment (it defaults to the model's name)."
            )
        return (
            f"Azure OpenAI has no deployment named {deployment} on this resource; deploy {model} under that "
            f"name, or set IMAGE_MODEL={model} and AZURE_OPENAI_DEPLOYMENT to its deployment's name."
        )


def filtered_categories(error: dict[str, Any]) -> list[str]:
    """The categories Azure's content filter refused, from its inner error (images answer
    `inner_error.content_filter_results`, chat-style answers `innererror.content_filter_result`)."""
    inner = error.get("inner_error") or error.get("innererror")
    inner = inner if isinstance(inner, dict) else {}
    results = inner.get("content_filter_results") or inner.get("content_filter_result")
    if not isinstance(results, dict):
        return []
    return sorted(
        name.replace("_", " ")
        for name, verdict in results.items()
        if isinstance(verdict, dict) and verdict.get("filtered") is True and re.fullmatch(r"[a-z_]{1,40}", name)
    )
