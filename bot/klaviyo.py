"""Klaviyo REST client (revision 2026-07-15): the read calls the bot needs, returning dataclasses."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from bot.crypto import fingerprint
from bot.errors import BotError

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://a.klaviyo.com"
DEFAULT_REVISION = "2026-07-15"
JSON_API = "application/vnd.api+json"

# The read scopes the bot's lookups use; `check_key` reports the ones a key lacks.
READ_SCOPES: tuple[str, ...] = (
    "accounts:read", "campaigns:read", "flows:read", "metrics:read", "segments:read", "lists:read",
)

# Klaviyo has no "which scopes does this key have" endpoint, and a 403 body does not name the scope,
# so the scope is derived from the endpoint (x-klaviyo-scopes in the spec). The values reports use the
# read scope of their object type.
_SCOPE_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("/api/campaign-values-reports", "campaigns:read"),
    ("/api/campaign", "campaigns:read"),
    ("/api/flow-values-reports", "flows:read"),
    ("/api/flow-series-reports", "flows:read"),
    ("/api/flow", "flows:read"),
    ("/api/metric-aggregates", "metrics:read"),
    ("/api/metric", "metrics:read"),
    ("/api/segment-values-reports", "segments:read"),
    ("/api/segment", "segments:read"),
    ("/api/lists", "lists:read"),
    ("/api/accounts", "accounts:read"),
)

# The 14 relative keys every reporting endpoint accepts (`Timeframe.key` in the spec).
TIMEFRAME_KEYS: frozenset[str] = frozenset({
    "last_12_months", "last_30_days", "last_365_days", "last_3_months", "last_7_days", "last_90_days",
    "last_month", "last_week", "last_year", "this_month", "this_week", "this_year", "today", "yesterday",
})

# All 31 campaign/flow report statistics; rates among them are fractions in [0, 1].
REPORT_STATISTICS: frozenset[str] = frozenset({
    "average_order_value", "bounce_rate", "bounced", "bounced_or_failed", "bounced_or_failed_rate",
    "click_rate", "click_to_open_rate", "clicks", "clicks_unique", "conversion_rate", "conversion_uniques",
    "conversion_value", "conversions", "delivered", "delivery_rate", "failed", "failed_rate",
    "message_segment_count_sum", "open_rate", "opens", "opens_unique", "recipients", "revenue_per_recipient",
    "spam_complaint_rate", "spam_complaints", "text_message_credit_usage_amount", "text_message_roi",
    "text_message_spend", "unsubscribe_rate", "unsubscribe_uniques", "unsubscribes",
})

CampaignChannel = Literal["email", "sms", "mobile_push"]
Sleep = Callable[[float], Awaitable[Any]]

RECONNECT_HINT = "Reconnect Klaviyo with `/klaviyo connect` and a private API key"
RECONNECT_HINT_ZH = "请用 `/klaviyo connect` 和私有 API 密钥重新连接 Klaviyo"


# --------------------------------------------------------------------------- errors


class KlaviyoError(BotError):
    """A Klaviyo API failure: HTTP status, Klaviyo's error code and detail, and a sentence for users."""

    default_message = "Klaviyo returned an error for this lookup."
    default_message_zh = "Klaviyo 对这次查询返回了错误。"

    def __init__(self, status: int, code: str, detail: str, *, user_message: str | None = None,
                 user_message_zh: str | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        message = user_message or self.default_message
        super().__init__(message, log_message=f"Klaviyo HTTP {status} {code}: {detail}")
        self.user_message_zh = user_message_zh or self.default_message_zh

    def message_for(self, lang: str) -> str:
        """Returns the user-facing sentence in English or Chinese."""
        return self.user_message_zh if lang == "zh" else self.user_message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, detail={self.detail!r})"


class KlaviyoAuthError(KlaviyoError):
    """HTTP 401: the key is invalid, revoked or missing."""

    default_message = f"Klaviyo rejected the stored API key (it is invalid or was revoked). {RECONNECT_HINT}."
    default_message_zh = f"Klaviyo 拒绝了已保存的 API 密钥（无效或已被撤销）。{RECONNECT_HINT_ZH}。"


