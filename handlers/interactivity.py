"""Menu picks (area, role, goal), feedback buttons and their modals."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.db import session_scope
from bot.feedback import save_comment, save_vote
from bot.services import Services
from bot.threads import ThreadKey, load_state, save_changes
from handlers import ids
from handlers.blocks import feedback_modal, goal_modal, picker_blocks
from handlers.commands import user_context_key
from knowledge.models import ThreadState
from knowledge.render import fallback_text, to_blocks

logger = logging.getLogger(__name__)

THANKS = {"en": "Thanks for the feedback!", "zh": "感谢反馈！"}
GOAL_SAVED = {"en": "Goal saved: _{goal}_. I'll keep it in mind.", "zh": "目标已保存：_{goal}_，之后的回答会考虑它。"}


def register(app: AsyncApp) -> None:
    app.action(ids.AREA_SELECT)(pick_area)
    app.action(ids.ROLE_SELECT)(pick_role)
    app.action(ids.GOAL_BUTTON)(open_goal_modal)
    app.view(ids.GOAL_MODAL)(save_goal)
    app.action(ids.FEEDBACK_UP)(record_vote)
    app.action(ids.FEEDBACK_DOWN)(record_vote)
    app.view(ids.FEEDBACK_MODAL)(save_feedback_comment)


def _key(body: dict[str, Any], context: AsyncBoltContext) -> ThreadKey:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
    return user_context_key(context.team_id or "", channel, body["user"]["id"])


async def _load(services: Services, key: ThreadKey) -> ThreadState:
    async with session_scope(services.sessions) as session:
        return await load_state(session, key) or ThreadState()


async def _answer_in_place(respond: AsyncRespond, services: Services, message: str, state: ThreadState) -> None:
    composed = services.engine.compose(message, state, turn=state.turns)
    answer = composed.answer
    blocks = to_blocks(answer)[:46] + picker_blocks(services.engine.kb, answer.lang)
    await respond(text=fallback_text(answer), blocks=blocks, replace_original=True, response_type="ephemeral")


async def pick_area(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                    context: AsyncBoltContext, services: Services) -> None:
    """Answers the area pick in place and remembers it for the user's next questions here."""
    await ack()
    letter = (action.get("selected_option") or {}).get("value")
    if not letter:
        return
    key = _key(body, context)
    state = await _load(services, key)
    async with session_scope(services.sessions) as session:
        await save_changes(session, key, {"area": letter})
    await _answer_in_place(respond, services, f"area {letter}", state)


async def pick_role(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                    context: AsyncBoltContext, services: Services) -> None:
    await ack()
    role = (action.get("selected_option") or {}).get("value")
    if not role or role not in services.engine.kb.roles:
        return
    key = _key(body, context)
    state = await _load(services, key)
    async with session_scope(services.sessions) as session:
        await save_changes(session, key, {"role": role})
    letter = services.engine.kb.roles[role]["letter"]
    await _answer_in_place(respond, services, f"role {letter}", state)


async def open_goal_modal(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                          context: AsyncBoltContext) -> None:
    """Opens the goal modal right away: the trigger_id expires after 3 seconds."""
    await ack()
    lang = action.get("value") if action.get("value") in ("en", "zh") else "en"
    key = _key(body, context)
    meta = {"t": key.team_id, "c": key.channel_id, "u": body["user"]["id"], "l": lang,
            "r": body.get("response_url")}
    await client.views_open(trigger_id=body["trigger_id"], view=goal_modal(lang, meta))


async def save_goal(ack: AsyncAck, view: dict[str, Any], services: Services) -> None:
    goal = (view["state"]["values"].get(ids.GOAL_BLOCK, {}).get(ids.GOAL_INPUT, {}).get("value") or "").strip()
    meta = json.loads(view.get("private_metadata") or "{}")
    lang = meta.get("l", "en")
    if not goal:
        await ack(response_action="errors", errors={ids.GOAL_BLOCK: "Please describe your goal." if lang == "en"
                                                     else "请填写你的目标。"})
        return
    await ack()
    key = ThreadKey(meta.get("t", ""), meta.get("c", ""), f"user:{meta.get('u', '')}")
    async with session_scope(services.sessions) as session:
        await save_changes(session, key, {"goal": goal[:500]})
    if meta.get("r"):
        from knowledge.engine import slack_escape

        text = GOAL_SAVED[lang].format(goal=slack_escape(goal[:500]))
        await AsyncWebhookClient(meta["r"]).send(text=text, response_type="ephemeral", replace_original=False)


async def record_vote(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                      client: AsyncWebClient, context: AsyncBoltContext, services: Services) -> None:
    """Stores the vote with the answer's entry and area; a thumbs down asks what was missing."""
    await ack()
    try:
        meta = json.loads(action.get("value") or "{}")
    except ValueError:
        meta = {}
    lang = meta.get("l", "en") if meta.get("l") in ("en", "zh") else "en"
    container = body.get("container") or {}
    message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts", "")
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id", "")
    vote = 1 if action["action_id"] == ids.FEEDBACK_UP else -1
    feedback_id = await save_vote(services.sessions, team_id=context.team_id or "", channel_id=channel,
                                  message_ts=message_ts, user_id=body["user"]["id"], vote=vote,
                                  entry=meta.get("e"), area=meta.get("a"))
    if vote < 0 and body.get("trigger_id"):
        await client.views_open(trigger_id=body["trigger_id"], view=feedback_modal(lang, {"f": feedback_id, "l": lang}))
    else:
        await respond(text=THANKS[lang], response_type="ephemeral", replace_original=False)


async def save_feedback_comment(ack: AsyncAck, view: dict[str, Any], services: Services) -> None:
    await ack()
    meta = json.loads(view.get("private_metadata") or "{}")
    comment = (view["state"]["values"].get(ids.FEEDBACK_BLOCK, {}).get(ids.FEEDBACK_INPUT, {}).get("value") or "")
    if meta.get("f") and comment.strip():
        await save_comment(services.sessions, int(meta["f"]), comment.strip())
