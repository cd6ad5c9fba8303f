"""FakeSlackApi: a local Slack Web API and response_url endpoint that checks tokens and Block Kit limits."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.server import CALL, Call, RecordingServer

# Limits from /work/shared/notes/slack-platform.md section 5 (Slack docs, slack_sdk models).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT_CHARS = 40_000
MAX_MARKDOWN_TEXT_CHARS = 12_000
MAX_ATTACHMENTS = 100
MAX_VIEW_BYTES = 250_000
MAX_RESPONSE_URL_USES = 5

KNOWN_BLOCK_TYPES = frozenset({
    "actions", "call", "context", "context_actions", "divider", "file", "header", "image", "input",
    "markdown", "rich_text", "section", "table", "video",
})
SELECT_WITH_OPTIONS = frozenset({"static_select", "multi_static_select"})


@dataclass(frozen=True)
class Violation:
    """One Block Kit / message limit the bot broke, located by a JSON pointer into what it sent."""

    method: str
    pointer: str
    problem: str

    def __str__(self) -> str:
        return f"{self.method}: [ERROR] {self.problem} [json-pointer:{self.pointer}]"


class _Checker:
    """Collects limit problems in blocks, views and their elements."""

    def __init__(self) -> None:
        self.issues: list[tuple[str, str]] = []

    def add(self, pointer: str, problem: str) -> None:
        """Records one problem."""
        self.issues.append((pointer, problem))

    def length(self, value: Any, pointer: str, max_len: int, min_len: int = 0) -> None:
        """Checks a string's length bounds."""
        if not isinstance(value, str):
            self.add(pointer, "must be a string")
        elif len(value) > max_len:
            self.add(pointer, f"must be less than {max_len + 1} characters (got {len(value)})")
        elif len(value) < min_len:
            self.add(pointer, f"must be more than {min_len - 1} characters")

    def count(self, items: Any, pointer: str, max_items: int, min_items: int = 0) -> list[Any]:
        """Checks an array's size bounds; returns the items (empty when not a list)."""
        if not isinstance(items, list):
            self.add(pointer, "must be an array")
            return []
        if len(items) > max_items:
            self.add(pointer, f"no more than {max_items} items allowed (got {len(items)})")
        elif len(items) < min_items:
            self.add(pointer, f"at least {min_items} items required")
        return items

    def text_obj(self, obj: Any, pointer: str, max_len: int, *, plain_only: bool = False,
                 min_len: int = 1) -> None:
        """Checks a composition text object (plain_text / mrkdwn)."""
        if not isinstance(obj, dict):
            self.add(pointer, "must be a text object")
            return
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if obj.get("type") not in allowed:
            self.add(pointer + "/type", f"must be one of {', '.join(allowed)}")
        self.length(obj.get("text"), pointer + "/text", max_len, min_len)

    def block_list(self, blocks: Any, pointer: str, max_blocks: int) -> None:
        """Checks a list of blocks (message, attachment or view)."""
        items = self.count(blocks, pointer, max_blocks)
        seen: set[str] = set()
        for i, block in enumerate(items):
            bptr = f"{pointer}/{i}"
            if not isinstance(block, dict):
                self.add(bptr, "must be an object")
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self.length(block_id, bptr + "/block_id", 255, 1)
                if block_id in seen:
                    self.add(bptr + "/block_id", f"duplicate block_id {block_id!r}")
                seen.add(block_id)
            self.block(block, bptr)

    def block(self, block: dict[str, Any], ptr: str) -> None:
        """Checks one block against its type's limits."""
        btype = block.get("type")
        if btype not in KNOWN_BLOCK_TYPES:
            self.add(ptr + "/type", f"unknown block type {btype!r}")
            return
        if btype == "section":
            if "text" not in block and "fields" not in block:
                self.add(ptr, "section needs text or fields")
            if "text" in block:
                self.text_obj(block["text"], ptr + "/text", 3000)
            if "fields" in block:
                for j, fld in enumerate(self.count(block["fields"], ptr + "/fields", 10, 1)):
                    self.text_obj(fld, f"{ptr}/fields/{j}", 2000)
            if "accessory" in block:
                self.element(block["accessory"], ptr + "/accessory")
        elif btype == "header":
            self.text_obj(block.get("text"), ptr + "/text", 150, plain_only=True)
        elif btype == "markdown":
            self.length(block.get("text"), ptr + "/text", MAX_MARKDOWN_TEXT_CHARS, 1)
        elif btype == "actions":
            action_ids: set[str] = set()
            for j, el in enumerate(self.count(block.get("elements"), ptr + "/elements", 25, 1)):
                self.element(el, f"{ptr}/elements/{j}")
                aid = el.get("action_id") if isinstance(el, dict) else None
                if aid is not None and aid in action_ids:
                    self.add(f"{ptr}/elements/{j}/action_id", f"duplicate action_id {aid!r}")
                if aid is not None:
                    action_ids.add(aid)
        elif btype == "context":
            for j, el in enumerate(self.count(block.get("elements"), ptr + "/elements", 10, 1)):
                eptr = f"{ptr}/elements/{j}"
                if isinstance(el, dict) and el.get("type") == "image":
                    self.length(el.get("alt_text"), eptr + "/alt_text", 2000, 1)
                else:
                    self.text_obj(el, eptr, 3000)
        elif btype == "image":
            self.length(block.get("alt_text"), ptr + "/alt_text", 2000, 1)
            if "image_url" in block:
                self.length(block["image_url"], ptr + "/image_url", 3000, 1)
            if "title" in block:
                self.text_obj(block["title"], ptr + "/title", 2000, plain_only=True)
        elif btype == "input":
            self.text_obj(block.get("label"), ptr + "/label", 2000, plain_only=True)
            if "hint" in block:
                self.text_obj(block["hint"], ptr + "/hint", 2000, plain_only=True)
            if not isinstance(block.get("element"), dict):
                self.add(ptr + "/element", "input block needs an element")
            else:
                self.element(block["element"], ptr + "/element")

    def element(self, el: Any, ptr: str) -> None:
        """Checks one interactive element (button, selects, inputs, ...)."""
        if not isinstance(el, dict) or not isinstance(el.get("type"), str):
            self.add(ptr, "element must be an object with a type")
            return
        etype = el["type"]
        if "action_id" in el:
            self.length(el["action_id"], ptr + "/action_id", 255, 1)
        if "placeholder" in el:
            self.text_obj(el["placeholder"], ptr + "/placeholder", 150, plain_only=True)
        if "confirm" in el:
            self.confirm(el["confirm"], ptr + "/confirm")
        if etype == "button":
            self.text_obj(el.get("text"), ptr + "/text", 75, plain_only=True)
            if "value" in el:
                self.length(el["value"], ptr + "/value", 2000)
            if "url" in el:
                self.length(el["url"], ptr + "/url", 3000)
            if "accessibility_label" in el:
                self.length(el["accessibility_label"], ptr + "/accessibility_label", 75)
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.add(ptr + "/style", "must be primary or danger")
        elif etype in SELECT_WITH_OPTIONS:
            if "options" in el:
                self.options(el["options"], ptr + "/options", 100)
            if "option_groups" in el:
                for g, group in enumerate(self.count(el["option_groups"], ptr + "/option_groups", 100, 1)):
                    gptr = f"{ptr}/option_groups/{g}"
                    if not isinstance(group, dict):
                        self.add(gptr, "must be an object")
                        continue
                    self.text_obj(group.get("label"), gptr + "/label", 75, plain_only=True)
                    self.options(group.get("options"), gptr + "/options", 100)
            if "options" not in el and "option_groups" not in el:
                self.add(ptr, "static select needs options or option_groups")
        elif etype == "overflow":
            self.options(el.get("options"), ptr + "/options", 5, min_items=1)
        elif etype in ("radio_buttons", "checkboxes"):
            self.options(el.get("options"), ptr + "/options", 10, min_items=1, mrkdwn_ok=True)
        elif etype == "plain_text_input" and "max_length" in el:
            if not isinstance(el["max_length"], int) or el["max_length"] > 3000:
                self.add(ptr + "/max_length", "must be an integer no more than 3000")
        elif etype == "image":
            self.length(el.get("alt_text"), ptr + "/alt_text", 2000, 1)

    def options(self, opts: Any, ptr: str, max_items: int, *, min_items: int = 1,
                mrkdwn_ok: bool = False) -> None:
        """Checks a list of option objects."""
        for k, opt in enumerate(self.count(opts, ptr, max_items, min_items)):
            optr = f"{ptr}/{k}"
            if not isinstance(opt, dict):
                self.add(optr, "must be an option object")
                continue
            self.text_obj(opt.get("text"), optr + "/text", 75, plain_only=not mrkdwn_ok)
            self.length(opt.get("value"), optr + "/value", 150, 1)
            if "description" in opt:
                self.text_obj(opt["description"], optr + "/description", 75, plain_only=not mrkdwn_ok)

    def confirm(self, conf: Any, ptr: str) -> None:
        """Checks a confirmation dialog object."""
        if not isinstance(conf, dict):
            self.add(ptr, "must be a confirm object")
            return
        self.text_obj(conf.get("title"), ptr + "/title", 100, plain_only=True)
        self.text_obj(conf.get("text"), ptr + "/text", 300)
        self.text_obj(conf.get("confirm"), ptr + "/confirm", 30, plain_only=True)
        self.text_obj(conf.get("deny"), ptr + "/deny", 30, plain_only=True)


