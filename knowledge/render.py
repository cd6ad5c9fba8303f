"""Formats a channel-neutral Answer for the terminal, as Slack mrkdwn, and as Block Kit blocks.

Slack limits honoured here (docs.slack.dev, see shared notes): at most 50 blocks per message, section
text at most 3000 characters, header text at most 150 (plain text), context elements at most 10, and the
whole message kept compact (Slack rejects block payloads well below the per-block limits with
msg_blocks_too_long, so the total is capped too). All text goes through slack_escape: user text can
never form a mention, a channel ping or a link.
"""

from __future__ import annotations

import re
from typing import Any

from knowledge.engine import slack_escape
from knowledge.models import Answer, Item, Section
from knowledge.text import cjk_count

MAX_BLOCKS = 50
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
TOTAL_TEXT_BUDGET = 11000  # characters of block text per message
FALLBACK_TEXT_LIMIT = 3900  # the notification / fallback `text`, under Slack's 4,000 guidance

_MARKS = {"en": {"assumptions": "Assumptions", "questions": "To tailor this", "links": "Links"},
          "zh": {"assumptions": "前提假设", "questions": "想要更贴合你的情况，请告诉我", "links": "链接"}}


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _item_lines(items: tuple[Item, ...], bullet: str) -> list[str]:
    lines = []
    step = 0
    for item in items:
        if item.kind == "step":
            step += 1
            lines.append(f"{step}. {item.text}")
        elif item.kind == "bullet":
            lines.append(f"{bullet} {item.text}")
        else:
            lines.append(item.text)
    return lines


# -- terminal ---------------------------------------------------------------------------------------
_TERM_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def to_terminal(answer: Answer, *, color: bool = False) -> str:
    """Plain text for a terminal: Slack's *bold* shown as bold (with color) or left as is."""
    marks = _MARKS[answer.lang]
    out: list[str] = []

    def fmt(text: str) -> str:
        return _TERM_BOLD.sub(lambda m: f"\033[1m{m.group(1)}\033[0m", text) if color else text

    out.append(fmt(f"*{answer.title}*") if color else answer.title)
    out.append("=" * min(72, len(answer.title) + cjk_count(answer.title)))
    if answer.handoff:
        out.append(f"→ {answer.handoff.command}: {answer.handoff.reason}")
    if answer.intro:
        out.append(fmt(answer.intro))
    for section in answer.sections:
        out.append("")
        if section.heading:
            out.append(fmt(f"*{section.heading}*") if color else f"{section.heading}:")
        out.extend(fmt(line) for line in _item_lines(section.items, "  •"))
    if answer.context_line:
        out.extend(["", answer.context_line])
    if answer.assumptions:
        out.extend(["", f"{marks['assumptions']}:"])
        out.extend(f"  • {fmt(a)}" for a in answer.assumptions)
    if answer.questions:
        out.extend(["", f"{marks['questions']}:"])
        out.extend(f"  ? {q}" for q in answer.questions)
    if answer.links:
        out.extend(["", " | ".join(f"{link.label}: {link.url}" for link in answer.links)])
    return "\n".join(out).strip() + "\n"


# -- Slack mrkdwn -----------------------------------------------------------------------------------
def _section_mrkdwn(section: Section) -> str:
    lines = [slack_escape(line) for line in _item_lines(section.items, "•")]
    if section.heading:
        lines.insert(0, f"*{slack_escape(section.heading)}*")
    return "\n".join(lines)


def to_mrkdwn(answer: Answer) -> str:
    """The whole answer as one mrkdwn string (the message's fallback text and the --json `text`)."""
    marks = _MARKS[answer.lang]
    parts = [f"*{slack_escape(answer.title)}*"]
    if answer.handoff:
        parts.append(f"➡️ `{answer.handoff.command}`: {slack_escape(answer.handoff.reason)}")
    if answer.intro:
        parts.append(slack_escape(answer.intro))
    parts.extend(_section_mrkdwn(s) for s in answer.sections)
    if answer.context_line:
        parts.append(f"_{slack_escape(answer.context_line)}_")
    if answer.assumptions:
        parts.append(f"*{marks['assumptions']}:* " + " ".join(slack_escape(a) for a in answer.assumptions))
    if answer.questions:
        parts.append(f"*{marks['questions']}:*\n" + "\n".join(f"• {slack_escape(q)}" for q in answer.questions))
    if answer.links:
        parts.append(" · ".join(f"<{link.url}|{slack_escape(link.label)}>" for link in answer.links))
    return "\n\n".join(parts)


def fallback_text(answer: Answer) -> str:
    return truncate(to_mrkdwn(answer), FALLBACK_TEXT_LIMIT)


# -- Block Kit --------------------------------------------------------------------------------------
def _split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Splits on line breaks so that each piece fits one section block."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = truncate(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def to_blocks(answer: Answer, *, footer: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Block Kit blocks for the answer, within Slack's limits; `footer` blocks (feedback buttons) are kept."""
    marks = _MARKS[answer.lang]
    footer = footer or []
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(answer.title, HEADER_LIMIT), "emoji": True}}]
    if answer.handoff:
        blocks.append(_section(f"➡️ *`{answer.handoff.command}`* {slack_escape(answer.handoff.reason)}"))
    if answer.intro:
        blocks.extend(_section(p) for p in _split_text(slack_escape(answer.intro)))
    body: list[dict[str, Any]] = []
    if answer.extra_blocks:
        # Live lookups come with their own tables; the sections repeat them as text for the terminal.
        body.extend(answer.extra_blocks)
    else:
        for section in answer.sections:
            body.extend(_section(p) for p in _split_text(_section_mrkdwn(section)))
    tail: list[dict[str, Any]] = []
    if answer.context_line:
        tail.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": truncate(slack_escape(answer.context_line), SECTION_LIMIT)}]})
    if answer.assumptions:
        text = f"*{marks['assumptions']}:* " + " ".join(slack_escape(a) for a in answer.assumptions)
        tail.append({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}]})
    if answer.questions:
        text = f"*{marks['questions']}:*\n" + "\n".join(f"• {slack_escape(q)}" for q in answer.questions)
        tail.append(_section(truncate(text, SECTION_LIMIT)))
    if answer.links:
        links = " · ".join(f"<{link.url}|{slack_escape(link.label)}>" for link in answer.links)
        tail.append({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(links, SECTION_LIMIT)}]})

    # Keep the head, the tail and the footer; trim the body to the block and size budgets.
    fixed = blocks + tail + footer
    room = MAX_BLOCKS - len(fixed)
    budget = TOTAL_TEXT_BUDGET - sum(len(_block_text(b)) for b in fixed)
    kept: list[dict[str, Any]] = []
    for block in body:
        size = len(_block_text(block))
        if len(kept) >= room - 1 or size > budget:
            more = "…" if answer.lang == "en" else "……"
            kept.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
            break
        kept.append(block)
        budget -= size
    return blocks + kept + tail + footer


def _block_text(block: dict[str, Any]) -> str:
    parts: list[str] = []
    text = block.get("text")
    if isinstance(text, dict):
        parts.append(text.get("text", ""))
    for element in block.get("elements", []) or []:
        if isinstance(element, dict):
            t = element.get("text")
            parts.append(t.get("text", "") if isinstance(t, dict) else (t or ""))
    for field in block.get("fields", []) or []:
        parts.append(field.get("text", ""))
    return "".join(parts)
