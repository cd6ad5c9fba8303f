"""Replies in channel threads the bot is answering in: they continue the conversation without a mention."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import session_scope
from bot.services import Services
from bot.threads import ThreadKey, load_state
from handlers.answering import answer_in_thread

logger = logging.getLogger(__name__)

# Message subtypes that are not a person writing a new message: edits, deletions, joins, bot posts…
IGNORED_SUBTYPES = {"message_changed", "message_deleted", "message_replied", "bot_message", "channel_join",
                    "channel_leave", "thread_broadcast", "me_message", "channel_topic", "channel_purpose",
                    "channel_name", "tombstone", "assistant_app_thread", "ekm_access_denied"}


def is_human_message(event: dict[str, Any]) -> bool:
    subtype = event.get("subtype")
    return not event.get("bot_id") and not event.get("app_id") and (subtype is None or subtype == "file_share") \
        and subtype not in IGNORED_SUBTYPES and bool(event.get("user"))


async def is_channel_thread_reply(event: dict[str, Any]) -> bool:
    return event.get("channel_type") in ("channel", "group") and bool(event.get("thread_ts")) \
        and event.get("thread_ts") != event.get("ts") and is_human_message(event)


def register(app: AsyncApp) -> None:
    app.event("message", matchers=[is_channel_thread_reply])(continue_thread)


async def continue_thread(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
                          services: Services) -> None:
    """Answers a reply in a thread the bot already answers in; stays quiet in other threads."""
    text = event.get("text", "")
    if context.bot_user_id and f"<@{context.bot_user_id}" in text:
        return  # a mention: the app_mention listener answers it
    key = ThreadKey(context.team_id or event.get("team", ""), event["channel"], event["thread_ts"])
    try:
        async with session_scope(services.sessions) as session:
            if await load_state(session, key) is None:
                return
    except Exception as exc:  # without the database the bot cannot tell its threads from others': stay quiet
        logger.error("could not check thread %s: %s", key.thread_ts, exc.__class__.__name__)
        return
    await answer_in_thread(services, client, key=key, question=text, reply_thread_ts=event["thread_ts"],
                           user=event.get("user"))
