"""Exactly-once handling of Slack deliveries: a delivery is claimed in the database before it is answered.

Slack retries an event it thinks timed out (X-Slack-Retry-Num 1-3), possibly while the first delivery is
still being handled and possibly on another process. The claim is an INSERT on a primary key, so of any
number of concurrent deliveries of one event exactly one wins, whichever process it reached.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import ProcessedEvent, session_scope, utcnow

KEEP_FOR = timedelta(days=2)  # Slack stops retrying after about 5 minutes (24 h with delayed events)


async def claim(sessions: async_sessionmaker[AsyncSession], event_key: str) -> bool:
    """True when this process is the first to see `event_key`; False for a duplicate delivery."""
    async with session_scope(sessions) as session:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(ProcessedEvent).values(event_key=event_key[:160], created_at=utcnow())
        stmt = stmt.on_conflict_do_nothing(index_elements=["event_key"])
        result = await session.execute(stmt)
        return (result.rowcount or 0) == 1


async def prune(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Deletes claims older than KEEP_FOR; returns how many."""
    async with session_scope(sessions) as session:
        result = await session.execute(delete(ProcessedEvent).where(ProcessedEvent.created_at < utcnow() - KEEP_FOR))
        return result.rowcount or 0
