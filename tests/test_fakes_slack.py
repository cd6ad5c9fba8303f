"""Proves FakeSlackApi and tests/slack_requests.py behave like Slack for slack_sdk and slack_bolt."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.say.async_say import AsyncSay
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests import slack_requests as sr
from tests.fakes.slack_api import FakeSlackApi, Violation
from tests.slack_requests import (
    block_actions_payload,
    command_body,
    event_body,
    fixture_text,
    interactive_body,
    load_fixture,
    retry_headers,
    signed_headers,
    view_submission_payload,
)

SECRET = "test-signing-secret"
FIXTURE_RESPONSE_URL = "https://hooks.slack.com/commands/T0001/1234567890123/XXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    """A started FakeSlackApi."""
    async with FakeSlackApi() as api:
        yield api


@pytest.fixture
def web(slack_api: FakeSlackApi) -> AsyncWebClient:
    """An AsyncWebClient pointed at the fake with the valid bot token."""
    return AsyncWebClient(token=slack_api.token, base_url=slack_api.url + "/api/")


def make_app(slack_api: FakeSlackApi, *, process_before_response: bool = False) -> AsyncApp:
    """A Bolt AsyncApp verifying signatures with SECRET and calling the fake."""
    client = AsyncWebClient(token=slack_api.token, base_url=slack_api.api_base_url)
    return AsyncApp(signing_secret=SECRET, client=client, process_before_response=process_before_response)


async def http_client(app: AsyncApp) -> TestClient[Request, Application]:
    """A started aiohttp TestClient for the app's real /slack/events route (slack_bolt aiohttp adapter)."""
    client = TestClient(TestServer(app.web_app(path="/slack/events"), host="127.0.0.1"))
    await client.start_server()
    return client


# ---- signing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("index", [0, 1, 2])
def test_signing_vectors_reproduce(index: int) -> None:
    """signed_headers reproduces every vector in signing_test_vectors.json."""
    vector = load_fixture("signing_test_vectors.json")["vectors"][index]
    body = vector.get("body") or fixture_text(vector["body_file"])
    headers = signed_headers(body, vector["signing_secret"], int(vector["timestamp"]))
    assert headers["X-Slack-Signature"] == vector["x_slack_signature"]
    assert headers["X-Slack-Request-Timestamp"] == vector["timestamp"]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    verifier = SignatureVerifier(vector["signing_secret"], clock=_FixedClock(int(vector["timestamp"])))
    assert verifier.is_valid(body, vector["timestamp"], vector["x_slack_signature"])


class _FixedClock(Clock):
    """slack_sdk clock stub fixed at a timestamp (the vectors are from 2018)."""

    def __init__(self, now: int) -> None:
        self._now = now

    def now(self) -> float:
        """The fixed time."""
        return float(self._now)


def test_command_body_matches_wire_fixture() -> None:
    """command_body with the fixture's values is byte-identical to slash_command.form.txt."""
    body = command_body("revenue last 7 days", response_url=FIXTURE_RESPONSE_URL)
    assert body == fixture_text("slash_command.form.txt")
    dm = command_body("help", channel_id="D024BE91L", response_url=FIXTURE_RESPONSE_URL)
    assert dm == fixture_text("slash_command_dm.form.txt")


def test_interactive_body_matches_wire_fixture() -> None:
    """interactive_body of the block_actions fixture equals interactive_block_actions.form.txt."""
    payload = load_fixture("interactive_block_actions_button_message.json")
    assert interactive_body(payload) == fixture_text("interactive_block_actions.form.txt")


