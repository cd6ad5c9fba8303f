"""Slack's AI-assistant panel, and replies in DM threads (Slack delivers both as threaded IM messages)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncAssistant, AsyncBoltContext, AsyncSay
from slack_bolt.context.set_status.async_set_status import AsyncSetStatus
from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import AsyncSetSuggestedPrompts
from slack_bolt.context.set_title.async_set_title import AsyncSetTitle
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation import Turn
from bot.services import Services
from bot.threads import ThreadKey
from handlers.answering import answer_in_thread
from knowledge.render import truncate
from knowledge.text import detect_lang

logger = logging.getLogger(__name__)

GREETING = ("Hi! I help with Klaviyo: flows, campaigns, segments, predictive analytics, SMS, forms, the API, "
            "billing and more. Ask in your own words, in English or 中文.")
PROMPTS = [
    {"title": "Build an abandoned cart flow", "message": "How do I build an abandoned cart flow with an SMS fallback?"},
    {"title": "Why are my predictions missing?", "message": "Why are predictive analytics (CLV, churn risk) missing "
                                                            "on my profiles?"},
    {"title": "Show my campaign stats", "message": "Show my campaign stats for the last 30 days"},
]
STATUS = {"en": "is looking this up…", "zh": "正在查找答案…"}


def build_assistant() -> AsyncAssistant:
    assistant = AsyncAssistant()
    assistant.thread_started(greet_assistant_thread)
    assistant.user_message(answer_assistant_message)
    return assistant


def register(app: AsyncApp) -> None:
    app.assistant(build_assistant())


async def greet_assistant_thread(say: AsyncSay, set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
    """Greets a new assistant thread and offers starter prompts."""
    await say(GREETING)
    try:
        await set_suggested_prompts(prompts=PROMPTS, title="Try one of these")
    except SlackApiError as exc:
        logger.info("suggested prompts unavailable: %s", exc.response.get("error"))


async def _quietly(call: Any, *args: Any, **kwargs: Any) -> None:
    """Assistant status and titles only work in assistant threads; in a plain DM thread they fail harmlessly."""
    try:
        await call(*args, **kwargs)
    except SlackApiError as exc:
        logger.debug("assistant call skipped: %s", exc.response.get("error"))


async def answer_assistant_message(payload: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
                                   set_status: AsyncSetStatus, set_title: AsyncSetTitle,
                                   services: Services) -> None:
    """Shows a status while composing, answers in the thread, and titles a new thread by its topic."""
    event = payload
    if event.get("subtype") not in (None, "file_share"):
        return
    thread_ts = event["thread_ts"]
    key = ThreadKey(context.team_id or event.get("team", ""), event["channel"], thread_ts)
    text = event.get("text", "")
    await _quietly(set_status, STATUS.get(detect_lang(text) or "en", STATUS["en"]))

    async def title_new_thread(turn: Turn) -> None:
        if turn.before.turns == 0:  # the thread's first question names its topic
            await _quietly(set_title, truncate(turn.composed.answer.title, 60))

    await answer_in_thread(services, client, key=key, question=text, reply_thread_ts=thread_ts,
                           user=event.get("user"), on_answer=title_new_thread)
