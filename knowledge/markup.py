"""The small line markup templates render to, and its parser into Answer parts.

    # Title            -> Answer.title
    > intro text       -> Answer.intro
    ## Heading         -> a new Section
    - bullet           -> Item("bullet")
    1. step            -> Item("step")   (numbers are re-counted by the formatter)
    anything else      -> Item("p")

Blank lines are ignored. Inline text keeps Slack-style marks (*bold*, `code`), which read fine in a
terminal too.
"""

from __future__ import annotations

import re

from knowledge.models import Item, Section

_STEP = re.compile(r"^\d+[.)]\s+")


def parse_markup(text: str) -> tuple[str, str | None, tuple[Section, ...]]:
    """Returns (title, intro, sections) from rendered template text."""
    title = ""
    intro_parts: list[str] = []
    sections: list[Section] = []
    heading: str | None = None
    items: list[Item] = []

    def flush() -> None:
        nonlocal items
        if items or heading:
            sections.append(Section(heading, tuple(items)))
        items = []

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            flush()
            heading = line[3:].strip()
        elif line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("> "):
            intro_parts.append(line[2:].strip())
        elif line.startswith("- "):
            items.append(Item("bullet", line[2:].strip()))
        elif _STEP.match(line):
            items.append(Item("step", _STEP.sub("", line, count=1)))
        else:
            items.append(Item("p", line))
    flush()
    return title, (" ".join(intro_parts) or None), tuple(s for s in sections if s.items)
