"""Per-thread context: what a conversation remembers, keyed by (team, channel, thread_ts)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.db import ThreadContext, utcnow
from knowledge.models import ThreadState

# Columns a message may change. Only the ones a message actually changes are written, so two messages
# handled at once in one thread (two processes, or two tasks) never overwrite each other's update.
STATE_FIELDS = ("area", "role", "goal", "lang", "last_entry", "lang_pinned")


@dataclass(frozen=True)
class ThreadKey:
    team_id: str
    channel_id: str
    thread_ts: str

    @classmethod
    def for_terminal(cls, thread_id: str) -> ThreadKey:
        return cls("terminal", "cli", thread_id)


_T = ThreadContext.__table__
_LOAD = select(_T.c.area, _T.c.role, _T.c.goal, _T.c.lang, _T.c.last_entry, _T.c.lang_pinned, _T.c.turns)


async def load_state(conn: AsyncSession | AsyncConnection, key: ThreadKey) -> ThreadState | None:
    """Returns what we remember about this thread, or None for a new thread (one Core SELECT)."""
    result = await conn.execute(_LOAD.where(_T.c.team_id == key.team_id, _T.c.channel_id == key.channel_id,
                                            _T.c.thread_ts == key.thread_ts))
    row = result.first()
    if row is None:
        return None
    return ThreadState(area=row.area, role=row.role, goal=row.goal, lang=row.lang,  # type: ignore[arg-type]
                       last_entry=row.last_entry, lang_pinned=row.lang_pinned, turns=row.turns)


def changed_fields(before: ThreadState | None, after: ThreadState) -> dict[str, Any]:
    """The fields `after` sets differently from `before`."""
    before = before or ThreadState()
    return {f: getattr(after, f) for f in STATE_FIELDS if getattr(after, f) != getattr(before, f)}


_INSERT_COLUMNS = ("team_id", "channel_id", "thread_ts", "area", "role", "goal", "lang", "last_entry",
                   "lang_pinned", "turns", "created_at", "updated_at")


@lru_cache(maxsize=256)
def _upsert(dialect: str, changed: tuple[str, ...]) -> Any:
    """The upsert for one set of changed columns, built once: statement construction is costly per call."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_T)
    update: dict[str, Any] = {name: stmt.excluded[name] for name in changed}
    update["updated_at"] = stmt.excluded.updated_at
    update["turns"] = _T.c.turns + 1
    return stmt.on_conflict_do_update(index_elements=["team_id", "channel_id", "thread_ts"], set_=update)


async def save_changes(session: AsyncSession | AsyncConnection, key: ThreadKey, changes: dict[str, Any]) -> None:
    """Creates the thread row or updates only the changed columns, atomically (one upsert)."""
    now = utcnow()
    values: dict[str, Any] = {"team_id": key.team_id, "channel_id": key.channel_id, "thread_ts": key.thread_ts,
                              "area": None, "role": None, "goal": None, "lang": None, "last_entry": None,
                              "lang_pinned": False, "turns": 1, "created_at": now, "updated_at": now}
    values.update(changes)
    await session.execute(_upsert(_dialect(session), tuple(sorted(changes))), values)


def _dialect(conn: AsyncSession | AsyncConnection) -> str:
    bind = conn.bind if isinstance(conn, AsyncSession) else conn.engine
    return bind.dialect.name if bind is not None else "sqlite"


async def reset_thread(session: AsyncSession | AsyncConnection, key: ThreadKey) -> None:
    """Forgets everything about this thread."""
    await session.execute(delete(ThreadContext).where(
        ThreadContext.team_id == key.team_id, ThreadContext.channel_id == key.channel_id,
        ThreadContext.thread_ts == key.thread_ts))


__all__ = ["ThreadKey", "load_state", "save_changes", "changed_fields", "reset_thread"]
