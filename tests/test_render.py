"""Slack formatting: Block Kit limits and escaping of user text."""

from __future__ import annotations

import pytest

from knowledge import load_knowledge
from knowledge.engine import Engine, slack_escape
from knowledge.models import Answer, Item, Section
from knowledge.render import fallback_text, to_blocks, to_mrkdwn, to_terminal


@pytest.fixture(scope="module")
def engine():
    return Engine(load_knowledge())


def check_limits(blocks: list[dict]) -> None:
    assert len(blocks) <= 50
    total = 0
    for b in blocks:
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
            assert b["text"]["type"] == "plain_text"
        if b["type"] == "section":
            if "text" in b:
                assert 1 <= len(b["text"]["text"]) <= 3000
                total += len(b["text"]["text"])
            assert len(b.get("fields", [])) <= 10
        if b["type"] == "context":
            assert len(b["elements"]) <= 10
        if b["type"] == "actions":
            assert len(b["elements"]) <= 25
    assert total <= 12000


QUESTIONS = ["flows", "help", "how much does it cost", "api endpoints and rate limits", "data model objects",
             "which integrations exist", "how do I build an abandoned cart flow?", "our Customer.io vs Klaviyo",
             "帮助", "怎么搭建弃购Flow", "I'm a developer - how do I sync custom data via the API?"]


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_answer_fits_block_kit(engine, question):
    answer = engine.compose(question).answer
    check_limits(to_blocks(answer))
    assert len(fallback_text(answer)) <= 4000


def test_user_text_cannot_ping_or_link(engine):
    evil = "<!channel> <@U123> <https://evil.example|click> & more"
    answer = Answer(lang="en", title=evil, intro=evil, sections=(Section(evil, (Item("bullet", evil),)),),
                    questions=(evil,), assumptions=(evil,))
    blocks = to_blocks(answer)
    assert blocks[0]["text"]["type"] == "plain_text"  # Slack never parses mentions in plain_text
    mrkdwn_parts = [str(b) for b in blocks[1:]]
    for text in [to_mrkdwn(answer), *mrkdwn_parts]:
        assert "<!channel>" not in text and "<@U123>" not in text and "<https://evil" not in text
        assert "&lt;!channel&gt;" in text or "<" not in text
    assert slack_escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_huge_answer_is_trimmed_within_limits():
    items = tuple(Item("bullet", "word " * 500) for _ in range(40))
    answer = Answer(lang="en", title="T" * 400, sections=tuple(Section(f"S{i}", items) for i in range(30)),
                    questions=("q1?", "q2?"), assumptions=("a",))
    blocks = to_blocks(answer, footer=[{"type": "actions", "elements": [{"type": "button", "action_id": "x",
                                                                           "text": {"type": "plain_text", "text": "👍"}}]}])
    check_limits(blocks)
    assert blocks[-1]["type"] == "actions"  # the footer survives trimming
    assert any("q1?" in str(b) for b in blocks)  # so do the closing questions
    assert len(blocks[0]["text"]["text"]) <= 150


def test_terminal_format_reads_well(engine):
    text = to_terminal(engine.compose("how do I build an abandoned cart flow?").answer)
    assert text.startswith("Build an abandoned cart flow\n")
    assert "\n1. " in text and "Assumptions:" in text
