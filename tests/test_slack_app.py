"""The Slack app end to end: signed requests to the real route, a fake Slack Web API server, both databases."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import SERVICES, create_app
from bot.db import Feedback, make_sessionmaker, session_scope
from bot.services import Services
from bot.settings import Secret, Settings
from bot.threads import ThreadKey, load_state
from knowledge.engine import Engine
from tests.fakes.slack_api import FakeSlackApi
from tests.slack_requests import (block_actions_payload, command_body, event_body, interactive_body, retry_headers,
                                  signed_headers, view_submission_payload)

SECRET = "test-signing-secret"
TEAM = "T111"
USER = "U2147483697"
CHANNEL = "C2147483705"


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as api:
        yield api


def make_settings(slack_api: FakeSlackApi, database_url: str = "sqlite+aiosqlite://") -> Settings:
    return Settings(database_url=database_url, slack_bot_token=Secret(slack_api.token),
                    slack_signing_secret=Secret(SECRET), slack_api_url=slack_api.api_base_url)


async def start_bot(slack_api: FakeSlackApi, engine: Any, *, live: bool = False, **settings_overrides: Any) -> TestClient:
    """The bot's real web app on a test server; `live` adds the Klaviyo lookups."""
    settings = replace(make_settings(slack_api), **settings_overrides)
    http = aiohttp.ClientSession()
    services = Services(settings=settings, db=engine, sessions=make_sessionmaker(engine), engine=Engine(), http=http)
    if live:
        from handlers.lookups import attach

        attach(services)
    app = await create_app(settings, services=services)
    app.on_cleanup.append(lambda _: http.close())
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def bot(slack_api: FakeSlackApi, engine: Any) -> AsyncIterator[TestClient]:
    client = await start_bot(slack_api, engine)
    yield client
    await asyncio.sleep(0.2)  # listeners run on after Slack's request returns; let them finish first
    await client.close()


async def post(client: TestClient, body: str, *, form: bool = False, headers: dict[str, str] | None = None):
    ctype = "application/x-www-form-urlencoded" if form else "application/json"
    h = signed_headers(body, SECRET, content_type=ctype)
    h.update(headers or {})
    return await client.post("/slack/events", data=body.encode(), headers=h)


def command(slack_api: FakeSlackApi, text: str, rid: str = "1", channel: str = CHANNEL) -> str:
    return command_body(text, response_url=slack_api.response_url(rid), user_id=USER, channel_id=channel,
                        team_id=TEAM)


def mention(text: str, *, ts: str = "1700000001.000100", thread_ts: str | None = None, channel: str = CHANNEL,
            event_id: str | None = None) -> str:
    event: dict[str, Any] = {"text": f"<@U111> {text}", "ts": ts, "channel": channel, "user": USER}
    if thread_ts:
        event["thread_ts"] = thread_ts
    kwargs = {"event_id": event_id} if event_id else {}
    return event_body("event_app_mention.json", event=event, team_id=TEAM, **kwargs)


def thread_message(text: str, *, thread_ts: str, ts: str, channel: str = CHANNEL, **extra: Any) -> str:
    event = {"type": "message", "text": text, "ts": ts, "thread_ts": thread_ts, "channel": channel, "user": USER,
             "channel_type": "channel", **extra}
    return event_body("event_message_im.json", event=event, team_id=TEAM)


def dm(text: str, *, ts: str, thread_ts: str | None = None, channel: str = "D024BE91L") -> str:
    event: dict[str, Any] = {"text": text, "ts": ts, "channel": channel, "user": USER, "channel_type": "im"}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event_body("event_message_im.json", event=event, team_id=TEAM)


def blocks_text(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False) + message.get("text", "")


async def eventually_state(engine: Any, key: ThreadKey, check: Any = lambda s: s is not None,
                           timeout: float = 5.0) -> Any:
    """The thread's stored state once `check` accepts it (listeners finish after Slack's request returns)."""
    deadline = time.monotonic() + timeout
    while True:
        async with session_scope(make_sessionmaker(engine)) as session:
            state = await load_state(session, key)
        if check(state) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.05)


