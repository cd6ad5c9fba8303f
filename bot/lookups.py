"""Live Klaviyo lookups: cached, coalesced, rate-aware services, and their bilingual Answers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import types
import unicodedata
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import partial, singledispatch
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import aiohttp
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.crypto import decrypt_key, encrypt_key, fingerprint
from bot.db import KlaviyoConnection, ReportCache, session_scope, utcnow
from bot.errors import BotError
from bot.klaviyo import (
    RECONNECT_HINT,
    RECONNECT_HINT_ZH,
    TIMEFRAME_KEYS,
    Campaign,
    FlowDefinition,
    KeyCheck,
    KlaviyoClient,
    KlaviyoScopeError,
    ReportRow,
    Timeframe,
    pick_metric,
)
from knowledge.engine import slack_escape
from knowledge.models import Answer, Item, Lang, Section

logger = logging.getLogger(__name__)

T = TypeVar("T")
ClientFactory = Callable[[str], Awaitable[KlaviyoClient]]
ListingKind = Literal["flows", "segments", "lists", "metrics"]

CACHE_VERSION = "v1"  # bump when a result dataclass changes shape, so old cache rows are ignored
PLACED_ORDER = "Placed Order"
READY_ORDERS = 500  # the guide: predictions need 500+ orders ...
READY_DAYS = 180  # ... and 180+ days of order history
MAX_HISTORY_YEARS = 3  # how far back readiness looks, one metric-aggregates call per year
MAX_AUDITED_FLOWS = 15  # flow definitions read per audit (flows endpoints allow 3/s, 60/min)
FLOW_DEFINITION_PACE = 0.34  # seconds between definition reads: stays under the 3/s burst
REPORT_SPACING = 1.0  # seconds between report calls for one account: the reporting burst is 1/s
LISTING_COUNTS = 40  # segments/lists whose profile counts are fetched (one GET each)

# Block Kit limits (Slack): at most 10 fields per section, 2000 chars a field, 3000 a section text; a
# message may hold 50 blocks, but long messages fail with msg_blocks_too_long, so we stay near 20.
MAX_BLOCKS = 20
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_SECTION_CHARS = 3000
MAX_ITEMS = 10  # bullets per Answer section before "and N more"

# Asked of both values reports (campaigns and flows); one request carries them all.
ASKED_STATISTICS = (
    "recipients", "delivered", "opens_unique", "open_rate", "clicks_unique", "click_rate",
    "conversion_uniques", "conversion_rate", "conversions", "conversion_value", "unsubscribes",
)
# The report's send_channel values differ from the campaigns-list channel filter's.
_LIST_CHANNEL = {"email": "email", "sms": "sms", "push-notification": "mobile_push"}
_CART_METRICS = {"checkout started", "started checkout", "added to cart"}
_BROWSE_METRICS = {"viewed product"}
_CART_WORDS = re.compile(r"abandon|cart|checkout|basket|弃购|购物车|購物車|结账|結帳|放弃", re.IGNORECASE)
_BROWSE_WORDS = re.compile(r"browse|浏览|瀏覽", re.IGNORECASE)
_DELAY_ACTIONS = {"time-delay", "countdown-delay", "back-in-stock-delay", "target-date"}
_SEND_ACTIONS = {"send-email", "send-sms", "send-mobile-push", "send-whatsapp",
                 "ab-test", "content-experiment"}  # A/B tests and experiments wrap a message


# --------------------------------------------------------------------------- errors


class LiveLookupError(BotError):
    """A lookup that cannot be answered as asked; carries the sentence in English and Chinese."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.user_message_zh = zh

    def message_for(self, lang: str) -> str:
        """Returns the user-facing sentence in English or Chinese."""
        return self.user_message_zh if lang == "zh" else self.user_message


class KlaviyoNotConnected(LiveLookupError):
    """The workspace has no stored Klaviyo key."""

    def __init__(self) -> None:
        super().__init__(f"Klaviyo is not connected for this workspace yet. {RECONNECT_HINT} "
                         f"(read-only scopes are enough).",
                         f"此工作区尚未连接 Klaviyo。{RECONNECT_HINT_ZH}（只读权限即可）。")


class MissingMetric(LiveLookupError):
    """The account has no Placed Order metric, so conversions cannot be attributed."""

    def __init__(self) -> None:
        super().__init__(
            "This Klaviyo account has no *Placed Order* metric yet, so revenue and conversions cannot be "
            "attributed. Connect your store integration (Shopify, WooCommerce, BigCommerce …) or send "
            "Placed Order events, then ask again.",
            "此 Klaviyo 账户还没有 *Placed Order* 指标，无法归因收入和转化。请先连接店铺集成（Shopify、"
            "WooCommerce、BigCommerce 等）或发送 Placed Order 事件，然后再试。")


class UnsupportedTimeframe(LiveLookupError):
    """A timeframe Klaviyo's reports cannot cover."""


# --------------------------------------------------------------------------- timeframes

_KEY_NAMES = re.compile(r"\b(" + "|".join(sorted(TIMEFRAME_KEYS, key=len, reverse=True)) + r")\b")
_AMOUNT = re.compile(
    r"(\d{1,4})\s*(days?|d|天|日|weeks?|wks?|w|周|週|星期|months?|mos?|m|个月|個月|years?|yrs?|y|年)(?![a-z])")
_KEYWORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), k) for p, k in (
    (r"\btoday\b|今天|今日", "today"),
    (r"\byesterday\b|昨天|昨日", "yesterday"),
    (r"\bthis week\b|本周|这周|本週|這週", "this_week"),
    (r"\b(?:last|previous) week\b|上周|上週", "last_week"),
    (r"\bpast week\b", "last_7_days"),
    (r"\bthis month\b|\bmonth to date\b|\bmtd\b|本月|这个月|這個月", "this_month"),
    (r"\b(?:last|previous) month\b|上个月|上個月|上月", "last_month"),
    (r"\bpast month\b", "last_30_days"),
    (r"\b(?:last|past|previous) quarter\b|上季度|上个季度|上個季度", "last_3_months"),
    (r"\bthis year\b|\byear to date\b|\bytd\b|今年", "this_year"),
    (r"\b(?:last|previous) year\b|去年", "last_year"),
    (r"\bpast year\b", "last_12_months"),
))
_DAY_KEYS = {7: "last_7_days", 30: "last_30_days", 90: "last_90_days", 365: "last_365_days"}
_MONTH_KEYS = {1: "last_30_days", 3: "last_3_months", 12: "last_12_months"}


def parse_timeframe(text: str | None, *, default: str = "last_30_days",
                    now: datetime | None = None) -> Timeframe:
    """Finds a timeframe in text like "30d", "last 30 days", "this month" or "最近30天"; else the default."""
    normalized = unicodedata.normalize("NFKC", text or "").casefold()
    if match := _KEY_NAMES.search(normalized):
        return Timeframe(key=match.group(1))
    if match := _AMOUNT.search(normalized):
        amount, unit = int(match.group(1)), match.group(2)
        if unit in ("years", "year", "yrs", "yr", "y", "年"):
            if amount > 10:  # "2025年" is a calendar year, not a duration
                return _keyword_timeframe(normalized, default)
            return _days_timeframe(365 * amount, now)
        if unit in ("months", "month", "mos", "mo", "m", "个月", "個月"):
            if amount in _MONTH_KEYS:
                return Timeframe(key=_MONTH_KEYS[amount])
            return _days_timeframe(30 * amount, now)
        if unit in ("weeks", "week", "wks", "wk", "w", "周", "週", "星期"):
            return _days_timeframe(7 * amount, now)
        return _days_timeframe(amount, now)
    return _keyword_timeframe(normalized, default)


def _keyword_timeframe(normalized: str, default: str) -> Timeframe:
    for pattern, key in _KEYWORDS:
        if pattern.search(normalized):
            return Timeframe(key=key)
    return Timeframe(key=default)


def _days_timeframe(days: int, now: datetime | None) -> Timeframe:
    if days in _DAY_KEYS:
        return Timeframe(key=_DAY_KEYS[days])
    if days < 1 or days > 365:
        raise UnsupportedTimeframe(
            "Klaviyo reports cover between one day and one year: try “last 365 days” or “this year”.",
            "Klaviyo 报表的时间范围为 1 天到 1 年：可以试试“最近365天”或“今年”。")
    # A custom range, floored to the hour so repeated asks within the hour share one cache entry.
    end = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    end = end.replace(minute=0, second=0, microsecond=0)
    return Timeframe(start=end - timedelta(days=days), end=end)


