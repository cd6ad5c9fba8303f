"""Live lookups through Slack: connecting an account, progress then results, pasted keys, privacy of secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.db import KlaviyoConnection, make_sessionmaker, session_scope
from bot.settings import Secret
from tests.fakes.klaviyo_api import DEFAULT_KEY, FakeKlaviyoApi, fake_klaviyo_apis
from tests.fakes.slack_api import FakeSlackApi
from tests.slack_requests import command_body, event_body, interactive_body, view_submission_payload
from tests.test_slack_app import CHANNEL, TEAM, USER, blocks_text, mention, post
from tests.test_slack_app import start_bot as start_slack_bot

FERNET_KEY = Fernet.generate_key().decode()


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as api:
        yield api


@pytest.fixture
async def klaviyo() -> AsyncIterator[FakeKlaviyoApi]:
    async with fake_klaviyo_apis() as start:
        yield await start()


async def start_bot(slack_api: FakeSlackApi, engine: Any, klaviyo: FakeKlaviyoApi, **overrides: Any) -> TestClient:
    options = {"klaviyo_api_url": klaviyo.url, "bot_encryption_key": Secret(FERNET_KEY), **overrides}
    return await start_slack_bot(slack_api, engine, live=True, **options)


@pytest.fixture
async def bot_with_key(slack_api, engine, klaviyo) -> AsyncIterator[TestClient]:
    client = await start_bot(slack_api, engine, klaviyo, klaviyo_private_key=Secret(DEFAULT_KEY))
    yield client
    await asyncio.sleep(0.2)  # listeners run on after Slack's request returns; let them finish first
    await client.close()


@pytest.fixture
async def bot(slack_api, engine, klaviyo) -> AsyncIterator[TestClient]:
    client = await start_bot(slack_api, engine, klaviyo)
    yield client
    await asyncio.sleep(0.2)  # listeners run on after Slack's request returns; let them finish first
    await client.close()


def command(slack_api: FakeSlackApi, text: str, rid: str = "1") -> str:
    return command_body(text, response_url=slack_api.response_url(rid), user_id=USER, channel_id=CHANNEL,
                        team_id=TEAM)


async def test_stats_subcommand_shows_progress_then_the_table(bot_with_key, slack_api, klaviyo):
    await post(bot_with_key, command(slack_api, "stats campaigns 30d"), form=True)
    await slack_api.wait_for("chat.postMessage")
    assert "Looking this up" in slack_api.last_message()["text"]
    await slack_api.wait_for("chat.update", timeout=20)
    update = slack_api.sent("chat.update")[0]
    text = blocks_text(update)
    assert "%" in text and "Placed Order" in text
    assert not slack_api.violations


async def test_question_about_my_campaigns_answers_in_the_thread(bot_with_key, slack_api):
    await post(bot_with_key, mention("how did my campaigns do over the last 30 days? open rate and revenue",
                                     ts="1700000100.000100"))
    await slack_api.wait_for("chat.update", timeout=20)
    progress = slack_api.posted_messages()[0]
    assert progress["thread_ts"] == "1700000100.000100"
    assert "%" in blocks_text(slack_api.sent("chat.update")[0])


async def test_predictive_readiness_and_audit_subcommands(bot_with_key, slack_api):
    await post(bot_with_key, command(slack_api, "readiness", "r1"), form=True)
    await post(bot_with_key, command(slack_api, "audit", "r2"), form=True)
    await slack_api.wait_for("chat.update", 2, timeout=30)
    texts = " ".join(blocks_text(u) for u in slack_api.sent("chat.update"))
    assert "500" in texts and "180" in texts  # the thresholds, next to the account's own numbers
    assert "Placed Order" in texts


async def test_without_a_connection_the_answer_says_how_to_connect(bot, slack_api):
    await post(bot, mention("what was the open rate of my last campaign?", ts="1700000110.000100"))
    calls = await slack_api.wait_for("chat.update", timeout=20)
    assert "/klaviyo connect" in blocks_text(calls[0].params | {"text": slack_api.sent("chat.update")[0]["text"]})


async def test_connect_is_for_admins_only(bot, slack_api):
    slack_api.set_user(USER, is_admin=False)
    await post(bot, command(slack_api, "connect", "c1"), form=True)
    await slack_api.wait_for("/response-url/c1")
    assert "admins" in slack_api.response_url_deliveries("c1")[0]["text"]
    assert not slack_api.called("views.open")


async def test_connect_validates_and_stores_the_key_encrypted(bot, slack_api, engine, caplog):
    caplog.set_level(logging.DEBUG)
    slack_api.set_user(USER, is_admin=True)
    await post(bot, command(slack_api, "connect", "c2"), form=True)
    await slack_api.wait_for("views.open")
    view = slack_api.sent("views.open")[0]["view"]
    view = json.loads(view) if isinstance(view, str) else view
    sub = view_submission_payload("connect_modal", values={"connect_block": {"connect_input": DEFAULT_KEY}},
                                  private_metadata=view["private_metadata"], user_id=USER, team_id=TEAM)
    resp = await post(bot, interactive_body(sub), form=True)
    assert resp.status == 200
    await slack_api.wait_for("/response-url/c2", timeout=20)
    reply = blocks_text(slack_api.response_url_deliveries("c2")[0])
    assert "Connected" in reply and DEFAULT_KEY[-4:] in reply and DEFAULT_KEY not in reply
    async with session_scope(make_sessionmaker(engine)) as session:
        row = (await session.execute(select(KlaviyoConnection))).scalars().one()
    assert DEFAULT_KEY.encode() not in row.encrypted_key and row.fingerprint.endswith(DEFAULT_KEY[-4:])
    assert DEFAULT_KEY not in caplog.text
    # The Home tab now shows the fingerprint, never the key.
    await post(bot, event_body("event_app_home_opened.json", team_id=TEAM))
    await slack_api.wait_for("views.publish")
    home = json.dumps(slack_api.sent("views.publish")[0]["view"])
    assert DEFAULT_KEY[-4:] in home and DEFAULT_KEY not in home


async def test_connect_form_rejects_something_that_is_not_a_key(bot, slack_api):
    sub = view_submission_payload("connect_modal", values={"connect_block": {"connect_input": "hello"}},
                                  private_metadata="{}", user_id=USER, team_id=TEAM)
    resp = await post(bot, interactive_body(sub), form=True)
    body = await resp.json()
    assert body["response_action"] == "errors" and "pk_" in body["errors"]["connect_block"]


async def test_connect_without_encryption_key_is_refused_clearly(slack_api, engine, klaviyo):
    client = await start_bot(slack_api, engine, klaviyo, bot_encryption_key=Secret(""))
    try:
        slack_api.set_user(USER, is_admin=True)
        await post(client, command(slack_api, "connect", "c3"), form=True)
        await slack_api.wait_for("/response-url/c3")
        assert "BOT_ENCRYPTION_KEY" in slack_api.response_url_deliveries("c3")[0]["text"]
    finally:
        await client.close()


async def test_pasted_key_is_flagged_and_never_stored(bot, slack_api, engine, caplog):
    caplog.set_level(logging.DEBUG)
    await post(bot, mention(f"here is our key {DEFAULT_KEY} can you check our flows", ts="1700000120.000100"))
    await slack_api.wait_for("chat.postMessage")
    warning = slack_api.last_message()["text"]
    assert "revoke" in warning and DEFAULT_KEY not in warning and DEFAULT_KEY[-4:] in warning
    await asyncio.sleep(0.3)
    async with session_scope(make_sessionmaker(engine)) as session:
        assert (await session.execute(select(KlaviyoConnection))).first() is None
    assert DEFAULT_KEY not in caplog.text
    await post(bot, command(slack_api, f"connect me with {DEFAULT_KEY}", "k1"), form=True)
    await slack_api.wait_for("/response-url/k1")
    assert "revoke" in slack_api.response_url_deliveries("k1")[0]["text"]