async def quiet(slack_api: FakeSlackApi, method: str, seconds: float = 0.5) -> None:
    await asyncio.sleep(seconds)
    assert not slack_api.called(method), f"unexpected {method}"


# -- /klaviyo ---------------------------------------------------------------------------------------
async def test_slash_question_acks_fast_and_posts_a_thread_root(bot, slack_api, engine):
    started = time.monotonic()
    resp = await post(bot, command(slack_api, "How do I set up an abandoned cart flow with an SMS fallback?"),
                      form=True)
    assert resp.status == 200
    assert time.monotonic() - started < 3
    await slack_api.wait_for("chat.postMessage")
    msg = slack_api.last_message(CHANNEL)
    text = blocks_text(msg)
    assert f"<@{USER}> asked:" in text
    assert "Abandoned cart flow with an SMS fallback" in text
    assert "feedback_up" in text
    assert not slack_api.violations
    # The posted message is the thread root: a reply there continues without a mention.
    root = msg["ts"]
    state = await eventually_state(engine, ThreadKey(TEAM, CHANNEL, root))
    assert state is not None and state.area == "A" and state.last_entry == "abandoned_cart_sms_fallback"
    await post(bot, thread_message("I'm a developer", thread_ts=root, ts="1700000100.000200"))
    calls = await slack_api.wait_for("chat.postMessage", 2)
    reply = calls[-1].params
    assert reply["thread_ts"] == root
    assert "GET /api/metrics/" in blocks_text(reply)


async def test_slash_alone_and_help_show_the_menu(bot, slack_api):
    for text, rid in (("", "m1"), ("help", "m2")):
        await post(bot, command(slack_api, text, rid), form=True)
        await slack_api.wait_for(f"/response-url/{rid}")
    delivery = slack_api.response_url_deliveries("m1")[0]
    actions = [b for b in delivery["blocks"] if b["type"] == "actions"][0]
    select_area = [e for e in actions["elements"] if e["action_id"] == "menu_area_select"][0]
    assert [o["value"] for o in select_area["options"]] == list("ABCDEFGHIJKLMNOPQ")
    assert delivery.get("response_type", "ephemeral") == "ephemeral"
    assert not slack_api.violations


async def test_lang_and_reset_subcommands(bot, slack_api):
    await post(bot, command(slack_api, "lang zh", "l1"), form=True)
    await slack_api.wait_for("/response-url/l1")
    await post(bot, command(slack_api, "how do flows work?", "l2"), form=True)
    await slack_api.wait_for("chat.postMessage")
    assert "Flow" in slack_api.last_message()["text"] and "提问" in slack_api.last_message()["text"]
    await post(bot, command(slack_api, "reset", "l3"), form=True)
    await slack_api.wait_for("/response-url/l3")
    assert "forgotten" in slack_api.response_url_deliveries("l3")[0]["text"]


async def test_not_in_channel_answers_privately_with_an_invite_hint(bot, slack_api):
    slack_api.fail_next("chat.postMessage", "not_in_channel")
    await post(bot, command(slack_api, "what does the free plan include?", "p1"), form=True)
    await slack_api.wait_for("/response-url/p1")
    delivery = slack_api.response_url_deliveries("p1")[0]
    assert "/invite" in blocks_text(delivery)
    assert "Free" in blocks_text(delivery)


async def test_invalid_blocks_falls_back_to_text(bot, slack_api):
    slack_api.fail_next("chat.postMessage", "invalid_blocks")
    await post(bot, command(slack_api, "how do segments work?"), form=True)
    calls = await slack_api.wait_for("chat.postMessage", 2)
    assert "blocks" not in calls[-1].params and "Segment" in calls[-1].params["text"]