class KlaviyoScopeError(KlaviyoError):
    """HTTP 403: the key lacks the scope an endpoint needs."""

    def __init__(self, status: int, code: str, detail: str, *, scope: str | None = None) -> None:
        self.scope = scope
        if scope:
            en = (f"The connected Klaviyo key is missing the `{scope}` scope. In Klaviyo go to Settings → "
                  f"API keys, give the key read access for `{scope}` (or create a new key), then reconnect.")
            zh = (f"已连接的 Klaviyo 密钥缺少 `{scope}` 权限。请在 Klaviyo 的 设置 → API keys 中为该密钥开启 "
                  f"`{scope}` 读取权限（或新建密钥），然后重新连接。")
        else:
            en = ("The connected Klaviyo key is not allowed to read this data. Give the key read access in "
                  "Klaviyo (Settings → API keys), then reconnect.")
            zh = ("已连接的 Klaviyo 密钥无权读取这些数据。"
                  "请在 Klaviyo（设置 → API keys）中开启读取权限后重新连接。")
        super().__init__(status, code, detail, user_message=en, user_message_zh=zh)


class KlaviyoBadRequest(KlaviyoError):
    """HTTP 400: Klaviyo refused the request; its detail says why."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(status, code, detail,
                         user_message=f"Klaviyo could not run this lookup: {detail}",
                         user_message_zh=f"Klaviyo 无法执行这次查询：{detail}")


class KlaviyoRateLimited(KlaviyoError):
    """HTTP 429 that outlasted the retries or the wait budget."""

    def __init__(self, status: int, code: str, detail: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        when = f"in about {max(1, round(retry_after))} seconds" if retry_after else "in a minute"
        when_zh = f"约 {max(1, round(retry_after))} 秒后" if retry_after else "一分钟后"
        super().__init__(
            status, code, detail,
            user_message=(f"Klaviyo's rate limit for this kind of request was reached "
                          f"(reports allow only 2 per minute). Please try again {when}."),
            user_message_zh=f"已达到 Klaviyo 对这类请求的频率上限（报表每分钟仅 2 次）。请{when_zh}再试。",
        )


class KlaviyoUnavailable(KlaviyoError):
    """5xx answers, timeouts or connection failures that outlasted the retries."""

    default_message = ("Klaviyo is not answering right now (server error or timeout). "
                       "Please try again shortly.")
    default_message_zh = "Klaviyo 暂时无法响应（服务器错误或超时），请稍后再试。"


def scope_for_path(path: str) -> str | None:
    """Returns the read scope an API path needs, from the spec's x-klaviyo-scopes."""
    for prefix, scope in _SCOPE_BY_PREFIX:
        if path.startswith(prefix):
            return scope
    return None


def error_from_response(status: int, body: Any, path: str, *,
                        retry_after: float | None = None) -> KlaviyoError:
    """Maps an error response (a JSON:API `errors` document, or anything else) to a KlaviyoError."""
    code, detail = f"http_{status}", ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = str(errors[0].get("code") or code)
        detail = str(errors[0].get("detail") or errors[0].get("title") or "")
    if status == 401:
        return KlaviyoAuthError(status, code, detail)
    if status == 403:
        return KlaviyoScopeError(status, code, detail, scope=scope_for_path(path))
    if status == 400:
        return KlaviyoBadRequest(status, code, detail or "the request was not accepted")
    if status == 429:
        return KlaviyoRateLimited(status, code, detail, retry_after=retry_after)
    if status >= 500:
        return KlaviyoUnavailable(status, code, detail)
    return KlaviyoError(status, code, detail)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parses a Retry-After header (delta-seconds or an HTTP date) into seconds, or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


_JITTER = random.Random()


