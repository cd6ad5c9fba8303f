"""LookupService against FakeKlaviyoApi and a real database: results, caching, coalescing, rendering, keys."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.crypto import decrypt_key, encrypt_key, fingerprint, looks_like_private_key, redact_private_keys
from bot.db import KlaviyoConnection, ReportCache, make_sessionmaker, session_scope
from bot.errors import ConfigError
from bot.klaviyo import (
    Flow,
    FlowDefinition,
    KlaviyoAuthError,
    KlaviyoClient,
    KlaviyoScopeError,
    KlaviyoUnavailable,
    Timeframe,
)
from bot.lookups import (
    CampaignStats,
    FlowAudit,
    KlaviyoNotConnected,
    LookupService,
    MissingMetric,
    StoredKeyClientFactory,
    UnsupportedTimeframe,
    check_flow,
    connect_klaviyo,
    format_money,
    format_pct,
    parse_listing_kind,
    parse_timeframe,
    render_key_check,
    render_lookup,
    save_connection,
)
from knowledge.models import Answer
from tests.fakes.klaviyo_api import (
    DEFAULT_KEY,
    FakeKlaviyoApi,
    KlaviyoDataset,
    delay_action,
    placed_order_condition,
    profile_filter,
    send_action,
    split_action,
)

TEAM = "T0TEAM001"
StartFake = Callable[..., Awaitable[FakeKlaviyoApi]]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_service(http, sessionmaker, sleeps, clock) -> Callable[..., LookupService]:
    def make(api: FakeKlaviyoApi, key: str = DEFAULT_KEY, **options: Any) -> LookupService:
        async def client_for(team_id: str) -> KlaviyoClient:
            return KlaviyoClient(http, key, base_url=api.url, sleep=sleeps)

        return LookupService(client_for, sessionmaker, clock=clock, sleep=sleeps, **options)

    return make


def assert_block_kit(answer: Answer) -> None:
    """Checks Slack's limits and our own compactness budget on an answer's extra blocks."""
    blocks = answer.extra_blocks
    assert 0 < len(blocks) <= 20
    # msg_blocks_too_long arrives well below 50 blocks: keep the whole payload compact.
    assert len(json.dumps(blocks, ensure_ascii=False)) < 12_000
    for block in blocks:
        assert block["type"] in ("section", "context")
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] == "mrkdwn" and 0 < len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(0 < len(f["text"]) <= 2000 for f in block.get("fields", []))
        else:
            assert 0 < len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])


def block_text(answer: Answer) -> str:
    return json.dumps(answer.extra_blocks, ensure_ascii=False)


# --------------------------------------------------------------------------- timeframes


@pytest.mark.parametrize(("text", "key"), [
    ("30d", "last_30_days"), ("last 30 days", "last_30_days"), ("past 30 days", "last_30_days"),
    ("最近30天", "last_30_days"), ("过去 7 天", "last_7_days"), ("最近３０天", "last_30_days"),
    ("7d", "last_7_days"), ("last 90 days", "last_90_days"), ("365 days", "last_365_days"),
    ("this month", "this_month"), ("本月", "this_month"), ("这个月的活动", "this_month"),
    ("last month", "last_month"), ("上个月", "last_month"), ("last week", "last_week"), ("上周", "last_week"),
    ("this week", "this_week"), ("today", "today"), ("昨天", "yesterday"), ("this year", "this_year"),
    ("去年", "last_year"), ("3 months", "last_3_months"), ("最近3个月", "last_3_months"),
    ("12个月", "last_12_months"), ("1 year", "last_365_days"), ("last quarter", "last_3_months"),
    ("last_12_months", "last_12_months"), ("How did my campaigns do?", "last_30_days"),
    ("2025年的活动", "last_30_days"), ("", "last_30_days"), (None, "last_30_days"),
])
def test_parse_timeframe_keys(text: str | None, key: str) -> None:
    assert parse_timeframe(text) == Timeframe(key=key)


def test_parse_timeframe_custom_ranges_are_hour_aligned() -> None:
    now = datetime(2026, 3, 15, 10, 42, 7, tzinfo=timezone.utc)

    two_weeks = parse_timeframe("last 14 days", now=now)
    also = parse_timeframe("2 weeks", now=now)

    assert two_weeks == also and two_weeks.end == datetime(2026, 3, 15, 10, tzinfo=timezone.utc)
    assert two_weeks.end - two_weeks.start == timedelta(days=14)
    sixty = parse_timeframe("last 60 days", default="last_7_days", now=now)
    assert sixty.start == two_weeks.end - timedelta(days=60)


@pytest.mark.parametrize(("text", "kind"), [
    ("what flows do we have", "flows"), ("which segments do we have and how big", "segments"),
    ("how many profiles are on our lists", "lists"), ("which metrics are we tracking", "metrics"),
    ("我们有哪些分群", "segments"), ("列表各有多少人", "lists"), ("在跑的流程", "flows"), ("", "flows"),
])
def test_parse_listing_kind(text: str, kind: str) -> None:
    assert parse_listing_kind(text) == kind


async def test_answer_runs_the_routed_lookup(fake: FakeKlaviyoApi, make_service) -> None:
    service = make_service(fake)

    stats = await service.answer(TEAM, "campaign_stats", text="how did campaigns do 上个月", lang="zh")
    segments = await service.answer(TEAM, "listings", text="which segments do we have?")

    assert stats.title == "活动表现 · 上个月" and stats.live == "campaign_stats"
    assert segments.live == "segments" and segments.title == "Segments (13)"
    with pytest.raises(ValueError):
        await service.answer(TEAM, "profile_lookup")


@pytest.mark.parametrize("text", ["last 400 days", "2 years", "0d", "18 months"])
def test_parse_timeframe_refuses_more_than_a_year(text: str) -> None:
    with pytest.raises(UnsupportedTimeframe) as caught:
        parse_timeframe(text)

    assert "one year" in caught.value.user_message and "1 年" in caught.value.message_for("zh")


# --------------------------------------------------------------------------- campaign stats


async def test_campaign_stats_one_report_with_names_and_percentages(fake: FakeKlaviyoApi,
                                                                    make_service) -> None:
    stats = await make_service(fake).campaign_stats(TEAM, "last 30 days")

    data = fake.dataset
    sent = [c for c in data.campaigns if c.send_time and c.send_time >= data.now - timedelta(days=30)]
    assert fake.report_requests == 1
    report = fake.calls_to("/api/campaign-values-reports", "POST")[0].json["data"]["attributes"]
    assert report["conversion_metric_id"] == data.metric_id("Placed Order", "Shopify")
    assert report["timeframe"] == {"key": "last_30_days"}
    assert [r.campaign_id for r in stats.campaigns] == [c.id for c in sorted(sent, key=lambda c: c.send_time,
                                                                             reverse=True)]
    for row in stats.campaigns:
        source = next(c for c in data.campaigns if c.id == row.campaign_id)
        assert row.name == source.name and row.recipients == source.stats.recipients
        assert row.revenue == source.stats.conversion_value and row.unsubscribes == source.stats.unsubscribes
        click_rate = round(source.stats.clicks_unique / source.stats.delivered, 4)
        assert row.click_rate_pct == pytest.approx(click_rate * 100)
        if source.channel == "sms":
            assert row.open_rate_pct is None  # SMS has no opens
        else:
            assert 10 < (row.open_rate_pct or 0) < 60  # a percentage, not a fraction
    # Names come from the campaigns list filtered on the report's ids, one request per channel.
    filters = [c.query["filter"] for c in fake.calls_to("/api/campaigns")]
    assert len(filters) == 2 and all("any(id,[" in f for f in filters)
    assert stats.currency == "USD" and stats.conversion_metric == "Placed Order" and not stats.from_cache


async def test_campaign_stats_answer_in_both_languages(fake: FakeKlaviyoApi, make_service) -> None:
    stats = await make_service(fake).campaign_stats(TEAM, "this month")

    english, chinese = render_lookup(stats, "en"), render_lookup(stats, "zh")

    assert english.title == "Campaign performance · this month" and chinese.title == "活动表现 · 本月"
    assert "Placed Order" in (english.context_line or "") and "as of" in (english.context_line or "")
    assert "转化指标" in (chinese.context_line or "")
    assert english.live == "campaign_stats" and english.private is False and stats.private is False
    for answer in (english, chinese):
        assert_block_kit(answer)
    assert "%" in block_text(english) and "$" in block_text(english)


async def test_campaign_names_are_escaped_in_blocks(fake: FakeKlaviyoApi, make_service) -> None:
    target = next(c for c in fake.dataset.campaigns if c.send_time)
    target.name = "Friends <!channel> & <https://evil.example|Family>"

    answer = render_lookup(await make_service(fake).campaign_stats(TEAM, "last 365 days"), "en")

    assert "Friends &lt;!channel&gt; &amp; &lt;https://evil.example|Family&gt;" in block_text(answer)
    assert "<!channel>" not in block_text(answer) and "<https://evil" not in block_text(answer)


async def test_account_with_1000_campaigns_needs_one_report(klaviyo: StartFake, make_service) -> None:
    api = await klaviyo(KlaviyoDataset.seeded(campaigns=1000))

    stats = await make_service(api).campaign_stats(TEAM, "last 365 days")

    sent = [c for c in api.dataset.campaigns if c.send_time]
    assert api.report_requests == 1 and len(stats.campaigns) == len(sent)
    assert all(r.name for r in stats.campaigns)  # every name resolved
    email = sum(1 for c in sent if c.channel == "email")
    batches = math.ceil(email / 100) + math.ceil((len(sent) - email) / 100)
    assert len(api.calls_to("/api/campaigns")) == batches
    for lang in ("en", "zh"):
        answer = render_lookup(stats, lang)
        assert_block_kit(answer)
        shown = sum(1 for b in answer.extra_blocks if b["type"] == "section") - 1  # minus the header
        assert ("and" if lang == "en" else "还有") in answer.extra_blocks[-1]["elements"][0]["text"]
        assert str(len(sent) - shown) in answer.extra_blocks[-1]["elements"][0]["text"]
        assert len(answer.sections[0].items) == 11  # ten campaigns and "and N more"


async def test_empty_store_account_has_no_campaigns(klaviyo: StartFake, make_service) -> None:
    api = await klaviyo(KlaviyoDataset.empty(with_store=True))
    service = make_service(api)

    stats = await service.campaign_stats(TEAM, "30d")
    flows = await service.flow_stats(TEAM, "30d")

    assert stats.campaigns == () and flows.flows == ()
    assert render_lookup(stats, "en").intro == "No campaigns were sent in the last 30 days."
    assert render_lookup(stats, "zh").intro == "最近30天内没有已发送的活动。"
    assert render_lookup(flows, "en").extra_blocks == ()


async def test_empty_account_without_placed_order(klaviyo: StartFake, make_service) -> None:
    api = await klaviyo(KlaviyoDataset.empty())
    service = make_service(api)

    with pytest.raises(MissingMetric) as caught:
        await service.campaign_stats(TEAM)

    assert "Placed Order" in caught.value.user_message and "Placed Order" in caught.value.message_for("zh")
    assert api.report_requests == 0
    for kind in ("flows", "segments", "lists", "metrics"):
        answer = render_lookup(await service.listings(TEAM, kind), "en")
        assert answer.intro and "no" in answer.intro and answer.extra_blocks == ()
    readiness = await service.predictive_readiness(TEAM)
    assert not readiness.metric_found and not readiness.ready
    assert "Placed Order" in (render_lookup(readiness, "en").intro or "")


# --------------------------------------------------------------------------- caching and coalescing


async def test_concurrent_asks_share_one_report_and_later_asks_hit_the_cache(
        fake: FakeKlaviyoApi, make_service, sessionmaker, clock) -> None:
    fake.report_delay = 0.2  # keep the first request in flight while the others arrive
    service = make_service(fake)

    first = await asyncio.gather(*(service.campaign_stats(TEAM, "last 30 days") for _ in range(5)))

    assert fake.report_requests == 1
    assert len(fake.calls_to("/api/metrics")) == 1  # the conversion metric was looked up once
    assert all(r == first[0] and not r.from_cache for r in first)

    clock.advance(minutes=5)
    again = await service.campaign_stats(TEAM, "last_30_days")
    assert fake.report_requests == 1 and again.from_cache
    assert again.campaigns == first[0].campaigns and again.fetched_at == first[0].fetched_at
    line = render_lookup(again, "en").context_line or ""
    assert f"cached as of {first[0].fetched_at:%H:%M} UTC" in line
    assert "缓存于" in (render_lookup(again, "zh").context_line or "")

    # Another process (a new service on the same database) is served from the shared table too.
    other = make_service(fake)
    assert (await other.campaign_stats(TEAM, "30d")).from_cache and fake.report_requests == 1
    async with sessionmaker() as session:
        keys = (await session.scalars(select(ReportCache.cache_key))).all()
    assert all(k.startswith(f"klaviyo:v1:{TEAM}:") for k in keys) and len(keys) == 3  # stats, metric, account


async def test_cache_expiry_refresh_and_parameters(fake: FakeKlaviyoApi, make_service, clock) -> None:
    service = make_service(fake)
    await service.campaign_stats(TEAM, "last 30 days")

    clock.advance(minutes=16)  # past the 15-minute report TTL
    assert not (await service.campaign_stats(TEAM, "last 30 days")).from_cache
    assert fake.report_requests == 2
    assert not (await service.campaign_stats(TEAM, "last 30 days", refresh=True)).from_cache
    assert fake.report_requests == 3
    assert not (await service.campaign_stats(TEAM, "last 7 days")).from_cache  # other parameters, other key
    assert not (await service.campaign_stats("T0OTHER", "last 30 days")).from_cache  # other team, other key
    assert fake.report_requests == 5
    assert len(fake.calls_to("/api/metrics")) == 2  # metric ids live an hour: fetched once per team
    clock.advance(minutes=45)
    await service.campaign_stats(TEAM, "last 30 days")
    assert len(fake.calls_to("/api/metrics")) == 3


async def test_errors_are_not_cached(fake: FakeKlaviyoApi, make_service) -> None:
    fake.server_error("/api/campaign-values-reports", times=4)
    service = make_service(fake)

    with pytest.raises(KlaviyoUnavailable):
        await service.campaign_stats(TEAM)
    stats = await service.campaign_stats(TEAM)

    assert stats.campaigns and not stats.from_cache


async def test_report_calls_for_one_account_are_spaced(fake: FakeKlaviyoApi, make_service, sleeps) -> None:
    service = make_service(fake)

    await service.campaign_stats(TEAM)
    await service.flow_stats(TEAM)

    assert fake.report_requests == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 1.0  # reporting burst: 1 request a second


async def test_reconnecting_drops_the_workspaces_cache(fake: FakeKlaviyoApi, make_service,
                                                       sessionmaker) -> None:
    service = make_service(fake)
    await service.campaign_stats(TEAM)
    await service.campaign_stats("T0OTHER")

    async with session_scope(sessionmaker) as session:
        await save_connection(session, TEAM, "pk_" + "b" * 34, secret=Fernet.generate_key())

    async with sessionmaker() as session:
        keys = (await session.scalars(select(ReportCache.cache_key))).all()
    assert keys and not [k for k in keys if f":{TEAM}:" in k]
    assert not (await service.campaign_stats(TEAM)).from_cache


# --------------------------------------------------------------------------- flow stats and listings


async def test_flow_stats_per_flow_and_message(fake: FakeKlaviyoApi, make_service) -> None:
    stats = await make_service(fake).flow_stats(TEAM, "last 30 days")

    attributes = fake.calls_to("/api/flow-values-reports", "POST")[0].json["data"]["attributes"]
    assert attributes["group_by"][:2] == ["flow_id", "flow_message_id"]
    assert fake.report_requests == 1
    reporting = [f for f in fake.dataset.flows if not f.archived and f.status != "draft"]
    assert {f.name for f in stats.flows} == {f.name for f in reporting}
    assert [f.revenue for f in stats.flows] == sorted((f.revenue for f in stats.flows), reverse=True)
    recovery = next(f for f in stats.flows if f.name == "Checkout Recovery SMS + Email")
    assert {m.name for m in recovery.messages} == {"Recovery SMS", "Recovery email"}
    sms = next(m for m in recovery.messages if m.channel == "sms")
    assert sms.open_rate_pct is None and recovery.open_rate_pct is not None
    assert recovery.recipients == sum(m.recipients for m in recovery.messages)
    for lang in ("en", "zh"):
        answer = render_lookup(stats, lang)
        assert_block_kit(answer)
        assert "Recovery SMS" in block_text(answer)


@pytest.mark.parametrize("kind", ["flows", "segments", "lists", "metrics"])
async def test_listings(fake: FakeKlaviyoApi, make_service, kind: str) -> None:
    listing = await make_service(fake).listings(TEAM, kind)

    data = fake.dataset
    if kind == "flows":
        assert [r.name for r in listing.rows][:1] == ["Abandoned Cart Reminder"]
        assert next(r for r in listing.rows if r.name == "Abandoned Cart (old)").status == "archived"
        assert next(r for r in listing.rows if r.name == "Welcome Series").detail == "Added to List"
    elif kind in ("segments", "lists"):
        groups = data.segments if kind == "segments" else data.lists
        assert [(r.name, r.profile_count) for r in listing.rows] == [
            (g.name, g.profile_count) for g in sorted(groups, key=lambda g: -g.profile_count)]
    else:
        assert {(r.name, r.detail) for r in listing.rows} == {
            (m.name, (m.integration or {}).get("name")) for m in data.metrics}
    for lang in ("en", "zh"):
        answer = render_lookup(listing, lang)
        assert_block_kit(answer)
    assert "Wholesale &amp; trade" in block_text(render_lookup(listing)) or kind != "segments"


async def test_long_listings_are_truncated_with_a_count(klaviyo: StartFake, make_service) -> None:
    api = await klaviyo(KlaviyoDataset.seeded(segments=130))

    listing = await make_service(api).listings(TEAM, "segments")

    assert len(listing.rows) == 130
    assert sum(1 for r in listing.rows if r.profile_count is not None) == 40  # counts cost one GET each
    answer = render_lookup(listing, "en")
    assert_block_kit(answer)
    shown = sum(len(b.get("fields", [])) // 2 for b in answer.extra_blocks if b["type"] == "section")
    assert f"and {130 - shown} more" in answer.extra_blocks[-1]["elements"][0]["text"]


# --------------------------------------------------------------------------- predictive readiness


async def test_predictive_readiness_above_thresholds(fake: FakeKlaviyoApi, make_service) -> None:
    readiness = await make_service(fake).predictive_readiness(TEAM)  # 14 months of 60 orders

    assert readiness.ready and readiness.total_orders == 12 * 60  # stops after the first year: enough
    assert readiness.history_is_lower_bound and readiness.history_days >= 330
    assert len(fake.calls_to("/api/metric-aggregates", "POST")) == 1
    answer = render_lookup(readiness, "en")
    assert answer.intro and answer.intro.startswith("✅ Ready: 720+ orders over at least")
    assert_block_kit(answer)
    assert_block_kit(render_lookup(readiness, "zh"))


async def test_predictive_readiness_below_thresholds(klaviyo: StartFake, make_service) -> None:
    api = await klaviyo(KlaviyoDataset.seeded(order_months=3, orders_per_month=40))

    readiness = await make_service(api).predictive_readiness(TEAM)

    assert not readiness.ready and readiness.total_orders == 120 and readiness.orders_needed == 380
    assert 60 <= readiness.history_days <= 92 and readiness.days_needed > 0
    assert not readiness.history_is_lower_bound
    english, chinese = render_lookup(readiness, "en"), render_lookup(readiness, "zh")
    assert english.intro and "120 orders" in english.intro and "380 more orders" in english.intro
    steps = " ".join(i.text for s in english.sections for i in s.items)
    assert "Placed Order at least 2 times" in steps and "zero times in the last 90 days" in steps
    assert "about 40 orders a month" in steps
    assert "Placed Order 至少 2 次" in " ".join(i.text for s in chinese.sections for i in s.items)


async def test_many_orders_but_too_little_history(klaviyo: StartFake, make_service) -> None:
    api = await klaviyo(KlaviyoDataset.seeded(order_months=4, orders_per_month=300))

    readiness = await make_service(api).predictive_readiness(TEAM)

    assert readiness.total_orders == 1200 and readiness.orders_needed == 0
    assert not readiness.ready and readiness.days_needed > 0
    assert "more days of history" in (render_lookup(readiness, "en").intro or "")


async def test_long_thin_history_reads_older_years(klaviyo: StartFake, make_service) -> None:
    api = await klaviyo(KlaviyoDataset.seeded(order_months=30, orders_per_month=10))

    readiness = await make_service(api).predictive_readiness(TEAM)

    windows = [c.json["data"]["attributes"]["filter"] for c in api.calls_to("/api/metric-aggregates", "POST")]
    assert len(windows) == 3  # three one-year windows: orders began in the third
    assert readiness.total_orders == 300 and not readiness.ready and readiness.history_days > 850
    assert readiness.first_order_month == min(api.dataset.orders_by_month)


# --------------------------------------------------------------------------- flow audit


async def test_flow_audit_ok_and_at_risk(fake: FakeKlaviyoApi, make_service, sleeps) -> None:
    audit = await make_service(fake).flow_audit(TEAM)

    verdicts = {r.name: (r.check.verdict, r.check.protection, r.check.unprotected) for r in audit.flows}
    assert verdicts == {
        "Abandoned Cart Reminder": ("ok", "flow_filter", ()),
        "Checkout Recovery SMS + Email": ("ok", "splits", ()),
        "Browse Abandonment": ("at_risk", "none", ("Browse email 1", "Browse email 2")),
        "Cart Reminder - Legacy": ("at_risk", "none", ("Legacy email 2",)),
    }
    kinds = {r.name: (r.kind, r.trigger) for r in audit.flows}
    assert kinds["Browse Abandonment"] == ("browse_abandonment", "Viewed Product")
    assert kinds["Checkout Recovery SMS + Email"] == ("abandoned_cart", "Added to Cart")
    # Only candidate definitions were read (not the welcome, post-purchase or archived flows), paced at 3/s.
    read = {c.path.rsplit("/", 1)[1] for c in fake.calls if c.path.startswith("/api/flows/")}
    assert read == {fake.dataset.flow(name).id for name in verdicts}
    assert sleeps == [pytest.approx(0.34)] * 3
    english = render_lookup(audit, "en")
    assert english.intro == "Checked 4 flows: 2 at risk."
    risky = next(i.text for i in english.sections[0].items if "Legacy" in i.text)
    assert "Placed Order zero times since starting this flow" in risky and "Legacy email 2" in risky
    assert "自进入此流程以来 Placed Order 为 0 次" in block_text(render_lookup(audit, "zh"))
    assert_block_kit(english)
    assert_block_kit(render_lookup(audit, "zh"))


def _definition(actions: list[dict[str, Any]], flow_filter: dict[str, Any] | None = None) -> FlowDefinition:
    return FlowDefinition(flow=Flow("F1", "Abandoned cart"), triggers=({"type": "metric", "id": "CS"},),
                          profile_filter=flow_filter, actions=tuple(actions),
                          entry_action_id=actions[0]["id"])


ORDERED = placed_order_condition("PO", "greater-than", 0)
CONSENT = {"type": "profile-marketing-consent"}


@pytest.mark.parametrize(("actions", "flow_filter", "verdict", "unprotected"), [
    # A flow filter with the exit condition protects everything.
    ([delay_action("1", "2", 4), send_action("2", None, "m1", "E1")],
     profile_filter(placed_order_condition("PO")), "ok", ()),
    # "in the last 30 days" is not "since starting this flow".
    ([delay_action("1", "2", 4), send_action("2", None, "m1", "E1")],
     profile_filter({**placed_order_condition("PO"), "timeframe_filter": {
         "type": "date", "operator": "in-the-last", "unit": "day", "quantity": 30}}), "at_risk", ("E1",)),
    # OR-ed with another condition in one group, the exit condition no longer guarantees anything.
    ([delay_action("1", "2", 4), send_action("2", None, "m1", "E1")],
     {"condition_groups": [{"conditions": [placed_order_condition("PO"), CONSENT]}]},
     "at_risk", ("E1",)),
    # A split whose "no" branch continues, with no delay before the email.
    ([delay_action("1", "2", 4), split_action("2", None, "3", ORDERED), send_action("3", None, "m1", "E1")],
     None, "ok", ()),
    # The same split, but the email continues on the wrong branch.
    ([delay_action("1", "2", 4), split_action("2", "3", None, ORDERED), send_action("3", None, "m1", "E1")],
     None, "at_risk", ("E1",)),
    # "at least 1" split; a delay after it leaves the second email exposed.
    ([delay_action("1", "2", 4),
      split_action("2", None, "3", placed_order_condition("PO", "greater-than-or-equal", 1)),
      send_action("3", "4", "m1", "E1"), delay_action("4", "5", 1, "days"),
      send_action("5", None, "m2", "E2")], None, "at_risk", ("E2",)),
    # An email straight after the trigger: nobody can have ordered since starting yet.
    ([send_action("1", None, "m1", "E1")], None, "ok", ()),
    # A split on another metric protects nothing.
    ([delay_action("1", "2", 4), split_action("2", "3", None, placed_order_condition("XX")),
      send_action("3", None, "m1", "E1")], None, "at_risk", ("E1",)),
    ([delay_action("1", None, 4)], None, "no_messages", ()),
])
def test_check_flow(actions, flow_filter, verdict, unprotected) -> None:
    check = check_flow(_definition(actions, flow_filter), "PO")

    assert (check.verdict, check.unprotected) == (verdict, unprotected)


def test_check_flow_reads_message_additional_filters() -> None:
    email = send_action("2", None, "m1", "E1")
    email["data"]["message"]["additional_filters"] = profile_filter(placed_order_condition("PO"))

    assert check_flow(_definition([delay_action("1", "2", 4), email]), "PO").verdict == "ok"
    assert check_flow(_definition([delay_action("1", "2", 4), email]), None).verdict == "unknown"


# --------------------------------------------------------------------------- errors


async def test_missing_scope_is_named_and_not_cached(fake: FakeKlaviyoApi, make_service) -> None:
    fake.deny_scope("/api/flow-values-reports")
    service = make_service(fake)

    with pytest.raises(KlaviyoScopeError) as caught:
        await service.flow_stats(TEAM)

    assert caught.value.scope == "flows:read" and "`flows:read`" in caught.value.user_message
    fake.failures.clear()
    assert (await service.flow_stats(TEAM)).flows


async def test_account_scope_missing_falls_back_to_usd(fake: FakeKlaviyoApi, make_service) -> None:
    fake.deny_scope("/api/accounts")

    stats = await make_service(fake).campaign_stats(TEAM)

    assert stats.currency == "USD" and stats.campaigns


async def test_account_currency_is_used(klaviyo: StartFake, make_service) -> None:
    api = await klaviyo(KlaviyoDataset.seeded(currency="EUR"))

    answer = render_lookup(await make_service(api).campaign_stats(TEAM), "en")

    assert "€" in (answer.intro or "") and "$" not in (answer.intro or "")


async def test_invalid_key_says_how_to_reconnect(fake: FakeKlaviyoApi, make_service) -> None:
    with pytest.raises(KlaviyoAuthError) as caught:
        await make_service(fake, key="pk_" + "1" * 34).listings(TEAM, "flows")

    assert "/klaviyo connect" in caught.value.user_message


# --------------------------------------------------------------------------- keys and connections


async def test_connect_stores_the_key_encrypted_and_lookups_use_it(
        fake: FakeKlaviyoApi, http, sessionmaker, monkeypatch, clock, sleeps) -> None:
    monkeypatch.setenv("BOT_ENCRYPTION_KEY", Fernet.generate_key().decode())
    fake.deny_scope("/api/lists")

    check = await connect_klaviyo(http, sessionmaker, TEAM, f"  {DEFAULT_KEY}\n", connected_by="U1",
                                  base_url=fake.url, sleep=sleeps)

    assert check.valid and check.missing_scopes == ("lists:read",)
    async with sessionmaker() as session:
        row = await session.get(KlaviyoConnection, TEAM)
    assert row and row.fingerprint == f"pk_...{DEFAULT_KEY[-4:]}" and row.missing_scopes == "lists:read"
    assert DEFAULT_KEY.encode() not in row.encrypted_key and decrypt_key(row.encrypted_key) == DEFAULT_KEY
    factory = StoredKeyClientFactory(http, sessionmaker, base_url=fake.url, sleep=sleeps)
    service = LookupService(factory, sessionmaker, clock=clock, sleep=sleeps)
    assert (await service.campaign_stats(TEAM)).campaigns
    with pytest.raises(KlaviyoNotConnected) as caught:
        await service.campaign_stats("T0NOBODY")
    assert "not connected" in caught.value.user_message and "尚未连接" in caught.value.message_for("zh")
    answer = render_key_check(check, row.fingerprint, "en")
    assert "Acme Outfitters" in (answer.intro or "") and "`lists:read`" in answer.sections[0].items[0].text


async def test_connect_with_an_invalid_key_stores_nothing(fake: FakeKlaviyoApi, http, sessionmaker,
                                                          monkeypatch,
                                                          sleeps) -> None:
    monkeypatch.setenv("BOT_ENCRYPTION_KEY", Fernet.generate_key().decode())
    fake.revoke_key()

    check = await connect_klaviyo(http, sessionmaker, TEAM, DEFAULT_KEY, base_url=fake.url, sleep=sleeps)

    assert not check.valid
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(KlaviyoConnection)) == 0
    assert "rejected" in (render_key_check(check, fingerprint(DEFAULT_KEY), "en").intro or "")


async def test_connect_refuses_without_an_encryption_key(fake: FakeKlaviyoApi, http, sessionmaker,
                                                         monkeypatch,
                                                         sleeps) -> None:
    monkeypatch.delenv("BOT_ENCRYPTION_KEY", raising=False)

    with pytest.raises(ConfigError) as caught:
        await connect_klaviyo(http, sessionmaker, TEAM, DEFAULT_KEY, base_url=fake.url, sleep=sleeps)

    assert "BOT_ENCRYPTION_KEY" in caught.value.user_message
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(KlaviyoConnection)) == 0


def test_crypto_round_trip_and_refusals(monkeypatch) -> None:
    secret = Fernet.generate_key()
    token = encrypt_key(DEFAULT_KEY, secret=secret)
    assert DEFAULT_KEY.encode() not in token and decrypt_key(token, secret=secret) == DEFAULT_KEY

    monkeypatch.setenv("BOT_ENCRYPTION_KEY", secret.decode())
    assert decrypt_key(encrypt_key(DEFAULT_KEY)) == DEFAULT_KEY

    monkeypatch.delenv("BOT_ENCRYPTION_KEY")
    with pytest.raises(ConfigError, match="BOT_ENCRYPTION_KEY is not set"):
        encrypt_key(DEFAULT_KEY)
    monkeypatch.setenv("BOT_ENCRYPTION_KEY", "not-a-fernet-key")
    with pytest.raises(ConfigError, match="BOT_ENCRYPTION_KEY is malformed"):
        encrypt_key(DEFAULT_KEY)
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        decrypt_key(token, secret=Fernet.generate_key())


def test_fingerprint_and_key_detection() -> None:
    assert fingerprint(DEFAULT_KEY) == f"pk_...{DEFAULT_KEY[-4:]}"
    assert fingerprint("pk_short") == "pk_..."
    assert looks_like_private_key(f"here you go: {DEFAULT_KEY} thanks")
    assert looks_like_private_key("PK? " + "pk_" + "A1b2" * 9)
    assert not looks_like_private_key("the pk_id column and pk_test are not keys")
    assert not looks_like_private_key("public key AbC123")
    assert redact_private_keys(f"key={DEFAULT_KEY}.") == f"key=pk_...{DEFAULT_KEY[-4:]}."


async def test_key_never_in_logs_or_reprs(fake: FakeKlaviyoApi, make_service, http, sessionmaker, caplog,
                                          sleeps) -> None:
    caplog.set_level(logging.DEBUG)
    fake.rate_limit("/api/campaign-values-reports", retry_after=1)
    fake.server_error("/api/flows")
    service = make_service(fake)
    results: list[Any] = [await service.campaign_stats(TEAM), await service.flow_audit(TEAM)]
    try:
        await make_service(fake, key=DEFAULT_KEY[:-2] + "zz").flow_stats(TEAM)
    except KlaviyoAuthError as exc:
        results.append(exc)
    factory = StoredKeyClientFactory(http, sessionmaker, base_url=fake.url)

    assert "Klaviyo" in caplog.text
    secret = DEFAULT_KEY[3:]
    rendered = [render_lookup(r, "en") for r in results if isinstance(r, (CampaignStats, FlowAudit))]
    texts = [caplog.text, repr(service), repr(factory), *(repr(r) for r in results),
             *(str(a) for a in rendered)]
    assert not [t for t in texts if secret in t or DEFAULT_KEY[-12:] in t]


# --------------------------------------------------------------------------- formatting


def test_number_formatting() -> None:
    assert format_money(1234.5, "USD") == "$1,234.50"
    assert format_money(1234.5, "EUR") == "€1,234.50"
    assert format_money(1234.5, "JPY") == "¥1,234" or format_money(1234.5, "JPY") == "¥1,235"
    assert format_money(99, "PLN") == "99.00 PLN"
    assert format_pct(12.345) == "12.3%" and format_pct(None) == "—"
