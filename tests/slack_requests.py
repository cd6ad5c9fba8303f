"""Builders for signed Slack HTTP deliveries (events, slash commands, interactivity) from shared fixtures."""

from __future__ import annotations

import copy
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from slack_sdk.signature import SignatureVerifier

FIXTURES_ENV = "SLACK_FIXTURES_DIR"
DEFAULT_FIXTURES_DIR = Path(__file__).resolve().parents[2] / "shared" / "slack-fixtures"

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
RETRY_REASONS = frozenset({"http_timeout", "too_many_redirects", "connection_failed", "ssl_error",
                           "http_error", "unknown_error"})

# Inner-event fields a test may override by keyword in event_body(); anything else goes through event={...}.
EVENT_FIELDS = frozenset({
    "text", "user", "channel", "ts", "thread_ts", "channel_type", "bot_id", "subtype", "event_ts", "type",
    "blocks", "files", "tab", "view", "team", "app_id", "bot_profile", "client_msg_id", "assistant_thread",
})
WRAPPER_FIELDS = frozenset({
    "event_id", "team_id", "api_app_id", "authorizations", "event_time", "enterprise_id",
    "is_ext_shared_channel", "event_context", "context_team_id", "context_enterprise_id", "token",
    "authed_users",
})

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")


def fixtures_dir() -> Path:
    """Folder of the Slack fixtures: $SLACK_FIXTURES_DIR, else ../shared/slack-fixtures beside the repo."""
    override = os.environ.get(FIXTURES_ENV)
    return Path(override) if override else DEFAULT_FIXTURES_DIR


def fixture_text(name: str) -> str:
    """Exact text of a fixture file (no newline handling: wire bodies are byte-exact)."""
    path = fixtures_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"Slack fixture {name!r} not found in {path.parent} (set {FIXTURES_ENV})")
    return path.read_text(encoding="utf-8")


def load_fixture(name: str) -> Any:
    """A JSON fixture, parsed (a fresh copy on every call)."""
    return json.loads(fixture_text(name))


# ---- signing and headers -----------------------------------------------------------------------

def signed_headers(body: str, secret: str, timestamp: int | None = None,
                   content_type: str | None = None) -> dict[str, str]:
    """Headers Slack sends with `body`, signed v0 with `secret` (content type guessed when None)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    if content_type is None:
        content_type = JSON_CONTENT_TYPE if body.lstrip().startswith("{") else FORM_CONTENT_TYPE
    signature = SignatureVerifier(signing_secret=secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "User-Agent": SLACK_USER_AGENT,
        "Accept": "application/json,*/*",
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def retry_headers(num: int = 1, reason: str = "http_timeout") -> dict[str, str]:
    """X-Slack-Retry-Num / X-Slack-Retry-Reason as Slack adds them to an Events API re-delivery."""
    if num not in (1, 2, 3):
        raise ValueError("Slack retries an event at most 3 times: num must be 1, 2 or 3")
    if reason not in RETRY_REASONS:
        raise ValueError(f"unknown retry reason {reason!r}; Slack sends one of {sorted(RETRY_REASONS)}")
    return {"X-Slack-Retry-Num": str(num), "X-Slack-Retry-Reason": reason}


# ---- slash commands ----------------------------------------------------------------------------

def command_body(text: str = "", *, response_url: str, user_id: str = "U2147483697",
                 channel_id: str = "C2147483705", team_id: str = "T0001",
                 trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
                 channel_name: str | None = None,
                 command: str = "/klaviyo", user_name: str = "Steve", team_domain: str = "example",
                 api_app_id: str = "A123456", token: str = "gIkuvaNzQIHg97ATvDxqgjtO",
                 enterprise_id: str | None = None, enterprise_name: str | None = None,
                 is_enterprise_install: bool = False) -> str:
    """Form body of a slash command in slash_command.form.txt's field order (spaces as +)."""
    if channel_name is None:
        channel_name = "directmessage" if channel_id.startswith("D") else "test"
    fields: list[tuple[str, str]] = [("token", token), ("team_id", team_id), ("team_domain", team_domain)]
    if enterprise_id is not None:
        fields.append(("enterprise_id", enterprise_id))
    if enterprise_name is not None:
        fields.append(("enterprise_name", enterprise_name))
    fields += [
        ("channel_id", channel_id), ("channel_name", channel_name),
        ("user_id", user_id), ("user_name", user_name),
        ("command", command), ("text", text), ("api_app_id", api_app_id),
        ("is_enterprise_install", "true" if is_enterprise_install else "false"),
        ("response_url", response_url), ("trigger_id", trigger_id),
    ]
    return urlencode(fields)


