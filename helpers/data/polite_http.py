"""A polite HTTP client on `requests.Session`: robots.txt and a per-host pace by hand, retries by urllib3.

robots.txt: read when served as text/plain; a 404 allows everything; an unreachable one (401/403, 5xx,
timeout) keeps the scraper off the host; one served as anything else (an HTML "not found" page) is unreadable:
reported, and the paths registered with `stay_off_without_robots` (a site's API) are refused, the rest open.
"""

from __future__ import annotations

import re
import time
import urllib.robotparser
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import RequestHistory, Retry

USER_AGENT = (
    "vi-vlm-tutorials-scraper/0.1 (+https://github.com/vi-vlm-tutorials/vi-vlm-tutorials; "
    "educational dataset for a tutorial; about 1 request/second)"
)


class Skip(Exception):
    """A page that yields no item, with the report's reason (robots, http_404, timeout, bad_image, ...)."""

    def __init__(self, reason: str, detail: str = "", url: str = ""):
        super().__init__(f"{reason}: {detail} ({url})" if url else f"{reason}: {detail}")
        self.reason, self.detail, self.url = reason, detail, url


@dataclass
class Fetched:
    """A successful response, read fully: final URL, status, headers and body bytes."""

    url: str
    status: int
    headers: dict[str, str]
    content: bytes
    encoding: str | None = None

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters ('' when the server sent none)."""
        value = next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")
        return value.split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset name Python does not know
            return self.content.decode("utf-8", errors="replace")


MAX_WAIT_S = 60.0  # the longest wait between retries: the backoff's cap, and the most a Retry-After may ask


class PoliteRetry(Retry):
    """urllib3's Retry, with its waits handed to `before_retry` (so the per-host pace, or a test's fake clock, holds
    between retries) and a Retry-After above `max_wait` ending the retries (urllib3 would clamp it and wait)."""

    def __init__(
        self, *, max_wait: float, before_retry: Callable[[float, RequestHistory], None], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.max_wait, self.before_retry = max_wait, before_retry

    def new(self, **kw: Any) -> PoliteRetry:
        """A copy with updated counters (urllib3 makes one per attempt), keeping the cap and the hook."""
        return super().new(max_wait=self.max_wait, before_retry=self.before_retry, **kw)

    def get_retry_after(self, response: BaseHTTPResponse | None) -> float | None:
        """Retry-After in seconds; None without one or for a malformed one, so the usual backoff applies."""
        try:
            return super().get_retry_after(response) if response is not None else None
        except InvalidHeader:
            return None

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> PoliteRetry:
        """As urllib3's, but a Retry-After above `max_wait` gives up at once (the caller gets that response)."""
        wait = self.get_retry_after(response) if self.respect_retry_after_header else None
        if wait is not None and wait > self.max_wait:
            raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {wait:.0f} s > max_wait"))
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """Wait as urllib3 would (Retry-After, else exponential backoff with jitter), through `before_retry`."""
        self.before_retry(self.get_retry_after(response) or self.get_backoff_time(), self.history[-1])


