"""Errors the bot expects, each with the sentence a user is shown."""

from __future__ import annotations

import secrets


def new_reference() -> str:
    """Returns a short id that ties a user-facing failure message to its log line."""
    return secrets.token_hex(4)


class BotError(Exception):
    """An expected failure with a message that is safe to show to the user."""

    def __init__(self, user_message: str, *, log_message: str | None = None) -> None:
        super().__init__(log_message or user_message)
        self.user_message = user_message


class ConfigError(BotError):
    """A missing or malformed setting; names the setting."""


class DatabaseUnavailable(BotError):
    """The database could not be reached."""
