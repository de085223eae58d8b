from __future__ import annotations

import re

import pytest

from layers.i18n import catalogue, default_lang, normalize_lang, t

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_every_message_has_chinese_and_english_with_the_same_placeholders() -> None:
    for key, entry in catalogue().items():
        assert entry.get("zh"), f"{key}: no zh"
        assert entry.get("en"), f"{key}: no en"
        assert set(PLACEHOLDER.findall(entry["zh"])) == set(PLACEHOLDER.findall(entry["en"])), key


def test_translation_and_fallbacks() -> None:
    assert t("common.yes", "zh") == "是"
    assert t("common.yes", "en-US") == "yes"
    assert t("no.such.key", "en") == "no.such.key"


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "zh"), ({"LANG": "en_US.UTF-8"}, "en"), ({"LANG": "C.UTF-8"}, "zh"),
     ({"GRIDPULSE_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en")],
)
def test_default_language_comes_from_the_environment(monkeypatch, env, expected) -> None:
    for var in ("GRIDPULSE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert default_lang() == expected
    assert normalize_lang("zh_CN.UTF-8") == "zh"
