"""One question in one conversation: load the thread's context, compose the answer, save what changed.

Shared by the terminal (`klaviyo-bot ask --thread`) and every Slack entry point, so a thread behaves the
same wherever it is continued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db import session_scope
from bot.errors import DatabaseUnavailable, new_reference
from bot.threads import ThreadKey, changed_fields, load_state, reset_thread, save_changes
from knowledge.engine import Composed, Engine
from knowledge.models import ThreadState
from knowledge.text import detect_lang

logger = logging.getLogger(__name__)

DB_DOWN_MESSAGE = {
    "en": "I can't reach my database right now, so I can't keep track of this conversation. "
          "Please try again in a minute (reference {ref}).",
    "zh": "暂时连不上我的数据库，无法记录这段对话。请稍后再试（参考编号 {ref}）。",
}


@dataclass(frozen=True)
class Turn:
    composed: Composed
    before: ThreadState


def _engine_of(db: AsyncEngine | async_sessionmaker[AsyncSession]) -> AsyncEngine:
    return db if isinstance(db, AsyncEngine) else db.kw["bind"]


async def ask(engine: Engine, db: AsyncEngine | async_sessionmaker[AsyncSession] | None, key: ThreadKey | None,
              question: str) -> Turn:
    """Answers `question` in the thread `key` (None: a one-off question with no memory).

    One connection, one short write: the read is not locked, and the write touches only the columns this
    message changed, so concurrent messages in one thread both land.
    """
    if key is None or db is None:
        composed = engine.compose(question)
        return Turn(composed, ThreadState())
    try:
        async with _engine_of(db).begin() as conn:
            before = await load_state(conn, key) or ThreadState()
            composed = engine.compose(question, before, turn=before.turns)
            if composed.route.command == "reset":
                await reset_thread(conn, key)
                changes = changed_fields(None, composed.state)
            else:
                changes = changed_fields(before, composed.state)
            await save_changes(conn, key, changes)
    except (OperationalError, DBAPIError, OSError, ConnectionError) as exc:
        ref = new_reference()
        logger.error("database unavailable (ref %s): %s", ref, exc.__class__.__name__)
        lang = detect_lang(question) or "en"
        raise DatabaseUnavailable(DB_DOWN_MESSAGE[lang].format(ref=ref)) from None
    return Turn(composed, before)


async def set_language(sessions: async_sessionmaker[AsyncSession], key: ThreadKey, lang: str) -> None:
    """Pins the conversation's language (`/klaviyo lang en|zh`)."""
    async with session_scope(sessions) as session:
        await save_changes(session, key, {"lang": lang, "lang_pinned": True})


async def forget(sessions: async_sessionmaker[AsyncSession], key: ThreadKey) -> None:
    async with session_scope(sessions) as session:
        await reset_thread(session, key)
