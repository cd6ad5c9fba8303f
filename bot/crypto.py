"""Stored Klaviyo keys: Fernet encryption with BOT_ENCRYPTION_KEY, fingerprints and pasted-key detection."""

from __future__ import annotations

import binascii
import os
import re

from cryptography.fernet import Fernet, InvalidToken

from bot.errors import ConfigError

ENV_VAR = "BOT_ENCRYPTION_KEY"

# Klaviyo private keys are "pk_" plus about 34 letters and digits; 26-64 leaves room for format drift
# while "pk_id" or "pk_test" in ordinary prose does not match.
_PRIVATE_KEY = re.compile(r"(?<![A-Za-z0-9_])pk_[A-Za-z0-9]{26,64}(?![A-Za-z0-9_])")

_GENERATE_HINT = (
    "generate one with `python -c \"from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())\"`"
)


def load_fernet(secret: str | bytes | None = None) -> Fernet:
    """Returns the Fernet for `secret`, or for BOT_ENCRYPTION_KEY when no secret is given."""
    if secret is None:
        secret = os.environ.get(ENV_VAR) or None
    if not secret:
        raise ConfigError(
            f"{ENV_VAR} is not set, so Klaviyo keys cannot be stored safely: {_GENERATE_HINT} "
            f"and set it in the environment."
        )
    try:
        return Fernet(secret.strip())
    except (ValueError, TypeError, binascii.Error):
        raise ConfigError(
            f"{ENV_VAR} is malformed: it must be a Fernet key (32 bytes, url-safe base64, 44 characters); "
            f"{_GENERATE_HINT}."
        ) from None


def encrypt_key(api_key: str, *, secret: str | bytes | None = None) -> bytes:
    """Encrypts a Klaviyo private key for the database; refuses without an encryption key."""
    return load_fernet(secret).encrypt(api_key.encode("utf-8"))


def decrypt_key(token: bytes, *, secret: str | bytes | None = None) -> str:
    """Decrypts a stored Klaviyo private key."""
    try:
        return load_fernet(secret).decrypt(bytes(token)).decode("utf-8")
    except InvalidToken:
        raise ConfigError(
            f"The stored Klaviyo key cannot be decrypted with the current {ENV_VAR} "
            f"(was it changed?): reconnect Klaviyo with the private key."
        ) from None


def fingerprint(api_key: str) -> str:
    """Returns a display-safe tag for a key: its "pk_" prefix and last four characters, never more."""
    key = api_key.strip()
    prefix = "pk_" if key.startswith("pk_") else ""
    body = key[len(prefix):]
    if len(body) < 12:  # too short to show four characters without giving away a real share of it
        return f"{prefix}..."
    return f"{prefix}...{body[-4:]}"


def looks_like_private_key(text: str) -> bool:
    """Tells whether a message contains something shaped like a Klaviyo private key."""
    return bool(_PRIVATE_KEY.search(text or ""))


def redact_private_keys(text: str) -> str:
    """Replaces every private key in `text` with its fingerprint, for logs and echoes."""
    return _PRIVATE_KEY.sub(lambda m: fingerprint(m.group(0)), text or "")
