"""Value types shared by the router, the answer engine and every front end (terminal, Slack)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Lang = Literal["en", "zh"]
ItemKind = Literal["p", "bullet", "step"]


class BadInput(ValueError):
    """A message that cannot be answered as it stands (empty, binary, far too long)."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True)
class ThreadState:
    """What a conversation remembers between questions: the context the guide gathers in step 1."""

    area: str | None = None  # letter A-Q
    role: str | None = None  # role id: owner, marketer, developer, agency, growth, other
    goal: str | None = None  # free text, as the asker stated it
    lang: Lang | None = None
    last_entry: str | None = None  # id of the last runbook / example / troubleshooting entry shown
    lang_pinned: bool = False  # set by `/klaviyo lang en|zh`: keep this language whatever is typed
    turns: int = 0  # messages answered in this thread so far

    def merged(self, **changes: object) -> ThreadState:
        """Returns a copy with the given fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Route:
    """The router's decision for one question."""

    lang: Lang
    area: str | None = None  # letter A-Q, or None when only a specialist or a menu applies
    specialist: str | None = None  # sibling skill slug, e.g. "sales-deliverability"
    entry: str | None = None  # runbook / example / troubleshooting id
    entry_kind: str | None = None  # "runbook" | "example" | "troubleshooting"
    topic: str | None = None  # reference topic: "pricing", "api", "data_model", "integrations", "overview"
    role: str | None = None  # role stated in this question
    goal: str | None = None  # goal stated in this question
    live: str | None = None  # live-lookup intent, e.g. "campaign_stats"
    menu: str | None = None  # "area" or "role" when the message was just a menu pick
    command: str | None = None  # "reset" | "help" | None
    confidence: float = 0.0  # 0..1, how strongly the evidence supported the area
    scores: tuple[tuple[str, float], ...] = ()  # top area scores, for debugging and tests


@dataclass(frozen=True)
class Item:
    """One line of an answer section: a paragraph, a bullet or a numbered step."""

    kind: ItemKind
    text: str


@dataclass(frozen=True)
class Section:
    heading: str | None
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Handoff:
    """A sibling specialist that fits the question better."""

    slug: str
    command: str
    reason: str


@dataclass(frozen=True)
class Answer:
    """A channel-neutral answer: the terminal and Slack each format it their own way."""

    lang: Lang
    title: str
    intro: str | None = None
    sections: tuple[Section, ...] = ()
    assumptions: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()  # at most two
    links: tuple[Link, ...] = ()
    handoff: Handoff | None = None
    context_line: str | None = None  # provenance / as-of line, shown small
    # routing facts, for --json, feedback and logs
    area: str | None = None
    route: str | None = None
    entry: str | None = None
    role: str | None = None
    goal: str | None = None
    live: str | None = None
    private: bool = False  # True when the answer holds profile-level data: never post it in a channel
    extra_blocks: tuple[dict, ...] = field(default=())  # ready-made Block Kit blocks (live lookup tables)