async def test_rate_limited_post_is_retried_after_retry_after(bot, slack_api):
    slack_api.rate_limit_next("chat.postMessage", retry_after=1)
    started = time.monotonic()
    await post(bot, mention("how do I build an abandoned cart flow?"))
    calls = await slack_api.wait_for("chat.postMessage", 2, timeout=15)
    assert calls[1].at - calls[0].at >= 0.9
    assert time.monotonic() - started < 10
    assert slack_api.last_message()["thread_ts"] == "1700000001.000100"


# -- mentions, threads, DMs -------------------------------------------------------------------------
async def test_mention_answers_in_the_thread_and_remembers(bot, slack_api):
    await post(bot, mention("flows", ts="1700000002.000100"))
    await slack_api.wait_for("chat.postMessage")
    assert slack_api.last_message()["thread_ts"] == "1700000002.000100"
    await post(bot, thread_message("how long should the first delay be?", thread_ts="1700000002.000100",
                                   ts="1700000003.000100"))
    await slack_api.wait_for("chat.postMessage", 2)
    assert "Time delays" in blocks_text(slack_api.last_message())


async def test_mention_inside_a_thread_replies_to_the_root(bot, slack_api):
    await post(bot, mention("pricing?", ts="1700000005.000200", thread_ts="1700000005.000100"))
    await slack_api.wait_for("chat.postMessage")
    assert slack_api.last_message()["thread_ts"] == "1700000005.000100"
    # the same message also arrives as message.channels; the bot answers it only once
    await post(bot, thread_message("<@U111> pricing?", thread_ts="1700000005.000100", ts="1700000005.000200"))
    await asyncio.sleep(0.5)
    assert len(slack_api.called("chat.postMessage")) == 1


async def test_quiet_in_threads_it_is_not_part_of(bot, slack_api):
    await post(bot, thread_message("anyone know about flows?", thread_ts="1699999999.000100", ts="1700000000.1"))
    await quiet(slack_api, "chat.postMessage")


@pytest.mark.parametrize("extra", [{"bot_id": "B999"}, {"subtype": "message_changed"}, {"subtype": "message_deleted"},
                                   {"bot_id": "B111", "user": "U111"}])
async def test_ignores_bots_edits_and_deletions(bot, slack_api, extra):
    await post(bot, mention("flows", ts="1700000010.000100"))
    await slack_api.wait_for("chat.postMessage")
    await post(bot, thread_message("and pricing?", thread_ts="1700000010.000100", ts="1700000011.000100", **extra))
    await asyncio.sleep(0.5)
    assert len(slack_api.called("chat.postMessage")) == 1


async def test_direct_message_answers_in_a_thread_and_continues(bot, slack_api):
    await post(bot, dm("预测分析为什么不显示？", ts="1700000020.000100"))
    await slack_api.wait_for("chat.postMessage")
    first = slack_api.last_message()
    assert first["thread_ts"] == "1700000020.000100" and first["channel"] == "D024BE91L"
    assert "预测" in blocks_text(first)
    await post(bot, dm("我是开发", ts="1700000021.000100", thread_ts="1700000020.000100"))
    await slack_api.wait_for("chat.postMessage", 2)
    assert "开发" in blocks_text(slack_api.last_message())
    await post(bot, dm("new question", ts="1700000022.000100", thread_ts="1700000020.000100"))
    await slack_api.wait_for("chat.postMessage", 3)
    assert "Starting fresh" in blocks_text(slack_api.last_message())


async def test_assistant_thread_started_greets_with_prompts(bot, slack_api):
    body = event_body({"type": "event_callback", "team_id": TEAM, "api_app_id": "A111", "event": {
        "type": "assistant_thread_started", "assistant_thread": {"user_id": USER, "context": {},
                                                                 "channel_id": "D024BE91L",
                                                                 "thread_ts": "1700000030.000100"},
        "event_ts": "1700000030.000200"}, "authorizations": [{"team_id": TEAM, "user_id": "U111", "is_bot": True}]})
    await post(bot, body)
    await slack_api.wait_for("assistant.threads.setSuggestedPrompts")
    prompts = slack_api.sent("assistant.threads.setSuggestedPrompts")[0]["prompts"]
    prompts = json.loads(prompts) if isinstance(prompts, str) else prompts
    assert any("abandoned cart" in p["message"] for p in prompts) and len(prompts) == 3
    assert "Klaviyo" in slack_api.last_message()["text"]


