"""The answer engine follows the guide's conversation rules."""

from __future__ import annotations

import re

import pytest

from knowledge import load_knowledge
from knowledge.engine import Engine
from knowledge.models import BadInput, ThreadState
from knowledge.render import to_mrkdwn

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def engine():
    return Engine(load_knowledge())


def body(answer) -> str:
    return to_mrkdwn(answer)


def test_answer_first_then_at_most_two_questions(engine):
    for q in ["flows", "something about klaviyo", "campaigns", "how do I build an abandoned cart flow?", "help"]:
        a = engine.compose(q).answer
        assert a.sections, q  # there is always an answer, never only questions
        assert len(a.questions) <= 2


def test_no_questions_when_the_context_is_given(engine):
    a = engine.compose("I'm a developer and we want to sync loyalty tiers from our backend into profiles via "
                       "the API").answer
    assert a.entry == "api_custom_data_sync"
    assert a.role == "developer"
    assert a.questions == ()


def test_vague_question_asks_about_what_is_unknown(engine):
    a = engine.compose("flows").answer
    assert a.area == "A"
    assert len(a.questions) == 2
    assert any("role" in q for q in a.questions) and any("achieve" in q for q in a.questions)


def test_unknown_area_asks_for_the_area_and_still_answers(engine):
    a = engine.compose("hmm, not sure where to start").answer
    assert a.area is None
    assert any("A-Q" in q for q in a.questions)
    assert len([i for s in a.sections for i in s.items]) >= 17  # the area map itself is the answer


def test_assumptions_are_stated(engine):
    a = engine.compose("how do I build an abandoned cart flow?").answer
    joined = " ".join(a.assumptions)
    assert "Shopify" in joined and "click-paths" in joined


def test_handoff_names_the_specialist_with_reason_and_keeps_klaviyo_help(engine):
    a = engine.compose("our Customer.io journeys vs Klaviyo flows").answer
    assert a.handoff is not None and a.handoff.command == "/sales-customerio"
    assert a.handoff.reason
    assert a.route == "sales-customerio"
    assert "Klaviyo" in body(a) and a.area == "A"
    assert any("Klaviyo side" in (s.heading or "") for s in a.sections)


@pytest.mark.parametrize("question,needle", [
    ("we're charged way more since we imported our old list", "active profiles"),
    ("how do I add SMS to our email program?", "10DLC"),
    ("how do flow webhooks work?", "HMAC-SHA256"),
    ("predicted CLV is blank on all profiles", "180"),
    ("can we sync custom objects to Snowflake?", "Enterprise"),
])
def test_gotchas_surface_where_they_bite(engine, question, needle):
    assert needle.lower() in body(engine.compose(question).answer).lower()


def test_pricing_carries_date_and_caveat(engine):
    for q, date_text in [("how much does klaviyo cost?", "March 2026"), ("Klaviyo 套餐价格是多少？", "2026 年 3 月")]:
        text = body(engine.compose(q).answer)
        assert date_text in text
        assert "klaviyo.com" in text


def test_developer_gets_endpoints_owner_gets_click_paths(engine):
    dev = body(engine.compose("I'm a developer - how do I build an abandoned cart flow?").answer)
    owner = body(engine.compose("I'm a store owner - how do I build an abandoned cart flow?").answer)
    assert "GET /api/metrics/" in dev
    assert "GET /api/" not in owner
    assert "Flows &gt; Create Flow" in owner


def test_chinese_questions_get_chinese_answers(engine):
    for q in ["怎么搭建弃购Flow？", "预测分析为什么不显示", "SPF和DKIM怎么配置？", "帮助", "套餐多少钱"]:
        a = engine.compose(q).answer
        assert a.lang == "zh"
        assert CJK.search(a.title + (a.intro or "")), q
        assert all(CJK.search(x) for x in a.questions)


def test_follow_up_in_a_thread_keeps_the_area_and_role(engine):
    first = engine.compose("flows")
    second = engine.compose("I'm a developer", first.state, turn=1)
    assert second.state.area == "A" and second.state.role == "developer"
    third = engine.compose("how long should the first delay be?", second.state, turn=2)
    assert third.answer.area == "A"
    assert "Time delays" in body(third.answer)


def test_role_change_rewrites_the_last_entry(engine):
    first = engine.compose("how do I build an abandoned cart flow?")
    again = engine.compose("I'm a developer", first.state, turn=1)
    assert again.answer.entry == "abandoned_cart_flow"
    assert "GET /api/metrics/" in body(again.answer)


def test_reset_forgets(engine):
    first = engine.compose("I'm a developer, flows please")
    reset = engine.compose("reset", first.state, turn=1)
    assert reset.state.area is None and reset.state.role is None


def test_live_question_without_account_says_how_to_connect(engine):
    a = engine.compose("do I have enough orders for predictions?").answer
    assert a.live == "predictive_readiness"
    assert "/klaviyo connect" in body(a)
    assert "Placed Order" in body(a)  # the meanwhile steps from the troubleshooting entry


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"), ("   \n\t ", "empty"), ("x" * 50_000, "50,000"), ("\x00\x01\x02binary" * 10, "binary"),
])
def test_bad_input_gets_a_clear_message(engine, text, fragment):
    with pytest.raises(BadInput) as err:
        engine.compose(text)
    assert fragment in err.value.user_message


def test_emoji_only_and_mixed_language_still_answer(engine):
    assert engine.compose("🎉🔥🙏").answer.sections
    mixed = engine.compose("怎么设置abandoned cart flow的SMS兜底?").answer
    assert mixed.lang == "zh" and mixed.entry == "abandoned_cart_sms_fallback"


def test_pinned_language(engine):
    state = ThreadState(lang="zh", lang_pinned=True)
    assert engine.compose("how do flows work?", state).answer.lang == "zh"