# ---- Events API ----------------------------------------------------------------------------------

def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """A rich_text block mirroring `text` like Slack's for typed messages (mentions as user elements)."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in _MENTION.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos:match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    return [{"type": "rich_text", "block_id": "Sesm",
             "elements": [{"type": "rich_text_section", "elements": elements}]}]


def new_event_id() -> str:
    """A fresh Events API event_id (every real delivery of a new event has its own)."""
    return "Ev" + uuid.uuid4().hex[:10].upper()


def event_envelope(fixture_name_or_dict: str | dict[str, Any], *, event: dict[str, Any] | None = None,
                   **overrides: Any) -> dict[str, Any]:
    """event_body() as a dict: the fixture (or dict) with inner-event and wrapper overrides applied."""
    body = load_fixture(fixture_name_or_dict) if isinstance(fixture_name_or_dict, str) \
        else copy.deepcopy(fixture_name_or_dict)
    inner: dict[str, Any] = body.setdefault("event", {})
    unknown = set(overrides) - EVENT_FIELDS - WRAPPER_FIELDS
    if unknown:
        raise TypeError(f"unknown event_body override(s) {sorted(unknown)}; "
                        "pass other inner-event fields as event={...}")
    event_over = {k: v for k, v in overrides.items() if k in EVENT_FIELDS}
    event_over.update(event or {})
    wrapper_over = {k: v for k, v in overrides.items() if k in WRAPPER_FIELDS}

    # Real events carry rich_text blocks that mirror the text; keep them consistent when the text changes.
    new_text = event_over.get("text")
    if new_text is not None and "blocks" not in event_over and "blocks" in inner:
        event_over["blocks"] = rich_text_blocks(new_text)
    if "ts" in event_over and "event_ts" not in event_over and inner.get("event_ts") == inner.get("ts"):
        event_over["event_ts"] = event_over["ts"]
    team_id = wrapper_over.get("team_id")
    if team_id is not None:
        if "authorizations" not in wrapper_over:
            for auth in body.get("authorizations") or []:
                auth["team_id"] = team_id
        if "team" in inner and "team" not in event_over:
            event_over["team"] = team_id
    wrapper_over.setdefault("event_id", new_event_id())

    for target, changes in ((inner, event_over), (body, wrapper_over)):
        for key, value in changes.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    return body


def event_body(fixture_name_or_dict: str | dict[str, Any], *, event: dict[str, Any] | None = None,
               **overrides: Any) -> str:
    """Compact JSON of an event_callback fixture with overrides (None deletes a field; fresh event_id)."""
    return json.dumps(event_envelope(fixture_name_or_dict, event=event, **overrides), separators=(",", ":"))


# ---- interactivity -------------------------------------------------------------------------------

def interactive_body(payload: dict[str, Any]) -> str:
    """Form body of an interaction: "payload=" + percent-encoded compact JSON."""
    return "payload=" + quote(json.dumps(payload, separators=(",", ":")), safe="")


def _user_and_team(payload: dict[str, Any], user_id: str | None, team_id: str | None) -> None:
    if user_id is not None:
        payload["user"]["id"] = user_id
    if team_id is not None:
        payload["team"]["id"] = team_id
        payload["user"]["team_id"] = team_id


def block_actions_payload(action_id: str = "a", *, value: str | None = "click_me_123", block_id: str = "b",
                          selected_option: dict[str, Any] | None = None, response_url: str | None = None,
                          user_id: str | None = None, team_id: str | None = None, channel_id: str = "C111",
                          message_ts: str = "111.222", trigger_id: str = "111.222.valid",
                          button_text: str = "Button",
                          view: dict[str, Any] | None = None,
                          state_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A block_actions payload (button, or static_select when `selected_option` is given).

    In a message (default) `response_url` is required so replies reach a fake, never hooks.slack.com;
    with `view` the container is that modal/Home view and there is no response_url or channel.
    """
    payload: dict[str, Any] = load_fixture("interactive_block_actions_button_message.json")
    _user_and_team(payload, user_id, team_id)
    payload["trigger_id"] = trigger_id
    if selected_option is not None:
        action: dict[str, Any] = {"type": "static_select", "action_id": action_id, "block_id": block_id,
                                  "selected_option": selected_option, "action_ts": "1596530385.194939"}
        default_state = {block_id: {action_id: {"type": "static_select", "selected_option": selected_option}}}
    else:
        action = {"action_id": action_id, "block_id": block_id,
                  "text": {"type": "plain_text", "text": button_text, "emoji": True},
                  "type": "button", "action_ts": "1596530385.194939"}
        if value is not None:
            action["value"] = value
        default_state = None
    payload["actions"] = [action]
    state = state_values if state_values is not None else default_state
    if view is not None:
        view = copy.deepcopy(view)
        view.setdefault("id", "V111")
        view.setdefault("team_id", payload["team"]["id"])
        if state is not None:
            view["state"] = {"values": state}
        payload["container"] = {"type": "view", "view_id": view["id"]}
        payload["view"] = view
        payload.pop("channel", None)
        payload.pop("response_url", None)
        return payload
    if response_url is None:
        raise ValueError("a message block_actions payload needs response_url=slack_api.response_url(...)")
    payload["response_url"] = response_url
    payload["container"] = {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                            "is_ephemeral": False}
    payload["channel"] = {"id": channel_id, "name": payload["channel"]["name"]}
    if state is not None:
        payload["state"] = {"values": state}
    return payload


