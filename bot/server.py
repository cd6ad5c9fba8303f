"""`klaviyo-bot serve`: HTTP mode (POST /slack/events), or Socket Mode when SLACK_APP_TOKEN is set."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bot.app import BOLT, create_app
from bot.settings import Settings

logger = logging.getLogger(__name__)


def serve(settings: Settings) -> int:
    logging.getLogger().setLevel(settings.log_level)
    if settings.socket_mode:
        asyncio.run(_serve_socket_mode(settings))
        return 0
    logger.info("serving Slack over HTTP on port %s (POST /slack/events, GET /healthz)", settings.port)
    web.run_app(create_app(settings), port=settings.port, print=None, access_log=None)
    return 0


async def _serve_socket_mode(settings: Settings) -> None:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    web_app = await create_app(settings)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, port=settings.port)
    await site.start()  # /healthz stays available in Socket Mode
    logger.info("connecting to Slack over Socket Mode (health on port %s)", settings.port)
    handler = AsyncSocketModeHandler(web_app[BOLT], settings.slack_app_token.get())
    try:
        await handler.start_async()
    finally:
        await runner.cleanup()