class HttpClient:
    """requests.Session with a User-Agent, timeouts, urllib3 retries, a per-host rate limit and robots.txt.
    `clock` and `sleep` are injectable so tests run the same waits on a fake clock. One request at a time."""

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = (5.0, 20.0),
        max_retries: int = 3,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.retry = PoliteRetry(
            total=max_retries,
            backoff_factor=1.0,
            backoff_jitter=1.0,
            backoff_max=MAX_WAIT_S,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods={"GET"},
            raise_on_status=False,  # out of retries: the last response comes back and becomes a Skip
            max_wait=MAX_WAIT_S,  # a longer Retry-After ends the retries
            before_retry=self._before_retry,
        )
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept-Language": "vi,en;q=0.5"})
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, HTTPAdapter(max_retries=self.retry))
        self.timeout, self.min_interval = timeout, min_interval
        self.clock, self.sleep = clock, sleep
        self._last: dict[str, float] = {}
        self._in_flight = ""  # the URL being fetched: urllib3's retries of it wait for its host's turn
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._unreadable: set[str] = set()  # hosts whose robots.txt was not text/plain
        self._stay_off: list[str] = []
        self.robots_status: dict[str, str] = {}
        self.stats: Counter[str] = Counter()

    def get(
        self, url: str, *, headers: dict[str, str] | None = None, max_bytes: int | None = None
    ) -> Fetched:
        """GET `url` if robots.txt allows it; raises `Skip` (robots, http_NNN, timeout, connection)."""
        if not self.allowed(url):
            self.stats["robots_blocked"] += 1
            why = "disallowed by robots.txt"
            if site_root(url) in self._unreadable:
                why = "robots.txt unreadable, and this is an API path"
            raise Skip("robots", why, url)
        return self._fetch(url, headers, max_bytes)

    def allowed(self, url: str) -> bool:
        """What the host's robots.txt (fetched once per host) says about `url` for our User-Agent."""
        rules = self._robots_for(url)
        if site_root(url) in self._unreadable and any(url.startswith(prefix) for prefix in self._stay_off):
            return False
        return rules.can_fetch(USER_AGENT, url)

    def stay_off_without_robots(self, url_prefix: str) -> None:
        """Refuse URLs starting with `url_prefix` (a site's API) whenever its host's robots.txt is unreadable."""
        self._stay_off.append(url_prefix)

    def close(self) -> None:
        self.session.close()

    def _robots_for(self, url: str) -> urllib.robotparser.RobotFileParser:
        root = site_root(url)
        if root not in self._robots:
            parser = urllib.robotparser.RobotFileParser(root + "/robots.txt")
            try:
                robots = self._fetch(root + "/robots.txt", None, 500_000)
                if robots.content_type == "text/plain":
                    parser.parse(robots.text.splitlines())
                    self.robots_status[root] = "read"
                else:  # parsed as rules, an HTML page would mean "allow everything": the site said no such thing
                    parser.allow_all = True
                    self._unreadable.add(root)
                    avoided = [prefix for prefix in self._stay_off if prefix.startswith(root)]
                    self.robots_status[root] = (
                        f"unreadable: served as {robots.content_type or 'no Content-Type'}, not text/plain; "
                        f"staying off {', '.join(avoided) or 'no registered API path'}"
                    )
            except Skip as err:
                # The rules of urllib.robotparser.read(), plus: an unreachable robots.txt means stay out.
                missing = err.reason.startswith("http_4") and err.reason not in ("http_401", "http_403")
                parser.allow_all, parser.disallow_all = missing, not missing
                self.robots_status[root] = f"{err.reason}: " + ("allow all" if missing else "disallow all")
            self._robots[root] = parser
        return self._robots[root]

    def _wait_turn(self, url: str) -> None:
        """Wait until `url`'s host may be asked again (min_interval, or robots.txt's Crawl-delay); count it."""
        host = urlsplit(url).netloc
        robots = self._robots.get(site_root(url))
        delay = robots.crawl_delay(USER_AGENT) if robots and not robots.allow_all else None
        interval = max(self.min_interval, float(delay or 0))
        due = self._last.get(host, float("-inf")) + interval - self.clock()
        if due > 0:
            self.sleep(due)
        self._last[host] = self.clock()
        self.stats["requests"] += 1

    def _before_retry(self, seconds: float, failed: RequestHistory) -> None:
        """`PoliteRetry`'s wait: count the failed attempt, wait `seconds`, then the host's turn."""
        self.stats[f"http_{failed.status}" if failed.status else _error_reason(failed.error)] += 1
        self.stats["retries"] += 1
        if seconds > 0:
            self.sleep(seconds)
        self._wait_turn(self._in_flight)

    def _fetch(self, url: str, headers: dict[str, str] | None, max_bytes: int | None) -> Fetched:
        self._wait_turn(url)
        self._in_flight = url
        try:
            with self.session.get(url, headers=headers, timeout=self.timeout, stream=True) as resp:
                if resp.status_code < 400:
                    body = _read_capped(resp, max_bytes, url)
                    charset = _charset(resp.headers.get("Content-Type", ""))
                    return Fetched(resp.url, resp.status_code, dict(resp.headers), body, charset)
                reason = f"http_{resp.status_code}"
                self.stats[reason] += 1
                raise Skip(reason, self._why_not(resp), url)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            reason = _error_reason(err)
            self.stats[reason] += 1
            gave_up = err.args and isinstance(err.args[0], MaxRetryError)
            detail = f"gave up after {self.retry.total + 1} attempts" if gave_up else str(err)
            raise Skip(reason, detail, url) from err
        except requests.RequestException as err:
            raise Skip("request_error", str(err), url) from err

    def _why_not(self, resp: requests.Response) -> str:
        """Why an error response ends the fetch: a too long Retry-After, retries used up, or the status."""
        wait = self.retry.get_retry_after(resp.raw)
        if wait is not None and wait > self.retry.max_wait:
            return f"server asks to wait {wait:.0f} s (> max_wait {self.retry.max_wait:.0f} s)"
        if self.retry.is_retry("GET", resp.status_code, wait is not None):
            return f"gave up after {len(resp.raw.retries.history) + 1} attempts"
        return resp.reason or ""


def site_root(url: str) -> str:
    """scheme://host[:port] of `url`: what one robots.txt governs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _error_reason(error: BaseException | None) -> str:
    """'timeout' or 'connection' for a failed transport, looking through requests' and urllib3's wrappers."""
    if isinstance(error, requests.ConnectionError) and error.args:
        error = error.args[0]
    if isinstance(error, MaxRetryError):
        error = error.reason
    return "timeout" if isinstance(error, requests.Timeout | Urllib3Timeout) else "connection"


def _charset(content_type: str) -> str | None:
    """The charset a Content-Type names; None otherwise (requests would assume ISO-8859-1 for text/html)."""
    match = re.search(r"charset=\"?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None


def _read_capped(resp: requests.Response, max_bytes: int | None, url: str) -> bytes:
    """The body, refusing (as a bad image) anything longer than `max_bytes`."""
    chunks, total = [], 0
    for chunk in resp.iter_content(64 * 1024):
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise Skip("bad_image", f"larger than {max_bytes} bytes", url)
        chunks.append(chunk)
    return b"".join(chunks)