def test_event_body_overrides() -> None:
    """event_body overrides inner event and wrapper fields, regenerates blocks and deletes with None."""
    body = json.loads(event_body("event_app_mention.json", text="<@U111> open rate?", ts="1700000000.000100",
                                 thread_ts="1699999999.000001", team_id="T999", event_id="Ev42"))
    event = body["event"]
    assert event["text"] == "<@U111> open rate?"
    assert event["ts"] == event["event_ts"] == "1700000000.000100"
    assert event["thread_ts"] == "1699999999.000001"
    assert event["blocks"][0]["elements"][0]["elements"] == [
        {"type": "user", "user_id": "U111"}, {"type": "text", "text": " open rate?"}]
    assert body["team_id"] == "T999" and body["authorizations"][0]["team_id"] == "T999"
    assert body["event_id"] == "Ev42"
    no_thread = json.loads(event_body("event_app_mention_in_thread.json", thread_ts=None))
    assert "thread_ts" not in no_thread["event"]
    first, second = (json.loads(event_body("event_message_im.json"))["event_id"] for _ in range(2))
    assert first != second
    with pytest.raises(TypeError):
        event_body("event_message_im.json", txt="typo")


def test_retry_headers() -> None:
    """retry_headers gives Slack's header names and rejects impossible values."""
    assert retry_headers(2, "http_error") == {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_error"}
    with pytest.raises(ValueError):
        retry_headers(4)


def test_fixtures_dir_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fixtures come from ../shared/slack-fixtures beside the repo, or from $SLACK_FIXTURES_DIR."""
    monkeypatch.delenv(sr.FIXTURES_ENV, raising=False)
    repo_root = Path(sr.__file__).resolve().parents[1]
    assert sr.fixtures_dir() == repo_root.parent / "shared" / "slack-fixtures"
    (tmp_path / "event_message_im.json").write_text(json.dumps({"event": {"text": "from override"}}))
    monkeypatch.setenv(sr.FIXTURES_ENV, str(tmp_path))
    assert json.loads(event_body("event_message_im.json"))["event"]["text"] == "from override"
    with pytest.raises(FileNotFoundError):
        load_fixture("event_app_mention.json")


# ---- Web API fake --------------------------------------------------------------------------------

async def test_auth_test_shape_and_invalid_auth(slack_api: FakeSlackApi, web: AsyncWebClient) -> None:
    """auth.test answers like web_auth_test_bot_ok.json; a wrong token gets invalid_auth (HTTP 200)."""
    resp = await web.auth_test()
    assert set(resp.data) == set(load_fixture("web_auth_test_bot_ok.json"))
    assert (resp["bot_id"], resp["user_id"], resp["team_id"]) == ("B111", "U111", "T111")
    bad = AsyncWebClient(token="xoxb-wrong", base_url=slack_api.api_base_url)
    with pytest.raises(SlackApiError) as err:
        await bad.auth_test()
    assert err.value.response.status_code == 200
    assert err.value.response.data == load_fixture("web_auth_test_invalid_auth.json")
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(base_url=slack_api.api_base_url).auth_test()
    assert err.value.response["error"] == "not_authed"


async def test_configurable_identity() -> None:
    """Team, bot and token are configurable."""
    async with FakeSlackApi(token="xoxb-other", team_id="T9", bot_id="B9", bot_user_id="U9") as api:
        resp = await api.client().auth_test()
        assert (resp["team_id"], resp["bot_id"], resp["user_id"]) == ("T9", "B9", "U9")


async def test_post_message_recorded_with_parsed_json(slack_api: FakeSlackApi, web: AsyncWebClient) -> None:
    """chat.postMessage answers ok with channel/ts/message and is recorded with its JSON body."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Open rate* is 42%"}}]
    first = await web.chat_postMessage(channel="C111", text="Open rate is 42%", blocks=blocks,
                                       thread_ts="1610241741.000200")
    second = await web.chat_postMessage(channel="C222", text="second")
    assert first["ok"] and first["channel"] == "C111" and first["message"]["bot_id"] == "B111"
    assert first["ts"] == "1700000100.000100" and second["ts"] == "1700000100.000200"
    assert float(second["ts"]) > float(first["ts"])
    call = slack_api.called("chat.postMessage")[0]
    assert call.json == {"channel": "C111", "text": "Open rate is 42%", "blocks": blocks,
                         "thread_ts": "1610241741.000200"}
    assert call.headers["Authorization"] == f"Bearer {slack_api.token}"
    assert slack_api.last_message()["text"] == "second"
    assert slack_api.last_message("C111")["thread_ts"] == "1610241741.000200"
    assert [m["ts"] for m in slack_api.posted_messages()] == [first["ts"], second["ts"]]
    assert slack_api.violations == []