def _input_value(value: Any) -> dict[str, Any]:
    """A state.values leaf: strings (and None) become plain_text_input values, dicts pass through."""
    if isinstance(value, str) or value is None:
        return {"type": "plain_text_input", "value": value}
    return dict(value)


def _input_block(block_id: str, action_id: str, element_type: str) -> dict[str, Any]:
    """An input block matching one state.values entry."""
    return {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": block_id},
            "optional": False, "element": {"type": element_type, "action_id": action_id}}


def view_submission_payload(callback_id: str = "view-id", *, values: dict[str, dict[str, Any]] | None = None,
                            private_metadata: str = "This is for you!", user_id: str | None = None,
                            team_id: str | None = None, view_id: str = "V111",
                            trigger_id: str = "111.222.valid",
                            blocks: list[dict[str, Any]] | None = None,
                            response_urls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A view_submission payload; `values` is state.values {block_id: {action_id: value or str}}."""
    payload: dict[str, Any] = load_fixture("interactive_view_submission.json")
    _user_and_team(payload, user_id, team_id)
    payload["trigger_id"] = trigger_id
    payload["response_urls"] = list(response_urls or [])
    view = payload["view"]
    view.update(id=view_id, root_view_id=view_id, callback_id=callback_id, private_metadata=private_metadata,
                team_id=payload["team"]["id"], app_installed_team_id=payload["team"]["id"])
    if values is not None:
        state: dict[str, dict[str, Any]] = {}
        for bid, actions in values.items():
            state[bid] = {aid: _input_value(val) for aid, val in actions.items()}
        view["state"] = {"values": state}
        if blocks is None:
            blocks = [_input_block(bid, aid, value["type"])
                      for bid, actions in state.items() for aid, value in list(actions.items())[:1]]
    if blocks is not None:
        view["blocks"] = blocks
    return payload