_LISTING_WORDS: tuple[tuple[re.Pattern[str], ListingKind], ...] = (
    (re.compile(r"\bsegments?\b|分群|细分|人群"), "segments"),
    (re.compile(r"\blists?\b|列表|名单"), "lists"),
    (re.compile(r"\bmetrics?\b|\bevents? (?:we|are)\b|tracking|指标|事件"), "metrics"),
    (re.compile(r"\bflows?\b|automations?|流程|自动化"), "flows"),
)


def parse_listing_kind(text: str | None, default: ListingKind = "flows") -> ListingKind:
    """Finds which listing a question asks for: segments, lists, metrics or flows (in that priority)."""
    normalized = unicodedata.normalize("NFKC", text or "").casefold()
    for pattern, kind in _LISTING_WORDS:
        if pattern.search(normalized):
            return kind
    return default


_TIMEFRAME_LABELS: dict[str, tuple[str, str]] = {
    "last_7_days": ("last 7 days", "最近7天"), "last_30_days": ("last 30 days", "最近30天"),
    "last_90_days": ("last 90 days", "最近90天"), "last_365_days": ("last 365 days", "最近365天"),
    "last_3_months": ("last 3 months", "最近3个月"), "last_12_months": ("last 12 months", "最近12个月"),
    "last_week": ("last week", "上周"), "last_month": ("last month", "上个月"),
    "last_year": ("last year", "去年"), "this_week": ("this week", "本周"),
    "this_month": ("this month", "本月"), "this_year": ("this year", "今年"),
    "today": ("today", "今天"), "yesterday": ("yesterday", "昨天"),
}


def timeframe_label(timeframe: Timeframe, lang: Lang = "en") -> str:
    """Names a timeframe for people: "last 30 days" / "最近30天", or its dates."""
    if timeframe.key:
        en, zh = _TIMEFRAME_LABELS[timeframe.key]
        return zh if lang == "zh" else en
    assert timeframe.start and timeframe.end
    start, end = timeframe.start.date(), (timeframe.end - timedelta(seconds=1)).date()
    return f"{start.isoformat()} 至 {end.isoformat()}" if lang == "zh" else f"{start:%b %d} – {end:%b %d, %Y}"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: str
    name: str
    channel: str  # the report's send_channel: email | sms | push-notification | whatsapp
    send_time: datetime | None
    recipients: int
    open_rate_pct: float | None  # percentages (Klaviyo's fractions × 100); None where not applicable
    click_rate_pct: float | None
    conversion_rate_pct: float | None
    revenue: float
    conversions: int
    unsubscribes: int


@dataclass(frozen=True)
class CampaignStats:
    team_id: str
    timeframe: Timeframe
    currency: str
    conversion_metric: str
    campaigns: tuple[CampaignRow, ...]
    fetched_at: datetime
    from_cache: bool = False
    private: bool = False  # no profile-level data here; kept for future profile lookups


@dataclass(frozen=True)
class FlowMessageRow:
    message_id: str
    name: str
    channel: str
    recipients: int
    open_rate_pct: float | None
    click_rate_pct: float | None
    conversion_rate_pct: float | None
    revenue: float
    unsubscribes: int


@dataclass(frozen=True)
class FlowRow:
    flow_id: str
    name: str
    status: str | None
    recipients: int
    open_rate_pct: float | None
    click_rate_pct: float | None
    conversion_rate_pct: float | None
    revenue: float
    messages: tuple[FlowMessageRow, ...]


@dataclass(frozen=True)
class FlowStats:
    team_id: str
    timeframe: Timeframe
    currency: str
    conversion_metric: str
    flows: tuple[FlowRow, ...]
    fetched_at: datetime
    from_cache: bool = False
    private: bool = False


@dataclass(frozen=True)
class ListingRow:
    id: str
    name: str
    status: str | None = None  # flows: live/draft/manual (+archived)
    detail: str | None = None  # flows: trigger type; metrics: integration; lists: opt-in process
    profile_count: int | None = None


@dataclass(frozen=True)
class Listing:
    team_id: str
    kind: str
    rows: tuple[ListingRow, ...]
    fetched_at: datetime
    from_cache: bool = False
    private: bool = False


@dataclass(frozen=True)
class MonthCount:
    month: date
    orders: int


@dataclass(frozen=True)
class PredictiveReadiness:
    team_id: str
    metric_found: bool
    total_orders: int
    history_days: int
    first_order_month: date | None
    last_order_month: date | None
    months: tuple[MonthCount, ...]
    fetched_at: datetime
    history_is_lower_bound: bool = False  # orders go back further than the windows read
    from_cache: bool = False
    private: bool = False

    @property
    def ready(self) -> bool:
        return self.total_orders >= READY_ORDERS and self.history_days >= READY_DAYS

    @property
    def orders_needed(self) -> int:
        return max(0, READY_ORDERS - self.total_orders)

    @property
    def days_needed(self) -> int:
        return max(0, READY_DAYS - self.history_days)

    @property
    def recent_monthly_orders(self) -> float:
        """Average orders a month over the last three full months since orders began."""
        start, this_month = self.first_order_month, _month_start(self.fetched_at)  # this month is partial
        full = [m.orders for m in self.months if start and start <= m.month < this_month][-3:]
        return sum(full) / len(full) if full else 0.0


Verdict = Literal["ok", "at_risk", "unknown", "no_messages"]


@dataclass(frozen=True)
class FlowCheck:
    """Whether a flow stops emailing people who ordered after entering it, and how."""

    verdict: Verdict
    protection: Literal["flow_filter", "splits", "none"]
    unprotected: tuple[str, ...] = ()  # names of messages that can still reach a buyer


@dataclass(frozen=True)
class FlowAuditRow:
    flow_id: str
    name: str
    status: str | None
    kind: Literal["abandoned_cart", "browse_abandonment"]
    trigger: str | None  # the trigger metric's name, when known
    check: FlowCheck


@dataclass(frozen=True)
class FlowAudit:
    team_id: str
    placed_order_found: bool
    flows: tuple[FlowAuditRow, ...]
    skipped: int  # candidates over MAX_AUDITED_FLOWS, not read
    fetched_at: datetime
    from_cache: bool = False
    private: bool = False


@dataclass(frozen=True)
class MetricRef:
    id: str
    name: str
    integration: str | None = None


@dataclass(frozen=True)
class AccountInfo:
    currency: str
    timezone: str
    name: str


LookupResult = CampaignStats | FlowStats | Listing | PredictiveReadiness | FlowAudit


# --------------------------------------------------------------------------- cache encoding