async def test_other_methods(slack_api: FakeSlackApi, web: AsyncWebClient) -> None:
    """Form/GET methods parse, and each listed method answers the way the bot expects."""
    slack_api.set_user("UADMIN", is_admin=True)
    slack_api.set_user("UOWNER", is_owner=True)
    assert (await web.users_info(user="UADMIN"))["user"]["is_admin"] is True
    owner = (await web.users_info(user="UOWNER", include_locale=True))["user"]
    assert owner["is_owner"] is True and owner["locale"] == "en-US"
    plain = (await web.users_info(user="U2147483697"))["user"]
    assert plain["is_admin"] is False and plain["is_owner"] is False and "locale" not in plain
    assert (await web.conversations_info(channel="D024BE91L"))["channel"]["is_im"] is True
    assert (await web.conversations_info(channel="C111"))["channel"]["is_channel"] is True
    eph = await web.chat_postEphemeral(channel="C111", user="U222", text="only you")
    assert eph["message_ts"]
    upd = await web.chat_update(channel="C111", ts="1700000100.000100", text="edited")
    assert upd["ts"] == "1700000100.000100" and upd["text"] == "edited"
    assert (await web.chat_delete(channel="C111", ts="1700000100.000100"))["ok"]
    assert (await web.reactions_add(channel="C111", timestamp="1.2", name="eyes"))["ok"]
    with pytest.raises(SlackApiError, match="already_reacted"):
        await web.reactions_add(channel="C111", timestamp="1.2", name="eyes")
    await web.assistant_threads_setStatus(channel_id="D1", thread_ts="1.2", status="is thinking...")
    await web.assistant_threads_setSuggestedPrompts(channel_id="D1", thread_ts="1.2",
                                                    prompts=[{"title": "Help", "message": "help"}])
    await web.assistant_threads_setTitle(channel_id="D1", thread_ts="1.2", title="Klaviyo question")
    assert slack_api.sent("assistant.threads.setSuggestedPrompts")[0]["prompts"][0]["title"] == "Help"
    assert (await web.api_call("apps.unknown.method"))["ok"] is True
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Connect Klaviyo"},
             "submit": {"type": "plain_text", "text": "Save"},
             "blocks": [{"type": "input", "block_id": "key",
                         "label": {"type": "plain_text", "text": "API key"},
                         "element": {"type": "plain_text_input", "action_id": "value"}}]}
    opened = await web.views_open(trigger_id="111.222.valid", view=modal)
    view_id = opened["view"]["id"]
    assert (await web.views_update(view_id=view_id, view=modal))["view"]["id"] == view_id
    await web.views_push(trigger_id="111.222.valid", view=modal)
    home = {"type": "home", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Klaviyo"}}]}
    await web.views_publish(user_id="U222", view=home)
    assert slack_api.home_views["U222"]["blocks"] == home["blocks"]
    assert slack_api.violations == []


async def test_fail_next_raises_slack_api_error(slack_api: FakeSlackApi, web: AsyncWebClient) -> None:
    """fail_next makes the next call(s) answer HTTP 200 ok=false with that error, then recovers."""
    slack_api.fail_next("chat.postMessage", "not_in_channel", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            await web.chat_postMessage(channel="C111", text="hi")
        assert err.value.response.status_code == 200 and err.value.response["error"] == "not_in_channel"
    assert (await web.chat_postMessage(channel="C111", text="hi"))["ok"]
    assert len(slack_api.posted_messages()) == 1
    slack_api.set_channel("C999", is_member=False)
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await web.chat_postMessage(channel="C999", text="hi")


async def test_rate_limit_429(slack_api: FakeSlackApi, web: AsyncWebClient) -> None:
    """A 429 with Retry-After raises by default and succeeds with AsyncRateLimitErrorRetryHandler."""
    fixture = load_fixture("web_error_ratelimited.http.json")
    slack_api.rate_limit_next("chat.postMessage", retry_after=1)
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C111", text="hi")
    assert err.value.response.status_code == fixture["status"]
    assert err.value.response.headers["Retry-After"] == "1"
    assert err.value.response.data == fixture["body"]

    retrying = AsyncWebClient(token=slack_api.token, base_url=slack_api.api_base_url,
                              retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    slack_api.rate_limit_next("chat.postMessage", retry_after=1)
    started = time.monotonic()
    resp = await retrying.chat_postMessage(channel="C111", text="after retry")
    assert resp["ok"] and time.monotonic() - started >= 1.0
    assert [c.status for c in slack_api.called("chat.postMessage")] == [429, 429, 200]


async def test_block_limits_invalid_blocks_and_violations(slack_api: FakeSlackApi,
                                                          web: AsyncWebClient) -> None:
    """Over-limit blocks get invalid_blocks (views: invalid_arguments) and are recorded as violations."""
    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C111", text="x", blocks=too_many)
    assert err.value.response["error"] == "invalid_blocks"
    expected = Violation("chat.postMessage", "/blocks", "no more than 50 items allowed (got 51)")
    assert slack_api.violations == [expected]
    assert slack_api.posted_messages() == []

    slack_api.violations.clear()
    bad: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": f"b{i}", "text": {"type": "plain_text", "text": "t" * 76}}
            for i in range(26)]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
        {"type": "section", "text": {"type": "mrkdwn", "text": "pick"}, "accessory": {
            "type": "static_select", "action_id": "s",
            "options": [{"text": {"type": "plain_text", "text": "o" * 76}, "value": "v"}]}},
    ]
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await web.chat_update(channel="C111", ts="1.2", text="x", blocks=bad)
    pointers = {v.pointer for v in slack_api.violations}
    assert {"/blocks/0/text/text", "/blocks/1/text/text", "/blocks/2/elements",
            "/blocks/2/elements/0/text/text", "/blocks/3/elements", "/blocks/4/fields",
            "/blocks/5/accessory/options/0/text/text"} <= pointers

    slack_api.violations.clear()
    with pytest.raises(SlackApiError, match="msg_too_long"):
        await web.chat_postEphemeral(channel="C111", user="U222", text="x" * 40001)
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "A title longer than 24 chars"},
             "blocks": [{"type": "divider"}] * 101}
    with pytest.raises(SlackApiError) as err:
        await web.views_open(trigger_id="111.222.valid", view=modal)
    assert err.value.response["error"] == "invalid_arguments"
    messages = err.value.response["response_metadata"]["messages"]
    assert any("json-pointer:/view/title/text" in m for m in messages)
    assert {(v.method, v.pointer) for v in slack_api.violations} == {
        ("chat.postEphemeral", "/text"), ("views.open", "/view/title/text"), ("views.open", "/view/blocks")}


