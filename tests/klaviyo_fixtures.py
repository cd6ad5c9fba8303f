"""Fixtures for the Klaviyo client and lookup tests: fake Klaviyo servers, an HTTP session, recorded sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from tests.fakes.klaviyo_api import FakeKlaviyoApi, RecordingSleep, fake_klaviyo_apis

StartFake = Callable[..., Awaitable[FakeKlaviyoApi]]


@pytest.fixture
async def klaviyo() -> AsyncIterator[StartFake]:
    """Starts fake Klaviyo servers on demand; fails the test if any traffic broke the spec."""
    async with fake_klaviyo_apis() as start:
        yield start


@pytest.fixture
async def fake(klaviyo: StartFake) -> FakeKlaviyoApi:
    return await klaviyo()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()
