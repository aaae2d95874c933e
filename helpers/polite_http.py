"""A polite HTTP client on `requests.Session`: robots.txt, per-host rate limit, retries with backoff."""

from __future__ import annotations

import email.utils
import random
import re
import time
import urllib.robotparser
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests

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
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset name Python does not know
            return self.content.decode("utf-8", errors="replace")


class HttpClient:
    """requests.Session with a User-Agent, timeouts, retries with backoff, a per-host rate limit and robots.txt.

    `clock` and `sleep` are injectable so tests run the same waits on a fake clock.
    """

    def __init__(
        self,
        *,
        user_agent: str = USER_AGENT,
        timeout: tuple[float, float] = (5.0, 20.0),
        max_retries: int = 3,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        seed: int = 0,
    ):
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": user_agent, "Accept-Language": "vi,en;q=0.5"})
        self.user_agent, self.timeout, self.max_retries = user_agent, timeout, max_retries
        self.backoff, self.max_wait, self.min_interval = backoff, max_wait, min_interval
        self.clock, self.sleep, self._rng = clock, sleep, random.Random(seed)
        self._last: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.robots_status: dict[str, str] = {}
        self.stats: Counter[str] = Counter()
        self.waits: list[float] = []

    def get(
        self, url: str, *, headers: dict[str, str] | None = None, max_bytes: int | None = None
    ) -> Fetched:
        """GET `url` if robots.txt allows it; raises `Skip` (robots, http_NNN, timeout, connection)."""
        if not self.allowed(url):
            self.stats["robots_blocked"] += 1
            raise Skip("robots", "disallowed by robots.txt", url)
        return self._fetch(url, headers, max_bytes)

    def allowed(self, url: str) -> bool:
        """What the host's robots.txt (fetched once per host) says about `url` for our User-Agent."""
        return self._robots_for(url).can_fetch(self.user_agent, url)

    def close(self) -> None:
        self.session.close()

    def _robots_for(self, url: str) -> urllib.robotparser.RobotFileParser:
        parts = urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
        if root not in self._robots:
            parser = urllib.robotparser.RobotFileParser(root + "/robots.txt")
            try:
                parser.parse(self._fetch(root + "/robots.txt", None, 500_000).text.splitlines())
                self.robots_status[root] = "read"
            except Skip as err:
                # The rules of urllib.robotparser.read(), plus: an unreachable robots.txt means stay out.
                missing = err.reason.startswith("http_4") and err.reason not in ("http_401", "http_403")
                parser.allow_all, parser.disallow_all = missing, not missing
                self.robots_status[root] = f"{err.reason}: " + ("allow all" if missing else "disallow all")
            self._robots[root] = parser
        return self._robots[root]

    def _pause(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.sleep(seconds)

    def _wait_turn(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.netloc
        robots = self._robots.get(f"{parts.scheme}://{host}")
        delay = robots.crawl_delay(self.user_agent) if robots and not robots.allow_all else None
        interval = max(self.min_interval, float(delay or 0))
        due = self._last.get(host, float("-inf")) + interval - self.clock()
        if due > 0:
            self._pause(due)
        self._last[host] = self.clock()

    def _fetch(self, url: str, headers: dict[str, str] | None, max_bytes: int | None) -> Fetched:
        for attempt in range(self.max_retries + 1):
            self._wait_turn(url)
            self.stats["requests"] += 1
            retry_after = None
            try:
                with self.session.get(url, headers=headers, timeout=self.timeout, stream=True) as resp:
                    if resp.status_code < 400:
                        body = _read_capped(resp, max_bytes, url)
                        charset = _charset(resp.headers.get("Content-Type", ""))
                        return Fetched(resp.url, resp.status_code, dict(resp.headers), body, charset)
                    reason = f"http_{resp.status_code}"
                    if resp.status_code != 429 and resp.status_code < 500:
                        raise Skip(reason, resp.reason or "", url)
                    retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
            except requests.Timeout:
                reason = "timeout"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                reason = "connection"
            except requests.RequestException as err:
                raise Skip("request_error", str(err), url) from err
            self.stats[reason] += 1
            if attempt == self.max_retries:
                raise Skip(reason, f"gave up after {attempt + 1} attempts", url)
            jitter = self._rng.uniform(0, self.backoff)
            wait = retry_after if retry_after is not None else self.backoff * 2**attempt + jitter
            if wait > self.max_wait:
                raise Skip(
                    reason, f"server asks to wait {wait:.0f} s (> max_wait {self.max_wait:.0f} s)", url
                )
            self.stats["retries"] += 1
            self._pause(wait)
        raise AssertionError("unreachable")


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


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
