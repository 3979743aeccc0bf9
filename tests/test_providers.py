"""The provider registry: one provider per configuration, never one per page run."""

from __future__ import annotations

import pytest
from conftest import TEST_KEY

from aixchange_images import provider_registry
from aixchange_images.config import ConfigError, load_settings
from aixchange_images.provider_registry import get_provider


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")


@pytest.mark.parametrize("name", ["local", "openai"])
def test_equal_settings_objects_share_one_provider(keyed, name):
    first, second = load_settings(), load_settings()  # what two runs of a dashboard page each build
    assert first is not second

    assert get_provider(name, first) is get_provider(name, second)


@pytest.mark.parametrize(
    ("variables", "change"),
    [
        ({"OPENAI_BASE_URL": "http://127.0.0.1:10/v1"}, {}),
        ({"OPENAI_API_KEY": "another-key-not-real-9876543210"}, {}),
        ({}, {"image_timeout_seconds": 7.0}),
        ({}, {"image_max_retries": 5}),
    ],
)
def test_a_changed_setting_builds_a_new_provider(keyed, monkeypatch, variables, change):
    before = get_provider("openai", load_settings())
    for name, value in variables.items():  # the provider's own settings, read from the environment
        monkeypatch.setenv(name, value)

    after = get_provider("openai", load_settings(**change))

    assert after is not before
    assert (after.settings.model_dump(include=set(change)), after.options) != (
        before.settings.model_dump(include=set(change)),
        before.options,
    )
    assert get_provider("openai", load_settings(**change)) is after


def test_the_provider_cache_never_holds_the_api_key_or_a_proxy_password(keyed, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:proxy-secret-pass@127.0.0.1:9/v1")
    get_provider("openai", load_settings())

    held = repr(provider_registry._instances) + str(list(provider_registry._instances))
    assert TEST_KEY not in held and "proxy-secret-pass" not in held


def test_an_unknown_provider_name_fails_with_the_known_ones():
    with pytest.raises(ConfigError, match="Unknown image provider .dall-e.; choose one of: .*local"):
        get_provider("dall-e", load_settings())
