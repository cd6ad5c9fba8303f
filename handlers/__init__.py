"""Slack entry points: one module per entry point, plus shared capabilities."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


def register_all(app: AsyncApp) -> None:
    """Registers every listener. Order matters: the assistant middleware takes threaded DM messages first."""
    from handlers import assistant, commands, direct_messages, home, interactivity, lookups, mentions, threads

    assistant.register(app)
    commands.register(app)
    mentions.register(app)
    threads.register(app)
    direct_messages.register(app)
    home.register(app)
    interactivity.register(app)
    lookups.register(app)
    _ignore_other_messages(app)


def _ignore_other_messages(app: AsyncApp) -> None:
    """Edits, deletions, bot posts and threads the bot is not part of: acknowledged, never answered."""

    async def ignore() -> None:
        return None

    app.event("message")(ignore)
