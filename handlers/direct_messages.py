"""Direct messages: answer in a thread under the user's message; the thread continues the conversation."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.threads import ThreadKey
from handlers.answering import answer_in_thread
from handlers.threads import is_human_message


async def is_top_level_direct_message(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" and not event.get("thread_ts") and is_human_message(event)


def register(app: AsyncApp) -> None:
    app.event("message", matchers=[is_top_level_direct_message])(answer_direct_message)


async def answer_direct_message(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
                                services: Services) -> None:
    """A new DM starts a conversation in its own thread."""
    key = ThreadKey(context.team_id or event.get("team", ""), event["channel"], event["ts"])
    await answer_in_thread(services, client, key=key, question=event.get("text", ""), reply_thread_ts=event["ts"],
                           user=event.get("user"))
