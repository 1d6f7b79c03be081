"""One place for every setting, read from the environment and an optional ``.env``.

A bad value must stop start-up with one line that names the setting, so the operator
knows what to fix without reading a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
# The newest Graph API version (released 29 July 2026); v21.0, the old default, stops on
# 21 January 2027. Upgrading is a setting: WHATSAPP_API_VERSION.
GRAPH_API_VERSION = "v26.0"
_VERSIONED = re.compile(r"/v\d{1,3}\.\d/?$")
DEFAULT_CATALOG = ROOT / "catalog.yaml"
TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]*")


class ConfigError(Exception):
    """Raised with a one-line, operator-facing explanation."""


class Settings(BaseSettings):
    """All settings. Names are the environment variable names (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = Field(
        default="sqlite:///data/prima.db",
        description="SQLAlchemy URL. SQLite by default; postgresql+psycopg://... for several processes.",
    )
    catalog_path: Path = Field(default=DEFAULT_CATALOG, description="YAML catalog of agencies and services.")
    default_language: Literal["id", "en"] = Field(default="id", description="Language for new residents.")
    session_timeout_minutes: int = Field(
        default=30, ge=1, le=7 * 24 * 60, description="Idle minutes after which a conversation expires."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: one readable line per event; json: one JSON object per line.")
    digest_time: str = Field(
        default="07:30", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$",
        description="Local time of the Monday digest (an agency's settings.digest_time overrides it).",
    )
    digest_dir: Path = Field(default=Path("data/digests"), description="Where digest charts and spreadsheets go.")
    report_dir: Path = Field(default=Path("data/reports"),
                             description="Where periodic SKM reports (PDF and XLSX) are archived.")
    report_time: str = Field(
        default="08:00", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$",
        description="Local time at which a period's SKM report is produced, on the days after it ends.",
    )

    telegram_bot_token: str | None = Field(default=None, description="Bot token from @BotFather.")
    telegram_api_base: str | None = Field(default=None, description="Another Bot API server (self-hosted or test).")
    telegram_webhook_url: str | None = Field(default=None, description="Public HTTPS URL; enables webhook mode.")
    telegram_webhook_secret: str | None = Field(default=None, description="secret_token for the webhook.")
    http_host: str = Field(default="127.0.0.1", description="Address of the webhook/health HTTP server.")
    http_port: int = Field(default=8080, ge=1, le=65535, description="Port of the webhook/health HTTP server.")
    metrics_token: str | None = Field(
        default=None, description="Bearer token for /metrics and /healthz's detailed body; unset: "
        "both open to anyone who reaches HTTP_HOST:HTTP_PORT.")
    public_base_url: str | None = Field(
        default=None,
        description="Public address of the web desk (e.g. https://prima.example.go.id), used in /masuk sign-in links.",
    )
    web_chat: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="The web chat (/chat): auto: served beside Telegram/WhatsApp, console when neither is "
        "configured; on: also a web-only process (web server and scheduler) when neither is; off: never.",
    )
    desk_session_idle_minutes: int = Field(
        default=120, ge=5, le=7 * 24 * 60, description="Idle minutes after which a web desk session ends."
    )
    kiosk_min_interval: float = Field(
        default=20, ge=0, le=3600, description="Seconds between two questionnaires one kiosk may "
        "store (bounds ballot stuffing; 0: no limit).")
    kiosk_idle_seconds: int = Field(
        default=60, ge=10, le=600, description="Idle seconds after which a kiosk page starts over "
        "for the next resident.")

    telegram_bot_username: str | None = Field(
        default=None, description="Bot username for deep links and QR codes (t.me/<username>?start=<code>)."
    )
    whatsapp_public_number: str | None = Field(
        default=None, description="WhatsApp number shown on the public pages as a wa.me link and QR code (international, e.g. 6281234567890).",
    )

    outbox_tick_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often the dispatcher looks for due outbox rows."
    )
    outbox_batch: int = Field(
        default=200, ge=1, le=10_000, description="Most rows one dispatcher tick claims (also capped by the rate)."
    )
    outbox_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Sends tried (5xx, network) before a row is marked failed."
    )
    outbox_claim_timeout_minutes: float = Field(
        default=10, gt=0, description="A row claimed longer than this without a result (its process died) "
        "is resent under OUTBOX_RESEND_UNKNOWN, or marked 'unknown' and reported."
    )
    outbox_send_timeout_seconds: float = Field(
        default=10, gt=0, le=120, description="Longest one send may take; after that its outcome is unknown "
        "(resent under OUTBOX_RESEND_UNKNOWN), and the chat's slot is free again."
    )
    outbox_resend_unknown: bool = Field(
        default=True,
        description="Resend after a timeout whose outcome is unknowable (may duplicate; counted). "
        "False: mark it 'unknown' and only report it.",
    )
    survey_reminder_hours: float = Field(
        default=3, ge=0, le=24 * 14, description="Delay of the one reminder for an unfinished survey (0: none)."
    )
    telegram_rate_total: float = Field(default=30, ge=0, description="Telegram messages per second, all chats (0: no limit).")
    telegram_rate_chat: float = Field(default=1, ge=0, description="Telegram messages per second to one private chat.")
    telegram_chat_burst: int = Field(default=3, ge=1, le=30, description="Short burst allowed per private chat.")
    telegram_group_per_minute: float = Field(default=20, ge=0, description="Telegram messages per minute to one group.")
    whatsapp_rate_total: float = Field(default=80, ge=0, description="WhatsApp messages per second (0: no limit).")
    redis_url: str | None = Field(
        default=None, description="Redis server for SEND_BUDGET=redis (redis://host:6379/0).")
    send_budget: Literal["local", "postgres", "redis"] = Field(
        default="local",
        description="Where the send rate limits are kept: local (this process; one process), "
        "postgres (shared through DATABASE_URL) or redis (shared through REDIS_URL), so that "
        "several processes together stay within the platforms' limits.",
    )

    whatsapp_token: str | None = Field(default=None, description="WhatsApp Cloud API access token.")
    whatsapp_phone_number_id: str | None = Field(default=None, description="Sender phone number id.")
    whatsapp_app_secret: str | None = Field(default=None, description="App secret for webhook signatures.")
    whatsapp_verify_token: str | None = Field(default=None, description="Webhook verification token.")
    whatsapp_api_version: str = Field(
        default=GRAPH_API_VERSION,
        description="Graph API version (Meta retires each about two years after release).",
    )
    whatsapp_api_base: str = Field(
        default="https://graph.facebook.com",
        description="Graph API host (a proxy or a test server); a URL that already ends in a "
        "version (https://host/v23.0) is used as it is.",
    )
    whatsapp_template_followup: str | None = Field(
        default=None,
        description="Approved template (one body variable {{1}}) for follow-ups due after the "
        "24-hour window; unset: they wait until the resident writes again.",
    )
    whatsapp_template_language: str = Field(
        default="id", description="Language code of that template for Indonesian-speaking residents."
    )
    whatsapp_template_language_en: str = Field(
        default="en", description="Language code of that template for English-speaking residents."
    )
    whatsapp_media_dir: Path | None = Field(
        default=Path("data/media/whatsapp"),
        description="Where photos residents send on WhatsApp are kept (Meta deletes media after a "
        "while); empty: keep only Meta's media id.",
    )
    whatsapp_template_buttons: int = Field(
        default=0, ge=0, le=10,
        description="Quick-reply buttons the approved template has; filled with the follow-up's answers.",
    )
    whatsapp_business_account_id: str | None = Field(
        default=None,
        description="WhatsApp Business Account id (WABA); only `python bot.py doctor` uses it, to "
        "check that WHATSAPP_TEMPLATE_FOLLOWUP exists and is approved.",
    )

    # Retention (UU 27/2022 Pasal 42-44): days each kind of personal data is kept; 0 keeps it.
    # bot/privacy/retention.py deletes or anonymises what is older, daily at RETENTION_TIME.
    retention_time: str = Field(
        default="02:30", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$",
        description="Local time (the regency's zone) of the daily retention job.",
    )
    retention_inbound_days: int = Field(
        default=30, ge=0, description="Days the body of an inbound update that could not be handled "
        "is kept for an operator to look at (0: forever).")
    retention_inbound_keys_days: int = Field(
        default=30, ge=0, description="Days the de-duplication key of an inbound delivery is kept "
        "(0: forever; at least 8: WhatsApp retries a webhook for up to 7 days).")
    retention_outbox_days: int = Field(
        default=90, ge=0, description="Days after which a settled outbox message (sent, failed, "
        "cancelled, unknown) loses its text and chat id (0: forever).")
    retention_sessions_days: int = Field(
        default=30, ge=0, description="Days an idle conversation state is kept (0: forever).")
    retention_webhook_bodies_days: int = Field(
        default=30, ge=0, description="Days a stored WhatsApp webhook body that still failed to be "
        "processed is kept (0: forever).")
    retention_media_days: int = Field(
        default=90, ge=0, description="Days after a complaint is resolved or closed that its photos "
        "are deleted; also the age at which a saved photo no complaint refers to goes (0: forever; "
        "at least 8).")
    retention_closed_complaint_personal_days: int = Field(
        default=365, ge=0, description="Days after a complaint or case is resolved or closed that "
        "its personal data is removed (reporter, contact link, names and numbers in its texts, "
        "photos, exact location); the complaint stays for statistics (0: forever).")
    retention_survey_link_days: int = Field(
        default=90, ge=0, description="Days after a survey's last answer that it loses the link to "
        "the resident and personal data in its suggestion; scores stay (0: forever).")
    retention_audit_days: int = Field(
        default=1825, ge=0, description="Days audit rows (status changes, case events) of a finished "
        "complaint or case are kept (0: forever).")

    @property
    def whatsapp_graph_url(self) -> str:
        """Base of every Graph API call: the host plus the version, unless the host has one."""
        base = self.whatsapp_api_base.rstrip("/")
        return base if _VERSIONED.search(base) else f"{base}/{self.whatsapp_api_version}"

    @property
    def whatsapp_enabled(self) -> bool:
        """All four WhatsApp settings present: the channel runs."""
        return all((self.whatsapp_token, self.whatsapp_phone_number_id, self.whatsapp_app_secret,
                    self.whatsapp_verify_token))

    @field_validator("*", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        """A setting with a fixed set of values takes any case (LOG_FORMAT=JSON, LOG_LEVEL=debug)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None or get_origin(field.annotation) is not Literal or not isinstance(value, str):
            return value
        wanted = value.strip().casefold()
        return next((v for v in get_args(field.annotation) if str(v).casefold() == wanted), value)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].lower()
        if "://" not in value or not scheme.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError(
                "must be sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
            )
        return value

    @field_validator("send_budget")
    @classmethod
    def _budget_backend(cls, value: str, info: ValidationInfo) -> str:
        if value == "postgres" and not str(info.data.get("database_url", "")).startswith("postgres"):
            raise ValueError("postgres needs DATABASE_URL on PostgreSQL (or use redis, or local "
                             "for one process)")
        if value == "redis" and not info.data.get("redis_url"):
            raise ValueError("redis needs REDIS_URL (redis://host:6379/0)")
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_scheme(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not str(value).startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be redis://host:port/db, rediss://... or unix:///path")
        return value

    @field_validator("whatsapp_api_version")
    @classmethod
    def _graph_version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d{1,3}\.\d", value):
            raise ValueError(f"must look like {GRAPH_API_VERSION} (v, major, dot, minor), got {value!r}")
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_token(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("whatsapp_media_dir", mode="before")
    @classmethod
    def _empty_media_dir(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("retention_inbound_keys_days", "retention_media_days")
    @classmethod
    def _long_enough(cls, value: int) -> int:
        if 0 < value < 8:
            raise ValueError("must be 0 (keep forever) or at least 8 days: WhatsApp redelivers "
                             "for up to 7 days and a conversation may wait that long for a photo")
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        head, colon, tail = value.partition(":")
        if not colon:
            problem = "has no colon"
        elif not head.isdigit():
            problem = "has something other than digits before the colon"
        elif not TOKEN_TAIL.fullmatch(tail):
            problem = "has characters other than letters, digits, - and _ after the colon"
        elif len(tail) < 10:
            problem = f"has only {len(tail)} characters after the colon"
        else:
            return value
        raise ValueError(f"{problem}: a bot token is digits, a colon and 35 letters, digits, - or _ "
                         "(copy it again from @BotFather, /mybots, API Token)")


def load_settings(**overrides: object) -> Settings:
    """Build settings or raise :class:`ConfigError` naming the first bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except UnicodeDecodeError as exc:  # only the .env file is decoded here
        raise ConfigError(f"Configuration error: .env: not UTF-8 text (bad byte at position "
                          f"{exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"Configuration error: .env: cannot read it: {exc.strerror or exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "configuration"
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"Configuration error: {name}: {msg}") from None