async def test_latency_and_wait_for(slack_api: FakeSlackApi, web: AsyncWebClient) -> None:
    """Artificial latency delays answers; wait_for waits until the call was answered."""
    slack_api.set_latency(0.2, "chat.postMessage")
    task = asyncio.create_task(web.chat_postMessage(channel="C111", text="slow"))
    started = time.monotonic()
    calls = await slack_api.wait_for("chat.postMessage", 1, timeout=5)
    assert time.monotonic() - started >= 0.15
    assert calls[0].answered and calls[0].response["ok"] is True
    assert slack_api.last_message()["text"] == "slow"
    await task


async def test_response_url_deliveries(slack_api: FakeSlackApi) -> None:
    """POSTs to response_url(id) are recorded per id; over-limit blocks are refused and recorded."""
    url = slack_api.response_url("cmd-1")
    assert url == f"{slack_api.url}/response-url/cmd-1"
    resp = await AsyncWebhookClient(url).send(text="hello", response_type="ephemeral")
    assert resp.status_code == 200
    assert slack_api.response_url_deliveries("cmd-1") == [{"text": "hello", "response_type": "ephemeral"}]
    assert slack_api.response_url_deliveries("other") == []
    resp = await AsyncWebhookClient(url).send(text="x", blocks=[{"type": "divider"}] * 51)
    assert resp.status_code == 400 and resp.body == "invalid_blocks"
    assert [v.method for v in slack_api.violations] == ["response_url"]


