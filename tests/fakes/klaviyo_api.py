"""FakeKlaviyoApi: a local Klaviyo API over seeded data; all its traffic is checked against the spec."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict
from yarl import URL

from tests.fakes.server import CALL, RecordingServer

SPEC_PATH = Path(os.environ.get("KLAVIYO_OPENAPI_SPEC")
                 or Path(__file__).resolve().parents[3] / "shared" / "klaviyo-openapi" / "stable.json")
SPEC_HOST = "https://a.klaviyo.com"  # the spec's `servers` entry: paths are matched against it
REVISION = "2026-07-15"
JSON_API = "application/vnd.api+json"
REPORT_PATHS = ("/api/campaign-values-reports", "/api/flow-values-reports")
DEFAULT_KEY = "pk_" + "3f9c2a7b1d4e6f8091a2b3c4d5e6f7a8b9"  # shaped like a real key: pk_ + 34 characters

# --------------------------------------------------------------------------- the spec


def _one_of_to_any_of(node: Any) -> None:
    """Rewrites every oneOf to anyOf in place.

    The spec declares many overlapping unions as oneOf: `{"use_smart_sending": true}` matches the
    Email, SMS and Push send options at once, so strict oneOf rejects what Klaviyo really sends.
    anyOf keeps every other check.
    """
    if isinstance(node, dict):
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _one_of_to_any_of(value)
    elif isinstance(node, list):
        for value in node:
            _one_of_to_any_of(value)


def _honour_nullable_refs(node: Any) -> None:
    """Lets `null` through where the spec says `nullable: true` beside a $ref or a union (295 places).

    OpenAPI 3.0 ignores keywords next to a $ref, and openapi-core checks `nullable` only with `type`, so
    e.g. a segment's `"definition": null` or an SMS campaign's `"tracking_options": null`, which the spec
    marks nullable, would fail. Each such schema becomes anyOf[the schema, null]; nothing else loosens.
    """
    if isinstance(node, dict):
        for value in node.values():
            _honour_nullable_refs(value)
        if node.get("nullable") is True and any(k in node for k in ("$ref", "anyOf", "oneOf", "allOf")):
            inner = {k: v for k, v in node.items() if k != "nullable"}
            node.clear()
            node["anyOf"] = [inner, {"enum": [None]}]
    elif isinstance(node, list):
        for value in node:
            _honour_nullable_refs(value)


@functools.lru_cache(maxsize=1)
def klaviyo_spec() -> OpenAPI:
    """Loads stable.json once per test run, relaxed as the digest's "known quirks" describe, plus nulls."""
    raw = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    _one_of_to_any_of(raw)
    _honour_nullable_refs(raw)
    # openapi-core's own spec validator rejects an ambiguous oneOf in a default value (web-safe fonts).
    return OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None))


@dataclass
class SpecRequest:
    """An openapi-core Request for a call the fake received, as if it had been sent to a.klaviyo.com."""

    method: str
    path: str
    parameters: RequestParameters
    body: bytes | None
    content_type: str
    host_url: str = SPEC_HOST


@dataclass
class SpecResponse:
    status_code: int
    content_type: str
    headers: dict[str, str]
    data: bytes


def describe_violation(error: BaseException) -> str:
    """A one-line account of an openapi-core validation error, with the schema messages behind it."""
    parts = [type(error).__name__]
    details: list[str] = []
    cause: BaseException | None = error
    seen = 0
    while cause is not None and seen < 4:
        for schema_error in list(getattr(cause, "schema_errors", ()) or ())[:3]:
            where = "/".join(str(p) for p in schema_error.absolute_path)
            details.append(f"{where or '<root>'}: {schema_error.message[:300]}")
        cause, seen = cause.__cause__, seen + 1
    if not details or type(error).__name__.endswith("Parameter"):
        parts.append(str(error)[:300])  # names the parameter; body errors are clearer from the details
    return " | ".join(parts + details)


# --------------------------------------------------------------------------- the dataset


@dataclass
class SendStats:
    """One message's numbers; report statistics are derived from them."""

    recipients: int
    delivered: int
    opens_unique: int
    clicks_unique: int
    conversion_uniques: int
    conversions: int
    conversion_value: float
    unsubscribes: int

    @classmethod
    def random(cls, rng: random.Random, channel: str, scale: int = 1) -> SendStats:
        recipients = rng.randint(500, 20_000) * scale
        delivered = int(recipients * rng.uniform(0.96, 0.995))
        opens = int(delivered * rng.uniform(0.2, 0.55)) if channel == "email" else 0
        clicks = int(delivered * rng.uniform(0.005, 0.04))
        uniques = int(clicks * rng.uniform(0.05, 0.3))
        conversions = int(uniques * rng.uniform(1.0, 1.2))
        return cls(recipients, delivered, opens, clicks, uniques, conversions,
                   round(conversions * rng.uniform(40, 120), 2), int(delivered * rng.uniform(0.001, 0.005)))

    def statistics(self, names: list[str], factor: float = 1.0) -> dict[str, float]:
        """The requested report statistics; rates are fractions rounded like Klaviyo's (4 places)."""
        def n(x: float) -> int:
            return round(x * factor)

        delivered = max(n(self.delivered), 1)
        recipients = max(n(self.recipients), 1)
        conversions = n(self.conversions)
        value = round(self.conversion_value * factor, 2)
        known: dict[str, float] = {
            "recipients": n(self.recipients), "delivered": n(self.delivered),
            "opens_unique": n(self.opens_unique), "opens": n(self.opens_unique * 1.3),
            "clicks_unique": n(self.clicks_unique), "clicks": n(self.clicks_unique * 1.2),
            "conversion_uniques": n(self.conversion_uniques), "conversions": conversions,
            "conversion_value": value, "unsubscribes": n(self.unsubscribes),
            "unsubscribe_uniques": n(self.unsubscribes),
            "bounced": n(self.recipients - self.delivered),
            "open_rate": round(n(self.opens_unique) / delivered, 4),
            "click_rate": round(n(self.clicks_unique) / delivered, 4),
            "conversion_rate": round(n(self.conversion_uniques) / delivered, 4),
            "unsubscribe_rate": round(n(self.unsubscribes) / delivered, 4),
            "delivery_rate": round(n(self.delivered) / recipients, 4),
            "bounce_rate": round(n(self.recipients - self.delivered) / recipients, 4),
            "click_to_open_rate": round(n(self.clicks_unique) / max(n(self.opens_unique), 1), 4),
            "revenue_per_recipient": round(value / recipients, 2),
            "average_order_value": round(value / conversions, 2) if conversions else 0.0,
        }
        return {name: known.get(name, 0) for name in names}


