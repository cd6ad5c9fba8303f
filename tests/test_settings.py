"""Settings: every problem names the variable; secrets never print."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings

OK = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "s3cret"}


@pytest.mark.parametrize("env,name", [
    ({}, "SLACK_SIGNING_SECRET"),
    ({"SLACK_SIGNING_SECRET": "x"}, "SLACK_BOT_TOKEN"),
    ({**OK, "SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"),
    ({**OK, "PORT": "eighty"}, "PORT"),
    ({**OK, "PORT": "70000"}, "PORT"),
    ({**OK, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({**OK, "DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
    ({**OK, "DATABASE_URL": "::::"}, "DATABASE_URL"),
    ({**OK, "SLACK_API_URL": "ftp://x"}, "SLACK_API_URL"),
    ({**OK, "SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN"),
    ({**OK, "SLACK_CLIENT_ID": "123.456"}, "SLACK_CLIENT_SECRET"),
    ({**OK, "KLAVIYO_PRIVATE_KEY": "not-a-key"}, "KLAVIYO_PRIVATE_KEY"),
    ({**OK, "BOT_ENCRYPTION_KEY": "short"}, "BOT_ENCRYPTION_KEY"),
    ({**OK, "KLAVIYO_API_URL": "a.klaviyo.com"}, "KLAVIYO_API_URL"),
])
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(ConfigError) as err:
        load_settings(env, for_slack=True)
    assert name in err.value.user_message


def test_defaults_and_normalisation():
    s = load_settings({**OK, "DATABASE_URL": "postgres://u:p@db/x", "SLACK_API_URL": "http://127.0.0.1:9/api"},
                      for_slack=True)
    assert s.database_url == "postgresql+asyncpg://u:p@db/x"
    assert s.slack_api_url.endswith("/api/")
    assert load_settings({}).database_url == "sqlite+aiosqlite:///klaviyo-bot.db"


def test_secrets_do_not_print():
    s = load_settings({**OK, "KLAVIYO_PRIVATE_KEY": "pk_0123456789abcdef0123456789abcdef01"}, for_slack=True)
    text = repr(s) + str(s)
    assert "xoxb-1-2-abc" not in text and "s3cret" not in text and "pk_0123" not in text


def test_socket_mode_needs_no_signing_secret():
    s = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1-abc"}, for_slack=True)
    assert s.socket_mode