def _decode_json_field(value: Any) -> Any:
    """Form-encoded requests carry blocks/view/attachments as JSON strings; decode them."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def check_message(params: dict[str, Any], *,
                  require_content: bool = True) -> tuple[str | None, list[tuple[str, str]]]:
    """Checks a chat.* / response_url message; returns (Slack error code or None, problems)."""
    text = params.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        problem = f"must be less than {MAX_TEXT_CHARS + 1} characters (got {len(text)})"
        return "msg_too_long", [("/text", problem)]
    markdown_text = params.get("markdown_text")
    if isinstance(markdown_text, str) and len(markdown_text) > MAX_MARKDOWN_TEXT_CHARS:
        problem = f"must be less than {MAX_MARKDOWN_TEXT_CHARS + 1} characters (got {len(markdown_text)})"
        return "msg_too_long", [("/markdown_text", problem)]
    blocks = params.get("blocks")
    attachments = params.get("attachments")
    if blocks is not None and not isinstance(blocks, list):
        return "invalid_blocks_format", [("/blocks", "must be a JSON array of blocks")]
    if isinstance(attachments, list) and len(attachments) > MAX_ATTACHMENTS:
        return "too_many_attachments", [("/attachments", f"no more than {MAX_ATTACHMENTS} items allowed")]
    if require_content and not text and not blocks and not attachments and not markdown_text:
        return "no_text", [("/text", "text, blocks, attachments or markdown_text is required")]
    checker = _Checker()
    if blocks is not None:
        checker.block_list(blocks, "/blocks", MAX_MESSAGE_BLOCKS)
    if isinstance(attachments, list):
        for i, att in enumerate(attachments):
            if isinstance(att, dict) and "blocks" in att:
                checker.block_list(att["blocks"], f"/attachments/{i}/blocks", MAX_MESSAGE_BLOCKS)
    return ("invalid_blocks" if checker.issues else None), checker.issues


def check_view(view: Any, *, expected_type: str | None = None) -> tuple[str | None, list[tuple[str, str]]]:
    """Checks a views.* payload; returns (Slack error code or None, problems)."""
    if not isinstance(view, dict):
        return "invalid_arguments", [("/view", "must be a view object")]
    if len(json.dumps(view).encode()) > MAX_VIEW_BYTES:
        return "view_too_large", [("/view", f"must be smaller than {MAX_VIEW_BYTES} bytes")]
    checker = _Checker()
    vtype = view.get("type")
    allowed_types = (expected_type,) if expected_type else ("modal", "home")
    if vtype not in allowed_types:
        checker.add("/view/type", f"must be {' or '.join(allowed_types)}")
    if vtype == "modal":
        checker.text_obj(view.get("title"), "/view/title", 24, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                checker.text_obj(view[key], f"/view/{key}", 24, plain_only=True)
        blocks = view.get("blocks")
        if "submit" not in view and isinstance(blocks, list) and any(
                isinstance(b, dict) and b.get("type") == "input" for b in blocks):
            checker.add("/view/submit", "submit is required when the view has input blocks")
    if "private_metadata" in view:
        checker.length(view["private_metadata"], "/view/private_metadata", 3000)
    for key in ("callback_id", "external_id"):
        if key in view:
            checker.length(view[key], f"/view/{key}", 255)
    checker.block_list(view.get("blocks"), "/view/blocks", MAX_VIEW_BLOCKS)
    return ("invalid_arguments" if checker.issues else None), checker.issues


class FakeSlackApi(RecordingServer):
    """Real local Slack Web API: point AsyncWebClient(base_url=fake.api_base_url) at it."""

    def __init__(self, *, token: str = "xoxb-test-token", extra_tokens: tuple[str, ...] = (),
                 team_id: str = "T111", team: str = "Klaviyo Helper Test",
                 bot_user_id: str = "U111", bot_id: str = "B111", bot_name: str = "klaviyo_helper",
                 app_id: str = "A111", latency: float = 0.0) -> None:
        self.token = token
        self.valid_tokens: set[str] = {token, *extra_tokens}
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.latency = latency
        self.method_latency: dict[str, float] = {}
        self.violations: list[Violation] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.reactions: set[tuple[str, str, str]] = set()
        self._failures: dict[str, deque[tuple[str, dict[str, Any]]]] = defaultdict(deque)
        self._rate_limits: dict[str, deque[int]] = defaultdict(deque)
        self._accepted: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._deliveries: list[tuple[str, dict[str, Any]]] = []
        self._ts_counter = 0
        self._view_counter = 0
        super().__init__()

    # ---- server wiring -------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        """Registers /api/<method> (any verb) and POST /response-url/<id>."""
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response-url/{rid}", self._response_url)

    @property
    def api_base_url(self) -> str:
        """The base_url to give AsyncWebClient (ends with "/api/")."""
        return self.url + "/api/"

    def client(self, token: str | None = None, **kwargs: Any) -> AsyncWebClient:
        """An AsyncWebClient pointed at this fake, using the valid bot token unless told otherwise."""
        return AsyncWebClient(token=token or self.token, base_url=self.api_base_url, **kwargs)

    def response_url(self, rid: str = "1") -> str:
        """Full response_url that records deliveries under `rid`."""
        return f"{self.url}/response-url/{rid}"

    async def wait_for(self, path_suffix: str, count: int = 1, timeout: float = 10.0, *,
                       answered: bool = True) -> list[Call]:
        """Like RecordingServer.wait_for, but by default also waits until the fake has answered."""
        return await super().wait_for(path_suffix, count, timeout, answered=answered)

    # ---- scripting -----------------------------------------------------------------------------

    def fail_next(self, method: str, error: str, times: int = 1, *,
                  extra: dict[str, Any] | None = None) -> None:
        """The next `times` calls to `method` answer HTTP 200 {"ok": false, "error": error, **extra}."""
        for _ in range(times):
            self._failures[method].append((error, dict(extra or {})))

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` calls to `method` answer HTTP 429 with Retry-After and error "ratelimited"."""
        for _ in range(times):
            self._rate_limits[method].append(retry_after)

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delays answers by `seconds` (for one method, or for all when `method` is None)."""
        if method is None:
            self.latency = seconds
        else:
            self.method_latency[method] = seconds

    def set_user(self, user_id: str, *, is_admin: bool = False, is_owner: bool = False,
                 is_primary_owner: bool = False, is_bot: bool = False, name: str | None = None,
                 real_name: str | None = None, tz: str = "America/New_York", locale: str = "en-US",
                 deleted: bool = False, **fields: Any) -> dict[str, Any]:
        """Registers the users.info answer for `user_id`; returns the user object."""
        name = name or user_id.lower()
        real_name = real_name or name.title()
        user = {
            "id": user_id, "team_id": self.team_id, "name": name, "deleted": deleted,
            "real_name": real_name, "tz": tz, "tz_label": tz, "tz_offset": 0,
            "profile": {"real_name": real_name, "display_name": name, "team": self.team_id},
            "is_admin": is_admin or is_owner or is_primary_owner, "is_owner": is_owner or is_primary_owner,
            "is_primary_owner": is_primary_owner, "is_restricted": False, "is_ultra_restricted": False,
            "is_bot": is_bot, "is_app_user": False, "updated": 1700000000, "locale": locale,
        }
        user.update(fields)
        self.users[user_id] = user
        return user

    def set_channel(self, channel_id: str, *, name: str | None = None, is_private: bool = False,
                    is_member: bool = True, is_archived: bool = False, **fields: Any) -> dict[str, Any]:
        """Registers a conversation; non-members get not_in_channel and archived ones is_archived."""
        channel = self._default_channel(channel_id)
        if not channel["is_im"]:
            channel.update(name=name or channel["name"], is_private=is_private, is_group=is_private,
                           is_channel=not is_private)
        channel.update(is_member=is_member, is_archived=is_archived, **fields)
        self.channels[channel_id] = channel
        return channel

    # ---- accessors -----------------------------------------------------------------------------

    def sent(self, method: str) -> list[dict[str, Any]]:
        """Parsed params of each call to `method` answered ok (posts also carry the assigned "ts")."""
        return list(self._accepted.get(method, []))

    def posted_messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages accepted by chat.postMessage (params plus assigned "ts"), optionally for one channel."""
        return [m for m in self.sent("chat.postMessage") if channel is None or m.get("channel") == channel]

    def last_message(self, channel: str | None = None) -> dict[str, Any]:
        """The latest accepted chat.postMessage (optionally in `channel`); AssertionError if none."""
        found = self.posted_messages(channel)
        if not found:
            seen = sorted({str(m.get("channel")) for m in self.posted_messages()})
            raise AssertionError(f"no chat.postMessage accepted for channel={channel!r}; seen: {seen}")
        return found[-1]

    def response_url_deliveries(self, rid: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies POSTed to response_url(rid) (all ids when `rid` is None), in arrival order."""
        return [body for r, body in self._deliveries if rid is None or r == rid]

    # ---- request handling ----------------------------------------------------------------------

    def _next_ts(self) -> str:
        self._ts_counter += 100
        seconds, micros = divmod(self._ts_counter, 1_000_000)
        return f"{1700000100 + seconds}.{micros:06d}"

    def _violate(self, method: str, issues: list[tuple[str, str]]) -> list[str]:
        found = [Violation(method, ptr, problem) for ptr, problem in issues]
        self.violations.extend(found)
        return [f"[ERROR] {v.problem} [json-pointer:{v.pointer}]" for v in found]

    @staticmethod
    def _params(call: Call) -> dict[str, Any]:
        params: dict[str, Any] = dict(call.query)
        params.update(call.form)
        if isinstance(call.json, dict):
            params.update(call.json)
        for key in ("blocks", "attachments", "view", "prompts", "metadata"):
            if key in params:
                params[key] = _decode_json_field(params[key])
        return params

    def _token_of(self, request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        token = params.pop("token", None)
        return token if isinstance(token, str) and token else None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call: Call = request[CALL]
        params = self._params(call)
        delay = self.method_latency.get(method, self.latency)
        if delay > 0:
            await asyncio.sleep(delay)
        if method == "api.test":
            return web.json_response({"ok": True, "args": params})
        token = self._token_of(request, params)
        if token is None:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token not in self.valid_tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        # Rate limits are the one common Web API error not sent as HTTP 200 (web_error_ratelimited.http.json).
        if self._rate_limits.get(method):
            retry_after = self._rate_limits[method].popleft()
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(retry_after)})
        if self._failures.get(method):
            error, extra = self._failures[method].popleft()
            return web.json_response({"ok": False, "error": error, **extra})
        handler = self._methods().get(method)
        body = handler(params) if handler is not None else {"ok": True}
        if body.get("ok"):
            self._accepted[method].append(params)
        return web.json_response(body)

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """Handlers of the emulated Web API methods; other methods answer {"ok": true} like Bolt's mock."""
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "views.open": lambda p: self._views(p, "views.open"),
            "views.update": lambda p: self._views(p, "views.update"),
            "views.push": lambda p: self._views(p, "views.push"),
            "views.publish": lambda p: self._views(p, "views.publish"),
            "conversations.info": self._conversations_info,
            "users.info": self._users_info,
            "assistant.threads.setStatus": lambda p: self._assistant(p, "status"),
            "assistant.threads.setSuggestedPrompts": lambda p: self._assistant(p, "prompts"),
            "assistant.threads.setTitle": lambda p: self._assistant(p, "title"),
            "reactions.add": self._reactions_add,
        }

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"https://{self.team_id.lower()}.slack.com/", "team": self.team,
                "user": self.bot_name, "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id}

    def _channel_error(self, channel: Any, *, posting: bool) -> str | None:
        if not isinstance(channel, str) or not channel:
            return "channel_not_found"
        known = self.channels.get(channel)
        if known is not None:
            if known.get("is_archived"):
                return "is_archived"
            if posting and not known.get("is_im") and not known.get("is_member", True):
                return "not_in_channel"
        return None

    def _bot_message(self, params: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "user": self.bot_user_id, "type": "message", "ts": ts, "bot_id": self.bot_id,
            "app_id": self.app_id, "text": params.get("text", ""), "team": self.team_id,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if key in params:
                message[key] = params[key]
        return message

    def _check_message(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        error, issues = check_message(params)
        if error is None:
            return None
        messages = self._violate(method, issues)
        return {"ok": False, "error": error, "response_metadata": {"messages": messages}}

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if (error := self._channel_error(channel, posting=True)) is not None:
            return {"ok": False, "error": error}
        if (failed := self._check_message("chat.postMessage", params)) is not None:
            return failed
        ts = self._next_ts()
        params["ts"] = ts
        return {"ok": True, "channel": channel, "ts": ts, "message": self._bot_message(params, ts)}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if (error := self._channel_error(params.get("channel"), posting=False)) is not None:
            return {"ok": False, "error": error}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if (failed := self._check_message("chat.postEphemeral", params)) is not None:
            return failed
        ts = self._next_ts()
        params["message_ts"] = ts
        return {"ok": True, "message_ts": ts}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        if (error := self._channel_error(channel, posting=False)) is not None:
            return {"ok": False, "error": error}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        if (failed := self._check_message("chat.update", params)) is not None:
            return failed
        message = self._bot_message(params, str(ts))
        return {"ok": True, "channel": channel, "ts": ts, "text": params.get("text", ""), "message": message}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        if (error := self._channel_error(channel, posting=False)) is not None:
            return {"ok": False, "error": error}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "ts": ts}

    def _views(self, params: dict[str, Any], method: str) -> dict[str, Any]:
        if method in ("views.open", "views.push") and not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments",
                    "response_metadata": {"messages": ["invalid `trigger_id`"]}}
        if method == "views.publish" and not params.get("user_id"):
            return {"ok": False, "error": "invalid_arguments",
                    "response_metadata": {"messages": ["invalid `user_id`"]}}
        if method == "views.update" and not (params.get("view_id") or params.get("external_id")):
            return {"ok": False, "error": "invalid_arguments",
                    "response_metadata": {"messages": ["either `view_id` or `external_id` is required"]}}
        view = params.get("view")
        expected = "home" if method == "views.publish" else None
        # views.* report schema problems as invalid_arguments with response_metadata.messages (views.open
        # reference), unlike chat.*, which answer invalid_blocks; view_too_large is its own code.
        error, issues = check_view(view, expected_type=expected)
        if error is not None:
            messages = self._violate(method, issues)
            return {"ok": False, "error": error, "response_metadata": {"messages": messages}}
        assert isinstance(view, dict)
        view_id = params.get("view_id")
        if not view_id:
            self._view_counter += 1
            view_id = f"V{self._view_counter:08d}"
        stored = copy.deepcopy(view)
        stored.update(id=view_id, team_id=self.team_id, app_id=self.app_id, bot_id=self.bot_id,
                      hash=f"{int(time.time())}.{self._view_counter:08x}", state={"values": {}},
                      root_view_id=view_id, previous_view_id=None)
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        stored.setdefault("external_id", "")
        stored.setdefault("clear_on_close", False)
        stored.setdefault("notify_on_close", False)
        self.views[view_id] = stored
        if method == "views.publish":
            self.home_views[str(params["user_id"])] = stored
        return {"ok": True, "view": stored}

    def _default_channel(self, channel_id: str) -> dict[str, Any]:
        is_im = channel_id.startswith("D")
        is_private = channel_id.startswith("G")
        if is_im:
            return {"id": channel_id, "created": 1700000000, "is_im": True, "is_org_shared": False,
                    "user": "U2147483697", "is_user_deleted": False, "priority": 0,
                    "is_archived": False, "is_member": True}
        return {"id": channel_id, "name": f"channel-{channel_id.lower()}", "is_channel": not is_private,
                "is_group": is_private, "is_im": False, "is_mpim": False, "is_private": is_private,
                "created": 1700000000, "is_archived": False, "is_general": False, "is_shared": False,
                "is_ext_shared": False, "is_org_shared": False, "context_team_id": self.team_id,
                "creator": "U0000000001", "is_member": True}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = params.get("channel")
        if not isinstance(channel_id, str) or not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": self.channels.get(channel_id) or self._default_channel(channel_id)}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = params.get("user")
        if not isinstance(user_id, str) or not user_id:
            return {"ok": False, "error": "user_not_found"}
        user = copy.deepcopy(self.users.get(user_id) or self.set_user(user_id))
        if str(params.get("include_locale", "")).lower() not in ("1", "true"):
            user.pop("locale", None)
        return {"ok": True, "user": user}

    def _assistant(self, params: dict[str, Any], what: str) -> dict[str, Any]:
        if not params.get("channel_id") or not params.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        if what == "prompts" and not isinstance(params.get("prompts"), list):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts, name = params.get("channel"), params.get("timestamp"), params.get("name")
        if not channel or not ts:
            return {"ok": False, "error": "no_item_specified"}
        if not name:
            return {"ok": False, "error": "invalid_name"}
        key = (str(channel), str(ts), str(name))
        if key in self.reactions:
            return {"ok": False, "error": "already_reacted"}
        self.reactions.add(key)
        return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        call: Call = request[CALL]
        body = call.json if isinstance(call.json, dict) else dict(call.form)
        if len(self.response_url_deliveries(rid)) >= MAX_RESPONSE_URL_USES:
            self._violate("response_url", [(f"/response-url/{rid}",
                                            f"response_url used more than {MAX_RESPONSE_URL_USES} times")])
            return web.Response(status=404, text="used_url")
        require_content = not body.get("delete_original")
        error, issues = check_message(body, require_content=require_content)
        if error is not None:
            self._violate("response_url", issues)
            return web.Response(status=400, text=error)
        self._deliveries.append((rid, body))
        return web.json_response({"ok": True})
