"""Slack load benchmark: N signed /klaviyo commands against `klaviyo-bot serve`, next to a bare Bolt app.

Both servers run as real processes on loopback and post to the same local fake Slack Web API. For each
request it measures the ack (the HTTP response to Slack) and the end-to-end time until the answer reaches
chat.postMessage, and the throughput (answers per second). The bare app only acks and posts a fixed text,
so the ratios show what the bot's own work costs. Run on SQLite and on PostgreSQL:

    python bench/slack_bench.py [--requests 300] [--concurrency 50] \
        [--pg postgresql://postgres@127.0.0.1:5432/klaviyo_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.slack_api import FakeSlackApi  # noqa: E402
from tests.slack_requests import command_body, signed_headers  # noqa: E402

SECRET = "bench-signing-secret"
QUESTIONS = ["How do I set up an abandoned cart flow with an SMS fallback?", "what counts as an active profile?",
             "我是店主，怎么搭建弃购Flow？", "getting 429s from the events endpoint", "how do I set up DMARC?",
             "predicted CLV is blank on every profile", "can a flow send WhatsApp?", "flows"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.post(url, data=b"") as resp:
                    if resp.status in (200, 401):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show where the time goes."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def load(port: int, slack: FakeSlackApi, n: int, concurrency: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/slack/events"
    before = len(slack.called("chat.postMessage"))
    sem = asyncio.Semaphore(concurrency)
    acks: list[float] = []
    sent_at: dict[str, float] = {}

    async def one(i: int, http: aiohttp.ClientSession) -> None:
        user = f"U{uuid.uuid4().hex[:10].upper()}"
        body = command_body(QUESTIONS[i % len(QUESTIONS)], response_url=slack.response_url(str(i)), user_id=user,
                            channel_id=f"C{i % 10:09d}", team_id="T111")
        headers = signed_headers(body, SECRET, content_type="application/x-www-form-urlencoded")
        async with sem:
            t0 = time.monotonic()
            sent_at[user] = t0
            async with http.post(url, data=body.encode(), headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            acks.append(time.monotonic() - t0)

    start = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        await asyncio.gather(*(one(i, http) for i in range(n)))
    await slack.wait_for("chat.postMessage", before + n, timeout=300)
    posts = slack.called("chat.postMessage")[before:]
    e2e = []
    for call in posts:
        text = str(call.params.get("text", ""))
        user = text.split(">", 1)[0].removeprefix("<@")
        if user in sent_at:
            e2e.append(call.at - sent_at[user])
    elapsed = max(c.at for c in posts) - start
    return {"ack_p50": pct(acks, 0.5) * 1000, "ack_p99": pct(acks, 0.99) * 1000,
            "e2e_p50": pct(e2e, 0.5) * 1000, "e2e_p99": pct(e2e, 0.99) * 1000, "rps": len(posts) / elapsed,
            "answers": len(e2e)}


async def ensure_database(url: str) -> None:
    """Creates the PostgreSQL database named in `url` when it does not exist yet."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from bot.db import make_engine, normalize_url

    parsed = make_url(normalize_url(url))
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        exists = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                     {"n": parsed.database})).first()
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    await admin.dispose()


async def run(args: argparse.Namespace) -> None:
    if args.pg:
        await ensure_database(args.pg)
    async with FakeSlackApi() as slack:
        env = {**os.environ, "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": slack.api_base_url, "LOG_LEVEL": "WARNING"}
        env.pop("SLACK_APP_TOKEN", None)
        targets = [("bare Bolt app (ack + fixed text)", [sys.executable, str(ROOT / "bench/bare_app.py")], {})]
        tmp = tempfile.mkdtemp()
        targets.append(("klaviyo-bot serve, SQLite", [sys.executable, "-m", "bot.cli", "serve", "--port"],
                        {"DATABASE_URL": f"sqlite:///{tmp}/bench.db"}))
        if args.pg:
            targets.append(("klaviyo-bot serve, PostgreSQL", [sys.executable, "-m", "bot.cli", "serve", "--port"],
                            {"DATABASE_URL": args.pg}))
        results = []
        for name, cmd, extra in targets:
            port = free_port()
            log = open(Path(tmp) / f"server-{port}.log", "wb")  # noqa: SIM115 - closed below
            proc = subprocess.Popen([*cmd, str(port)], cwd=ROOT, env={**env, **extra}, stdout=subprocess.DEVNULL,
                                    stderr=log)
            try:
                await wait_ready(f"http://127.0.0.1:{port}/slack/events")
                await load(port, slack, min(20, args.requests), args.concurrency)  # warm-up
                cpu0 = cpu_seconds(proc.pid)
                result = await load(port, slack, args.requests, args.concurrency)
                result["cpu_ms"] = (cpu_seconds(proc.pid) - cpu0) * 1000 / args.requests
                results.append((name, result))
            except Exception:
                print(f"{name} failed; its log: {log.name}", file=sys.stderr)
                raise
            finally:
                proc.terminate()
                proc.wait(timeout=10)
                log.close()
        print(f"{args.requests} /klaviyo commands, {args.concurrency} at a time, fake Slack on loopback\n")
        print("| server | ack p50 ms | ack p99 ms | end-to-end p50 ms | end-to-end p99 ms | answers/s | "
              "throughput vs bare | p99 e2e vs bare | server CPU ms/answer |")
        print("|---|---|---|---|---|---|---|---|---|")
        base = results[0][1]
        for name, r in results:
            print(f"| {name} | {r['ack_p50']:.1f} | {r['ack_p99']:.1f} | {r['e2e_p50']:.1f} | {r['e2e_p99']:.1f} | "
                  f"{r['rps']:.0f} | {r['rps'] / base['rps']:.2f} | {r['e2e_p99'] / base['e2e_p99']:.2f} | "
                  f"{r['cpu_ms']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pg", help="PostgreSQL URL for a third run (its tables are created if missing)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
