"""The baseline for bench/slack_bench.py: a bare Bolt app that acks /klaviyo and posts a fixed text.

Same stack as the bot (Bolt AsyncApp over aiohttp, signature checks, AsyncWebClient), none of its work.
Run: SLACK_BOT_TOKEN=… SLACK_SIGNING_SECRET=… SLACK_API_URL=… python bench/bare_app.py PORT
"""

from __future__ import annotations

import os
import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def main() -> None:
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = AsyncApp(signing_secret=os.environ["SLACK_SIGNING_SECRET"], client=client)

    @app.command("/klaviyo")
    async def answer(ack, command, client):  # type: ignore[no-untyped-def]
        await ack()
        await client.chat_postMessage(channel=command["channel_id"],
                                      text=f"<@{command['user_id']}> asked: a fixed answer")

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    web.run_app(web_app, port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
