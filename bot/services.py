"""Long-lived objects the Slack listeners share, injected by Bolt as `services`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.settings import Settings
from knowledge.engine import Engine


@dataclass
class Services:
    settings: Settings
    db: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    engine: Engine
    http: aiohttp.ClientSession
    lookups: Any = None  # bot.lookups.LookupService when live lookups are available
    extra: dict[str, Any] = field(default_factory=dict)