@dataclass
class FakeCampaign:
    id: str
    name: str
    channel: str  # email | sms | mobile_push (the campaigns-list filter's values)
    status: str
    message_id: str
    created_at: datetime
    send_time: datetime | None
    stats: SendStats


@dataclass
class FakeFlowMessage:
    id: str
    name: str
    channel: str
    stats: SendStats


@dataclass
class FakeFlow:
    id: str
    name: str
    status: str
    trigger_type: str
    created: datetime
    definition: dict[str, Any]
    archived: bool = False
    messages: list[FakeFlowMessage] = field(default_factory=list)


@dataclass
class FakeGroup:
    """A segment or a list."""

    id: str
    name: str
    profile_count: int
    created: datetime
    opt_in_process: str = "single_opt_in"


@dataclass
class FakeMetric:
    id: str
    name: str
    integration: dict[str, str] | None
    created: datetime


def _ulid(rng: random.Random) -> str:
    return "01" + "".join(rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(24))


def _short_id(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789") for _ in range(6))


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


SHOPIFY = {"object": "integration", "id": "0eMvjm", "name": "Shopify", "category": "eCommerce"}
KLAVIYO = {"object": "integration", "id": "0rG4eQ", "name": "Klaviyo", "category": "Internal"}
API = {"object": "integration", "id": "7FtS4J", "name": "API", "category": "API"}

_CAMPAIGN_NAMES = [
    "Spring Sale: 20% off", "New arrivals", "VIP early access", "Back in stock: linen shirts",
    "Weekend flash sale", "Free shipping week", "Summer lookbook", "Friends <& Family> sale",
    "Holiday gift guide", "Last chance", "Best sellers", "Loyalty points reminder",
]


@dataclass
class KlaviyoDataset:
    """A whole Klaviyo account: build one with `seeded` or `empty`, then tweak it freely."""

    now: datetime
    account: dict[str, Any] | None
    campaigns: list[FakeCampaign] = field(default_factory=list)
    flows: list[FakeFlow] = field(default_factory=list)
    segments: list[FakeGroup] = field(default_factory=list)
    lists: list[FakeGroup] = field(default_factory=list)
    metrics: list[FakeMetric] = field(default_factory=list)
    orders_by_month: dict[date, int] = field(default_factory=dict)  # Placed Order events per month

    def metric_id(self, name: str, integration: str | None = None) -> str:
        for metric in self.metrics:
            source = (metric.integration or {}).get("name")
            if metric.name == name and (integration is None or source == integration):
                return metric.id
        raise KeyError(name)

    def flow(self, name: str) -> FakeFlow:
        return next(f for f in self.flows if f.name == name)

    def set_orders(self, months: int, per_month: int) -> None:
        """Gives the account `months` months of Placed Order history up to this month, `per_month` each."""
        this_month = month_start(self.now)
        self.orders_by_month = {add_months(this_month, -i): per_month for i in range(months)}

    @classmethod
    def empty(cls, *, now: datetime | None = None, with_store: bool = False,
              currency: str = "USD") -> KlaviyoDataset:
        """A new account: no campaigns, flows, segments or lists; with_store adds store metrics, no orders."""
        now = now or datetime.now(timezone.utc)
        data = cls(now=now, account=_account(currency))
        if with_store:
            rng = random.Random(1)
            for name in ("Placed Order", "Checkout Started", "Viewed Product"):
                data.metrics.append(FakeMetric(_short_id(rng), name, SHOPIFY, now - timedelta(days=3)))
        return data

    @classmethod
    def seeded(cls, seed: int = 7, *, now: datetime | None = None, campaigns: int = 12,
               order_months: int = 14, orders_per_month: int = 60, currency: str = "USD",
               segments: int = 13, lists: int = 12) -> KlaviyoDataset:
        """A realistic store account; the same seed always gives the same data."""
        rng = random.Random(seed)
        now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        data = cls(now=now, account=_account(currency))
        created = now - timedelta(days=800)
        for name, integration in [("Placed Order", SHOPIFY), ("Placed Order", API),
                                  ("Checkout Started", SHOPIFY), ("Added to Cart", SHOPIFY),
                                  ("Viewed Product", KLAVIYO),
                                  ("Ordered Product", SHOPIFY), ("Fulfilled Order", SHOPIFY),
                                  ("Received Email", KLAVIYO), ("Opened Email", KLAVIYO),
                                  ("Clicked Email", KLAVIYO), ("Active on Site", API)]:
            data.metrics.append(FakeMetric(_short_id(rng), name, integration, created))
        data.set_orders(order_months, orders_per_month)

        # Campaigns: the newest first, spread over the last ~11 months at most; the last two are drafts.
        spacing = min(timedelta(days=5), timedelta(days=330) / max(campaigns, 1))
        for i in range(campaigns):
            channel = "sms" if i % 4 == 3 else "email"
            draft = campaigns > 4 and i >= campaigns - 2
            send_time = None if draft else now - spacing * (i + 0.5)
            base = _CAMPAIGN_NAMES[i % len(_CAMPAIGN_NAMES)]
            name = base if i < len(_CAMPAIGN_NAMES) else f"{base} #{i // len(_CAMPAIGN_NAMES) + 1}"
            data.campaigns.append(FakeCampaign(
                id=_ulid(rng), name=name,
                channel=channel, status="Draft" if draft else "Sent", message_id=_ulid(rng),
                created_at=(send_time or now) - timedelta(days=2), send_time=send_time,
                stats=SendStats.random(rng, channel)))

        po = data.metric_id("Placed Order", "Shopify")
        data.flows = _seeded_flows(rng, data, po, created)
        for i in range(segments):
            name = _SEGMENT_NAMES[i % len(_SEGMENT_NAMES)] + ("" if i < len(_SEGMENT_NAMES) else f" {i}")
            data.segments.append(FakeGroup(_short_id(rng), name, rng.randint(50, 40_000), created))
        for i in range(lists):
            name = _LIST_NAMES[i % len(_LIST_NAMES)] + ("" if i < len(_LIST_NAMES) else f" {i}")
            data.lists.append(FakeGroup(_short_id(rng), name, rng.randint(100, 60_000), created,
                                        opt_in_process="double_opt_in" if i % 3 == 0 else "single_opt_in"))
        return data


_SEGMENT_NAMES = ["Engaged (30 days)", "VIP customers", "Repeat buyers", "Churn risk", "New subscribers",
                  "Cart abandoners", "Window shoppers", "High AOV", "Lapsed customers", "SMS engaged",
                  "Bargain hunters", "Gift buyers", "Wholesale & trade"]
_LIST_NAMES = ["Newsletter", "SMS subscribers", "Preview list", "Popup signups", "Wholesale", "Events",
               "Back in stock", "Loyalty", "Influencers", "Test list", "Footer signups", "Checkout opt-in"]


def _account(currency: str) -> dict[str, Any]:
    return {
        "test_account": False,
        "contact_information": {
            "default_sender_name": "Acme Outfitters", "default_sender_email": "hello@acme.example",
            "website_url": "https://acme.example", "organization_name": "Acme Outfitters",
            "street_address": {"address1": "125 Summer Street", "address2": None, "city": "Boston",
                               "region": "MA", "country": "US", "zip": "02110"},
        },
        "industry": "Apparel & Accessories", "timezone": "America/New_York", "preferred_currency": currency,
        "public_api_key": "AbC123", "locale": "en-US",
    }


# --------------------------------------------------------------------------- flow definitions


def placed_order_condition(metric_id: str, operator: str = "equals", value: int = 0) -> dict[str, Any]:
    """A FlowsProfileMetricCondition: Placed Order count <operator> <value> since starting this flow."""
    return {"type": "profile-metric", "metric_id": metric_id, "measurement": "count",
            "measurement_filter": {"type": "numeric", "operator": operator, "value": value},
            "timeframe_filter": {"type": "date", "operator": "flow-start"}, "metric_filters": None}


def profile_filter(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"condition_groups": [{"conditions": list(conditions)}]}


def delay_action(action_id: str, next_id: str | None, value: int, unit: str = "hours") -> dict[str, Any]:
    return {"id": action_id, "type": "time-delay", "links": {"next": next_id},
            "data": {"unit": unit, "value": value, "secondary_value": None, "timezone": "profile",
                     "delay_until_time": None, "delay_until_weekdays": None}}


def send_action(action_id: str, next_id: str | None, message_id: str, name: str,
                channel: str = "email") -> dict[str, Any]:
    if channel == "sms":
        message: dict[str, Any] = {"id": message_id, "name": name, "body": "Your cart is waiting {{ url }}"}
        return {"id": action_id, "type": "send-sms", "links": {"next": next_id},
                "data": {"message": message, "status": "live"}}
    message = {"id": message_id, "name": name, "from_email": "hello@acme.example", "from_label": "Acme",
               "subject_line": f"{name}: you left something behind", "preview_text": None,
               "template_id": "TplAb1", "smart_sending_enabled": True, "transactional": False,
               "add_tracking_params": True, "custom_tracking_params": None, "additional_filters": None}
    return {"id": action_id, "type": "send-email", "links": {"next": next_id},
            "data": {"message": message, "status": "live"}}


def split_action(action_id: str, if_true: str | None, if_false: str | None,
                 condition: dict[str, Any]) -> dict[str, Any]:
    return {"id": action_id, "type": "conditional-split",
            "links": {"next_if_true": if_true, "next_if_false": if_false},
            "data": {"profile_filter": profile_filter(condition)}}


def flow_definition(trigger: dict[str, Any], actions: list[dict[str, Any]],
                    flow_filter: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"triggers": [trigger], "profile_filter": flow_filter, "actions": actions,
            "entry_action_id": actions[0]["id"] if actions else None, "reentry_criteria": None}


def metric_trigger(metric_id: str) -> dict[str, Any]:
    return {"type": "metric", "id": metric_id, "trigger_filter": None}


def _seeded_flows(rng: random.Random, data: KlaviyoDataset, po: str, created: datetime) -> list[FakeFlow]:
    checkout = data.metric_id("Checkout Started")
    viewed = data.metric_id("Viewed Product")
    cart = data.metric_id("Added to Cart")

    def ids(n: int) -> list[str]:
        return [str(rng.randint(10_000_000, 99_999_999)) for _ in range(n)]

    def msg() -> str:
        return _ulid(rng)

    flows: list[FakeFlow] = []

    def add(name: str, status: str, trigger_type: str, trigger: dict[str, Any], actions: list[dict[str, Any]],
            flow_filter: dict[str, Any] | None = None, archived: bool = False) -> None:
        definition = flow_definition(trigger, actions, flow_filter)
        flows.append(FakeFlow(_short_id(rng), name, status, trigger_type, created, definition, archived))

    ordered = placed_order_condition(po, "greater-than", 0)
    # 1. Protected by the flow filter "Placed Order zero times since starting this flow".
    a = ids(4)
    add("Abandoned Cart Reminder", "live", "Metric", metric_trigger(checkout),
        [delay_action(a[0], a[1], 4), send_action(a[1], a[2], msg(), "Cart email 1"),
         delay_action(a[2], a[3], 1, "days"), send_action(a[3], None, msg(), "Cart email 2")],
        flow_filter=profile_filter(placed_order_condition(po)))
    # 2. No check at all: people who bought keep getting "you forgot something" emails.
    a = ids(4)
    add("Browse Abandonment", "live", "Metric", metric_trigger(viewed),
        [delay_action(a[0], a[1], 2), send_action(a[1], a[2], msg(), "Browse email 1"),
         delay_action(a[2], a[3], 1, "days"), send_action(a[3], None, msg(), "Browse email 2")])
    # 3. A conditional split on Placed Order right before each message.
    a = ids(6)
    add("Checkout Recovery SMS + Email", "live", "Metric", metric_trigger(cart),
        [delay_action(a[0], a[1], 1), split_action(a[1], None, a[2], ordered),
         send_action(a[2], a[3], msg(), "Recovery SMS", "sms"), delay_action(a[3], a[4], 1, "days"),
         split_action(a[4], None, a[5], ordered), send_action(a[5], None, msg(), "Recovery email")])
    # 4. A split before the first email only: the second one, a day later, is unprotected.
    a = ids(5)
    add("Cart Reminder - Legacy", "manual", "Metric", metric_trigger(checkout),
        [delay_action(a[0], a[1], 1), split_action(a[1], a[2], None, placed_order_condition(po, "equals", 0)),
         send_action(a[2], a[3], msg(), "Legacy email 1"), delay_action(a[3], a[4], 1, "days"),
         send_action(a[4], None, msg(), "Legacy email 2")])
    # Not abandonment flows, and an archived one: the audit must leave them out.
    a = ids(2)
    add("Welcome Series", "live", "Added to List", {"type": "list", "id": "LstNws"},
        [send_action(a[0], a[1], msg(), "Welcome 1"), delay_action(a[1], None, 2, "days")])
    a = ids(2)
    add("Post-Purchase Thank You", "live", "Metric", metric_trigger(po),
        [delay_action(a[0], a[1], 1, "days"), send_action(a[1], None, msg(), "Thank you")])
    a = ids(1)
    add("Abandoned Cart (old)", "draft", "Metric", metric_trigger(checkout),
        [send_action(a[0], None, msg(), "Old cart email")], archived=True)
    for flow in flows:
        for action in flow.definition["actions"]:
            if action["type"].startswith("send-"):
                channel = "sms" if action["type"] == "send-sms" else "email"
                message = action["data"]["message"]
                flow.messages.append(FakeFlowMessage(message["id"], message["name"], channel,
                                                     SendStats.random(rng, channel)))
    return flows


# --------------------------------------------------------------------------- filters and timeframes

_CALL = re.compile(r"^([a-z-]+)\((.*)\)$", re.DOTALL)


def _split_args(text: str) -> list[str]:
    """Splits a filter's arguments on top-level commas (not inside brackets, parentheses or quotes)."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if current:
        parts.append("".join(current).strip())
    return parts


def parse_filter(text: str | None) -> list[tuple[str, str, Any]]:
    """Parses a Klaviyo filter into (operator, field, value) clauses joined by and()."""
    if not text:
        return []
    match = _CALL.match(text.strip())
    if not match:
        raise ValueError(f"invalid filter {text!r}")
    op, inner = match.groups()
    if op == "and":
        return [clause for part in _split_args(inner) for clause in parse_filter(part)]
    args = _split_args(inner)
    if len(args) != 2:
        raise ValueError(f"invalid filter {text!r}")
    name, raw = args
    return [(op, name, _filter_value(raw))]


def _filter_value(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("["):
        return [_filter_value(x) for x in _split_args(raw[1:-1]) if x]
    if raw[:1] in "'\"":
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    moment = _parse_moment(raw)
    return moment if moment else raw


def _parse_moment(raw: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _matches(clauses: list[tuple[str, str, Any]], fields: dict[str, Any]) -> bool:
    for op, name, value in clauses:
        actual = fields.get(name)
        if op == "equals" and actual != value:
            return False
        if op in ("any", "contains-any") and actual not in value:
            return False
        if op in ("greater-or-equal", "greater-than", "less-than", "less-or-equal"):
            if actual is None:
                return False
            if op == "greater-or-equal" and not actual >= value:
                return False
            if op == "greater-than" and not actual > value:
                return False
            if op == "less-than" and not actual < value:
                return False
            if op == "less-or-equal" and not actual <= value:
                return False
    return True


def timeframe_range(timeframe: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The [start, end) a report timeframe covers, in UTC (Klaviyo uses the account's timezone)."""
    if "key" not in timeframe:
        return _parse_moment(timeframe["start"]) or now, _parse_moment(timeframe["end"]) or now
    key = timeframe["key"]
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    week = today - timedelta(days=today.weekday())
    days = {"last_7_days": 7, "last_30_days": 30, "last_90_days": 90, "last_365_days": 365,
            "last_3_months": 91, "last_12_months": 365}
    if key in days:
        return now - timedelta(days=days[key]), now
    previous_month = (month - timedelta(days=1)).replace(day=1)
    ranges = {
        "today": (today, now), "yesterday": (today - timedelta(days=1), today),
        "this_week": (week, now), "last_week": (week - timedelta(days=7), week),
        "this_month": (month, now), "last_month": (previous_month, month),
        "this_year": (today.replace(month=1, day=1), now),
        "last_year": (today.replace(year=today.year - 1, month=1, day=1), today.replace(month=1, day=1)),
    }
    return ranges[key]


# --------------------------------------------------------------------------- the server


@dataclass
class ScriptedFailure:
    """A failure the fake answers with instead of the real handler, `times` times (None: always)."""

    path: str
    status: int
    times: int | None = 1
    retry_after: str | None = None
    code: str = "error"
    detail: str = ""
    stall: float = 0.0  # seconds to hang before answering normally (drives client timeouts)

    def applies(self, path: str) -> bool:
        left = self.times is None or self.times > 0
        return left and (path == self.path or path.startswith(self.path + "/"))


class FakeKlaviyoApi(RecordingServer):
    """Klaviyo's read endpoints over a KlaviyoDataset, with scripted failures; spec violations are kept."""

    def __init__(self, dataset: KlaviyoDataset | None = None, *, api_key: str = DEFAULT_KEY,
                 links_base: str | None = None) -> None:
        self.dataset = dataset or KlaviyoDataset.seeded()
        self.api_key = api_key
        self.links_base = links_base  # None: links point at this server; "https://a.klaviyo.com" like Klaviyo
        self.violations: list[str] = []
        self.failures: list[ScriptedFailure] = []
        self.report_delay = 0.0
        super().__init__()

    # ----------------------------------------------------------------- scripting

    def rate_limit(self, path: str, *, retry_after: float | str | None = 1, times: int = 1) -> None:
        """Answers the next `times` calls to `path` with 429 (and Retry-After unless None)."""
        header = None if retry_after is None else str(retry_after)
        self.failures.append(ScriptedFailure(path, 429, times, header, "throttled",
                                             "Request was throttled. Expected available in 1 second."))

    def server_error(self, path: str, *, times: int = 1, status: int = 500) -> None:
        """Answers the next `times` calls to `path` with a 5xx."""
        self.failures.append(ScriptedFailure(path, status, times, None, "error",
                                             "A server error occurred."))

    def deny_scope(self, path: str) -> None:
        """Answers every call to `path` with 403, as for a key without that endpoint's scope."""
        self.failures.append(ScriptedFailure(path, 403, None, None, "permission_denied",
                                             "You do not have permission to perform this action."))

    def stall(self, path: str, seconds: float, *, times: int = 1) -> None:
        """Hangs the next `times` calls to `path` for `seconds` before answering."""
        self.failures.append(ScriptedFailure(path, 200, times, stall=seconds))

    def revoke_key(self) -> None:
        """Every call is now 401, as after the key was deleted in Klaviyo."""
        self.api_key = "pk_revoked"

    @property
    def report_requests(self) -> int:
        """How many values-report POSTs the fake received (reporting allows 2/min, 225/day)."""
        return sum(1 for c in self.calls if c.method == "POST" and c.path in REPORT_PATHS)

    def calls_to(self, path: str, method: str = "GET") -> list[Any]:
        return [c for c in self.calls if c.path == path and c.method == method]

    # ----------------------------------------------------------------- plumbing

    def setup_routes(self, app: web.Application) -> None:
        app.middlewares.append(self._contract)
        app.router.add_get("/api/accounts", self.get_accounts)
        app.router.add_get("/api/campaigns", self.get_campaigns)
        app.router.add_get("/api/flows", self.get_flows)
        app.router.add_get("/api/flows/{id}", self.get_flow)
        app.router.add_get("/api/segments", self.get_segments)
        app.router.add_get("/api/segments/{id}", self.get_segment)
        app.router.add_get("/api/lists", self.get_lists)
        app.router.add_get("/api/lists/{id}", self.get_list)
        app.router.add_get("/api/metrics", self.get_metrics)
        app.router.add_post("/api/metric-aggregates", self.query_metric_aggregates)
        app.router.add_post("/api/campaign-values-reports", self.query_campaign_values)
        app.router.add_post("/api/flow-values-reports", self.query_flow_values)

    @web.middleware
    async def _contract(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Checks the request against the spec, applies auth and scripted failures, checks the response."""
        call = request[CALL]
        spec_request = SpecRequest(
            method=request.method.lower(), path=request.path,
            parameters=RequestParameters(query=ImmutableMultiDict(list(request.query.items())),
                                         header=Headers(list(request.headers.items()))),
            body=call.body or None, content_type=request.headers.get("Content-Type", ""),
        )
        spec = klaviyo_spec()
        for error in spec.iter_request_errors(spec_request):
            self.violations.append(f"request {request.method} {unquote(request.path_qs)}: "
                                   f"{describe_violation(error)}")
        response = await self._answer(request, handler)
        if isinstance(response, web.Response):
            body = response.body if isinstance(response.body, bytes) else b""
            spec_response = SpecResponse(response.status, response.content_type or "",
                                         dict(response.headers), body)
            for error in spec.iter_response_errors(spec_request, spec_response):
                self.violations.append(f"response {response.status} to {request.method} {request.path}: "
                                       f"{describe_violation(error)}")
        return response

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Klaviyo-API-Key {self.api_key}":
            return self.error(401, "not_authenticated", "Incorrect authentication credentials.",
                              title="Authentication credentials were not provided.")
        if request.headers.get("revision") != REVISION:
            return self.error(400, "invalid", f"Unsupported revision {request.headers.get('revision')!r}.")
        for failure in self.failures:
            if failure.applies(request.path):
                if failure.times is not None:
                    failure.times -= 1
                if failure.stall:
                    await asyncio.sleep(failure.stall)
                    break
                headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else None
                return self.error(failure.status, failure.code, failure.detail, headers=headers)
        try:
            return await handler(request)
        except (ValueError, KeyError) as exc:
            return self.error(400, "invalid", str(exc))

    def error(self, status: int, code: str, detail: str, *, title: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        doc = {"errors": [{"id": str(uuid.uuid4()), "code": code, "title": title or detail, "detail": detail,
                           "source": {"pointer": "/data/"}}]}
        return self.document(doc, status=status, headers=headers)

    @staticmethod
    def document(doc: dict[str, Any], *, status: int = 200,
                 headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(body=json.dumps(doc).encode("utf-8"), status=status, content_type=JSON_API,
                            headers=headers)

    def _link(self, request: web.Request, **query: str | None) -> str:
        base = URL(self.links_base or self.url)
        merged = {k: v for k, v in request.query.items()}
        for key, value in query.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return str(base.with_path(request.path).with_query(merged))

    def _resource_link(self, path: str) -> str:
        return str(URL(self.links_base or self.url).with_path(path))

    def _page(self, request: web.Request, items: list[dict[str, Any]], *, default: int, maximum: int,
              sized: bool = True) -> web.Response:
        """One page of a collection with cursor links; page[cursor] is an opaque offset."""
        size = int(request.query.get("page[size]", default)) if sized else default
        if not 1 <= size <= maximum:
            raise ValueError(f"page[size] must be between 1 and {maximum}")
        cursor = request.query.get("page[cursor]")
        offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":")[1]) if cursor else 0
        chunk = items[offset:offset + size]
        links: dict[str, str] = {"self": self._link(request)}
        if offset + size < len(items):
            links["next"] = self._link(request, **{"page[cursor]": _cursor(offset + size)})
        if offset:
            links["prev"] = self._link(request, **{"page[cursor]": _cursor(max(0, offset - size))})
        return self.document({"data": chunk, "links": links})

    # ----------------------------------------------------------------- handlers

    async def get_accounts(self, request: web.Request) -> web.Response:
        data = self.dataset.account
        items = [] if data is None else [{"type": "account", "id": "AcmeCo", "attributes": data,
                                          "links": {"self": self._resource_link("/api/accounts/AcmeCo")}}]
        return self.document({"data": items, "links": {"self": self._link(request)}})

    def _campaign_resource(self, c: FakeCampaign) -> dict[str, Any]:
        sent = c.send_time.isoformat() if c.send_time else None
        return {
            "type": "campaign", "id": c.id,
            "attributes": {
                "name": c.name, "status": c.status, "archived": False,
                "audiences": {"included": ["LstNws"], "excluded": []},
                "send_options": {"use_smart_sending": True},
                "tracking_options": ({"add_tracking_params": True, "custom_tracking_params": None,
                                      "is_tracking_clicks": True, "is_tracking_opens": True}
                                     if c.channel == "email" else None),
                "send_strategy": ({"method": "static", "datetime": sent, "options": None} if sent
                                  else {"method": "immediate"}),
                "created_at": c.created_at.isoformat(), "scheduled_at": sent,
                "updated_at": (c.send_time or c.created_at).isoformat(), "send_time": sent,
            },
            "relationships": {"campaign-messages": {
                "data": [{"type": "campaign-message", "id": c.message_id}],
                "links": {
                    "self": self._resource_link(f"/api/campaigns/{c.id}/relationships/campaign-messages"),
                    "related": self._resource_link(f"/api/campaigns/{c.id}/campaign-messages")}}},
            "links": {"self": self._resource_link(f"/api/campaigns/{c.id}")},
        }

    async def get_campaigns(self, request: web.Request) -> web.Response:
        clauses = parse_filter(request.query.get("filter"))
        # Like Klaviyo: listing campaigns without a channel filter is refused.
        if not any(op == "equals" and name == "messages.channel" for op, name, _ in clauses):
            return self.error(400, "invalid", "A channel filter is required to list campaigns. Please "
                                              "provide either: ?filter=equals(messages.channel,'email') ...")
        ordered = sorted(self.dataset.campaigns, key=lambda c: c.created_at, reverse=True)
        items = [self._campaign_resource(c) for c in ordered if _matches(clauses, {
            "messages.channel": c.channel, "id": c.id, "status": c.status, "archived": False,
            "scheduled_at": c.send_time, "created_at": c.created_at,
            "updated_at": c.send_time or c.created_at,
        })]
        return self._page(request, items, default=100, maximum=100)

    def _flow_resource(self, f: FakeFlow, *, definition: bool) -> dict[str, Any]:
        attributes: dict[str, Any] = {"name": f.name, "status": f.status, "archived": f.archived,
                                      "created": f.created.isoformat(), "updated": f.created.isoformat(),
                                      "trigger_type": f.trigger_type}
        if definition:
            attributes["definition"] = f.definition
        return {"type": "flow", "id": f.id, "attributes": attributes,
                "links": {"self": self._resource_link(f"/api/flows/{f.id}")}}

    async def get_flows(self, request: web.Request) -> web.Response:
        clauses = parse_filter(request.query.get("filter"))
        items = [self._flow_resource(f, definition=False) for f in self.dataset.flows
                 if _matches(clauses, {"id": f.id, "name": f.name, "status": f.status, "archived": f.archived,
                                       "trigger_type": f.trigger_type})]
        return self._page(request, items, default=50, maximum=50)

    async def get_flow(self, request: web.Request) -> web.Response:
        flow = next((f for f in self.dataset.flows if f.id == request.match_info["id"]), None)
        if flow is None:
            return self.error(404, "not_found", "Not found.")
        wanted = request.query.get("additional-fields[flow]", "").split(",")
        return self.document({"data": self._flow_resource(flow, definition="definition" in wanted),
                              "links": {"self": self._link(request)}})

    def _group_resource(self, g: FakeGroup, rtype: str, *, count: bool) -> dict[str, Any]:
        attributes: dict[str, Any] = {"name": g.name, "created": g.created.isoformat(),
                                      "updated": g.created.isoformat()}
        if rtype == "segment":
            attributes.update({"definition": None, "is_active": True, "is_processing": False,
                               "is_starred": False})
        else:
            attributes["opt_in_process"] = g.opt_in_process
        if count:
            attributes["profile_count"] = g.profile_count
        return {"type": rtype, "id": g.id, "attributes": attributes,
                "links": {"self": self._resource_link(f"/api/{rtype}s/{g.id}")}}

    async def get_segments(self, request: web.Request) -> web.Response:
        items = [self._group_resource(g, "segment", count=False) for g in self.dataset.segments]
        return self._page(request, items, default=10, maximum=10)

    async def get_lists(self, request: web.Request) -> web.Response:
        items = [self._group_resource(g, "list", count=False) for g in self.dataset.lists]
        return self._page(request, items, default=10, maximum=10)

    async def _get_group(self, request: web.Request, groups: list[FakeGroup], rtype: str) -> web.Response:
        group = next((g for g in groups if g.id == request.match_info["id"]), None)
        if group is None:
            return self.error(404, "not_found", "Not found.")
        wanted = request.query.get(f"additional-fields[{rtype}]", "").split(",")
        return self.document({"data": self._group_resource(group, rtype, count="profile_count" in wanted),
                              "links": {"self": self._link(request)}})

    async def get_segment(self, request: web.Request) -> web.Response:
        return await self._get_group(request, self.dataset.segments, "segment")

    async def get_list(self, request: web.Request) -> web.Response:
        return await self._get_group(request, self.dataset.lists, "list")

    async def get_metrics(self, request: web.Request) -> web.Response:
        clauses = parse_filter(request.query.get("filter"))
        with_triggers = "flow-triggers" in request.query.get("include", "").split(",")
        items = []
        for m in self.dataset.metrics:
            if not _matches(clauses, {"integration.name": (m.integration or {}).get("name"),
                                      "integration.category": (m.integration or {}).get("category")}):
                continue
            item: dict[str, Any] = {
                "type": "metric", "id": m.id,
                "attributes": {"name": m.name, "created": m.created.isoformat(),
                               "updated": m.created.isoformat(), "integration": m.integration},
                "links": {"self": self._resource_link(f"/api/metrics/{m.id}")}}
            if with_triggers:
                triggered = [f.id for f in self.dataset.flows if f.definition["triggers"]
                             and f.definition["triggers"][0].get("type") == "metric"
                             and f.definition["triggers"][0].get("id") == m.id]
                item["relationships"] = {"flow-triggers": {
                    "data": [{"type": "flow", "id": fid} for fid in triggered],
                    "links": {"self": self._resource_link(f"/api/metrics/{m.id}/relationships/flow-triggers"),
                              "related": self._resource_link(f"/api/metrics/{m.id}/flow-triggers")}}}
            items.append(item)
        # GET /api/metrics takes no page[size]: Klaviyo pages it at 200.
        return self._page(request, items, default=200, maximum=200, sized=False)

    async def query_metric_aggregates(self, request: web.Request) -> web.Response:
        attributes = (await request.json())["data"]["attributes"]
        start = end = None
        for op, name, value in (c for f in attributes["filter"] for c in parse_filter(f)):
            if name == "datetime" and op == "greater-or-equal":
                start = value
            elif name == "datetime" and op == "less-than":
                end = value
        if not (isinstance(start, datetime) and isinstance(end, datetime)):
            return self.error(400, "invalid", "The filter must include a datetime range: "
                                              "greater-or-equal(datetime,...) and less-than(datetime,...).")
        if end - start > timedelta(days=366):
            return self.error(400, "invalid", "The date range cannot exceed one year.")
        if attributes.get("interval", "day") != "month":
            return self.error(400, "invalid", "This fake only aggregates by month.")
        months, cursor = [], month_start(start)
        while datetime(cursor.year, cursor.month, 1, tzinfo=timezone.utc) < end:
            months.append(cursor)
            cursor = add_months(cursor, 1)
        metric = next((m for m in self.dataset.metrics if m.id == attributes["metric_id"]), None)
        if metric is None:
            return self.error(404, "not_found", f"Metric {attributes['metric_id']} not found.")
        placed = metric.name == "Placed Order" and (metric.integration or {}).get("name") == "Shopify"
        counts = [self.dataset.orders_by_month.get(m, 0) if placed else 0 for m in months]
        measurements = {"count": counts, "unique": [int(c * 0.9) for c in counts],
                        "sum_value": [round(c * 74.5, 2) for c in counts]}
        wanted = {k: measurements[k] for k in attributes["measurements"]}
        doc = {"data": {"type": "metric-aggregate", "id": str(uuid.uuid4()),
                        "attributes": {"dates": [f"{m.isoformat()}T00:00:00+00:00" for m in months],
                                       "data": [{"dimensions": [], "measurements": wanted}]},
                        "links": {"self": self._link(request)}},
               "links": {"self": self._link(request)}}
        return self.document(doc)

    async def _report_attributes(
            self, request: web.Request, required: tuple[str, ...], default_group: list[str],
    ) -> tuple[dict[str, Any], list[str], tuple[datetime, datetime]]:
        if self.report_delay:
            await asyncio.sleep(self.report_delay)
        attributes = (await request.json())["data"]["attributes"]
        group_by = attributes.get("group_by") or default_group
        missing = [g for g in required if g not in group_by]
        if missing:
            raise ValueError(f"The following group by attributes are required: {', '.join(required)}")
        if not any(m.id == attributes["conversion_metric_id"] for m in self.dataset.metrics):
            raise ValueError("conversion_metric_id is not a metric of this account")
        return attributes, group_by, timeframe_range(attributes["timeframe"], self.dataset.now)

    async def query_campaign_values(self, request: web.Request) -> web.Response:
        attributes, group_by, (start, end) = await self._report_attributes(
            request, ("campaign_id", "campaign_message_id"),
            ["campaign_id", "campaign_message_id", "send_channel"])
        clauses = parse_filter(attributes.get("filter"))
        results: list[dict[str, Any]] = []
        for c in self.dataset.campaigns:
            channel = {"mobile_push": "push-notification"}.get(c.channel, c.channel)
            if not (c.send_time and start <= c.send_time < end):
                continue
            values = {"campaign_id": c.id, "campaign_message_id": c.message_id, "send_channel": channel,
                      "campaign_message_name": c.name}
            if not _matches(clauses, values):
                continue
            results.append({"groupings": {g: values[g] for g in group_by if g in values},
                            "statistics": c.stats.statistics(attributes["statistics"])})
        related = [{"type": "campaign", "id": r["groupings"]["campaign_id"]} for r in results]
        return self.document({"data": {"type": "campaign-values-report", "attributes": {"results": results},
                                       "relationships": {"campaigns": {"data": related}}},
                              "links": {"self": self._link(request)}})

    async def query_flow_values(self, request: web.Request) -> web.Response:
        attributes, group_by, (start, end) = await self._report_attributes(
            request, ("flow_id", "flow_message_id"), ["flow_id", "flow_message_id", "send_channel"])
        clauses = parse_filter(attributes.get("filter"))
        factor = max((end - start).total_seconds() / 86400, 1) / 30  # the seeded numbers are per 30 days
        results = []
        for f in self.dataset.flows:
            if f.archived or f.status == "draft":
                continue
            for m in f.messages:
                values = {"flow_id": f.id, "flow_message_id": m.id, "send_channel": m.channel,
                          "flow_name": f.name, "flow_message_name": m.name}
                if not _matches(clauses, values):
                    continue
                results.append({"groupings": {g: values[g] for g in group_by if g in values},
                                "statistics": m.stats.statistics(attributes["statistics"], factor)})
        return self.document({"data": {"type": "flow-values-report", "attributes": {"results": results}},
                              "links": {"self": self._link(request)}})


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


class RecordingSleep(list[float]):
    """An injectable `sleep` that records each wait instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@asynccontextmanager
async def fake_klaviyo_apis() -> AsyncIterator[Callable[..., Awaitable[FakeKlaviyoApi]]]:
    """Yields a starter for fakes; on exit closes them and fails if any call broke the spec."""
    started: list[FakeKlaviyoApi] = []

    async def start(dataset: KlaviyoDataset | None = None, **options: Any) -> FakeKlaviyoApi:
        api = FakeKlaviyoApi(dataset, **options)
        await api.start()
        started.append(api)
        return api

    try:
        yield start
    finally:
        for api in started:
            await api.close()
    violations = [v for api in started for v in api.violations]
    assert not violations, "traffic outside the Klaviyo spec:\n" + "\n".join(violations)
