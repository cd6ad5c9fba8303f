"""The router on realistic questions: entries in new words, specialists, menus, roles, goals, live intents."""

from __future__ import annotations

import pytest

from knowledge import load_knowledge
from knowledge.models import ThreadState


@pytest.fixture(scope="module")
def router():
    return load_knowledge().router


# The guide's worked examples and troubleshooting symptoms, asked in words the guide does not use.
NEW_WORDS = [
    ("Shoppers bail at checkout all the time. I'd like a couple of reminder emails and then a text for anyone "
     "who ignores them - how would you sequence it?", "abandoned_cart_sms_fallback", "en"),
    ("结账到一半走掉的客户，先发邮件提醒，没反应再补一条短信，这个流程怎么排？", "abandoned_cart_sms_fallback", "zh"),
    ("I want new signups from the popup to get a welcome email series, and I also want to grab their mobile "
     "number for texting on a second screen", "welcome_series_sms_consent", "en"),
    ("新用户注册后想发一组欢迎邮件，同时在表单第二页收集手机号做短信订阅，怎么设计？", "welcome_series_sms_consent", "zh"),
    ("our best customers are slipping away - can we spot who is about to stop buying and send them something "
     "before they're gone?", "predictive_churn_segment", "en"),
    ("高价值老客户越来越少回购了，能不能提前找出快流失的人自动挽回？", "predictive_churn_segment", "zh"),
    ("the CLV and churn fields on customer profiles are all empty, what's going on?", "predictions_missing", "en"),
    ("客户资料里的预测字段一直是空白，是什么原因？", "predictions_missing", "zh"),
    ("people who already completed their purchase are still getting the cart reminder email",
     "flow_emails_after_conversion", "en"),
    ("顾客付完款还是收到了购物车提醒邮件，怎么回事", "flow_emails_after_conversion", "zh"),
    ("our text messages never arrive, klaviyo shows them as failed", "sms_not_delivering", "en"),
    ("短信一直发不出去，后台显示失败", "sms_not_delivering", "zh"),
]


@pytest.mark.parametrize("question,entry,lang", NEW_WORDS)
def test_examples_and_troubleshooting_in_new_words(router, question, entry, lang):
    r = router.route(question)
    assert r.entry == entry, r
    assert r.lang == lang
    assert r.specialist is None


SPECIALISTS = [
    ("how do I set up DMARC on our sending domain?", "sales-deliverability"),
    ("邮件老是进垃圾箱，SPF和DKIM怎么配？", "sales-deliverability"),
    ("is open tracking still reliable after Apple Mail Privacy Protection?", "sales-email-tracking"),
    ("what's a sensible email cadence for a DTC brand, tool aside - best practices?", "sales-email-marketing"),
    ("we want to push Klaviyo events into HubSpot through Zapier", "sales-integration"),
    ("guest checkout or forced accounts - which converts better on the checkout page?", "sales-checkout"),
    ("our Customer.io journeys vs Klaviyo flows", "sales-customerio"),
    ("how do I merge tags in Mailchimp audiences?", "sales-mailchimp"),
]


@pytest.mark.parametrize("question,slug", SPECIALISTS)
def test_specialist_cases_route_with_reason(router, question, slug):
    assert router.route(question).specialist == slug


@pytest.mark.parametrize("question", [
    "we moved from Mailchimp last month and predicted CLV is blank on every profile",
    "how do I build an abandoned cart flow?",
    "we're charged way more since we imported our old list",
])
def test_klaviyo_questions_do_not_hand_off(router, question):
    assert router.route(question).specialist is None


@pytest.mark.parametrize("question,area", [
    ("how do I stop the popup showing to people who already signed up?", "F"),
    ("we're charged way more since we imported our old list", "P"),
    ("getting 429s from the events endpoint on Black Friday", "O"),
    ("Shopify orders aren't showing up as Placed Order", "O"),
    ("can a flow send WhatsApp?", "A"),
    ("reverse ETL of segments into BigQuery", "I"),
    ("客户中心能放FAQ吗", "N"),
    ("who founded klaviyo?", "Q"),
])
def test_realistic_wording_finds_the_area(router, question, area):
    assert router.route(question).area == area


@pytest.mark.parametrize("text,kind,value", [
    ("A", "area", "A"), ("b", "area", "B"), ("flows", "area", "A"), ("Predictive", "area", "D"),
    ("预测分析", "area", "D"), ("客户中心", "area", "N"), ("Q)", "area", "Q"), ("developer", "role", "developer"),
    ("店主", "role", "owner"), ("role C", "role", "developer"),
])
def test_menu_answers(router, text, kind, value):
    r = router.route(text)
    assert r.menu == kind
    assert (r.area if kind == "area" else r.role) == value


def test_bare_letter_answers_the_role_once_the_area_is_known(router):
    r = router.route("C", ThreadState(area="A"))
    assert (r.menu, r.role) == ("role", "developer")
    assert router.route("C", ThreadState(area="A", role="owner")).area == "C"


@pytest.mark.parametrize("question,role", [
    ("I'm a developer, how do I upsert profiles?", "developer"),
    ("我是店主，想做弃购邮件", "owner"),
    ("as an agency managing 12 stores, can we share templates?", "agency"),
    ("growth lead here, need a revenue dashboard", "growth"),
])
def test_role_statements(router, question, role):
    assert router.route(question).role == role


def test_goal_statements(router):
    assert router.route("we want to cut churn among VIPs").goal == "cut churn among VIPs"
    assert router.route("我们想提升复购率").goal == "提升复购率"
    assert router.route("how do I add a time delay?").goal is None


@pytest.mark.parametrize("question,live", [
    ("what was the open rate of my last campaign?", "campaign_stats"),
    ("how did the black friday email do?", "campaign_stats"),
    ("how are my flows doing this month?", "flow_stats"),
    ("do I have enough orders for predictions?", "predictive_readiness"),
    ("check my abandoned cart flows for a missing placed order filter", "flow_audit"),
    ("list my segments and their sizes", "listings"),
    ("帮我看下我们账户的订单量够不够用预测分析", "predictive_readiness"),
])
def test_live_intents(router, question, live):
    assert router.route(question).live == live


@pytest.mark.parametrize("question", [
    "what's a good open rate for campaigns?",
    "how do I read campaign reports?",
    "what is predictive analytics?",
])
def test_general_questions_are_not_live_lookups(router, question):
    assert router.route(question).live is None


@pytest.mark.parametrize("text,lang", [
    ("How do I set up an abandoned cart flow?", "en"), ("怎么搭建弃购Flow？", "zh"),
    ("怎么设置abandoned cart flow的SMS", "zh"), ("what does 预测分析 mean", "en"),
])
def test_language(router, text, lang):
    assert router.route(text).lang == lang


def test_follow_up_stays_in_the_thread_area(router):
    state = ThreadState(area="A")
    assert router.route("how long should the first delay be?", state).area == "A"
    assert router.route("and what about pricing for 10k profiles?", state).area == "P"


def test_pinned_language_wins(router):
    assert router.route("how do flows work?", ThreadState(lang="zh", lang_pinned=True)).lang == "zh"


def test_deterministic(router):
    q = "Shopify orders aren't showing up as Placed Order"
    assert router.route(q) == router.route(q)
