"""Settings: read once from the environment into one frozen object; secrets never print."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.db import DEFAULT_DATABASE_URL, normalize_url
from bot.errors import ConfigError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_KLAVIYO_API_URL = "https://a.klaviyo.com"
KLAVIYO_REVISION = "2026-07-15"


class Secret:
    """A string that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: Secret = field(default_factory=lambda: Secret(""))
    slack_signing_secret: Secret = field(default_factory=lambda: Secret(""))
    slack_app_token: Secret = field(default_factory=lambda: Secret(""))
    slack_client_id: str = ""
    slack_client_secret: Secret = field(default_factory=lambda: Secret(""))
    slack_api_url: str = DEFAULT_SLACK_API_URL
    port: int = 3000
    log_level: str = "INFO"
    klaviyo_api_url: str = DEFAULT_KLAVIYO_API_URL
    klaviyo_revision: str = KLAVIYO_REVISION
    klaviyo_private_key: Secret = field(default_factory=lambda: Secret(""))
    bot_encryption_key: Secret = field(default_factory=lambda: Secret(""))
    connect_allowlist: frozenset[str] = frozenset()

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)


def _url(name: str, value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value[:60]!r}")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, for_slack: bool = False) -> Settings:
    """Reads settings from the environment; a missing or malformed one raises ConfigError naming it."""
    env = os.environ if env is None else env

    def get(name: str, default: str = "") -> str:
        return (env.get(name) or default).strip()

    try:
        database_url = normalize_url(get("DATABASE_URL", DEFAULT_DATABASE_URL))
    except Exception as exc:  # sqlalchemy raises several kinds for a malformed URL
        raise ConfigError(f"DATABASE_URL is not a usable database URL ({exc.__class__.__name__}): "
                          "use sqlite:///path.db or postgresql://user@host/db") from None
    port_text = get("PORT", "3000")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"PORT must be a number from 1 to 65535, got {port_text[:20]!r}")
    level = get("LOG_LEVEL", "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got {level[:20]!r}")
    slack_api_url = _url("SLACK_API_URL", get("SLACK_API_URL", DEFAULT_SLACK_API_URL))
    if not slack_api_url.endswith("/"):
        slack_api_url += "/"
    settings = Settings(
        database_url=database_url,
        slack_bot_token=Secret(get("SLACK_BOT_TOKEN")),
        slack_signing_secret=Secret(get("SLACK_SIGNING_SECRET")),
        slack_app_token=Secret(get("SLACK_APP_TOKEN")),
        slack_client_id=get("SLACK_CLIENT_ID"),
        slack_client_secret=Secret(get("SLACK_CLIENT_SECRET")),
        slack_api_url=slack_api_url,
        port=int(port_text),
        log_level=level,
        klaviyo_api_url=_url("KLAVIYO_API_URL", get("KLAVIYO_API_URL", DEFAULT_KLAVIYO_API_URL)).rstrip("/"),
        klaviyo_revision=get("KLAVIYO_REVISION", KLAVIYO_REVISION),
        klaviyo_private_key=Secret(get("KLAVIYO_PRIVATE_KEY")),
        bot_encryption_key=Secret(get("BOT_ENCRYPTION_KEY")),
        connect_allowlist=frozenset(u for u in get("KLAVIYO_CONNECT_ALLOWLIST").replace(" ", "").split(",") if u),
    )
    if for_slack:
        _check_slack(settings)
    return settings


def _check_slack(s: Settings) -> None:
    if not s.slack_signing_secret and not s.socket_mode:
        raise ConfigError("SLACK_SIGNING_SECRET is not set: copy it from your app's Basic Information page")
    if s.slack_app_token and not s.slack_app_token.get().startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    if bool(s.slack_client_id) != bool(s.slack_client_secret):
        raise ConfigError("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET must be set together (OAuth distribution)")
    if not s.oauth_enabled:
        if not s.slack_bot_token:
            raise ConfigError("SLACK_BOT_TOKEN is not set: install the app and copy its xoxb- Bot User OAuth Token")
        if not s.slack_bot_token.get().startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    if s.bot_encryption_key:
        from cryptography.fernet import Fernet

        try:
            Fernet(s.bot_encryption_key.get())
        except (ValueError, TypeError):
            raise ConfigError("BOT_ENCRYPTION_KEY must be a Fernet key (44 characters of url-safe base64)") from None
    if s.klaviyo_private_key and not s.klaviyo_private_key.get().startswith("pk_"):
        raise ConfigError("KLAVIYO_PRIVATE_KEY must be a Klaviyo private API key starting with pk_")
