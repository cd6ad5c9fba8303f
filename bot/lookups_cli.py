"""Live Klaviyo lookups for the terminal: runs the lookup a question asks for when a key is configured."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiohttp

from bot.conversation import Turn
from bot.klaviyo import KlaviyoError
from bot.lookups import LiveLookupError, LookupService, fixed_key_client_factory
from bot.settings import Settings


async def answer_live_if_possible(turn: Turn, settings: Settings, sessions: Any, question: str) -> Turn:
    """Returns the turn with its answer replaced by live account data when the question asked for it and
    KLAVIYO_PRIVATE_KEY is set; otherwise the engine's answer (which says how to connect) stands."""
    intent = turn.composed.route.live
    if not intent or not settings.klaviyo_private_key:
        return turn
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        factory = fixed_key_client_factory(http, settings.klaviyo_private_key.get(), base_url=settings.klaviyo_api_url,
                                           revision=settings.klaviyo_revision)
        lookups = LookupService(factory, sessions)
        lang = turn.composed.answer.lang
        try:
            answer = await lookups.answer("terminal", intent, text=question, lang=lang)
        except (LiveLookupError, KlaviyoError) as exc:
            answer = replace(turn.composed.answer, intro=exc.message_for(lang))
    return Turn(replace(turn.composed, answer=replace(answer, area=turn.composed.answer.area, live=intent)), turn.before)