async def test_assistant_message_sets_status_and_title(bot, slack_api):
    await post(bot, dm("how do I build an abandoned cart flow?", ts="1700000031.000100",
                       thread_ts="1700000030.000100"))
    await slack_api.wait_for("chat.postMessage")
    await slack_api.wait_for("assistant.threads.setTitle")
    assert slack_api.called("assistant.threads.setStatus")
    assert "abandoned cart" in slack_api.sent("assistant.threads.setTitle")[0]["title"].lower()


async def test_home_tab_lists_areas_and_connection(bot, slack_api):
    body = event_body("event_app_home_opened.json", team_id=TEAM)
    await post(bot, body)
    await slack_api.wait_for("views.publish")
    view = slack_api.sent("views.publish")[0]["view"]
    view = json.loads(view) if isinstance(view, str) else view
    buttons = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert len(buttons) == 17 and "Klaviyo account" in json.dumps(view)
    assert not slack_api.violations


# -- interactivity ----------------------------------------------------------------------------------
async def test_area_pick_answers_in_place(bot, slack_api):
    payload = block_actions_payload("menu_area_select", value=None, selected_option={
        "text": {"type": "plain_text", "text": "D) Predictive Analytics"}, "value": "D"},
        response_url=slack_api.response_url("a1"), user_id=USER, team_id=TEAM, channel_id=CHANNEL)
    resp = await post(bot, interactive_body(payload), form=True)
    assert resp.status == 200
    await slack_api.wait_for("/response-url/a1")
    delivery = slack_api.response_url_deliveries("a1")[0]
    assert delivery["replace_original"] is True and "Predictive" in blocks_text(delivery)


async def test_feedback_is_stored_and_thumbs_down_asks_what_was_missing(bot, slack_api, engine):
    value = json.dumps({"e": "abandoned_cart_flow", "a": "A", "l": "en"})
    for action_id in ("feedback_up", "feedback_down"):
        payload = block_actions_payload(action_id, value=value, response_url=slack_api.response_url("f"),
                                        user_id=USER, team_id=TEAM, channel_id=CHANNEL, message_ts="1700000040.1")
        await post(bot, interactive_body(payload), form=True)
    await slack_api.wait_for("views.open")
    view = slack_api.sent("views.open")[0]["view"]
    view = json.loads(view) if isinstance(view, str) else view
    async with session_scope(make_sessionmaker(engine)) as session:
        rows = (await session.execute(select(Feedback))).scalars().all()
    assert len(rows) == 1 and rows[0].vote == -1 and rows[0].entry == "abandoned_cart_flow" and rows[0].area == "A"
    sub = view_submission_payload("feedback_modal", values={"feedback_block": {"feedback_input": "needs SMS costs"}},
                                  private_metadata=view["private_metadata"], user_id=USER, team_id=TEAM)
    resp = await post(bot, interactive_body(sub), form=True)
    assert resp.status == 200
    for _ in range(50):
        async with session_scope(make_sessionmaker(engine)) as session:
            row = (await session.execute(select(Feedback))).scalars().one()
        if row.comment:
            break
        await asyncio.sleep(0.05)
    assert row.comment == "needs SMS costs"


# -- reliability ------------------------------------------------------------------------------------
async def test_forged_and_stale_requests_are_rejected(bot, slack_api):
    body = mention("flows")
    bad = signed_headers(body, "wrong-secret", content_type="application/json")
    assert (await bot.post("/slack/events", data=body, headers=bad)).status == 401
    stale = signed_headers(body, SECRET, timestamp=int(time.time()) - 301, content_type="application/json")
    assert (await bot.post("/slack/events", data=body, headers=stale)).status == 401
    assert (await bot.post("/slack/events", data=body, headers={"Content-Type": "application/json"})).status == 401
    await quiet(slack_api, "chat.postMessage")


