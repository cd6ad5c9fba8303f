"""Question → context → answer → Slack message, shared by the slash command, mentions, threads and DMs.

Posting never drops an answer silently: Block Kit rejections fall back to plain text, a channel the bot
cannot post in falls back to the private response_url with a hint to invite the bot, and any other
failure gives the user a short message with a reference id while the log keeps the detail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation import Turn, ask
from bot.errors import BotError, new_reference
from bot.services import Services
from bot.threads import ThreadKey
from handlers.blocks import feedback_blocks
from knowledge.engine import slack_escape
from knowledge.models import Answer, BadInput
from knowledge.render import fallback_text, to_blocks, truncate
from knowledge.text import detect_lang

logger = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]

BLOCK_ERRORS = {"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long"}
CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}

INVITE_HINT = {
    "en": "_I can't post in this conversation, so only you see this answer. To share answers here, add me "
          "with `/invite @Klaviyo Helper` (in a DM between other people, mention me in a channel instead)._",
    "zh": "_我无法在这个会话里发消息，所以只有你能看到这条回答。想在这里共享回答，请用 `/invite @Klaviyo Helper` "
          "把我拉进来（如果是其他人之间的私信，请改在频道里 @我）。_",
}
FAILURE = {
    "en": "Sorry, something went wrong while answering (reference `{ref}`). Please try again.",
    "zh": "抱歉，回答时出了点问题（参考编号 `{ref}`），请再试一次。",
}


PROGRESS = {"en": "⏳ Looking this up in your Klaviyo account…", "zh": "⏳ 正在查询你的 Klaviyo 账户…"}


def lang_of(text: str, fallback: str = "en") -> str:
    return detect_lang(text) or fallback


def needs_live(services: Services, turn: Turn) -> bool:
    return services.extra.get("live") is not None and bool(turn.composed.route.live)


def exposed_key_warning(services: Services, question: str) -> str | None:
    guard = services.extra.get("key_guard")
    return guard(question, lang_of(question)) if guard is not None else None


def answer_blocks(answer: Answer, *, prefix: str | None = None, feedback: bool = True) -> list[dict[str, Any]]:
    footer = feedback_blocks(answer.lang, answer.entry, answer.area) if feedback else []
    blocks = to_blocks(answer, footer=footer)
    if prefix:
        blocks.insert(0, {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(prefix, 3000)}]})
        if len(blocks) > 50:
            del blocks[-len(footer) - 2]
    return blocks


async def post_answer(client: AsyncWebClient, *, channel: str, answer: Answer, thread_ts: str | None = None,
                      prefix: str | None = None, respond: Respond | None = None) -> str | None:
    """Posts the answer; returns the message ts, or None when it could only be delivered privately."""
    text = fallback_text(answer)
    if prefix:
        text = truncate(f"{prefix}\n{text}", 3900)
    blocks = answer_blocks(answer, prefix=prefix)
    try:
        resp = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks,
                                             unfurl_links=False, unfurl_media=False)
        return str(resp["ts"])
    except SlackApiError as exc:
        error = exc.response.get("error", "")
        if error in BLOCK_ERRORS or error == "msg_too_long":
            logger.warning("chat.postMessage rejected the blocks (%s); posting plain text", error)
            limit = 3900 if error in BLOCK_ERRORS else 2000
            resp = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=truncate(text, limit),
                                                 unfurl_links=False, unfurl_media=False)
            return str(resp["ts"])
        if error in CANNOT_POST and respond is not None:
            logger.info("cannot post in %s (%s); answering privately", channel, error)
            hint = {"type": "context", "elements": [{"type": "mrkdwn", "text": INVITE_HINT[answer.lang]}]}
            await respond(text=text, blocks=[*answer_blocks(answer, prefix=prefix, feedback=False)[:48], hint],
                          response_type="ephemeral", replace_original=False)
            return None
        raise


async def tell_failure(client: AsyncWebClient, *, lang: str, channel: str | None, user: str | None,
                       thread_ts: str | None = None, respond: Respond | None = None,
                       message: str | None = None) -> str:
    """Tells the user (privately where possible) that answering failed; returns the reference id."""
    ref = new_reference()
    text = message or FAILURE.get(lang, FAILURE["en"]).format(ref=ref)
    try:
        if respond is not None:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        elif channel and thread_ts:
            await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        elif channel and user:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as exc:
        logger.error("could not tell the user about failure %s: %s", ref, exc.response.get("error"))
    return ref


async def answer_in_thread(services: Services, client: AsyncWebClient, *, key: ThreadKey, question: str,
                           reply_thread_ts: str, user: str | None, respond: Respond | None = None,
                           on_answer: Callable[[Turn], Awaitable[Any]] | None = None) -> str | None:
    """The whole round trip for mentions, thread replies and DMs; never raises to Bolt."""
    lang = lang_of(question)
    try:
        warning = exposed_key_warning(services, question)
        if warning is not None:  # never answer (or remember) a message that carries a secret
            await client.chat_postMessage(channel=key.channel_id, thread_ts=reply_thread_ts, text=warning)
            return None
        turn = await ask(services.engine, services.db, key, question)
        posted = None
        if needs_live(services, turn):
            turn, posted = await live_with_progress(services, client, turn, channel=key.channel_id,
                                                    thread_ts=reply_thread_ts, team_id=key.team_id,
                                                    question=question)
        if on_answer is not None:
            await on_answer(turn)
        if posted is not None:
            return posted
        answer = turn.composed.answer
        if answer.private and not key.channel_id.startswith("D"):
            # Profile-level data never goes into a channel: deliver it privately.
            if user:
                await client.chat_postEphemeral(channel=key.channel_id, user=user, thread_ts=reply_thread_ts,
                                                text=fallback_text(answer), blocks=answer_blocks(answer))
            return None
        return await post_answer(client, channel=key.channel_id, answer=answer, thread_ts=reply_thread_ts,
                                 respond=respond)
    except BadInput as exc:
        await tell_failure(client, lang=lang, channel=key.channel_id, user=user, thread_ts=reply_thread_ts,
                           respond=respond, message=exc.user_message)
    except BotError as exc:
        logger.info("answer failed with a known error: %s", exc)
        await tell_failure(client, lang=lang, channel=key.channel_id, user=user, thread_ts=reply_thread_ts,
                           respond=respond, message=exc.user_message)
    except Exception:
        ref = await tell_failure(client, lang=lang, channel=key.channel_id, user=user, thread_ts=reply_thread_ts,
                                 respond=respond)
        logger.exception("answering failed (ref %s)", ref)
    return None


async def post_progress(client: AsyncWebClient, channel: str, thread_ts: str | None, lang: str, *,
                        prefix: str | None = None) -> str | None:
    """Posts the 'looking it up' line a slow lookup shows meanwhile; None when the bot cannot post here."""
    text = PROGRESS.get(lang, PROGRESS["en"])
    if prefix:
        text = f"{prefix}\n{text}"
    try:
        resp = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        return str(resp["ts"])
    except SlackApiError as exc:
        logger.info("cannot post progress in %s: %s", channel, exc.response.get("error"))
        return None


async def finish_progress(client: AsyncWebClient, channel: str, ts: str, answer: Answer, *,
                          prefix: str | None = None) -> None:
    """Replaces the progress line with the answer (a new reply if the update is refused)."""
    text = fallback_text(answer)
    blocks = answer_blocks(answer, prefix=prefix)
    try:
        await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
    except SlackApiError as exc:
        logger.warning("chat.update failed (%s); posting the answer as a reply", exc.response.get("error"))
        await client.chat_postMessage(channel=channel, thread_ts=ts, text=text[:3900])


async def live_with_progress(services: Services, client: AsyncWebClient, turn: Turn, *, channel: str,
                             thread_ts: str | None, team_id: str, question: str,
                             prefix: str | None = None) -> tuple[Turn, str | None]:
    """Shows 'looking this up…' at once, runs the live lookup, and puts the answer in its place.

    Returns the turn with the account's data and the ts of the message that now holds it, or None when
    the answer still has to be delivered (the bot could not post, or the answer is private)."""
    progress = await post_progress(client, channel, thread_ts, turn.composed.answer.lang, prefix=prefix)
    turn = await services.extra["live"](turn, team_id, question)
    if progress is None or turn.composed.answer.private:
        return turn, None
    await finish_progress(client, channel, progress, turn.composed.answer, prefix=prefix)
    return turn, progress


def asked_prefix(user_id: str, question: str, lang: str) -> str:
    """The line that restates a slash-command question, which the asker does not otherwise see."""
    verb = "asked" if lang == "en" else "提问"
    return f"<@{user_id}> {verb}: {slack_escape(truncate(question, 2500))}"
