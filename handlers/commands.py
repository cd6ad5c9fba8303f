"""/klaviyo: questions, the menu, and the subcommands help, areas, reset, lang."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation import Turn, ask, forget, set_language
from bot.errors import BotError
from bot.services import Services
from bot.threads import ThreadKey, changed_fields, save_changes
from handlers.answering import (asked_prefix, exposed_key_warning, lang_of, live_with_progress, needs_live,
                                post_answer, tell_failure)
from handlers.blocks import picker_blocks
from knowledge.models import BadInput
from knowledge.render import fallback_text, to_blocks

logger = logging.getLogger(__name__)



def register(app: AsyncApp) -> None:
    app.command("/klaviyo")(run_klaviyo_command)


def user_context_key(team_id: str, channel_id: str, user_id: str) -> ThreadKey:
    """The context a user builds with the menu and slash commands in one channel."""
    return ThreadKey(team_id, channel_id, f"user:{user_id}")


async def run_klaviyo_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond,
                              client: AsyncWebClient, context: AsyncBoltContext, services: Services) -> None:
    """Acks at once (Slack allows 3 seconds), then answers or runs the subcommand."""
    await ack()
    text = (command.get("text") or "").strip()
    team_id = context.team_id or command.get("team_id", "")
    channel_id = command["channel_id"]
    user_id = command["user_id"]
    key = user_context_key(team_id, channel_id, user_id)
    word, _, rest = text.partition(" ")
    word = word.lower()
    lang = lang_of(text)
    try:
        warning = exposed_key_warning(services, text)
        if warning is not None:  # a secret typed into Slack: warn, never store or echo it
            await respond(text=warning, response_type="ephemeral")
            return
        if not text or word in ("help", "areas", "menu", "帮助", "菜单"):
            await send_menu(respond, services, lang)
        elif word == "reset":
            await forget(services.sessions, key)
            await respond(text=services.engine.kb.labels(lang)["reset_done"], response_type="ephemeral")
        elif word == "lang":
            await set_lang(respond, services, key, rest.strip().lower())
        elif word in ("connect", "disconnect", "stats", "audit", "readiness", "list") and \
                services.extra.get("subcommands"):
            await services.extra["subcommands"](word, rest.strip(), command=command, respond=respond, client=client,
                                                context=context, services=services)
        else:
            await answer_command(text, command, respond, client, services, key)
    except BadInput as exc:
        await respond(text=exc.user_message, response_type="ephemeral")
    except BotError as exc:
        await respond(text=exc.user_message, response_type="ephemeral")
    except Exception:
        ref = await tell_failure(client, lang=lang, channel=channel_id, user=user_id, respond=respond)
        logger.exception("/klaviyo failed (ref %s)", ref)


async def send_menu(respond: AsyncRespond, services: Services, lang: str) -> None:
    answer = services.engine.menu(lang)
    blocks = to_blocks(answer)[:46] + picker_blocks(services.engine.kb, lang)
    await respond(text=fallback_text(answer), blocks=blocks, response_type="ephemeral")


async def set_lang(respond: AsyncRespond, services: Services, key: ThreadKey, choice: str) -> None:
    if choice not in ("en", "zh"):
        await respond(text="Usage: `/klaviyo lang en` or `/klaviyo lang zh`", response_type="ephemeral")
        return
    await set_language(services.sessions, key, choice)
    msg = "I'll answer in English from now on." if choice == "en" else "好的，之后我会用中文回答。"
    await respond(text=msg, response_type="ephemeral")


async def answer_command(question: str, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient,
                         services: Services, key: ThreadKey) -> None:
    """Posts the answer as a new message that restates the question; its thread carries the conversation."""
    turn = await ask(services.engine, services.db, key, question)
    prefix = asked_prefix(command["user_id"], question, turn.composed.answer.lang)
    if needs_live(services, turn):
        turn, posted = await live_with_progress(services, client, turn, channel=command["channel_id"], thread_ts=None,
                                                team_id=key.team_id, question=question, prefix=prefix)
        if posted is not None:
            await _seed_thread(services, key, posted, turn)
            return
    answer = turn.composed.answer
    if answer.private:
        await respond(text=fallback_text(answer), blocks=to_blocks(answer), response_type="ephemeral")
        return
    ts = await post_answer(client, channel=command["channel_id"], answer=answer, prefix=prefix, respond=respond)
    if ts is not None:
        await _seed_thread(services, key, ts, turn)


async def _seed_thread(services: Services, key: ThreadKey, ts: str, turn: Turn) -> None:
    """The new message is the thread root: the thread starts with everything this answer knew."""
    async with services.db.begin() as conn:
        await save_changes(conn, ThreadKey(key.team_id, key.channel_id, ts), changed_fields(None, turn.composed.state))
