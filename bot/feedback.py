"""Thumbs up / down on answers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import Feedback, session_scope


async def save_vote(sessions: async_sessionmaker[AsyncSession], *, team_id: str, channel_id: str, message_ts: str,
                    user_id: str, vote: int, entry: str | None, area: str | None) -> int:
    """Stores one vote (a user's later vote on the same answer replaces the earlier one); returns its id."""
    async with session_scope(sessions) as session:
        existing = (await session.execute(select(Feedback).where(
            Feedback.team_id == team_id, Feedback.channel_id == channel_id, Feedback.message_ts == message_ts,
            Feedback.user_id == user_id))).scalar_one_or_none()
        if existing is not None:
            existing.vote, existing.entry, existing.area = vote, entry, area
            await session.flush()
            return existing.id
        row = Feedback(team_id=team_id, channel_id=channel_id, message_ts=message_ts, user_id=user_id, vote=vote,
                       entry=entry, area=area)
        session.add(row)
        await session.flush()
        return row.id


async def save_comment(sessions: async_sessionmaker[AsyncSession], feedback_id: int, comment: str) -> None:
    async with session_scope(sessions) as session:
        row = await session.get(Feedback, feedback_id)
        if row is not None:
            row.comment = comment[:3000]
