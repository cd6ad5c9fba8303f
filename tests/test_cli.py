"""The `klaviyo-bot` command as a user runs it: a real process, a real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL


def run(args: list[str], cwd: Path, env_extra: dict[str, str] | None = None, stdin: bytes | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KLAVIYO_", "DATABASE_URL"))}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, timeout=60)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def ask_json(workdir: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = run(["ask", "--json", *args], workdir, env)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_ask_prints_an_answer_and_creates_the_default_database(workdir):
    proc = run(["ask", "How do I set up an abandoned cart flow with an SMS fallback?"], workdir)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "Abandoned cart flow with an SMS fallback" in out
    assert "Traceback" not in out + proc.stderr.decode()
    assert (workdir / "klaviyo-bot.db").exists()


def test_ask_json_fields(workdir):
    data = ask_json(workdir, "I'm a developer: Shopify orders aren't showing up as Placed Order")
    for key in ("lang", "area", "route", "entry", "role", "goal", "live", "assumptions", "questions", "text", "blocks"):
        assert key in data
    assert data["area"] == "O" and data["entry"] == "shopify_integration" and data["role"] == "developer"
    assert len(data["questions"]) <= 2
    assert data["blocks"][0]["type"] == "header"


def _thread_flow(workdir: Path, env: dict[str, str]) -> None:
    first = ask_json(workdir, "--thread", "t-1", "flows", env=env)
    assert first["area"] == "A"
    second = ask_json(workdir, "--thread", "t-1", "how long should the first delay be?", env=env)
    assert second["area"] == "A"
    third = ask_json(workdir, "--thread", "t-1", "I'm a developer", env=env)
    assert third["role"] == "developer"
    fourth = ask_json(workdir, "--thread", "t-1", "how do I build the abandoned cart flow?", env=env)
    assert fourth["role"] == "developer" and "GET /api/metrics/" in fourth["text"]
    other = ask_json(workdir, "--thread", "t-2", "how long should the first delay be?", env=env)
    assert other["role"] is None


def test_thread_keeps_context_across_processes_sqlite(workdir):
    _thread_flow(workdir, {"DATABASE_URL": f"sqlite:///{workdir / 'custom.db'}"})
    assert (workdir / "custom.db").exists()


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set (.ci/run sets it)")
def test_thread_keeps_context_across_processes_postgresql(workdir):
    import asyncio
    import uuid

    from sqlalchemy import text

    from bot.db import make_engine

    db = "cli_" + uuid.uuid4().hex[:10]

    async def admin(sql: str) -> None:
        eng = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with eng.connect() as conn:
            await conn.execute(text(sql))
        await eng.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{db}"'))
    try:
        url = PG_URL.rsplit("/", 1)[0] + "/" + db
        proc = run(["db", "upgrade"], workdir, {"DATABASE_URL": url})
        assert proc.returncode == 0, proc.stderr.decode()
        assert "revision 0002 (head 0002)" in proc.stdout.decode()
        _thread_flow(workdir, {"DATABASE_URL": url})
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def test_chinese_question_gets_chinese_answer(workdir):
    data = ask_json(workdir, "预测分析为什么一直不显示？")
    assert data["lang"] == "zh" and data["entry"] == "predictions_missing"


@pytest.mark.parametrize("args,stdin,code,fragment", [
    (["ask", ""], None, 2, "empty"),
    (["ask", "-"], b"x" * 50_000, 2, "50,000"),
    (["ask", "-"], bytes(range(256)) * 4, 2, "binary"),
])
def test_bad_input_exits_with_a_message(workdir, args, stdin, code, fragment):
    proc = run(args, workdir, stdin=stdin)
    assert proc.returncode == code
    err = proc.stderr.decode()
    assert fragment in err and "Traceback" not in err


def test_emoji_only_gets_the_menu(workdir):
    proc = run(["ask", "🎉🔥"], workdir)
    assert proc.returncode == 0 and "Klaviyo" in proc.stdout.decode()


def test_malformed_database_url_is_named(workdir):
    proc = run(["ask", "flows"], workdir, {"DATABASE_URL": "mysql://nope"})
    assert proc.returncode == 2
    assert "DATABASE_URL" in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()


def test_chat_session(workdir):
    proc = run(["chat", "--thread", "c1"], workdir, stdin="flows\nI'm a developer\nreset\nexit\n".encode())
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "Flows in Klaviyo" in out and "Developer / engineer" in out and "Starting fresh" in out


async def test_live_lookup_from_the_terminal(workdir):
    """`ask` with KLAVIYO_PRIVATE_KEY runs the lookup against KLAVIYO_API_URL (a fake Klaviyo server)."""
    import asyncio

    from tests.fakes.klaviyo_api import DEFAULT_KEY, fake_klaviyo_apis

    async with fake_klaviyo_apis() as start:
        api = await start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KLAVIYO_", "DATABASE_URL"))}
        env.update({"KLAVIYO_PRIVATE_KEY": DEFAULT_KEY, "KLAVIYO_API_URL": api.url})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "ask", "--json", "show my campaign stats for the last 30 days",
            cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    data = json.loads(out)
    assert data["live"] == "campaign_stats"
    assert "%" in data["text"] and "Placed Order" in data["text"]
    assert DEFAULT_KEY not in out.decode() + err.decode()
    assert api.called("/api/campaign-values-reports")


def test_live_question_without_a_key_explains_how_to_connect(workdir):
    data = ask_json(workdir, "show my campaign stats for the last 30 days")
    assert data["live"] == "campaign_stats" and "KLAVIYO_PRIVATE_KEY" in data["text"]
