"""Live Klaviyo lookups in Slack: connecting an account, the lookup subcommands, and answering live intents.

Connecting is for workspace admins and owners (or KLAVIYO_CONNECT_ALLOWLIST): `/klaviyo connect` opens a
private form, the key is checked against Klaviyo, missing read scopes are named, and it is stored encrypted
(BOT_ENCRYPTION_KEY) and only ever shown again as a fingerprint. A key pasted into a conversation is
never stored: the bot says it is exposed and should be revoked.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy import delete

from bot.conversation import Turn
from bot.crypto import fingerprint, looks_like_private_key, redact_private_keys
from bot.db import KlaviyoConnection, ReportCache, session_scope
from bot.errors import BotError, ConfigError
from bot.klaviyo import KlaviyoClient, KlaviyoError
from bot.lookups import (KlaviyoNotConnected, LiveLookupError, LookupService, StoredKeyClientFactory,
                         connect_klaviyo, render_key_check)
from bot.services import Services
from handlers import ids
from handlers.answering import asked_prefix, finish_progress, lang_of, post_answer, post_progress
from knowledge.models import Answer
from knowledge.render import fallback_text, to_blocks

logger = logging.getLogger(__name__)

KEY_EXPOSED = {
    "en": "⚠️ That message contains what looks like a Klaviyo private API key ({fp}). It is now exposed to "
          "everyone who can read this conversation: revoke it in Klaviyo (*Settings → API keys*) and create a "
          "new one. I did not store it. To connect an account safely, use `/klaviyo connect`, which asks for "
          "the key in a private form.",
    "zh": "⚠️ 这条消息里包含一个疑似 Klaviyo 私有 API 密钥（{fp}）。它已经暴露给所有能看到这段对话的人：请在 Klaviyo "
          "（*设置 → API keys*）中撤销它并新建一个。我没有保存它。要安全地连接账户，请使用 `/klaviyo connect`，"
          "它会用私密表单收取密钥。",
}
ADMINS_ONLY = {"en": "Only workspace admins and owners can connect or disconnect a Klaviyo account.",
               "zh": "只有工作区管理员和所有者可以连接或断开 Klaviyo 账户。"}
USAGE = ("Lookups: `/klaviyo stats campaigns [7d|30d|90d|this month]`, `/klaviyo stats flows [30d]`, "
         "`/klaviyo readiness`, `/klaviyo audit`, `/klaviyo list flows|segments|lists|metrics`; "
         "admins: `/klaviyo connect`, `/klaviyo disconnect`.")


def register(app: AsyncApp) -> None:
    app.view(ids.CONNECT_MODAL)(save_connection_from_modal)


class CombinedClientFactory:
    """A workspace's own connected key first; the deployment's KLAVIYO_PRIVATE_KEY otherwise."""

    def __init__(self, services: Services) -> None:
        s = services.settings
        self._options = {"base_url": s.klaviyo_api_url, "revision": s.klaviyo_revision}
        self._stored = StoredKeyClientFactory(services.http, services.sessions,
                                              secret=s.bot_encryption_key.get() or None, **self._options) \
            if s.bot_encryption_key else None
        self._http = services.http
        self._fixed = s.klaviyo_private_key

    async def __call__(self, team_id: str) -> KlaviyoClient:
        if self._stored is not None:
            try:
                return await self._stored(team_id)
            except KlaviyoNotConnected:
                pass
        if self._fixed:
            return KlaviyoClient(self._http, self._fixed.get(), **self._options)  # type: ignore[arg-type]
        raise KlaviyoNotConnected()


def attach(services: Services) -> None:
    """Adds the lookup service and its hooks to the shared services."""
    services.lookups = LookupService(CombinedClientFactory(services), services.sessions)

    async def live(turn: Turn, team_id: str, question: str) -> Turn:
        return await run_live(services, turn, team_id, question)

    async def status(team_id: str) -> str:
        return await connection_status(services, team_id)

    services.extra["live"] = live
    services.extra["connection_status"] = status
    services.extra["subcommands"] = run_subcommand
    services.extra["key_guard"] = key_exposed_message


def key_exposed_message(text: str, lang: str) -> str | None:
    """The warning for a pasted private key, or None when the text has none."""
    if not looks_like_private_key(text):
        return None
    redacted = redact_private_keys(text)
    fp = next((w for w in redacted.split() if w.startswith("pk_") and "..." in w), "pk_…")
    return KEY_EXPOSED.get(lang, KEY_EXPOSED["en"]).format(fp=fp)


async def run_live(services: Services, turn: Turn, team_id: str, question: str) -> Turn:
    """Replaces the answer with the account's own numbers; the engine's fallback stays when not connected."""
    from dataclasses import replace

    composed = turn.composed
    lang = composed.answer.lang
    try:
        answer = await services.lookups.answer(team_id, composed.route.live or "", text=question, lang=lang)
    except KlaviyoNotConnected:
        return turn
    except (LiveLookupError, KlaviyoError) as exc:
        answer = replace(composed.answer, intro=exc.message_for(lang))
    answer = replace(answer, area=composed.answer.area, role=composed.answer.role, goal=composed.answer.goal,
                     live=composed.route.live)
    return Turn(replace(composed, answer=answer), turn.before)


async def connection_status(services: Services, team_id: str) -> str:
    async with session_scope(services.sessions) as session:
        row = await session.get(KlaviyoConnection, team_id)
    if row is not None:
        missing = f" Missing read scopes: {row.missing_scopes}." if row.missing_scopes else ""
        return (f"*Klaviyo account:* connected with key `{row.fingerprint}` "
                f"on {row.connected_at:%Y-%m-%d}.{missing} Admins can `/klaviyo disconnect`.")
    if services.settings.klaviyo_private_key:
        return (f"*Klaviyo account:* connected through the server's configuration "
                f"(key `{fingerprint(services.settings.klaviyo_private_key.get())}`).")
    return ("*Klaviyo account:* not connected. A workspace admin can run `/klaviyo connect` to enable live "
            "lookups: campaign and flow stats, predictive readiness and abandoned-cart flow audits.")


async def may_manage_connection(client: AsyncWebClient, services: Services, user_id: str) -> bool:
    if user_id in services.settings.connect_allowlist:
        return True
    try:
        info = await client.users_info(user=user_id)
    except SlackApiError as exc:
        logger.warning("users.info failed: %s", exc.response.get("error"))
        return False
    user = info.get("user") or {}
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


LOOKUP_WORDS = {"readiness": "predictive_readiness", "audit": "flow_audit"}


async def run_subcommand(word: str, rest: str, *, command: dict[str, Any], respond: AsyncRespond,
                         client: AsyncWebClient, context: AsyncBoltContext, services: Services) -> None:
    """`/klaviyo connect|disconnect|stats|readiness|audit|list …`."""
    lang = lang_of(rest, "en")
    team_id = context.team_id or command.get("team_id", "")
    user_id = command["user_id"]
    if word in ("connect", "disconnect"):
        if not await may_manage_connection(client, services, user_id):
            await respond(text=ADMINS_ONLY[lang], response_type="ephemeral")
            return
        if word == "connect":
            await open_connect_modal(client, services, command)
        else:
            async with session_scope(services.sessions) as session:
                await session.execute(delete(KlaviyoConnection).where(KlaviyoConnection.team_id == team_id))
                await session.execute(delete(ReportCache).where(
                    ReportCache.cache_key.startswith(f"klaviyo:v1:{team_id}:", autoescape=True)))
            await respond(text="Disconnected: the stored Klaviyo key and its cached results are deleted.",
                          response_type="ephemeral")
        return
    if word == "stats":
        kind, _, timeframe = rest.partition(" ")
        intent = {"campaigns": "campaign_stats", "campaign": "campaign_stats", "flows": "flow_stats",
                  "flow": "flow_stats"}.get(kind.lower())
        text = timeframe
    elif word == "list":
        intent, text = "listings", rest
    else:
        intent, text = LOOKUP_WORDS.get(word), rest
    if intent is None:
        await respond(text=USAGE, response_type="ephemeral")
        return
    question = f"/klaviyo {word} {rest}".strip()
    prefix = asked_prefix(user_id, question, lang)
    progress_ts = await post_progress(client, command["channel_id"], None, lang, prefix=prefix)
    try:
        answer = await services.lookups.answer(team_id, intent, text=text, lang=lang)
    except (LiveLookupError, KlaviyoError) as exc:
        answer = Answer(lang=lang, title="Live lookup" if lang == "en" else "实时查询",  # type: ignore[arg-type]
                        intro=exc.message_for(lang))  # type: ignore[arg-type]
    if progress_ts is not None:
        await finish_progress(client, command["channel_id"], progress_ts, answer, prefix=prefix)
    else:
        await post_answer(client, channel=command["channel_id"], answer=answer, prefix=prefix, respond=respond)


async def open_connect_modal(client: AsyncWebClient, services: Services, command: dict[str, Any]) -> None:
    if not services.settings.bot_encryption_key:
        raise ConfigError("Connecting needs BOT_ENCRYPTION_KEY on the server, so the key can be stored encrypted. "
                          "Ask whoever runs the bot to set it (a Fernet key), then try again.")
    meta = {"t": command.get("team_id"), "u": command["user_id"], "r": command.get("response_url")}
    await client.views_open(trigger_id=command["trigger_id"], view={
        "type": "modal", "callback_id": ids.CONNECT_MODAL, "private_metadata": json.dumps(meta),
        "title": {"type": "plain_text", "text": "Connect Klaviyo"},
        "submit": {"type": "plain_text", "text": "Connect"}, "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text":
                "Paste a Klaviyo *private API key* with read-only scopes (campaigns, flows, metrics, segments, "
                "lists, accounts). It is checked with Klaviyo, stored encrypted, and never shown again except "
                "as a fingerprint."}},
            {"type": "input", "block_id": ids.CONNECT_BLOCK, "label": {"type": "plain_text", "text": "Private key"},
             "element": {"type": "plain_text_input", "action_id": ids.CONNECT_INPUT,
                         "placeholder": {"type": "plain_text", "text": "pk_…"}}},
        ]})


async def save_connection_from_modal(ack: AsyncAck, view: dict[str, Any], body: dict[str, Any],
                                     context: AsyncBoltContext, services: Services) -> None:
    """Closes the form at once (Slack allows 3 seconds), then checks the key and reports privately."""
    key = (view["state"]["values"].get(ids.CONNECT_BLOCK, {}).get(ids.CONNECT_INPUT, {}).get("value") or "").strip()
    if not looks_like_private_key(key) or " " in key:
        await ack(response_action="errors",
                  errors={ids.CONNECT_BLOCK: "That is not a Klaviyo private key (it starts with pk_)."})
        return
    await ack()
    meta = json.loads(view.get("private_metadata") or "{}")
    team_id = context.team_id or meta.get("t") or ""
    s = services.settings
    try:
        check = await connect_klaviyo(services.http, services.sessions, team_id, key,
                                      connected_by=body.get("user", {}).get("id"),
                                      secret=s.bot_encryption_key.get() or None, base_url=s.klaviyo_api_url,
                                      revision=s.klaviyo_revision)
        answer = render_key_check(check, fingerprint(key), "en")
    except BotError as exc:
        answer = Answer(lang="en", title="Connect Klaviyo", intro=exc.user_message)
    logger.info("klaviyo connect for %s: %s", team_id, "ok" if answer.intro and "Connected" in answer.intro else
                "not connected")
    if meta.get("r"):
        await AsyncWebhookClient(meta["r"]).send(text=fallback_text(answer), blocks=to_blocks(answer),
                                                 response_type="ephemeral", replace_original=False)