def _encode(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(tp: Any, data: Any) -> Any:
    if data is None or tp is Any:
        return data
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return _decode(next(a for a in args if a is not type(None)), data)
    if origin is Literal:
        return data
    if isinstance(tp, type) and is_dataclass(tp):
        hints = get_type_hints(tp)
        return tp(**{f.name: _decode(hints[f.name], data[f.name]) for f in fields(tp) if f.name in data})
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is date:
        return date.fromisoformat(data)
    if origin is tuple:
        return tuple(_decode(args[0], v) for v in data)
    if origin is list:
        return [_decode(args[0], v) for v in data]
    if origin is dict:
        return {k: _decode(args[1], v) for k, v in data.items()}
    if tp is float:
        return float(data)
    if tp is int:
        return int(data)
    return data


def cache_key(team_id: str, kind: str, params: dict[str, Any]) -> str:
    """The ReportCache key for one lookup: version, team, kind and a digest of the parameters."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"{_team_prefix(team_id)}{kind}:{digest}"


def _team_prefix(team_id: str) -> str:
    return f"klaviyo:{CACHE_VERSION}:{team_id}:"


# --------------------------------------------------------------------------- connections


async def save_connection(session: AsyncSession, team_id: str, api_key: str, *,
                          missing_scopes: Iterable[str] = (), connected_by: str | None = None,
                          secret: str | bytes | None = None) -> KlaviyoConnection:
    """Stores a workspace's key encrypted (never without BOT_ENCRYPTION_KEY) and drops its cached results."""
    encrypted = encrypt_key(api_key, secret=secret)
    row = await session.get(KlaviyoConnection, team_id)
    if row is None:
        row = KlaviyoConnection(team_id=team_id, encrypted_key=encrypted, fingerprint=fingerprint(api_key))
        session.add(row)
    row.encrypted_key = encrypted
    row.fingerprint = fingerprint(api_key)
    row.missing_scopes = ",".join(missing_scopes) or None
    row.connected_by = connected_by
    row.connected_at = utcnow()
    # A new key may belong to another Klaviyo account: nothing cached for the old one may be shown.
    await session.execute(delete(ReportCache).where(
        ReportCache.cache_key.startswith(_team_prefix(team_id), autoescape=True)))
    return row


async def load_api_key(session: AsyncSession, team_id: str, *,
                       secret: str | bytes | None = None) -> str | None:
    """Returns the workspace's decrypted Klaviyo key, or None when it has not connected."""
    row = await session.get(KlaviyoConnection, team_id)
    return decrypt_key(row.encrypted_key, secret=secret) if row else None


class StoredKeyClientFactory:
    """Builds a KlaviyoClient for a workspace from its stored, encrypted key."""

    def __init__(self, http: aiohttp.ClientSession, sessionmaker: async_sessionmaker[AsyncSession], *,
                 secret: str | bytes | None = None, **client_options: Any) -> None:
        self._http = http
        self._sessionmaker = sessionmaker
        self._secret = secret
        self._client_options = client_options

    def __repr__(self) -> str:
        return f"StoredKeyClientFactory(options={sorted(self._client_options)})"

    async def __call__(self, team_id: str) -> KlaviyoClient:
        async with self._sessionmaker() as session:
            api_key = await load_api_key(session, team_id, secret=self._secret)
        if api_key is None:
            raise KlaviyoNotConnected()
        return KlaviyoClient(self._http, api_key, **self._client_options)


def fixed_key_client_factory(http: aiohttp.ClientSession, api_key: str,
                             **client_options: Any) -> ClientFactory:
    """A factory for a single-workspace install: every team uses the one configured key."""

    async def client_for(team_id: str) -> KlaviyoClient:
        if not api_key:
            raise KlaviyoNotConnected()
        return KlaviyoClient(http, api_key, **client_options)

    return client_for


async def connect_klaviyo(http: aiohttp.ClientSession, sessionmaker: async_sessionmaker[AsyncSession],
                          team_id: str, api_key: str, *, connected_by: str | None = None,
                          secret: str | bytes | None = None, **client_options: Any) -> KeyCheck:
    """Checks a pasted key and, when Klaviyo accepts it, stores it encrypted with its missing scopes."""
    check = await KlaviyoClient(http, api_key.strip(), **client_options).check_key()
    if check.valid:
        async with session_scope(sessionmaker) as session:
            await save_connection(session, team_id, api_key.strip(), missing_scopes=check.missing_scopes,
                                  connected_by=connected_by, secret=secret)
    return check


# --------------------------------------------------------------------------- the service


class LookupService:
    """Runs the live lookups for a workspace: cached in ReportCache, coalesced in-process, rate-aware."""

    def __init__(self, client_factory: ClientFactory, sessionmaker: async_sessionmaker[AsyncSession], *,
                 report_ttl: timedelta = timedelta(minutes=15), metric_ttl: timedelta = timedelta(hours=1),
                 listing_ttl: timedelta = timedelta(minutes=5), store_integration: str | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self._client_factory = client_factory
        self._sessionmaker = sessionmaker
        self.report_ttl = report_ttl
        self.metric_ttl = metric_ttl
        self.listing_ttl = listing_ttl
        self.store_integration = store_integration  # e.g. "Shopify": preferred Placed Order source
        self._clock = clock
        self._sleep = sleep
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._report_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._last_report: dict[str, float] = {}

    # ----------------------------------------------------------------- public lookups

    async def campaign_stats(self, team_id: str, timeframe: Timeframe | str | None = None, *,
                             refresh: bool = False) -> CampaignStats:
        """Recent campaigns with recipients, open/click/conversion rates, revenue and unsubscribes."""
        tf = self._timeframe(timeframe)

        async def produce() -> CampaignStats:
            client = await self._client_factory(team_id)
            metric = await self._conversion_metric(team_id, client)
            currency = await self._currency(team_id, client)
            async with self._report_slot(team_id):
                rows = await client.campaign_values_report(ASKED_STATISTICS, tf, metric.id)
            campaigns = await self._campaign_rows(client, rows)
            return CampaignStats(team_id, tf, currency, metric.name, campaigns, self._clock())

        return await self._cached(team_id, "campaign_stats", {"timeframe": tf.token}, self.report_ttl,
                                  CampaignStats, produce, refresh=refresh)

    async def flow_stats(self, team_id: str, timeframe: Timeframe | str | None = None, *,
                         refresh: bool = False) -> FlowStats:
        """Per-flow and per-message performance, with flow and message names."""
        tf = self._timeframe(timeframe)

        async def produce() -> FlowStats:
            client = await self._client_factory(team_id)
            metric = await self._conversion_metric(team_id, client)
            currency = await self._currency(team_id, client)
            flows = {f.id: f for f in await client.list_flows()}
            async with self._report_slot(team_id):
                # flow_message_name as a grouping names each message without one request per message.
                rows = await client.flow_values_report(
                    ASKED_STATISTICS, tf, metric.id,
                    group_by=["flow_id", "flow_message_id", "flow_message_name", "send_channel"])
            by_flow: defaultdict[str, list[ReportRow]] = defaultdict(list)
            for row in rows:
                by_flow[row.groupings.get("flow_id", "")].append(row)
            result = []
            for flow_id, flow_rows in by_flow.items():
                by_message: defaultdict[str, list[ReportRow]] = defaultdict(list)
                for row in flow_rows:
                    by_message[row.groupings.get("flow_message_id", "")].append(row)
                messages = tuple(sorted((_message_row(mid, r) for mid, r in by_message.items()),
                                        key=lambda m: -m.recipients))
                totals = _totals(flow_rows)
                flow = flows.get(flow_id)
                result.append(FlowRow(flow_id, flow.name if flow else flow_id, flow.status if flow else None,
                                      int(totals["recipients"]), *_rates(totals, flow_rows, None),
                                      revenue=round(totals["conversion_value"], 2), messages=messages))
            result.sort(key=lambda f: (-f.revenue, -f.recipients))
            return FlowStats(team_id, tf, currency, metric.name, tuple(result), self._clock())

        return await self._cached(team_id, "flow_stats", {"timeframe": tf.token}, self.report_ttl,
                                  FlowStats, produce, refresh=refresh)

    async def listings(self, team_id: str, kind: ListingKind, *, refresh: bool = False) -> Listing:
        """Lists flows (status, trigger), segments and lists (profile counts) or metrics (integration)."""
        if kind not in ("flows", "segments", "lists", "metrics"):
            raise ValueError(f"unknown listing {kind!r}")

        async def produce() -> Listing:
            client = await self._client_factory(team_id)
            rows: list[ListingRow]
            if kind == "flows":
                rows = [ListingRow(f.id, f.name, "archived" if f.archived else f.status, f.trigger_type)
                        for f in await client.list_flows()]
                rows.sort(key=lambda r: (r.status != "live", r.status == "archived", r.name.casefold()))
            elif kind == "segments":
                segments = await client.list_segments(max_counts=LISTING_COUNTS)
                rows = [ListingRow(s.id, s.name, None if s.is_active else "inactive", None, s.profile_count)
                        for s in segments]
                rows.sort(key=lambda r: (r.profile_count is None, -(r.profile_count or 0), r.name.casefold()))
            elif kind == "lists":
                rows = [ListingRow(x.id, x.name, None, x.opt_in_process, x.profile_count)
                        for x in await client.list_lists(max_counts=LISTING_COUNTS)]
                rows.sort(key=lambda r: (r.profile_count is None, -(r.profile_count or 0), r.name.casefold()))
            else:
                rows = [ListingRow(m.id, m.name, None, m.integration) for m in await client.list_metrics()]
                rows.sort(key=lambda r: ((r.detail or "~").casefold(), r.name.casefold()))
            return Listing(team_id, kind, tuple(rows), self._clock())

        return await self._cached(team_id, f"listing_{kind}", {}, self.listing_ttl, Listing, produce,
                                  refresh=refresh)

    async def predictive_readiness(self, team_id: str, *, refresh: bool = False) -> PredictiveReadiness:
        """Counts Placed Order events per month to judge whether predictive analytics can work yet."""

        async def produce() -> PredictiveReadiness:
            client = await self._client_factory(team_id)
            now = self._clock()
            try:
                metric = await self._conversion_metric(team_id, client)
            except MissingMetric:
                return PredictiveReadiness(team_id, False, 0, 0, None, None, (), now)
            counts: dict[date, int] = {}
            this_month = _month_start(now)
            for year in range(MAX_HISTORY_YEARS):
                # One call per 12-month window (kept within a year), newest first; older windows are read
                # only while orders reach back to the window's first month and the verdict is still "no".
                last = _add_months(this_month, -12 * year)
                first = _add_months(last, -11)
                until = now if year == 0 else _as_datetime(_add_months(last, 1))
                aggregate = await client.metric_aggregate(metric.id, ("count",), since=_as_datetime(first),
                                                          until=until, interval="month")
                for moment, value in zip(aggregate.dates, aggregate.series("count"), strict=False):
                    counts[_month_start(moment)] = int(value)
                older = counts.get(first, 0) > 0
                readiness = _readiness(team_id, counts, now, lower_bound=older)
                if readiness.ready or not older:
                    return readiness
            return readiness

        return await self._cached(team_id, "predictive_readiness", {}, self.report_ttl, PredictiveReadiness,
                                  produce, refresh=refresh)

    async def flow_audit(self, team_id: str, *, refresh: bool = False) -> FlowAudit:
        """Checks abandoned-cart and browse-abandonment flows for a Placed Order exit condition."""

        async def produce() -> FlowAudit:
            client = await self._client_factory(team_id)
            flows = await client.list_flows()
            metrics = await client.list_metrics(with_flow_triggers=True)
            placed = pick_metric(metrics, PLACED_ORDER, self.store_integration)
            names = {m.id: m.name for m in metrics}
            triggered = {fid for m in metrics if m.name.casefold() in _CART_METRICS | _BROWSE_METRICS
                         for fid in m.flow_ids}
            candidates = [f for f in flows if not f.archived
                          and (f.id in triggered or _abandonment_words(f.name))]
            candidates.sort(key=lambda f: (f.id not in triggered, f.status != "live", f.name.casefold()))
            rows: list[FlowAuditRow] = []
            for index, flow in enumerate(candidates[:MAX_AUDITED_FLOWS]):
                if index:
                    await self._sleep(FLOW_DEFINITION_PACE)
                definition = await client.get_flow_definition(flow.id)
                kind = _abandonment_kind(definition, names)
                if kind is None:
                    continue
                trigger_ids = definition.trigger_metric_ids()
                rows.append(FlowAuditRow(
                    flow.id, flow.name, flow.status, kind, names.get(trigger_ids[0]) if trigger_ids else None,
                    check_flow(definition, placed.id if placed else None)))
            rows.sort(key=lambda r: (r.check.verdict != "at_risk", r.status != "live", r.name.casefold()))
            return FlowAudit(team_id, placed is not None, tuple(rows),
                             max(0, len(candidates) - MAX_AUDITED_FLOWS), self._clock())

        return await self._cached(team_id, "flow_audit", {}, self.listing_ttl, FlowAudit, produce,
                                  refresh=refresh)

    async def answer(self, team_id: str, intent: str, *, text: str = "", lang: Lang = "en",
                     refresh: bool = False) -> Answer:
        """Runs the lookup a route's `live` intent names and renders it (errors stay BotErrors)."""
        result: LookupResult
        if intent == "campaign_stats":
            result = await self.campaign_stats(team_id, self._timeframe(text), refresh=refresh)
        elif intent == "flow_stats":
            result = await self.flow_stats(team_id, self._timeframe(text), refresh=refresh)
        elif intent == "listings":
            result = await self.listings(team_id, parse_listing_kind(text), refresh=refresh)
        elif intent in ("flows", "segments", "lists", "metrics"):
            result = await self.listings(team_id, intent, refresh=refresh)  # type: ignore[arg-type]
        elif intent == "predictive_readiness":
            result = await self.predictive_readiness(team_id, refresh=refresh)
        elif intent == "flow_audit":
            result = await self.flow_audit(team_id, refresh=refresh)
        else:
            raise ValueError(f"unknown live lookup {intent!r}")
        return render_lookup(result, lang)

    # ----------------------------------------------------------------- plumbing

    def _timeframe(self, timeframe: Timeframe | str | None) -> Timeframe:
        if isinstance(timeframe, Timeframe):
            return timeframe
        return parse_timeframe(timeframe, now=self._clock())

    async def _cached(self, team_id: str, kind: str, params: dict[str, Any], ttl: timedelta, cls: type[T],
                      produce: Callable[[], Awaitable[T]], *, refresh: bool = False,
                      keep: Callable[[T], bool] | None = None) -> T:
        """Serves from ReportCache when fresh; else one shared task per key calls Klaviyo and stores it."""
        key = cache_key(team_id, kind, params)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, ttl, cls, produce, refresh, keep))
            self._inflight[key] = task
            task.add_done_callback(partial(self._forget, key))
        # shield: a caller that gives up (Slack's 3 s ack, a cancelled command) must not cancel the
        # request other callers are waiting on.
        result: T = await asyncio.shield(task)
        return result

    def _forget(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here so an error nobody awaited any more is not logged as lost

    async def _load(self, key: str, ttl: timedelta, cls: type[T], produce: Callable[[], Awaitable[T]],
                    refresh: bool, keep: Callable[[T], bool] | None) -> T:
        now = self._clock()
        if not refresh:
            cached = await self._read_cache(key, now)
            if cached is not None:
                hit: T = _decode(cls, json.loads(cached))
                return replace(hit, from_cache=True) if hasattr(hit, "from_cache") else hit  # type: ignore[type-var]
        result = await produce()
        if keep is None or keep(result):
            await self._write_cache(key, json.dumps(_encode(result)), now, now + ttl)
        return result

    async def _read_cache(self, key: str, now: datetime) -> str | None:
        try:
            async with self._sessionmaker() as session:
                row = await session.get(ReportCache, key)
        except (SQLAlchemyError, OSError) as exc:  # the cache helps; it must not take lookups down
            logger.warning("report cache read failed: %s", type(exc).__name__)
            return None
        if row is None or _aware(row.expires_at) <= now:
            return None
        return row.payload

    async def _write_cache(self, key: str, payload: str, fetched_at: datetime, expires_at: datetime) -> None:
        values = {"cache_key": key, "payload": payload, "fetched_at": fetched_at, "expires_at": expires_at}
        try:
            async with session_scope(self._sessionmaker) as session:
                dialect = session.get_bind().dialect.name
                if dialect in ("postgresql", "sqlite"):
                    # Processes share the table: upsert so two writers of one key never collide.
                    insert = pg_insert if dialect == "postgresql" else sqlite_insert
                    stmt = insert(ReportCache).values(**values)
                    stmt = stmt.on_conflict_do_update(
                        index_elements=[ReportCache.cache_key],
                        set_={"payload": stmt.excluded.payload, "fetched_at": stmt.excluded.fetched_at,
                              "expires_at": stmt.excluded.expires_at})
                    await session.execute(stmt)
                else:
                    await session.merge(ReportCache(**values))
                await session.execute(delete(ReportCache).where(
                    ReportCache.expires_at < fetched_at - timedelta(days=1)))
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("report cache write failed: %s", type(exc).__name__)

    @asynccontextmanager
    async def _report_slot(self, team_id: str) -> AsyncIterator[None]:
        """Serializes one account's report calls and spaces them a second apart (burst 1/s).

        The steady limit (2/min, 225/day) is left to caching and to the client's 429 handling: waiting
        30 s here would outlast a Slack reply.
        """
        async with self._report_locks[team_id]:
            last = self._last_report.get(team_id)
            if last is not None:
                gap = REPORT_SPACING - (time.monotonic() - last)
                if gap > 0:
                    await self._sleep(gap)
            try:
                yield
            finally:
                self._last_report[team_id] = time.monotonic()

    async def _conversion_metric(self, team_id: str, client: KlaviyoClient) -> MetricRef:
        """The Placed Order metric, looked up once per metric TTL and shared by every lookup."""

        async def produce() -> MetricRef:
            metric = pick_metric(await client.list_metrics(), PLACED_ORDER, self.store_integration)
            return MetricRef(metric.id, metric.name, metric.integration) if metric else MetricRef("", "")

        ref = await self._cached(team_id, "metric", {"name": PLACED_ORDER, "hint": self.store_integration},
                                 self.metric_ttl, MetricRef, produce, keep=lambda r: bool(r.id))
        if not ref.id:
            raise MissingMetric()
        return ref

    async def _currency(self, team_id: str, client: KlaviyoClient) -> str:
        """The account's preferred currency (cached); USD when the key may not read the account."""

        async def produce() -> AccountInfo:
            account = await client.get_account()
            return AccountInfo(account.currency, account.timezone, account.name)

        try:
            info = await self._cached(team_id, "account", {}, self.metric_ttl, AccountInfo, produce)
        except KlaviyoScopeError:
            return "USD"
        return info.currency or "USD"

    async def _campaign_rows(self, client: KlaviyoClient,
                             rows: Sequence[ReportRow]) -> tuple[CampaignRow, ...]:
        """Folds report rows per campaign and resolves names in batches (the report carries only ids)."""
        by_campaign: defaultdict[str, list[ReportRow]] = defaultdict(list)
        for row in rows:
            by_campaign[row.groupings.get("campaign_id", "")].append(row)
        ids_by_channel: defaultdict[str, list[str]] = defaultdict(list)
        for campaign_id, campaign_rows in by_campaign.items():
            list_channel = _LIST_CHANNEL.get(campaign_rows[0].groupings.get("send_channel", "email"))
            if list_channel:  # WhatsApp campaigns cannot be listed: the channel filter has no value for them
                ids_by_channel[list_channel].append(campaign_id)
        known: dict[str, Campaign] = {}
        for list_channel, ids in ids_by_channel.items():
            for campaign in await client.list_campaigns(list_channel, ids=ids):  # type: ignore[arg-type]
                known[campaign.id] = campaign
        result = []
        for campaign_id, campaign_rows in by_campaign.items():
            totals = _totals(campaign_rows)
            channel = campaign_rows[0].groupings.get("send_channel", "email")
            found = known.get(campaign_id)
            sent = (found.send_time or found.scheduled_at) if found else None
            result.append(CampaignRow(
                campaign_id, found.name if found else "", channel, sent, int(totals["recipients"]),
                *_rates(totals, campaign_rows, channel), revenue=round(totals["conversion_value"], 2),
                conversions=int(totals["conversions"]), unsubscribes=int(totals["unsubscribes"])))
        oldest = datetime.min.replace(tzinfo=timezone.utc)
        result.sort(key=lambda c: (c.send_time or oldest, c.recipients), reverse=True)
        return tuple(result)


# --------------------------------------------------------------------------- pure helpers


def _totals(rows: Sequence[ReportRow]) -> dict[str, float]:
    totals: defaultdict[str, float] = defaultdict(float)
    for row in rows:
        for name, value in row.statistics.items():
            totals[name] += value
    return totals


def _rates(totals: dict[str, float], rows: Sequence[ReportRow],
           channel: str | None) -> tuple[float | None, float | None, float | None]:
    """Open/click/conversion rates in percent: Klaviyo's own for one row, recomputed over several."""
    if len(rows) == 1:
        stats = rows[0].statistics
        open_rate, click_rate, conversion_rate = (stats.get("open_rate"), stats.get("click_rate"),
                                                  stats.get("conversion_rate"))
    else:
        delivered = totals.get("delivered") or 0
        # Opens exist only for email: SMS deliveries would dilute the open rate.
        email_delivered = sum(r.statistics.get("delivered", 0) for r in rows
                              if r.groupings.get("send_channel", "email") != "sms")
        open_rate = totals["opens_unique"] / email_delivered if email_delivered else None
        click_rate = totals["clicks_unique"] / delivered if delivered else None
        conversion_rate = totals["conversion_uniques"] / delivered if delivered else None
    if channel == "sms":  # SMS has no opens; Klaviyo reports 0, which reads as a failure
        open_rate = None
    return tuple(None if r is None else round(r * 100, 2) for r in (open_rate, click_rate, conversion_rate))  # type: ignore[return-value]


def _message_row(message_id: str, rows: Sequence[ReportRow]) -> FlowMessageRow:
    totals = _totals(rows)
    channel = rows[0].groupings.get("send_channel", "email")
    name = rows[0].groupings.get("flow_message_name") or message_id
    return FlowMessageRow(message_id, name, channel, int(totals["recipients"]),
                          *_rates(totals, rows, channel), revenue=round(totals["conversion_value"], 2),
                          unsubscribes=int(totals["unsubscribes"]))


def _month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _as_datetime(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _aware(moment: datetime) -> datetime:
    # SQLite hands DateTime(timezone=True) values back naive; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _readiness(team_id: str, counts: dict[date, int], now: datetime, *,
               lower_bound: bool) -> PredictiveReadiness:
    """Totals monthly order counts into a readiness result (month granularity)."""
    months = tuple(MonthCount(m, counts[m]) for m in sorted(counts))
    with_orders = [m.month for m in months if m.orders > 0]
    first, last = (with_orders[0], with_orders[-1]) if with_orders else (None, None)
    history = 0
    if first and last:
        # From the start of the first month with orders to the end of the last one (or now).
        end = min(now, _as_datetime(_add_months(last, 1)))
        history = max(0, (end - _as_datetime(first)).days)
    total = sum(m.orders for m in months)
    return PredictiveReadiness(team_id, True, total, history, first, last, months, now,
                               history_is_lower_bound=lower_bound)


def _abandonment_kind(definition: FlowDefinition,
                      metric_names: dict[str, str]) -> Literal["abandoned_cart", "browse_abandonment"] | None:
    """Classifies a flow by its trigger metric, falling back to its name."""
    for metric_id in definition.trigger_metric_ids():
        name = metric_names.get(metric_id, "").casefold()
        if name in _CART_METRICS:
            return "abandoned_cart"
        if name in _BROWSE_METRICS:
            return "browse_abandonment"
    if definition.trigger_metric_ids() and any(metric_names.get(m) for m in definition.trigger_metric_ids()):
        return None  # triggered by another known metric (e.g. Placed Order): not an abandonment flow
    return _abandonment_words(definition.flow.name)


def _abandonment_words(name: str) -> Literal["abandoned_cart", "browse_abandonment"] | None:
    """Classifies a flow by the words in its name (English or Chinese)."""
    if _BROWSE_WORDS.search(name):
        return "browse_abandonment"
    if _CART_WORDS.search(name):
        return "abandoned_cart"
    return None


def _placed_order_sense(condition: dict[str, Any],
                        placed_order_id: str) -> Literal["none", "ordered", "not_ordered"]:
    """Reads a FlowsProfileMetricCondition: Placed Order counted since the flow started, and which way."""
    if condition.get("type") != "profile-metric" or condition.get("metric_id") != placed_order_id:
        return "none"
    if condition.get("measurement") != "count":
        return "none"
    if (condition.get("timeframe_filter") or {}).get("operator") != "flow-start":
        return "none"  # "in the last 30 days" would also stop repeat buyers from getting reminders
    measurement = condition.get("measurement_filter") or {}
    operator, value = measurement.get("operator"), measurement.get("value")
    if not isinstance(value, (int, float)):
        return "none"
    # Counts are whole numbers: "< 1" and "<= 0" mean zero orders, "> 0" and ">= 1" at least one.
    zero = {"equals": value == 0, "less-than": 0 < value <= 1, "less-than-or-equal": 0 <= value < 1}
    some = {"greater-than": 0 <= value < 1, "greater-than-or-equal": 0 < value <= 1, "not-equals": value == 0}
    if zero.get(str(operator)):
        return "not_ordered"
    if some.get(str(operator)):
        return "ordered"
    return "none"


def _groups(profile_filter: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
    groups = (profile_filter or {}).get("condition_groups") or []
    return [[c for c in g.get("conditions") or [] if isinstance(c, dict)]
            for g in groups if isinstance(g, dict)]


def _excludes_buyers(profile_filter: dict[str, Any] | None, placed_order_id: str) -> bool:
    """True when the filter only passes people with zero orders since the flow started.

    Condition groups are ANDed and the conditions inside a group ORed, so one group made only of
    "Placed Order zero times since starting this flow" is enough.
    """
    return any(group and all(_placed_order_sense(c, placed_order_id) == "not_ordered" for c in group)
               for group in _groups(profile_filter))


def _passes_all_buyers(profile_filter: dict[str, Any] | None, placed_order_id: str) -> bool:
    """True when every buyer (since the flow started) satisfies the filter: each group names that order."""
    groups = _groups(profile_filter)
    return bool(groups) and all(any(_placed_order_sense(c, placed_order_id) == "ordered" for c in group)
                                for group in groups)


def _send_name(action: dict[str, Any]) -> str:
    data = action.get("data") or {}
    if action.get("type") in ("ab-test", "content-experiment"):
        data = ((data.get("main_action") or {}).get("data")) or {}
    message = data.get("message") or {}
    return str(message.get("name") or message.get("subject_line") or action.get("id") or "message")


def check_flow(definition: FlowDefinition, placed_order_id: str | None) -> FlowCheck:
    """Decides whether a flow keeps messaging people who ordered after entering it.

    Safe when the flow filter (`profile_filter`, re-checked before every step) excludes anyone with a
    Placed Order since starting the flow, or when every message is reached only through a conditional
    split on that condition with no time delay between the split and the message (a split checks once;
    an order placed during a later delay slips through).
    """
    if not placed_order_id:
        return FlowCheck("unknown", "none")
    if _excludes_buyers(definition.profile_filter, placed_order_id):
        return FlowCheck("ok", "flow_filter")
    actions = {str(a["id"]): a for a in definition.actions if a.get("id") is not None}
    protected: dict[str, bool] = {}
    stack: list[tuple[str | None, bool]] = [(definition.entry_action_id, True)]  # nobody has ordered at entry
    seen: set[tuple[str, bool]] = set()
    while stack:
        action_id, guarded = stack.pop()
        if action_id is None or str(action_id) not in actions or (str(action_id), guarded) in seen:
            continue
        seen.add((str(action_id), guarded))
        action = actions[str(action_id)]
        kind, links = action.get("type"), action.get("links") or {}
        if kind in _DELAY_ACTIONS:
            guarded = False
        if kind in _SEND_ACTIONS:
            message = ((action.get("data") or {}).get("message") or {})
            # A message's own "additional filters" are checked when it sends, like a split right before it.
            here = guarded or _excludes_buyers(message.get("additional_filters"), placed_order_id)
            protected[str(action_id)] = protected.get(str(action_id), True) and here
        if kind == "conditional-split":
            condition = (action.get("data") or {}).get("profile_filter")
            yes_safe = guarded or _excludes_buyers(condition, placed_order_id)
            no_safe = guarded or _passes_all_buyers(condition, placed_order_id)
            stack.extend([(links.get("next_if_true"), yes_safe), (links.get("next_if_false"), no_safe)])
        elif kind == "multi-branch-split":
            for branch in (action.get("data") or {}).get("branches") or []:
                stack.append(((branch.get("links") or {}).get("next"), guarded))
            if isinstance(links, dict):
                stack.extend((target, guarded) for target in links.values() if isinstance(target, str))
        else:
            for name in ("next", "next_if_true", "next_if_false"):
                stack.append((links.get(name), guarded))
    if not protected:
        return FlowCheck("no_messages", "none")
    unprotected = tuple(_send_name(actions[a]) for a, ok in protected.items() if not ok)
    if not unprotected:
        return FlowCheck("ok", "splits")
    return FlowCheck("at_risk", "none", unprotected)


# --------------------------------------------------------------------------- formatting


_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "JPY": "¥",
                     "CNY": "CN¥", "HKD": "HK$", "SGD": "S$", "INR": "₹", "KRW": "₩", "CHF": "CHF ",
                     "SEK": "SEK ", "DKK": "DKK ", "NOK": "NOK ", "MXN": "MX$", "BRL": "R$"}
_ZERO_DECIMAL = {"JPY", "KRW"}


def format_money(amount: float, currency: str = "USD") -> str:
    """Formats an amount in the account currency: $1,234.56, €12.00, ¥1,235."""
    code = (currency or "USD").upper()
    digits = 0 if code in _ZERO_DECIMAL else 2
    number = f"{abs(amount):,.{digits}f}"
    sign = "-" if amount < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"


def format_pct(value: float | None) -> str:
    """Formats a percentage: 12.3%, or an em dash when it does not apply."""
    return "—" if value is None else f"{value:.1f}%"


def format_int(value: int) -> str:
    return f"{value:,}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _date_label(moment: datetime | None, lang: Lang, now: datetime) -> str:
    if moment is None:
        return "—"
    if lang == "zh":
        return f"{moment.month}月{moment.day}日" if moment.year == now.year else f"{moment:%Y-%m-%d}"
    day = f"{moment:%b} {moment.day}"
    return day if moment.year == now.year else f"{day}, {moment.year}"


def _month_label(month: date | None, lang: Lang) -> str:
    if month is None:
        return "—"
    return f"{month.year}年{month.month}月" if lang == "zh" else f"{month:%b %Y}"


def _provenance(result: Any, lang: Lang, *parts: str) -> str:
    moment = result.fetched_at.astimezone(timezone.utc)
    clock = f"{moment:%H:%M} UTC"
    if moment.date() != datetime.now(timezone.utc).date():
        clock = f"{moment:%Y-%m-%d} {clock}"
    if lang == "zh":
        when = f"缓存于 {clock}" if result.from_cache else f"截至 {clock}"
        return " · ".join(["Klaviyo 实时数据", *parts, when])
    when = f"cached as of {clock}" if result.from_cache else f"as of {clock}"
    return " · ".join(["Live from Klaviyo", *parts, when])


def _name(name: str, fallback_id: str) -> str:
    return name or f"({fallback_id})"


def _bullets(lines: Sequence[str], lang: Lang) -> tuple[Item, ...]:
    items = [Item("bullet", line) for line in lines[:MAX_ITEMS]]
    if len(lines) > MAX_ITEMS:
        items.append(Item("p", _more(len(lines) - MAX_ITEMS, lang)))
    return tuple(items)


def _more(count: int, lang: Lang) -> str:
    return f"……还有 {count} 项" if lang == "zh" else f"… and {count} more"


def _section_block(text: str | None = None, fields_text: Sequence[str] = ()) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section"}
    if text:
        block["text"] = {"type": "mrkdwn", "text": _clip(text, MAX_SECTION_CHARS)}
    if fields_text:
        block["fields"] = [{"type": "mrkdwn", "text": _clip(f or " ", MAX_FIELD_CHARS)}
                           for f in list(fields_text)[:MAX_FIELDS]]
    return block


def _fields(labels: Sequence[str], values: Sequence[str]) -> list[str]:
    """Section fields that read "*Label*" over "value"."""
    return [f"*{label}*\n{value}" for label, value in zip(labels, values, strict=True)]


def _context_block(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, MAX_SECTION_CHARS)}]}