def backoff_delay(attempt: int, *, base: float = 1.0, cap: float = 8.0,
                  rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: attempt 1 waits 0.5-1 s, attempt 2 1-2 s, ..., at most `cap`."""
    step: float = min(cap, base * 2.0 ** (attempt - 1))
    return step * (0.5 + 0.5 * (rng or _JITTER).random())


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Timeframe:
    """A reporting timeframe: one of Klaviyo's relative keys, or an explicit start/end (at most a year)."""

    key: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.key is not None:
            if self.key not in TIMEFRAME_KEYS:
                raise ValueError(f"unknown Klaviyo timeframe key {self.key!r}")
            if self.start or self.end:
                raise ValueError("a timeframe is either a key or a start/end range")
            return
        if self.start is None or self.end is None:
            raise ValueError("a custom timeframe needs both start and end")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("timeframe datetimes must be timezone-aware")
        if not self.start < self.end:
            raise ValueError("timeframe start must be before its end")
        # The spec: "max 1 year"; Klaviyo ignores the offset and uses the account's timezone.
        if self.end - self.start > timedelta(days=366):
            raise ValueError("Klaviyo reports cover at most one year")

    def to_api(self) -> dict[str, str]:
        """Returns the `timeframe` attribute of a values-report request."""
        if self.key:
            return {"key": self.key}
        assert self.start and self.end
        return {"start": _iso(self.start), "end": _iso(self.end)}

    @property
    def token(self) -> str:
        """A stable string for cache keys."""
        if self.key:
            return self.key
        assert self.start and self.end
        return f"{_iso(self.start)}..{_iso(self.end)}"


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    timezone: str
    currency: str
    locale: str | None = None
    website_url: str | None = None
    test_account: bool = False


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    channel: str  # the list filter's channel: email | sms | mobile_push
    status: str
    archived: bool = False
    send_time: datetime | None = None
    scheduled_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Flow:
    id: str
    name: str
    status: str | None = None
    archived: bool = False
    trigger_type: str | None = None
    created: datetime | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class FlowDefinition:
    """A flow's triggers, flow filter (`profile_filter`) and action graph, as the spec encodes them."""

    flow: Flow
    triggers: tuple[dict[str, Any], ...] = ()
    profile_filter: dict[str, Any] | None = None
    actions: tuple[dict[str, Any], ...] = ()
    entry_action_id: str | None = None

    def trigger_metric_ids(self) -> tuple[str, ...]:
        """Ids of the metrics that trigger the flow (MetricTrigger entries)."""
        return tuple(str(t["id"]) for t in self.triggers if t.get("type") == "metric" and t.get("id"))


@dataclass(frozen=True)
class Segment:
    id: str
    name: str
    is_active: bool = True
    is_processing: bool = False
    profile_count: int | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class KlaviyoList:
    id: str
    name: str
    opt_in_process: str | None = None
    profile_count: int | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class Metric:
    id: str
    name: str
    integration: str | None = None  # integration name, e.g. "Shopify"; None for API/custom metrics
    integration_category: str | None = None
    flow_ids: tuple[str, ...] = ()  # flows this metric triggers (only when listed with flow triggers)


@dataclass(frozen=True)
class AggregateRow:
    dimensions: tuple[str, ...]
    measurements: dict[str, tuple[float, ...]]


@dataclass(frozen=True)
class MetricAggregate:
    dates: tuple[datetime, ...]
    rows: tuple[AggregateRow, ...]

    def series(self, measurement: str = "count") -> tuple[float, ...]:
        """The first row's values for `measurement`, aligned with `dates` (zeros when there is no row)."""
        for row in self.rows:
            if measurement in row.measurements:
                return row.measurements[measurement]
        return tuple(0.0 for _ in self.dates)


@dataclass(frozen=True)
class ReportRow:
    groupings: dict[str, str]
    statistics: dict[str, float]


@dataclass(frozen=True)
class KeyCheck:
    """What probing a key found: valid or not, and the read scopes it lacks."""

    valid: bool
    missing_scopes: tuple[str, ...] = ()
    account: Account | None = None


# --------------------------------------------------------------------------- client


@dataclass(repr=False)
class _Budget:
    """Attempts and waiting time left for one logical request."""

    max_attempts: int
    max_total_wait: float
    started: float = field(default_factory=time.monotonic)
    waited: float = 0.0
    attempt: int = 0

    def allows(self, wait: float) -> bool:
        spent = max(time.monotonic() - self.started, self.waited)
        return self.attempt < self.max_attempts and spent + wait <= self.max_total_wait


class KlaviyoClient:
    """Klaviyo's private-key API over a shared aiohttp session, with bounded retries and paging."""

    def __init__(self, session: aiohttp.ClientSession, api_key: str, *, base_url: str = DEFAULT_BASE_URL,
                 revision: str = DEFAULT_REVISION, max_attempts: int = 4, max_total_wait: float = 30.0,
                 sleep: Sleep = asyncio.sleep, request_timeout: float = 30.0, max_pages: int = 20) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._session = session
        self.__key = api_key
        self.base_url = base_url.rstrip("/")
        self.revision = revision
        self.max_attempts = max_attempts
        self.max_total_wait = max_total_wait
        self.max_pages = max_pages
        self._sleep = sleep
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)

    def __repr__(self) -> str:
        return f"KlaviyoClient(base_url={self.base_url!r}, key={fingerprint(self.__key)!r})"

    @property
    def key_fingerprint(self) -> str:
        return fingerprint(self.__key)

    # ----------------------------------------------------------------- transport

    def _headers(self, with_body: bool) -> dict[str, str]:
        headers = {
            "Authorization": f"Klaviyo-API-Key {self.__key}",
            "revision": self.revision,
            "accept": JSON_API,
        }
        if with_body:
            headers["content-type"] = JSON_API
        return headers

    def _url(self, path_or_url: str) -> str:
        """Returns an absolute URL on base_url.

        `links.next` is a full URL (https://a.klaviyo.com/...): only its path and query are kept, so the
        key is never sent to any host but base_url, and a test server or proxy base keeps working.
        """
        if path_or_url.startswith(("http://", "https://")):
            parts = urlsplit(path_or_url)
            path_or_url = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.base_url + path_or_url

    async def _request(self, method: str, path_or_url: str, *, params: dict[str, str] | None = None,
                       body: dict[str, Any] | None = None, read: bool | None = None) -> dict[str, Any]:
        """Sends one logical request with retries; returns the JSON document or raises a KlaviyoError.

        `read` marks calls that change nothing (GETs by default; the report and aggregate POSTs say so),
        which are safe to repeat after a 5xx or a timeout. A 429 means nothing was done, so any call
        is retried after one.
        """
        read = method == "GET" if read is None else read
        url = self._url(path_or_url)
        path = urlsplit(url).path
        data = json.dumps(body) if body is not None else None
        budget = _Budget(self.max_attempts, self.max_total_wait)
        while True:
            budget.attempt += 1
            try:
                async with self._session.request(method, url, params=params, data=data,
                                                 headers=self._headers(data is not None),
                                                 timeout=self._timeout) as resp:
                    raw = await resp.read()
                    status = resp.status
                    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
                wait = backoff_delay(budget.attempt)
                if read and budget.allows(wait):
                    logger.info("Klaviyo %s %s %s; retrying in %.1fs (attempt %d/%d)",
                                method, path, reason, wait, budget.attempt, budget.max_attempts)
                    await self._wait(budget, wait)
                    continue
                raise KlaviyoUnavailable(0, "timeout" if reason == "timed out" else "connection_error",
                                         f"{method} {path} {reason}") from None
            doc = _parse_json(raw)
            logger.debug("Klaviyo %s %s -> %d", method, path, status)
            if status < 400:
                return doc if isinstance(doc, dict) else {}
            if status == 429:
                # Klaviyo's 429 carries Retry-After (its docs say the RateLimit-* headers are absent on
                # a 429); honour it exactly when it fits the budget, else back off with jitter.
                wait = retry_after if retry_after is not None else backoff_delay(budget.attempt)
                if budget.allows(wait):
                    logger.info("Klaviyo %s %s rate limited; retrying in %.1fs (attempt %d/%d)",
                                method, path, wait, budget.attempt, budget.max_attempts)
                    await self._wait(budget, wait)
                    continue
            elif status >= 500 and read:
                wait = backoff_delay(budget.attempt)
                if budget.allows(wait):
                    logger.info("Klaviyo %s %s -> HTTP %d; retrying in %.1fs (attempt %d/%d)",
                                method, path, status, wait, budget.attempt, budget.max_attempts)
                    await self._wait(budget, wait)
                    continue
            error = error_from_response(status, doc, path, retry_after=retry_after)
            log = logger.warning if status >= 500 or status == 429 else logger.info
            log("Klaviyo %s %s failed: HTTP %d %s: %s", method, path, status, error.code, error.detail)
            raise error

    async def _wait(self, budget: _Budget, seconds: float) -> None:
        budget.waited += seconds
        await self._sleep(seconds)

    async def _pages(self, path: str, params: dict[str, str] | None = None, *,
                     max_pages: int | None = None) -> list[dict[str, Any]]:
        """Collects `data` across pages by following `links.next`, at most `max_pages` requests."""
        limit = max_pages or self.max_pages
        items: list[dict[str, Any]] = []
        url, query = path, params
        for _ in range(limit):
            doc = await self._request("GET", url, params=query)
            items.extend(d for d in doc.get("data") or [] if isinstance(d, dict))
            # The spec types links.next as a non-nullable string, but Klaviyo sends null on the last page.
            next_url = (doc.get("links") or {}).get("next")
            if not next_url:
                return items
            url, query = next_url, None  # the next link carries every parameter, including page[cursor]
        logger.warning("Klaviyo GET %s: stopped after %d pages; more results were not read", path, limit)
        return items

    # ----------------------------------------------------------------- account and objects

    async def get_account(self) -> Account:
        """Gets the account the key belongs to (name, timezone, currency)."""
        doc = await self._request("GET", "/api/accounts")
        data = doc.get("data") or []
        if not data:
            raise KlaviyoError(200, "no_account", "GET /api/accounts returned no account")
        return _account(data[0])

    async def list_campaigns(self, channel: CampaignChannel = "email", *, since: datetime | None = None,
                             until: datetime | None = None, ids: Iterable[str] | None = None,
                             max_pages: int | None = None) -> list[Campaign]:
        """Lists campaigns of one channel, optionally scheduled within [since, until) or among `ids`."""
        # GET /api/campaigns refuses a request without a messages.channel filter ("filter" is required).
        clauses = [f"equals(messages.channel,'{channel}')"]
        # send_time is not filterable; scheduled_at is the closest field the filter allows.
        if since:
            clauses.append(f"greater-or-equal(scheduled_at,{_iso(since)})")
        if until:
            clauses.append(f"less-than(scheduled_at,{_iso(until)})")
        if ids is None:
            return await self._campaign_pages(channel, clauses, max_pages)
        campaigns: list[Campaign] = []
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), 100):  # keep each any() list at 100 ids, one page each
            batch = [*clauses, f"any(id,{_quoted_list(wanted[start:start + 100])})"]
            campaigns.extend(await self._campaign_pages(channel, batch, max_pages))
        return campaigns

    async def _campaign_pages(self, channel: str, clauses: list[str],
                              max_pages: int | None) -> list[Campaign]:
        flt = clauses[0] if len(clauses) == 1 else f"and({','.join(clauses)})"
        rows = await self._pages("/api/campaigns", {"filter": flt, "page[size]": "100"}, max_pages=max_pages)
        return [_campaign(r, channel) for r in rows]

    async def list_flows(self, *, max_pages: int | None = None) -> list[Flow]:
        """Lists every flow with its status and trigger type."""
        rows = await self._pages("/api/flows", {"page[size]": "50"}, max_pages=max_pages)
        return [_flow(r) for r in rows]

    async def get_flow_definition(self, flow_id: str) -> FlowDefinition:
        """Gets a flow with its full definition (triggers, flow filter, actions)."""
        doc = await self._request("GET", f"/api/flows/{flow_id}",
                                  params={"additional-fields[flow]": "definition"})
        data = doc.get("data") or {}
        definition = (data.get("attributes") or {}).get("definition") or {}
        return FlowDefinition(
            flow=_flow(data),
            triggers=tuple(t for t in definition.get("triggers") or [] if isinstance(t, dict)),
            profile_filter=definition.get("profile_filter"),
            actions=tuple(a for a in definition.get("actions") or [] if isinstance(a, dict)),
            entry_action_id=definition.get("entry_action_id"),
        )

    async def list_segments(self, *, with_counts: bool = True, max_counts: int = 50,
                            max_pages: int | None = None) -> list[Segment]:
        """Lists segments; with_counts adds profile counts for the first `max_counts` of them."""
        rows = await self._pages("/api/segments", {"page[size]": "10"}, max_pages=max_pages)
        segments = [_segment(r) for r in rows]
        if not with_counts:
            return segments
        # profile_count is only offered on GET /api/segments/{id} (additional-fields[segment]), not on the
        # list, so counts cost one request each: bounded, and a few at a time (75/s, 750/m).
        counts = await self._profile_counts("segments", "segment", [s.id for s in segments[:max_counts]])
        return [_replace_count(s, counts.get(s.id)) for s in segments]

    async def list_lists(self, *, with_counts: bool = True, max_counts: int = 50,
                         max_pages: int | None = None) -> list[KlaviyoList]:
        """Lists lists; with_counts adds profile counts for the first `max_counts` of them."""
        rows = await self._pages("/api/lists", {"page[size]": "10"}, max_pages=max_pages)
        lists = [_list(r) for r in rows]
        if not with_counts:
            return lists
        counts = await self._profile_counts("lists", "list", [x.id for x in lists[:max_counts]])
        return [_replace_count(x, counts.get(x.id)) for x in lists]

    async def _profile_counts(self, collection: str, rtype: str, ids: Sequence[str]) -> dict[str, int | None]:
        gate = asyncio.Semaphore(5)

        async def one(object_id: str) -> tuple[str, int | None]:
            async with gate:
                doc = await self._request("GET", f"/api/{collection}/{object_id}",
                                          params={f"additional-fields[{rtype}]": "profile_count"})
            count = ((doc.get("data") or {}).get("attributes") or {}).get("profile_count")
            return object_id, int(count) if isinstance(count, (int, float)) else None

        return dict(await asyncio.gather(*(one(i) for i in ids)))

    async def list_metrics(self, *, integration: str | None = None, with_flow_triggers: bool = False,
                           max_pages: int | None = None) -> list[Metric]:
        """Lists metrics (200 a page, no page[size] here), optionally with the flows each one triggers."""
        params: dict[str, str] = {}
        if integration:
            params["filter"] = f"equals(integration.name,'{integration}')"
        if with_flow_triggers:
            params["include"] = "flow-triggers"
        rows = await self._pages("/api/metrics", params or None, max_pages=max_pages)
        return [_metric(r) for r in rows]

    async def find_metric_id(self, name: str, integration: str | None = None) -> str | None:
        """Finds a metric id by name; prefers the hinted integration, then store integrations."""
        metric = pick_metric(await self.list_metrics(), name, integration)
        return metric.id if metric else None

    # ----------------------------------------------------------------- reporting

    async def metric_aggregate(self, metric_id: str, measurements: Sequence[str] = ("count",), *,
                               since: datetime, until: datetime, interval: str = "month",
                               by: Sequence[str] = (), filters: Sequence[str] = (),
                               timezone_name: str = "UTC") -> MetricAggregate:
        """Aggregates a metric's events (count/sum_value/unique) per interval within [since, until)."""
        # The filter must bound `datetime` on both sides; Klaviyo reads the bounds in `timezone`.
        bounds = [f"greater-or-equal(datetime,{_naive_iso(since)})",
                  f"less-than(datetime,{_naive_iso(until)})"]
        attributes: dict[str, Any] = {
            "metric_id": metric_id,
            "measurements": list(measurements),
            "interval": interval,
            "filter": bounds + list(filters),
            "timezone": timezone_name,
        }
        if by:
            attributes["by"] = list(by)
        doc = await self._request("POST", "/api/metric-aggregates", read=True,
                                  body={"data": {"type": "metric-aggregate", "attributes": attributes}})
        attrs = (doc.get("data") or {}).get("attributes") or {}
        dates = tuple(d for d in (_parse_dt(x) for x in attrs.get("dates") or []) if d is not None)
        rows = tuple(
            AggregateRow(
                dimensions=tuple(str(d) for d in row.get("dimensions") or []),
                measurements={k: tuple(float(v or 0) for v in values)
                              for k, values in (row.get("measurements") or {}).items()
                              if isinstance(values, list)},
            )
            for row in attrs.get("data") or [] if isinstance(row, dict)
        )
        return MetricAggregate(dates=dates, rows=rows)

    async def campaign_values_report(self, statistics: Sequence[str], timeframe: Timeframe,
                                     conversion_metric_id: str, *, group_by: Sequence[str] | None = None,
                                     filter: str | None = None) -> list[ReportRow]:
        """Runs one campaign values report (1/s, 2/min, 225/day per account: cache the result)."""
        return await self._values_report("/api/campaign-values-reports", "campaign-values-report", statistics,
                                         timeframe, conversion_metric_id, group_by, filter)

    async def flow_values_report(self, statistics: Sequence[str], timeframe: Timeframe,
                                 conversion_metric_id: str, *, group_by: Sequence[str] | None = None,
                                 filter: str | None = None) -> list[ReportRow]:
        """Runs one flow values report (1/s, 2/min, 225/day per account: cache the result)."""
        return await self._values_report("/api/flow-values-reports", "flow-values-report", statistics,
                                         timeframe, conversion_metric_id, group_by, filter)

    async def _values_report(self, path: str, rtype: str, statistics: Sequence[str], timeframe: Timeframe,
                             conversion_metric_id: str, group_by: Sequence[str] | None,
                             flt: str | None) -> list[ReportRow]:
        unknown = set(statistics) - REPORT_STATISTICS
        if unknown:
            raise ValueError(f"unknown report statistics: {sorted(unknown)}")
        attributes: dict[str, Any] = {
            "statistics": list(statistics),
            "timeframe": timeframe.to_api(),
            "conversion_metric_id": conversion_metric_id,
        }
        if group_by:
            attributes["group_by"] = list(group_by)
        if flt:
            attributes["filter"] = flt
        body = {"data": {"type": rtype, "attributes": attributes}}
        rows: list[ReportRow] = []
        url = path
        # The spec gives these endpoints a page_cursor query parameter but documents only links.self; a
        # links.next, if Klaviyo ever sends one, is followed with the same body, a few pages at most.
        for _ in range(5):
            doc = await self._request("POST", url, body=body, read=True)  # a query, despite the POST
            for result in ((doc.get("data") or {}).get("attributes") or {}).get("results") or []:
                if isinstance(result, dict):
                    groups, values = result.get("groupings") or {}, result.get("statistics") or {}
                    rows.append(ReportRow(
                        groupings={k: str(v) for k, v in groups.items() if v is not None},
                        statistics={k: float(v) for k, v in values.items() if isinstance(v, (int, float))},
                    ))
            next_url = (doc.get("links") or {}).get("next")
            if not next_url:
                break
            url = next_url
        return rows

    # ----------------------------------------------------------------- key check

    async def check_key(self) -> KeyCheck:
        """Probes one cheap read per scope: 401 means an invalid key, a 403 names a missing scope."""
        probes: dict[str, Callable[[], Awaitable[Any]]] = {
            "accounts:read": self.get_account,
            "campaigns:read": lambda: self._request(
                "GET", "/api/campaigns",
                params={"filter": "equals(messages.channel,'email')", "page[size]": "1"}),
            "flows:read": lambda: self._request("GET", "/api/flows", params={"page[size]": "1"}),
            "metrics:read": lambda: self._request("GET", "/api/metrics"),
            "segments:read": lambda: self._request("GET", "/api/segments", params={"page[size]": "1"}),
            "lists:read": lambda: self._request("GET", "/api/lists", params={"page[size]": "1"}),
        }
        results = await asyncio.gather(*(probe() for probe in probes.values()), return_exceptions=True)
        missing: list[str] = []
        account: Account | None = None
        for scope, result in zip(probes, results, strict=True):
            if isinstance(result, KlaviyoAuthError):
                return KeyCheck(valid=False)
            if isinstance(result, KlaviyoScopeError):
                missing.append(scope)
            elif isinstance(result, BaseException):
                raise result
            elif isinstance(result, Account):
                account = result
        return KeyCheck(valid=True, missing_scopes=tuple(missing), account=account)