async def test_retries_get_exactly_one_answer(bot, slack_api):
    body = mention("how much does klaviyo cost?", event_id="Ev0RETRY01")
    first = post(bot, body)
    retries = [post(bot, body, headers=retry_headers(n)) for n in (1, 2, 3)]
    results = await asyncio.gather(first, *retries)
    assert all(r.status == 200 for r in results)
    await slack_api.wait_for("chat.postMessage")
    await asyncio.sleep(0.5)
    assert len(slack_api.called("chat.postMessage")) == 1


async def test_retry_reaching_another_process_is_not_answered_twice(slack_api, engine):
    one, two = await start_bot(slack_api, engine), await start_bot(slack_api, engine)
    try:
        body = mention("what is a segment?", event_id="Ev0RETRY02")
        await asyncio.gather(post(one, body), post(two, body, headers=retry_headers(1)))
        await slack_api.wait_for("chat.postMessage")
        await asyncio.sleep(0.5)
        assert len(slack_api.called("chat.postMessage")) == 1
    finally:
        await one.close()
        await two.close()


async def test_concurrent_messages_in_one_thread_keep_both_updates(bot, slack_api, engine):
    await post(bot, mention("hello", ts="1700000050.000100"))
    await slack_api.wait_for("chat.postMessage")
    await asyncio.gather(
        post(bot, thread_message("I'm a developer", thread_ts="1700000050.000100", ts="1700000051.000100")),
        post(bot, thread_message("how much does klaviyo cost?", thread_ts="1700000050.000100",
                                 ts="1700000051.000200")))
    await slack_api.wait_for("chat.postMessage", 3)
    state = await eventually_state(engine, ThreadKey(TEAM, CHANNEL, "1700000050.000100"),
                                   lambda s: s is not None and s.turns == 3)
    assert state.role == "developer" and state.area == "P" and state.turns == 3


async def test_context_survives_a_restart(slack_api, engine):
    first = await start_bot(slack_api, engine)
    await post(first, mention("I'm a developer - flows", ts="1700000060.000100"))
    await slack_api.wait_for("chat.postMessage")
    await first.close()
    second = await start_bot(slack_api, engine)
    try:
        await post(second, thread_message("how do I build the abandoned cart flow?", thread_ts="1700000060.000100",
                                          ts="1700000061.000100"))
        await slack_api.wait_for("chat.postMessage", 2)
        assert "GET /api/metrics/" in blocks_text(slack_api.last_message())
    finally:
        await second.close()


async def test_database_down_gives_a_clear_message_and_recovers(slack_api, tmp_path):
    from bot.db import make_engine

    down = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    settings = replace(make_settings(slack_api))
    http = aiohttp.ClientSession()
    services = Services(settings=settings, db=down, sessions=make_sessionmaker(down), engine=Engine(), http=http)
    app = await create_app(settings, services=services)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        await post(client, mention("flows", ts="1700000070.000100"))
        await slack_api.wait_for("chat.postMessage")
        assert "database" in slack_api.last_message()["text"]
        health = await (await client.get("/healthz")).json()
        assert health == {"ok": True, "database": "unavailable"}
        # The database comes back: the same process answers normally.
        up = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'up.db'}")
        from bot.migrate import upgrade

        await upgrade(up)
        app[SERVICES].db, app[SERVICES].sessions = up, make_sessionmaker(up)
        await post(client, mention("flows", ts="1700000071.000100"))
        await slack_api.wait_for("chat.postMessage", 2)
        assert "Flows" in blocks_text(slack_api.last_message())
        await up.dispose()
    finally:
        await client.close()
        await http.close()
        await down.dispose()


async def test_healthz_and_wrong_method(bot):
    assert (await (await bot.get("/healthz")).json())["database"] == "ok"
    assert (await bot.get("/slack/events")).status == 405
