"""Database: engine, sessions and the tables shared by the terminal and the Slack app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, LargeBinary, SmallInteger, String, Text, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///klaviyo-bot.db"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class ThreadContext(Base):
    """What one conversation (a Slack thread, or a terminal --thread id) remembers."""

    __tablename__ = "thread_contexts"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(128), primary_key=True)
    area: Mapped[str | None] = mapped_column(String(1))
    role: Mapped[str | None] = mapped_column(String(16))
    goal: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(2))
    lang_pinned: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    last_entry: Mapped[str | None] = mapped_column(String(64))
    turns: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class ProcessedEvent(Base):
    """One row per Slack delivery the bot has claimed, so that retries are answered once."""

    __tablename__ = "processed_events"

    event_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class Feedback(Base):
    """A thumbs up or down on one answer."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32), nullable=False)
    channel_id: Mapped[str] = mapped_column(String(64), nullable=False)
    message_ts: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[str] = mapped_column(String(32), nullable=False)
    vote: Mapped[int] = mapped_column(SmallInteger, nullable=False)  # +1 or -1
    entry: Mapped[str | None] = mapped_column(String(64))
    area: Mapped[str | None] = mapped_column(String(1))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class KlaviyoConnection(Base):
    """A workspace's Klaviyo private key, encrypted at rest."""

    __tablename__ = "klaviyo_connections"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    encrypted_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(32), nullable=False)
    missing_scopes: Mapped[str | None] = mapped_column(Text)
    connected_by: Mapped[str | None] = mapped_column(String(32))
    connected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class ReportCache(Base):
    """Klaviyo lookup results shared by every process, so reporting quotas go further."""

    __tablename__ = "report_cache"

    cache_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # JSON
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


def normalize_url(url: str) -> str:
    """Returns the URL with an async driver: postgres:// and sqlite:// are accepted as written by hosts."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername != "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite" and parsed.drivername != "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend not in ("postgresql", "sqlite"):
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def database_url_from_env() -> str:
    return normalize_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)


def make_engine(url: str, **kwargs: object) -> AsyncEngine:
    """Creates the engine; SQLite gets WAL and a busy timeout so several processes can share the file."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        if ":memory:" not in url and url.rstrip("/") != "sqlite+aiosqlite:" and "poolclass" not in kwargs:
            # One connection per process: SQLite has one writer at a time anyway, and writers that queue on
            # the pool wait microseconds, where writers that collide on the file lock sleep in SQLite's busy
            # handler for up to 100 ms at a time. Other processes still share the file through the lock.
            kwargs.setdefault("pool_size", 1)
            kwargs.setdefault("max_overflow", 0)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yields a session that commits on success, rolls back on error and always closes."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
