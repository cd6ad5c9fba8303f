"""The `klaviyo-bot` command: ask, chat, serve, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from bot.errors import BotError, ConfigError

logger = logging.getLogger("bot")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="klaviyo-bot", description="Klaviyo help for e-commerce teams, in Slack "
                                "and in the terminal.")
    sub = p.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question", nargs="*", help="the question (use - to read it from standard input)")
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ask.add_argument("--thread", metavar="ID", help="continue the conversation with this id (kept in the database)")
    chat = sub.add_parser("chat", help="an interactive session")
    chat.add_argument("--thread", metavar="ID", help="conversation id (default: a new one)")
    serve = sub.add_parser("serve", help="run the Slack app (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)")
    serve.add_argument("--port", type=int, help="port for HTTP mode (default: $PORT or 3000)")
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"], help="upgrade: apply migrations; current: show revision")
    return p


def _read_question(parts: list[str]) -> str:
    if parts == ["-"]:
        data = sys.stdin.buffer.read()
        return data.decode("utf-8", errors="replace")
    return " ".join(parts)


async def _open_db(settings: Any) -> Any:
    from bot.db import make_engine, make_sessionmaker
    from bot.migrate import ensure_schema

    engine = make_engine(settings.database_url)
    await ensure_schema(engine)
    return engine, make_sessionmaker(engine)


def _json_payload(turn: Any) -> dict[str, Any]:
    from knowledge.render import to_blocks, to_mrkdwn

    r, a = turn.composed.route, turn.composed.answer
    return {"lang": a.lang, "area": a.area, "route": a.route, "entry": a.entry, "role": a.role, "goal": a.goal,
            "live": a.live, "assumptions": list(a.assumptions), "questions": list(a.questions),
            "title": a.title, "text": to_mrkdwn(a), "blocks": to_blocks(a),
            "confidence": r.confidence}


async def _ask(args: argparse.Namespace, settings: Any) -> int:
    from bot.conversation import ask
    from bot.lookups_cli import answer_live_if_possible
    from bot.threads import ThreadKey
    from knowledge.engine import Engine
    from knowledge.render import to_terminal

    question = _read_question(args.question)
    engine = Engine()
    db_engine, sessions = await _open_db(settings)
    try:
        key = ThreadKey.for_terminal(args.thread) if args.thread else None
        turn = await ask(engine, sessions if key else None, key, question)
        turn = await answer_live_if_possible(turn, settings, sessions, question)
    finally:
        await db_engine.dispose()
    if args.json:
        print(json.dumps(_json_payload(turn), ensure_ascii=False))
    else:
        sys.stdout.write(to_terminal(turn.composed.answer, color=sys.stdout.isatty()))
    return EXIT_OK


async def _chat(args: argparse.Namespace, settings: Any) -> int:
    import uuid

    from bot.conversation import ask
    from bot.lookups_cli import answer_live_if_possible
    from bot.threads import ThreadKey
    from knowledge.engine import Engine
    from knowledge.models import BadInput
    from knowledge.render import to_terminal

    engine = Engine()
    db_engine, sessions = await _open_db(settings)
    key = ThreadKey.for_terminal(args.thread or f"chat-{uuid.uuid4().hex[:8]}")
    print(f"Klaviyo help. Ask anything; `help` for the menu, `reset` to start over, Ctrl-D to quit. "
          f"(conversation {key.thread_ts})")
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                line = await loop.run_in_executor(None, lambda: input("\nyou> "))
            except EOFError:
                print()
                return EXIT_OK
            if line.strip().lower() in ("quit", "exit", "bye", "退出"):
                return EXIT_OK
            try:
                turn = await ask(engine, sessions, key, line)
                turn = await answer_live_if_possible(turn, settings, sessions, line)
            except (BadInput, BotError) as exc:
                print(exc.user_message)
                continue
            print()
            sys.stdout.write(to_terminal(turn.composed.answer, color=sys.stdout.isatty()))
    finally:
        await db_engine.dispose()


async def _db(args: argparse.Namespace, settings: Any) -> int:
    from bot.db import make_engine
    from bot.migrate import current_revision, head_revision, upgrade

    engine = make_engine(settings.database_url)
    try:
        if args.action == "upgrade":
            await upgrade(engine)
        print(f"database at revision {await current_revision(engine)} (head {head_revision()})")
    finally:
        await engine.dispose()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from bot.settings import load_settings
    from knowledge.models import BadInput

    level = os.environ.get("LOG_LEVEL", "INFO" if args.command == "serve" else "WARNING").upper()
    logging.basicConfig(level=level if level in logging.getLevelNamesMapping() else "INFO",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        if args.command == "serve":
            from bot.server import serve

            settings = load_settings(for_slack=True)
            if args.port:
                from dataclasses import replace

                settings = replace(settings, port=args.port)
            return serve(settings)
        settings = load_settings()
        runner = {"ask": _ask, "chat": _chat, "db": _db}[args.command]
        return asyncio.run(runner(args, settings))
    except BadInput as exc:
        print(exc.user_message, file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"configuration error: {exc.user_message}", file=sys.stderr)
        return EXIT_USAGE
    except BotError as exc:
        print(exc.user_message, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: a short message, the detail in the log
        from bot.errors import new_reference

        ref = new_reference()
        logger.error("unexpected failure (ref %s): %s", ref, exc.__class__.__name__,
                     exc_info=logger.isEnabledFor(logging.DEBUG))
        print(f"Something went wrong (reference {ref}). Run with LOG_LEVEL=DEBUG for details.", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
