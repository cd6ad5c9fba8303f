"""RecordingServer: a real aiohttp server on an ephemeral loopback port that records every request."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    status: int | None = None
    response: Any = None
    answered: bool = False

    @property
    def params(self) -> dict[str, Any]:
        """JSON body if there was one, else the form fields."""
        return self.json if isinstance(self.json, dict) else self.form


CALL = web.RequestKey("call", Call)  # where each handler finds the recorded call


class RecordingServer:
    """Base for fakes: subclasses add routes in `setup_routes`; every request is recorded in `calls`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._event = asyncio.Event()
        self.app = web.Application(middlewares=[self._record])
        self.setup_routes(self.app)
        self._server: TestServer | None = None

    def setup_routes(self, app: web.Application) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        call = Call(method=request.method, path=request.path, query=dict(request.query),
                    headers=dict(request.headers), body=body)
        ctype = request.headers.get("Content-Type", "")
        if body:
            if "json" in ctype:
                try:
                    call.json = json.loads(body)
                except ValueError:
                    call.json = None
            elif "form" in ctype:
                call.form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        request[CALL] = call
        self.calls.append(call)
        self._event.set()
        try:
            resp: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            call.status = exc.status
            raise
        finally:
            call.answered = True
            self._event.set()
        call.status = resp.status
        is_json = "json" in (resp.content_type or "")
        if isinstance(resp, web.Response) and isinstance(resp.body, bytes) and is_json:
            try:
                call.response = json.loads(resp.body)
            except ValueError:
                call.response = None
        return resp

    async def start(self) -> str:
        self._server = TestServer(self.app, host="127.0.0.1")
        await self._server.start_server()
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def __aenter__(self) -> Self:
        """Starts the server for `async with`."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Closes the server at the end of `async with`."""
        await self.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return str(self._server.make_url("/")).rstrip("/")

    def called(self, path_suffix: str) -> list[Call]:
        """Calls whose path ends with `path_suffix` (e.g. "chat.postMessage")."""
        return [c for c in self.calls if c.path.endswith(path_suffix)]

    async def wait_for(self, path_suffix: str, count: int = 1, timeout: float = 10.0, *,
                       answered: bool = False) -> list[Call]:
        """Waits until `count` calls to `path_suffix` arrived (and, if asked, were answered); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.called(path_suffix)
            if len(found) >= count and (not answered or all(c.answered for c in found[:count])):
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [c.path for c in self.calls]
                raise AssertionError(f"expected {count} call(s) to {path_suffix}, got {len(found)}; saw {seen}")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), timeout=min(remaining, 0.05))
            except asyncio.TimeoutError:
                pass
