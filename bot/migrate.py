"""Schema management: Alembic upgrades, run on the bot's own async engine."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "bot:migrations")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def upgrade(engine: AsyncEngine, target: str = "head") -> None:
    """Upgrades the schema to `target` inside one transaction on the given engine."""
    cfg = alembic_config()

    def run(sync_conn) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, target)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def ensure_schema(engine: AsyncEngine) -> bool:
    """Upgrades when the database is behind the code; returns True when it ran migrations."""
    if await current_revision(engine) == head_revision():
        return False
    await upgrade(engine)
    return True
