"""Shared fixtures: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import Base, make_engine

pytest_plugins = ["tests.klaviyo_fixtures"]

PG_URL = os.environ.get("TEST_DATABASE_URL")


def _db_params() -> list:
    params = [pytest.param("sqlite", id="sqlite")]
    params.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.skipif(
        not PG_URL, reason="TEST_DATABASE_URL is not set (.ci/run sets it)")))
    return params


async def _pg_engine_in_fresh_schema() -> tuple[AsyncEngine, str, str]:
    """Creates a throw-away schema on the PostgreSQL server; fails (never skips) when it is unreachable."""
    assert PG_URL
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    engine = make_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    return engine, schema, PG_URL


async def _drop_pg_schema(schema: str) -> None:
    admin = make_engine(PG_URL or "")
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture(params=_db_params())
async def engine(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[AsyncEngine]:
    """An engine with all tables created, on SQLite (a file) and on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
        async with eng.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield eng
        await eng.dispose()
    else:
        eng, schema, _ = await _pg_engine_in_fresh_schema()
        async with eng.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            yield eng
        finally:
            await eng.dispose()
            await _drop_pg_schema(schema)