def _table(header: dict[str, Any] | None, rows: Sequence[dict[str, Any]], total: int, lang: Lang, *,
           per_block: int = 1) -> tuple[dict[str, Any], ...]:
    """Header and row blocks (`per_block` of `total` items each), capped with an "and N more" line."""
    blocks = [header] if header else []
    shown = list(rows[:MAX_BLOCKS - len(blocks) - 1])
    blocks.extend(shown)
    hidden = total - min(total, len(shown) * per_block)
    if hidden > 0:
        blocks.append(_context_block(_more(hidden, lang)))
    return tuple(blocks)


def _pairs_table(pairs: Sequence[tuple[str, str]], lang: Lang) -> tuple[dict[str, Any], ...]:
    """Two-column rows as section fields: five rows (ten fields) per section."""
    sections = [_section_block(None, [cell for pair in pairs[i:i + 5] for cell in pair])
                for i in range(0, len(pairs), 5)]
    return _table(None, sections, len(pairs), lang, per_block=5)


# --------------------------------------------------------------------------- rendering


@singledispatch
def render_lookup(result: Any, lang: Lang = "en") -> Answer:
    """Turns a lookup result into a channel-neutral Answer in English or Chinese."""
    raise TypeError(f"no renderer for {type(result).__name__}")


@render_lookup.register
def render_campaign_stats(result: CampaignStats, lang: Lang = "en") -> Answer:
    """Renders campaign performance: a summary, the recent campaigns, and a Block Kit table."""
    zh = lang == "zh"
    period = timeframe_label(result.timeframe, lang)
    money = partial(format_money, currency=result.currency)
    context = _provenance(result, lang, period, f"转化指标：{result.conversion_metric}" if zh
                          else f"conversions: {result.conversion_metric}")
    title = f"活动表现 · {period}" if zh else f"Campaign performance · {period}"
    rows = result.campaigns
    if not rows:
        intro = (f"{period}内没有已发送的活动。" if zh else f"No campaigns were sent in the {period}.")
        return Answer(lang=lang, title=title, intro=intro, context_line=context, live="campaign_stats",
                      private=result.private)
    recipients = sum(r.recipients for r in rows)
    revenue = sum(r.revenue for r in rows)
    unsubscribes = sum(r.unsubscribes for r in rows)
    intro = (f"{len(rows)} 个活动 · {format_int(recipients)} 位收件人 · 归因收入 {money(revenue)} · "
             f"{format_int(unsubscribes)} 人退订" if zh else
             f"{len(rows)} campaigns · {format_int(recipients)} recipients · "
             f"{money(revenue)} attributed revenue · {format_int(unsubscribes)} unsubscribes")
    now = result.fetched_at

    def line(r: CampaignRow) -> str:
        name, when = _name(r.name, r.campaign_id), _date_label(r.send_time, lang, now)
        rates = (format_pct(r.open_rate_pct), format_pct(r.click_rate_pct), format_pct(r.conversion_rate_pct))
        if zh:
            return (f"*{name}*（{r.channel}，{when}）：{format_int(r.recipients)} 收件人 · "
                    f"打开率 {rates[0]} · 点击率 {rates[1]} · 转化率 {rates[2]} · {money(r.revenue)} · "
                    f"退订 {format_int(r.unsubscribes)}")
        return (f"*{name}* ({r.channel}, {when}): {format_int(r.recipients)} recipients · open {rates[0]} · "
                f"click {rates[1]} · conversion {rates[2]} · {money(r.revenue)} · "
                f"{format_int(r.unsubscribes)} unsubscribes")

    lines = [line(r) for r in rows]
    best = max(rows, key=lambda r: r.revenue)
    sections = (
        Section("最近的活动" if zh else "Recent campaigns", _bullets(lines, lang)),
        Section("收入最高" if zh else "Top earner", (Item("p", (
            f"*{_name(best.name, best.campaign_id)}*：{money(best.revenue)}" if zh else
            f"*{_name(best.name, best.campaign_id)}*: {money(best.revenue)}")),)),
    )
    labels = (("收件人", "打开率", "点击率", "转化率", "收入", "退订") if zh else
              ("Recipients", "Open rate", "Click rate", "Conversion rate", "Revenue", "Unsubscribes"))
    # Front ends show the title and intro themselves: the blocks carry only the table.
    header = _section_block(None, _fields(
        (labels[0], labels[4], labels[5], "活动数" if zh else "Campaigns"),
        (format_int(recipients), money(revenue), format_int(unsubscribes), str(len(rows)))))
    row_blocks = [_section_block(
        f"*{slack_escape(_name(r.name, r.campaign_id))}* · {r.channel} · "
        f"{_date_label(r.send_time, lang, now)}",
        _fields(labels, (format_int(r.recipients), format_pct(r.open_rate_pct), format_pct(r.click_rate_pct),
                         format_pct(r.conversion_rate_pct), money(r.revenue), format_int(r.unsubscribes))))
        for r in rows[:MAX_BLOCKS]]
    return Answer(lang=lang, title=title, intro=intro, sections=sections, context_line=context,
                  live="campaign_stats", private=result.private,
                  extra_blocks=_table(header, row_blocks, len(rows), lang))