# ---- driving Bolt --------------------------------------------------------------------------------

async def test_bolt_accepts_app_mention(slack_api: FakeSlackApi) -> None:
    """A signed app_mention built by event_body reaches a Bolt listener, which replies through the fake."""
    app = make_app(slack_api)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        await say(text="On it!", thread_ts=event.get("thread_ts") or event["ts"])

    client = await http_client(app)
    try:
        body = event_body("event_app_mention_in_thread.json", text="<@U111> what is my open rate?")
        resp = await client.post("/slack/events", data=body, headers=signed_headers(body, SECRET))
        assert resp.status == 200
        await slack_api.wait_for("chat.postMessage")
        msg = slack_api.last_message("C111")
        assert msg["thread_ts"] == "1610241741.000200" and msg["text"] == "On it!"
        assert len(slack_api.called("auth.test")) == 1
        retry = await client.post("/slack/events", data=body, headers={**signed_headers(body, SECRET),
                                                                       **retry_headers(1)})
        assert retry.status == 200
    finally:
        await client.close()
    assert slack_api.violations == []


async def test_bolt_dm_and_own_bot_message(slack_api: FakeSlackApi) -> None:
    """A DM reaches the message listener; the bot's own echo (fake's bot_id) is dropped by Bolt."""
    app = make_app(slack_api, process_before_response=True)
    seen: list[dict[str, Any]] = []

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append(event)

    client = await http_client(app)
    try:
        dm = event_body("event_message_im.json", text="how do I resend a flow email?")
        assert (await client.post("/slack/events", data=dm, headers=signed_headers(dm, SECRET))).status == 200
        echo = event_body("event_message_im_from_bot.json", bot_id=slack_api.bot_id,
                          user=slack_api.bot_user_id)
        resp = await client.post("/slack/events", data=echo, headers=signed_headers(echo, SECRET))
        assert resp.status == 200
    finally:
        await client.close()
    assert [e["text"] for e in seen] == ["how do I resend a flow email?"]


async def test_bolt_accepts_slash_command_and_responds(slack_api: FakeSlackApi) -> None:
    """A signed command_body reaches the /klaviyo listener; respond() lands on the fake's response_url."""
    app = make_app(slack_api)

    @app.command("/klaviyo")
    async def on_command(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"You asked: {command['text']}")

    client = await http_client(app)
    try:
        body = command_body("stats campaigns 30d", response_url=slack_api.response_url("c1"))
        resp = await client.post("/slack/events", data=body, headers=signed_headers(body, SECRET))
        assert resp.status == 200
        await slack_api.wait_for("/response-url/c1")
    finally:
        await client.close()
    assert slack_api.response_url_deliveries("c1") == [{"text": "You asked: stats campaigns 30d"}]


