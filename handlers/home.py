"""App Home: what the bot does, area buttons, and the workspace's Klaviyo connection status."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from handlers import ids
from knowledge.render import to_blocks, truncate

logger = logging.getLogger(__name__)

INTRO = ("*Klaviyo Helper* answers questions about Klaviyo — flows, campaigns, segments, predictive analytics, "
         "SMS and other channels, forms, reviews, catalogs and coupons, reporting, templates, Customer Hub, the "
         "data platform, the API and billing — in English and 中文.\n"
         "• `/klaviyo <question>` in any channel, or `/klaviyo help` for the menu\n"
         "• mention me in a channel: I answer in the thread and keep following it\n"
         "• DM me, or open me in the assistant panel")


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(publish_home)
    app.action(re.compile(rf"^{ids.HOME_AREA}_[A-Q]$"))(open_area_modal)


async def connection_status(services: Services, team_id: str) -> str:
    status = services.extra.get("connection_status")
    if status is None:
        return "*Klaviyo account:* not connected. Live lookups (campaign and flow stats, predictive readiness, " \
               "flow audits) need a connected account."
    return str(await status(team_id))


def home_view(services: Services, status_text: str) -> dict[str, Any]:
    kb = services.engine.kb
    areas = kb.view("en")["areas"]["area"]
    buttons = [{"type": "button", "action_id": f"{ids.HOME_AREA}_{a['letter']}", "value": a["letter"],
                "text": {"type": "plain_text", "text": truncate(f"{a['letter']}) {a['name']}", 75)}} for a in areas]
    return {"type": "home", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Klaviyo Helper"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": INTRO}},
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": status_text}},
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Help areas* — pick one for an overview:"}},
        {"type": "actions", "block_id": "home_areas", "elements": buttons},
    ]}


async def publish_home(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient,
                       services: Services) -> None:
    """Publishes the Home tab each time it is opened (the connection status may have changed)."""
    if event.get("tab") != "home":
        return
    status = await connection_status(services, context.team_id or "")
    await client.views_publish(user_id=event["user"], view=home_view(services, status))


async def open_area_modal(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                          services: Services) -> None:
    """Shows the area's overview in a modal (Home has no message to answer in)."""
    await ack()
    letter = action.get("value", "A")
    composed = services.engine.compose(letter)
    blocks = to_blocks(composed.answer)
    await client.views_open(trigger_id=body["trigger_id"], view={
        "type": "modal", "title": {"type": "plain_text", "text": "Klaviyo Helper"},
        "close": {"type": "plain_text", "text": "Close"}, "blocks": blocks[:100]})