@render_lookup.register
def render_flow_stats(result: FlowStats, lang: Lang = "en") -> Answer:
    """Renders flow performance per flow, with each flow's messages."""
    zh = lang == "zh"
    period = timeframe_label(result.timeframe, lang)
    money = partial(format_money, currency=result.currency)
    context = _provenance(result, lang, period, f"转化指标：{result.conversion_metric}" if zh
                          else f"conversions: {result.conversion_metric}")
    title = f"自动化流程表现 · {period}" if zh else f"Flow performance · {period}"
    if not result.flows:
        intro = f"{period}内没有流程发送过消息。" if zh else f"No flow sent a message in the {period}."
        return Answer(lang=lang, title=title, intro=intro, context_line=context, live="flow_stats",
                      private=result.private)
    revenue = sum(f.revenue for f in result.flows)
    intro = (f"{len(result.flows)} 个流程 · 归因收入 {money(revenue)}" if zh else
             f"{len(result.flows)} flows · {money(revenue)} attributed revenue")

    def message_line(m: FlowMessageRow, escape: bool) -> str:
        name = slack_escape(m.name) if escape else m.name
        opened, clicked = format_pct(m.open_rate_pct), format_pct(m.click_rate_pct)
        if zh:
            return (f"{name}（{m.channel}）：{format_int(m.recipients)} 收件人 · 打开 {opened} · "
                    f"点击 {clicked} · {money(m.revenue)}")
        return (f"{name} ({m.channel}): {format_int(m.recipients)} recipients · open {opened} · "
                f"click {clicked} · {money(m.revenue)}")

    sections = []
    for flow in result.flows[:MAX_ITEMS]:
        heading = (f"{flow.name}：{money(flow.revenue)}，{format_int(flow.recipients)} 收件人" if zh else
                   f"{flow.name}: {money(flow.revenue)}, {format_int(flow.recipients)} recipients")
        sections.append(Section(heading, _bullets([message_line(m, False) for m in flow.messages], lang)))
    if len(result.flows) > MAX_ITEMS:
        sections.append(Section(None, (Item("p", _more(len(result.flows) - MAX_ITEMS, lang)),)))
    labels = (("收件人", "打开率", "点击率", "转化率", "收入") if zh else
              ("Recipients", "Open rate", "Click rate", "Conversion rate", "Revenue"))
    blocks = []
    for flow in result.flows[:MAX_BLOCKS]:
        lines = [f"• {message_line(m, True)}" for m in flow.messages[:8]]
        if len(flow.messages) > 8:
            lines.append(_more(len(flow.messages) - 8, lang))
        status = f" · {flow.status}" if flow.status else ""
        blocks.append(_section_block(
            f"*{slack_escape(flow.name)}*{status}\n" + "\n".join(lines),
            _fields(labels, (format_int(flow.recipients), format_pct(flow.open_rate_pct),
                             format_pct(flow.click_rate_pct), format_pct(flow.conversion_rate_pct),
                             money(flow.revenue)))))
    return Answer(lang=lang, title=title, intro=intro, sections=tuple(sections), context_line=context,
                  live="flow_stats", private=result.private,
                  extra_blocks=_table(None, blocks, len(result.flows), lang))


