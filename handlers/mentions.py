"""@mentions in channels: answer in the thread, and remember the thread."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.threads import ThreadKey
from handlers.answering import answer_in_thread

MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def register(app: AsyncApp) -> None:
    app.event("app_mention")(answer_mention)


def strip_mentions(text: str) -> str:
    return " ".join(MENTION.sub(" ", text or "").split())


async def answer_mention(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
                         services: Services) -> None:
    """Replies in the mention's thread (the thread's root ts, or the mention's own ts)."""
    if event.get("bot_id") or event.get("subtype"):
        return
    thread_ts = event.get("thread_ts") or event["ts"]
    key = ThreadKey(context.team_id or event.get("team", ""), event["channel"], thread_ts)
    question = strip_mentions(event.get("text", "")) or "help"
    await answer_in_thread(services, client, key=key, question=question, reply_thread_ts=thread_ts,
                           user=event.get("user"))
