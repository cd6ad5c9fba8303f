"""Per-thread context in the database: persistence, concurrent updates, migrations (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from bot.conversation import ask
from bot.db import Base, make_sessionmaker, session_scope
from bot.migrate import current_revision, head_revision, upgrade
from bot.threads import ThreadKey, load_state, save_changes
from knowledge.engine import Engine

KEY = ThreadKey("T1", "C1", "1700000000.000100")


async def test_state_survives_a_new_engine(engine, tmp_path):
    sessions = make_sessionmaker(engine)
    bot = Engine()
    await ask(bot, sessions, KEY, "flows")
    await ask(bot, sessions, KEY, "I'm a developer")
    # a "restart": a brand-new sessionmaker on the same database
    fresh = make_sessionmaker(engine)
    async with session_scope(fresh) as session:
        state = await load_state(session, KEY)
    assert state is not None and state.area == "A" and state.role == "developer" and state.turns == 2


async def test_concurrent_messages_in_one_thread_keep_both_updates(engine):
    sessions = make_sessionmaker(engine)
    bot = Engine()
    await ask(bot, sessions, KEY, "hello")
    # Two messages answered at the same time: one states the role, the other moves the area.
    await asyncio.gather(ask(bot, sessions, KEY, "I'm a developer"),
                         ask(bot, sessions, KEY, "how much does klaviyo cost?"))
    async with session_scope(sessions) as session:
        state = await load_state(session, KEY)
    assert state.role == "developer"
    assert state.area == "P"
    assert state.turns == 3


async def test_many_concurrent_writers(engine):
    sessions = make_sessionmaker(engine)

    async def write(i: int) -> None:
        async with session_scope(sessions) as session:
            await save_changes(session, KEY, {"goal": f"goal {i}"} if i % 2 else {"area": "B"})

    await asyncio.gather(*(write(i) for i in range(20)))
    async with session_scope(sessions) as session:
        state = await load_state(session, KEY)
    assert state.turns == 20 and state.area == "B" and state.goal.startswith("goal ")


async def test_threads_are_isolated(engine):
    sessions = make_sessionmaker(engine)
    bot = Engine()
    await ask(bot, sessions, KEY, "I'm a developer")
    other = ThreadKey("T1", "C1", "1700000000.000200")
    await ask(bot, sessions, other, "flows")
    async with session_scope(sessions) as session:
        assert (await load_state(session, other)).role is None


async def test_reset_forgets_the_thread(engine):
    sessions = make_sessionmaker(engine)
    bot = Engine()
    await ask(bot, sessions, KEY, "I'm a developer, flows")
    await ask(bot, sessions, KEY, "reset")
    async with session_scope(sessions) as session:
        state = await load_state(session, KEY)
    assert state.role is None and state.area is None


async def test_migrations_build_the_same_schema_as_the_models(engine):
    # Start from an empty database: drop what the fixture created, then run Alembic.
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()

    def compare(sync_conn):  # type: ignore[no-untyped-def]
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
        tables = set(inspect(sync_conn).get_table_names())
        return diffs, tables

    async with engine.connect() as conn:
        diffs, tables = await conn.run_sync(compare)
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert {"slack_installations", "slack_bots", "slack_oauth_states"} <= tables
    # slack_sdk owns the OAuth tables; everything else must match our models exactly
    def table_of(diff):  # type: ignore[no-untyped-def]
        obj = diff[1]
        return getattr(obj, "name", "") if diff[0].endswith("_table") else getattr(getattr(obj, "table", None), "name", "")

    ours = [d for d in diffs if not table_of(d).startswith("slack_")]
    assert ours == []


async def test_event_claims_are_exclusive_and_pruned(engine):
    from datetime import timedelta

    from sqlalchemy import update

    from bot import events
    from bot.db import ProcessedEvent, utcnow

    sessions = make_sessionmaker(engine)
    results = await asyncio.gather(*(events.claim(sessions, "event:Ev1") for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    await events.claim(sessions, "event:Ev2")
    async with session_scope(sessions) as session:
        await session.execute(update(ProcessedEvent).where(ProcessedEvent.event_key == "event:Ev1")
                              .values(created_at=utcnow() - timedelta(days=3)))
    assert await events.prune(sessions) == 1
    assert await events.claim(sessions, "event:Ev2") is False