# --------------------------------------------------------------------------- helpers


def pick_metric(metrics: Iterable[Metric], name: str, integration: str | None = None) -> Metric | None:
    """Picks the metric called `name`: the hinted integration first, then e-commerce ones, then any."""
    matches = [m for m in metrics if m.name.strip().casefold() == name.strip().casefold()]
    if not matches:
        return None

    def rank(m: Metric) -> tuple[int, int]:
        hinted = bool(integration and (m.integration or "").casefold() == integration.casefold())
        store = (m.integration_category or "").casefold() == "ecommerce"
        return (0 if hinted else 1, 0 if store else 1)

    return min(matches, key=rank)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _naive_iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _quoted_list(values: Sequence[str]) -> str:
    return "[" + ",".join('"' + v.replace('"', "") + '"' for v in values) + "]"


def _parse_dt(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _attrs(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("attributes") or {}


def _account(resource: dict[str, Any]) -> Account:
    a = _attrs(resource)
    contact = a.get("contact_information") or {}
    return Account(
        id=str(resource.get("id") or ""),
        name=str(contact.get("organization_name") or contact.get("default_sender_name") or ""),
        timezone=str(a.get("timezone") or "UTC"),
        currency=str(a.get("preferred_currency") or "USD"),
        locale=a.get("locale"),
        website_url=contact.get("website_url"),
        test_account=bool(a.get("test_account")),
    )


def _campaign(resource: dict[str, Any], channel: str) -> Campaign:
    a = _attrs(resource)
    return Campaign(
        id=str(resource.get("id")),
        name=str(a.get("name") or ""),
        channel=channel,
        status=str(a.get("status") or ""),
        archived=bool(a.get("archived")),
        send_time=_parse_dt(a.get("send_time")),
        scheduled_at=_parse_dt(a.get("scheduled_at")),
        created_at=_parse_dt(a.get("created_at")),
    )


def _flow(resource: dict[str, Any]) -> Flow:
    a = _attrs(resource)
    return Flow(
        id=str(resource.get("id")),
        name=str(a.get("name") or ""),
        status=a.get("status"),
        archived=bool(a.get("archived")),
        trigger_type=a.get("trigger_type"),
        created=_parse_dt(a.get("created")),
        updated=_parse_dt(a.get("updated")),
    )


def _segment(resource: dict[str, Any]) -> Segment:
    a = _attrs(resource)
    return Segment(
        id=str(resource.get("id")),
        name=str(a.get("name") or ""),
        is_active=bool(a.get("is_active", True)),
        is_processing=bool(a.get("is_processing")),
        updated=_parse_dt(a.get("updated")),
    )


def _list(resource: dict[str, Any]) -> KlaviyoList:
    a = _attrs(resource)
    return KlaviyoList(
        id=str(resource.get("id")),
        name=str(a.get("name") or ""),
        opt_in_process=a.get("opt_in_process"),
        updated=_parse_dt(a.get("updated")),
    )


def _metric(resource: dict[str, Any]) -> Metric:
    a = _attrs(resource)
    # `integration` is an untyped object in the spec; Klaviyo sends {"object", "id", "name", "category"}.
    raw = a.get("integration")
    integration: dict[str, Any] = raw if isinstance(raw, dict) else {}
    triggers = ((resource.get("relationships") or {}).get("flow-triggers") or {}).get("data") or []
    return Metric(
        id=str(resource.get("id")),
        name=str(a.get("name") or ""),
        integration=integration.get("name"),
        integration_category=integration.get("category"),
        flow_ids=tuple(str(t["id"]) for t in triggers if isinstance(t, dict) and t.get("id")),
    )


def _replace_count(obj: Any, count: int | None) -> Any:
    return replace(obj, profile_count=count) if count is not None else obj
