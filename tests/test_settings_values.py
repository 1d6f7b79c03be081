"""Settings an operator types by hand: any case for fixed choices, a token error that says what is wrong."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]  # no .env
    for name in ("LOG_LEVEL", "LOG_FORMAT", "DEFAULT_LANGUAGE", "SEND_BUDGET", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_fixed_choices_take_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("DEFAULT_LANGUAGE", "EN")
    monkeypatch.setenv("SEND_BUDGET", " Local ")
    s = load_settings()
    assert (s.log_format, s.log_level, s.default_language, s.send_budget) == ("json", "DEBUG", "en", "local")


def test_unknown_choice_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings()


@pytest.mark.parametrize(("token", "problem"), [
    ("123456:ABCdef", "only 6 characters after the colon"),
    ("123456ABCdefghijklmnop", "no colon"),
    ("bot123:ABCdefghijklmnop", "other than digits before the colon"),
    ("123456:ABC def!ghijklmnop", "other than letters, digits, - and _"),
])
def test_bad_token_says_what_is_wrong(monkeypatch: pytest.MonkeyPatch, token: str, problem: str) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("Configuration error: TELEGRAM_BOT_TOKEN: ") and problem in message
    assert "35 letters, digits, - or _" in message and "123456:ABC..." not in message