_LISTING_TITLES = {"flows": ("Flows", "自动化流程"), "segments": ("Segments", "分群"),
                   "lists": ("Lists", "列表"), "metrics": ("Metrics", "指标")}


@render_lookup.register
def render_listing(result: Listing, lang: Lang = "en") -> Answer:
    """Renders a listing of flows, segments, lists or metrics as a two-column table."""
    zh = lang == "zh"
    en_title, zh_title = _LISTING_TITLES[result.kind]
    title = f"{zh_title}（{len(result.rows)}）" if zh else f"{en_title} ({len(result.rows)})"
    context = _provenance(result, lang)
    if not result.rows:
        intro = (f"这个 Klaviyo 账户还没有{zh_title}。" if zh else
                 f"This Klaviyo account has no {en_title.lower()} yet.")
        return Answer(lang=lang, title=title, intro=intro, context_line=context, live=result.kind,
                      private=result.private)

    def describe(row: ListingRow) -> str:
        if result.kind == "flows":
            return " · ".join(x for x in (row.status, row.detail) if x) or "—"
        if result.kind == "metrics":
            return row.detail or ("自定义 / API" if zh else "custom / API")
        count = "—" if row.profile_count is None else format_int(row.profile_count)
        extra = f" · {row.status}" if row.status else ""
        return f"{count} 个档案{extra}" if zh else f"{count} profiles{extra}"

    lines = [f"*{row.name}*{'：' if zh else ': '}{describe(row)}" for row in result.rows]
    pairs = [(f"*{slack_escape(row.name)}*", slack_escape(describe(row))) for row in result.rows]
    return Answer(lang=lang, title=title, sections=(Section(None, _bullets(lines, lang)),),
                  context_line=context, live=result.kind, private=result.private,
                  extra_blocks=_pairs_table(pairs, lang))


