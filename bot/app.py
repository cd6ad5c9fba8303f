"""The app factory: settings in, a ready aiohttp application (and its Bolt app) out. No globals."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (AsyncConnectionErrorRetryHandler,
                                                         AsyncRateLimitErrorRetryHandler)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text

import handlers
from bot import events
from bot.db import make_engine, make_sessionmaker
from bot.errors import new_reference
from bot.migrate import ensure_schema
from bot.services import Services
from bot.settings import Settings
from knowledge.engine import Engine

logger = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
BOLT = web.AppKey("bolt", AsyncApp)
PRUNER = web.AppKey("pruner", asyncio.Task)

BOT_SCOPES = ["app_mentions:read", "channels:history", "groups:history", "im:history", "im:read", "im:write",
              "chat:write", "commands", "users:read", "assistant:write", "reactions:write"]


def slack_client(settings: Settings, token: str | None, http: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """A Web API client that honours Retry-After on 429s and retries dropped connections. It shares the
    process's HTTP session: without one, slack_sdk opens a new connection for every call."""
    return AsyncWebClient(token=token, base_url=settings.slack_api_url, session=http, retry_handlers=[
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncRateLimitErrorRetryHandler(max_retry_count=3)])


def build_bolt_app(settings: Settings, services: Services) -> AsyncApp:
    secret = settings.slack_signing_secret.get() or None
    if settings.oauth_enabled:
        from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
        from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

        oauth = AsyncOAuthSettings(
            client_id=settings.slack_client_id, client_secret=settings.slack_client_secret.get(), scopes=BOT_SCOPES,
            installation_store=AsyncSQLAlchemyInstallationStore(client_id=settings.slack_client_id, engine=services.db),
            state_store=AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=services.db),
            install_path="/slack/install", redirect_uri_path="/slack/oauth_redirect")
        app = AsyncApp(signing_secret=secret or "", client=slack_client(settings, None, services.http),
                       oauth_settings=oauth,
                       process_before_response=False)
    else:
        token = settings.slack_bot_token.get()
        app = AsyncApp(signing_secret=secret or "", client=slack_client(settings, token, services.http),
                       process_before_response=False)

    async def provide_services(context: AsyncBoltContext, next: Any) -> None:  # noqa: A002 (Bolt's name)
        context["services"] = services
        await next()

    async def drop_duplicate_deliveries(body: dict[str, Any], next: Any) -> BoltResponse | None:  # noqa: A002
        """Claims each event before it is handled, so a retried delivery is acknowledged and not answered again."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            try:
                if not await events.claim(services.sessions, f"event:{event_id}"):
                    logger.info("duplicate delivery of %s ignored", event_id)
                    return BoltResponse(status=200, body="")
            except Exception as exc:  # the database is down: answer anyway, the answer path reports it
                logger.error("could not claim %s: %s", event_id, exc.__class__.__name__)
        await next()
        return None

    app.use(provide_services)
    app.use(drop_duplicate_deliveries)
    app.error(report_error)
    handlers.register_all(app)
    return app


async def report_error(error: Exception, body: dict[str, Any], respond: Any = None) -> None:
    """Last resort for anything a listener did not handle: log it with a reference, tell the user briefly."""
    ref = new_reference()
    logger.error("unhandled error (ref %s) for %s: %r", ref, body.get("type") or body.get("command"), error,
                 exc_info=error)
    if respond is not None and body.get("response_url"):
        try:
            await respond(text=f"Sorry, something went wrong (reference `{ref}`). Please try again.",
                          response_type="ephemeral", replace_original=False)
        except Exception:  # noqa: BLE001 - nothing more to do; the log has it
            logger.warning("could not report error %s to the user", ref)


async def create_app(settings: Settings, *, services: Services | None = None) -> web.Application:
    """Builds the web application: POST /slack/events, GET /healthz, and the OAuth routes when enabled.
    Resources it creates it also closes; `services` handed in stay the caller's to close."""
    owns_resources = services is None
    if services is None:
        db = make_engine(settings.database_url)
        try:
            await ensure_schema(db)
        except Exception as exc:  # start anyway: the database may come back; users are told meanwhile
            logger.error("could not check the database schema at start-up: %s", exc.__class__.__name__)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        services = Services(settings=settings, db=db, sessions=make_sessionmaker(db), engine=Engine(), http=http)
        _attach_live_lookups(services)
    bolt = build_bolt_app(settings, services)
    web_app = web.Application()
    web_app[SERVICES] = services
    web_app[BOLT] = bolt

    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        db_ok = True
        try:
            async with services.db.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001
            db_ok = False
        return web.json_response({"ok": True, "database": "ok" if db_ok else "unavailable"})

    web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    if settings.oauth_enabled and bolt.oauth_flow is not None:
        flow = bolt.oauth_flow

        async def install(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

        async def redirect(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

        web_app.router.add_get("/slack/install", install)
        web_app.router.add_get("/slack/oauth_redirect", redirect)

    async def prune_claims_hourly() -> None:
        """Forgets claimed Slack deliveries once Slack can no longer retry them."""
        while True:
            try:
                await events.prune(services.sessions)
            except Exception as exc:  # noqa: BLE001 - the database may be down; try again next hour
                logger.warning("could not prune claimed events: %s", exc.__class__.__name__)
            await asyncio.sleep(3600)

    async def start_background(app: web.Application) -> None:
        app[PRUNER] = asyncio.create_task(prune_claims_hourly())

    async def close(app: web.Application) -> None:
        task = app.get(PRUNER)
        if task is not None:
            task.cancel()
        if owns_resources:
            await services.http.close()
            await services.db.dispose()

    web_app.on_startup.append(start_background)
    web_app.on_cleanup.append(close)
    return web_app


def _attach_live_lookups(services: Services) -> None:
    """Adds the live Klaviyo lookups when that part of the bot is installed and configured."""
    try:
        from handlers.lookups import attach
    except ImportError:
        return
    attach(services)