async def test_bolt_accepts_block_actions_and_view_submission(slack_api: FakeSlackApi) -> None:
    """Interactive bodies (block_actions, view_submission) are parsed by Bolt with their values."""
    app = make_app(slack_api, process_before_response=True)
    clicked: list[str] = []

    @app.action("pick_range")
    async def on_pick(ack: AsyncAck, action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        clicked.append(action["selected_option"]["value"])
        await respond(text="Range saved", replace_original=False)

    @app.view("connect")
    async def on_submit(ack: AsyncAck, view: dict[str, Any]) -> None:
        key = view["state"]["values"]["api_key"]["value"]["value"]
        await ack(response_action="errors", errors={"api_key": f"{key} is not a private key"})

    client = await http_client(app)
    try:
        option = {"text": {"type": "plain_text", "text": "Last 30 days"}, "value": "30d"}
        action = interactive_body(block_actions_payload("pick_range", selected_option=option,
                                                        response_url=slack_api.response_url("a1")))
        resp = await client.post("/slack/events", data=action, headers=signed_headers(action, SECRET))
        assert resp.status == 200 and clicked == ["30d"]
        assert slack_api.response_url_deliveries("a1")[0]["text"] == "Range saved"

        submit = interactive_body(view_submission_payload("connect", values={"api_key": {"value": "pk_123"}}))
        resp = await client.post("/slack/events", data=submit, headers=signed_headers(submit, SECRET))
        assert resp.status == 200
        assert await resp.json() == {"response_action": "errors",
                                     "errors": {"api_key": "pk_123 is not a private key"}}
    finally:
        await client.close()
    with pytest.raises(ValueError):
        block_actions_payload("x")


async def test_bolt_async_dispatch_with_bolt_request(slack_api: FakeSlackApi) -> None:
    """AsyncApp.async_dispatch accepts a real AsyncBoltRequest built from signed helper output."""
    app = make_app(slack_api, process_before_response=True)
    ran: list[str] = []

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any]) -> None:
        ran.append(event["tab"])

    body = event_body("event_app_home_opened.json")
    headers: dict[str, str | Sequence[str]] = {**signed_headers(body, SECRET)}
    resp = await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))
    assert resp.status == 200 and ran == ["home"]


async def test_bolt_rejects_forged_and_stale(slack_api: FakeSlackApi) -> None:
    """A forged signature and a 301-second-old timestamp both get HTTP 401 and never reach a listener."""
    app = make_app(slack_api, process_before_response=True)
    ran: list[str] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        ran.append(event["ts"])

    client = await http_client(app)
    try:
        body = event_body("event_app_mention.json")
        forged = signed_headers(body, "not-the-secret")
        resp = await client.post("/slack/events", data=body, headers=forged)
        assert resp.status == 401 and await resp.json() == {"error": "invalid request"}
        stale = signed_headers(body, SECRET, timestamp=int(time.time()) - 301)
        assert (await client.post("/slack/events", data=body, headers=stale)).status == 401
        tampered = signed_headers(body, SECRET)
        assert (await client.post("/slack/events", data=body + " ", headers=tampered)).status == 401
        ok = signed_headers(body, SECRET)
        assert (await client.post("/slack/events", data=body, headers=ok)).status == 200
    finally:
        await client.close()
    assert ran == ["1610241741.000200"]


async def test_bolt_answers_url_verification(slack_api: FakeSlackApi) -> None:
    """Bolt answers the signed url_verification fixture with its challenge."""
    client = await http_client(make_app(slack_api))
    try:
        body = fixture_text("event_url_verification.json")
        resp = await client.post("/slack/events", data=body, headers=signed_headers(body, SECRET))
        assert resp.status == 200
        assert (await resp.json())["challenge"] == json.loads(body)["challenge"]
    finally:
        await client.close()


def test_form_body_fields_parse() -> None:
    """command_body fields parse back, with spaces sent as '+'."""
    body = command_body("lang zh", response_url="http://127.0.0.1:1/response-url/x", channel_id="D1")
    assert "text=lang+zh" in body
    fields = {k: v[0] for k, v in parse_qs(body).items()}
    assert fields["channel_name"] == "directmessage" and fields["command"] == "/klaviyo"