@render_lookup.register
def render_predictive_readiness(result: PredictiveReadiness, lang: Lang = "en") -> Answer:
    """Renders the predictive-analytics verdict with the account's own numbers and what to do meanwhile."""
    zh = lang == "zh"
    title = "预测分析就绪情况" if zh else "Predictive analytics readiness"
    context = _provenance(result, lang, "Placed Order")
    if not result.metric_found:
        intro = ("还没有 *Placed Order* 指标，预测分析无法开始。请先连接店铺集成或发送 Placed Order 事件。"
                 if zh else "There is no *Placed Order* metric yet, so predictions cannot start. "
                 "Connect your store integration or send Placed Order events first.")
        return Answer(lang=lang, title=title, intro=intro, context_line=context, live="predictive_readiness",
                      private=result.private)
    lower = result.history_is_lower_bound  # only the newest windows were read: orders began earlier still
    first, last = _month_label(result.first_order_month, lang), _month_label(result.last_order_month, lang)
    if lower:
        first = f"{first}或更早" if zh else f"{first} or earlier"
    about = ("至少" if zh else "at least") if lower else ("约" if zh else "about")
    orders = format_int(result.total_orders) + ("+" if lower else "")
    days = result.history_days
    if result.ready:
        intro = (f"✅ 已满足条件：{orders} 个订单，{about} {days} 天的订单历史"
                 f"（要求 {READY_ORDERS}+ 订单、{READY_DAYS}+ 天）。" if zh else
                 f"✅ Ready: {orders} orders over {about} {days} days of history "
                 f"(needs {READY_ORDERS}+ orders and {READY_DAYS}+ days).")
        steps = _text(lang, "ready_steps")
    else:
        gaps = []
        if result.orders_needed:
            needed = format_int(result.orders_needed)
            gaps.append(f"还差 {needed} 个订单" if zh else f"{needed} more orders")
        if result.days_needed:
            gaps.append(f"还差约 {result.days_needed} 天历史" if zh
                        else f"about {result.days_needed} more days of history")
        intro = (f"⏳ 尚未满足条件：{orders} 个订单，{about} {days} 天的订单历史；"
                 f"{'、'.join(gaps)}。" if zh else
                 f"⏳ Not yet: {orders} orders over {about} {days} days of history; "
                 f"{' and '.join(gaps)} needed.")
        steps = _text(lang, "waiting_steps")
        pace = result.recent_monthly_orders
        if result.orders_needed and pace > 0:
            months = -(-result.orders_needed // int(max(pace, 1)))
            steps.insert(0, f"按最近每月约 {pace:.0f} 单的速度，大约还需 {months} 个月。" if zh else
                         f"At your recent pace of about {pace:.0f} orders a month, that is roughly "
                         f"{months} more months.")
    labels = _text(lang, "readiness_labels")
    values = [f"{orders}（需要 {READY_ORDERS}+）" if zh else f"{orders} (needs {READY_ORDERS}+)",
              f"{about} {days} 天（需要 {READY_DAYS}+）" if zh else
              f"{about} {days} days (needs {READY_DAYS}+)",
              first, last]
    separator = "：" if zh else ": "
    facts = tuple(Item("bullet", f"{label}{separator}{value}")
                  for label, value in zip(labels, values, strict=True))
    sections = (Section("你的数据" if zh else "Your numbers", facts),
                Section("下一步" if zh else "What to do", tuple(Item("step", s) for s in steps)))
    verdict = ("✅ 就绪" if zh else "✅ Ready") if result.ready else ("⏳ 未就绪" if zh else "⏳ Not yet")
    blocks: list[dict[str, Any]] = [_section_block(None, _fields(
        [*labels, "结论" if zh else "Verdict"],
        [f"{orders} / {READY_ORDERS}", f"{days} / {READY_DAYS}", first, last, verdict]))]
    recent = [m for m in result.months if m.orders or m.month >= (result.first_order_month or m.month)][-12:]
    if recent:
        blocks.append(_context_block(" · ".join(f"{_month_label(m.month, lang)} {format_int(m.orders)}"
                                                for m in recent)))
    return Answer(lang=lang, title=title, intro=intro, sections=sections, context_line=context,
                  live="predictive_readiness", private=result.private, extra_blocks=tuple(blocks))


_TEXT: dict[str, tuple[list[str], list[str]]] = {
    "ready_steps": (
        [("Use predictive attributes in segments, e.g. “Predicted CLV is high AND churn risk is medium or "
          "high”."),
         ("If profiles still show no predictions, contact Klaviyo support: some account configurations or "
          "data-quality issues delay them.")],
        ["在分群中使用预测属性，例如“预测 CLV 高 且 流失风险为中或高”。",
         "若个人档案上仍看不到预测结果，请联系 Klaviyo 支持：部分账户配置或数据质量问题会延迟预测。"]),
    "waiting_steps": (
        [("Meanwhile, approximate churn risk with a behaviour-based segment: *Placed Order at least 2 times* "
          "AND *Placed Order zero times in the last 90 days*."),
         ("Approximate high-value customers with “Placed Order at least 2 times” and drive win-back flows "
          "from the last order date."),
         "Predictions appear on their own once the thresholds are met; nothing to switch on."],
        [("在此期间，用行为分群近似流失风险："
          "*Placed Order 至少 2 次* 且 *过去 90 天内 Placed Order 为 0 次*。"),
         "用“Placed Order 至少 2 次”近似高价值客户，并按最近下单时间设置赢回流程。",
         "达到门槛后预测会自动出现，无需操作。"]),
    "readiness_labels": (["Orders", "Order history", "First month with orders", "Latest month with orders"],
                         ["订单总数", "订单历史", "首个有订单的月份", "最近有订单的月份"]),
    "flow_fix": (
        [("Fix: add the flow filter *Placed Order zero times since starting this flow* (Flow → Trigger → "
          "Flow filters), which is re-checked before every step; or add a conditional split *Placed Order "
          "at least once since starting this flow* (yes → exit) right before: ")],
        [("修复：添加流程过滤条件 *自进入此流程以来 Placed Order 为 0 次*（流程 → 触发器 → Flow filters），"
          "它会在每一步前重新检查；或在这些消息前添加条件分支 *自进入此流程以来 Placed Order 至少 1 次*"
          "（是 → 退出）：")]),
}


def _text(lang: Lang, key: str) -> list[str]:
    """A fresh copy of a bilingual text list (callers may insert into it)."""
    en, zh = _TEXT[key]
    return list(zh if lang == "zh" else en)


def _audit_line(row: FlowAuditRow, lang: Lang, escape: bool) -> str:
    zh = lang == "zh"
    clean = slack_escape if escape else str
    name = clean(row.name)
    kind = {"abandoned_cart": ("abandoned cart", "弃购"),
            "browse_abandonment": ("browse abandonment", "浏览放弃")}[row.kind][1 if zh else 0]
    label = f"{kind} · {row.status or '—'}"
    check = row.check
    if check.verdict == "ok":
        how = {"flow_filter": ("the flow filter excludes people who ordered", "流程过滤条件排除了已下单的人"),
               "splits": ("a Placed Order split guards every message",
                          "每条消息前都有 Placed Order 条件分支"),
               "none": ("", "")}[check.protection][1 if zh else 0]
        return f"✅ *{name}*（{label}）：{how}。" if zh else f"✅ *{name}* ({label}): ok, {how}."
    if check.verdict == "at_risk":
        which = ("、" if zh else ", ").join(clean(n) for n in check.unprotected)
        head = (f"⚠️ *{name}*（{label}）：有风险，已下单的人仍可能收到：{which}。" if zh else
                f"⚠️ *{name}* ({label}): at risk, people who already ordered can still get: {which}.")
        fix = _text(lang, "flow_fix")[0] + which + ("。" if zh else ".")
        return f"{head}\n{fix}"
    if check.verdict == "no_messages":
        return (f"➖ *{name}*（{label}）：还没有消息。" if zh else
                f"➖ *{name}* ({label}): has no messages yet.")
    return (f"❔ *{name}*（{label}）：缺少 Placed Order 指标，无法检查。" if zh else
            f"❔ *{name}* ({label}): cannot be checked without a Placed Order metric.")


@render_lookup.register
def render_flow_audit(result: FlowAudit, lang: Lang = "en") -> Answer:
    """Renders the abandoned-cart audit: ok or at risk per flow, with the concrete fix."""
    zh = lang == "zh"
    title = "弃购 / 浏览放弃流程检查" if zh else "Abandoned-cart and browse-abandonment audit"
    context = _provenance(result, lang)
    if not result.flows:
        intro = ("没有找到弃购或浏览放弃流程（按触发指标 Checkout Started / Added to Cart / Viewed Product "
                 "和名称查找）。" if zh else
                 "No abandoned-cart or browse-abandonment flows were found (by trigger metric Checkout "
                 "Started, Added to Cart or Viewed Product, and by name).")
        return Answer(lang=lang, title=title, intro=intro, context_line=context, live="flow_audit",
                      private=result.private)
    at_risk = sum(1 for r in result.flows if r.check.verdict == "at_risk")
    intro = (f"检查了 {len(result.flows)} 个流程，{at_risk} 个有风险。" if zh else
             f"Checked {len(result.flows)} flows: {at_risk} at risk.")
    if not result.placed_order_found:
        intro += (" 没有 Placed Order 指标，无法判断是否排除已下单客户。" if zh else
                  " There is no Placed Order metric, so exits on purchase cannot be checked.")
    if result.skipped:
        intro += (f" 另有 {result.skipped} 个流程未检查。" if zh else
                  f" {result.skipped} more flows were not checked.")
    lines = [_audit_line(r, lang, escape=False) for r in result.flows]
    blocks = [_section_block(_audit_line(r, lang, escape=True)) for r in result.flows]
    return Answer(lang=lang, title=title, intro=intro, sections=(Section(None, _bullets(lines, lang)),),
                  context_line=context, live="flow_audit", private=result.private,
                  extra_blocks=_table(None, blocks, len(blocks), lang))


def render_key_check(check: KeyCheck, key_fingerprint: str, lang: Lang = "en") -> Answer:
    """Renders the result of connecting a key: invalid, connected, or connected with missing scopes."""
    zh = lang == "zh"
    title = "连接 Klaviyo" if zh else "Connect Klaviyo"
    if not check.valid:
        intro = (f"Klaviyo 拒绝了密钥 {key_fingerprint}：它无效或已被撤销。"
                 "请在 Klaviyo 的 设置 → API keys 中新建私有密钥。" if zh else
                 f"Klaviyo rejected the key {key_fingerprint}: it is invalid or was revoked. "
                 "Create a private key in Klaviyo under Settings → API keys.")
        return Answer(lang=lang, title=title, intro=intro)
    account = check.account.name if check.account else "Klaviyo"
    intro = (f"已连接 {account}（密钥 {key_fingerprint}）。" if zh else
             f"Connected {account} (key {key_fingerprint}).")
    if not check.missing_scopes:
        return Answer(lang=lang, title=title, intro=intro)
    scopes = ", ".join(f"`{s}`" for s in check.missing_scopes)
    note = (f"密钥缺少这些只读权限，相关查询将无法使用：{scopes}。" if zh else
            f"The key lacks these read scopes, so the lookups that need them will not work: {scopes}.")
    return Answer(lang=lang, title=title, intro=intro, sections=(Section(None, (Item("p", note),)),))
