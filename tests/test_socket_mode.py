"""Socket Mode end to end: `klaviyo-bot serve` with SLACK_APP_TOKEN connects to a fake Slack over a real
WebSocket, acknowledges each envelope, and answers through the Web API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack_api import FakeSlackApi
from tests.slack_requests import load_fixture

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeSocketModeSlack(FakeSlackApi):
    """FakeSlackApi plus apps.connections.open and the WebSocket Slack pushes envelopes over."""

    def __init__(self, envelopes: list[dict[str, Any]]) -> None:
        self.envelopes = envelopes
        self.acks: list[dict[str, Any]] = []
        self.app_token = "xapp-1-A111-1-test"
        super().__init__(extra_tokens=(self.app_token,))

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/link", self._socket)
        super().setup_routes(app)

    def _methods(self) -> dict[str, Any]:  # type: ignore[override]
        handlers = super()._methods()
        handlers["apps.connections.open"] = lambda p: {"ok": True, "url": self.url.replace("http", "ws") + "/link"}
        return handlers

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(load_fixture("socket_mode_hello.json"))
        for envelope in self.envelopes:
            await ws.send_json(envelope)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.acks.append(json.loads(msg.data))
        return ws


async def test_socket_mode_answers_a_mention():
    envelope = load_fixture("socket_mode_envelope_events_api.json")
    event = envelope["payload"]["event"]
    event.update({"type": "app_mention", "text": "<@U111> how do I build an abandoned cart flow?", "user": "U222",
                  "channel": "C111", "ts": "1700000200.000100"})
    event.pop("thread_ts", None)
    envelope["payload"]["team_id"] = "T111"
    async with FakeSocketModeSlack([envelope]) as slack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KLAVIYO_", "DATABASE_URL"))}
        env.update({"SLACK_BOT_TOKEN": slack.token, "SLACK_APP_TOKEN": slack.app_token,
                    "SLACK_API_URL": slack.api_base_url, "DATABASE_URL": "sqlite:///socket.db", "PORT": str(free_port())})
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", cwd=ROOT / "tests",
                                                    env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            await slack.wait_for("chat.postMessage", timeout=30)
            message = slack.last_message("C111")
            assert message["thread_ts"] == "1700000200.000100"
            assert "abandoned cart" in json.dumps(message.get("blocks", [])).lower()
            assert any(a.get("envelope_id") == envelope["envelope_id"] for a in slack.acks)
            assert slack.called("apps.connections.open")[0].headers["Authorization"] == f"Bearer {slack.app_token}"
        finally:
            if proc.returncode is None:
                proc.terminate()
            _, err = await proc.communicate()
            assert b"Traceback" not in err, err.decode()[-2000:]
            (ROOT / "tests" / "socket.db").unlink(missing_ok=True)
            for suffix in ("-wal", "-shm"):
                (ROOT / "tests" / f"socket.db{suffix}").unlink(missing_ok=True)
