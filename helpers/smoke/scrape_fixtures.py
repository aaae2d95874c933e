"""Offline stand-ins for foody.vn and cooky.vn: synthetic pages and dish photos on a real local HTTP server.

Both sites live on one `ThreadingHTTPServer` on 127.0.0.1 (random free port) under `/foody` and `/cooky`,
in the shapes the real sites use, with a few realistic faults per dish so the run report has skips to show.
Tests script more faults per path with `FixtureServer.inject`.
"""

from __future__ import annotations

import html
import io
import json
import random
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from PIL import Image, ImageDraw, ImageFilter

from helpers.data.scraping import with_base_urls

ROBOTS_TXT = (
    "User-agent: *\nDisallow: /foody/private/\nDisallow: /cooky/private/\nDisallow: /fault/private/\n"
)
GOOD_PER_SITE = 6  # kept pages per dish and site: 12 per dish in all
PER_LISTING_PAGE = 4
FOODY_GOOD = ("og", "og", "microdata", "og", "microdata", "og")
COOKY_GOOD = ("json-ld", "json-ld", "selectors-lazy", "og", "invalid-json-ld", "malformed")
FOODY_FAULTS = ("robots", "exact-duplicate", "gone")
COOKY_FAULTS = ("no-image", "truncated", "not-an-image", "near-duplicate", "small-only")

TEXT = {
    "banh-beo": {
        "title": ["Bánh bèo chén tôm chấy", "Bánh bèo Huế", "Bánh bèo nhân tôm thịt", "Bánh bèo mỡ hành"],
        "desc": ["Những chén bánh bèo trắng mịn, phủ tôm chấy đỏ cam và tóp mỡ giòn.",
                 "Bánh bèo mềm dẻo ăn kèm nước mắm chua ngọt và ớt tươi.",
                 "Món bánh dân dã xứ Huế, rắc hành phi và da heo chiên giòn."],
        "ingredients": ["bột gạo", "bột năng", "tôm khô", "tóp mỡ", "hành lá", "nước mắm"],
    },
    "bun-bo-hue": {
        "title": ["Bún bò Huế chuẩn vị", "Bún bò Huế giò heo", "Bún bò Huế chả cua", "Bún bò Huế đặc biệt"],
        "desc": ["Tô bún bò nước dùng đỏ au, thơm mùi sả và mắm ruốc.",
                 "Sợi bún to, thịt bò bắp thái mỏng, giò heo và chả cua.",
                 "Ăn kèm rau thơm, bắp chuối, chanh và ớt sa tế cay nồng."],
        "ingredients": ["bún sợi to", "bắp bò", "giò heo", "sả", "mắm ruốc", "ớt sa tế"],
    },
    "bun-dau-mam-tom": {
        "title": ["Bún đậu mắm tôm Hà Nội", "Mẹt bún đậu thập cẩm", "Bún đậu chả cốm", "Bún đậu mắm tôm lá chuối"],
        "desc": ["Mẹt bún lá, đậu phụ rán vàng giòn và chén mắm tôm pha chanh.",
                 "Đậu rán nóng hổi, chả cốm, thịt luộc và rau kinh giới.",
                 "Món ăn vỉa hè Hà Nội bày trên lá chuối xanh."],
        "ingredients": ["bún lá", "đậu phụ", "mắm tôm", "thịt chân giò", "chả cốm", "rau kinh giới"],
    },
}  # fmt: skip


# --------------------------------------------------------------------------- synthetic photos


def draw_dish(slug: str, seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A synthetic photo of a dish: random layout and colours, recognisable shapes per dish."""
    rng = random.Random(f"{slug}-{seed}")
    w, h = size
    wood = tuple(rng.randint(90, 170) for _ in range(3))
    img = Image.new("RGB", size, wood)
    d = ImageDraw.Draw(img)
    for y in range(0, h, rng.randint(12, 30)):  # table grain
        d.line(
            [(0, y), (w, y + rng.randint(-20, 20))],
            fill=tuple(max(0, c - rng.randint(15, 40)) for c in wood),
            width=2,
        )

    def dots(cx, cy, r, colour, n):
        for _ in range(n):
            x, y = cx + rng.uniform(-r, r), cy + rng.uniform(-r, r)
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)

    if slug == "banh-beo":
        for _ in range(rng.randint(5, 9)):
            cx, cy, r = rng.uniform(60, w - 60), rng.uniform(60, h - 60), rng.uniform(35, 55)
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(245, 245, 240), outline=(60, 90, 160), width=4)
            d.ellipse([cx - r * 0.75, cy - r * 0.75, cx + r * 0.75, cy + r * 0.75], fill=(236, 228, 205))
            dots(cx, cy, r * 0.4, (230, 110, 40), rng.randint(6, 14))
            dots(cx, cy, r * 0.5, (70, 160, 60), rng.randint(3, 8))
    elif slug == "bun-bo-hue":
        cx, cy, r = rng.uniform(w * 0.35, w * 0.65), rng.uniform(h * 0.4, h * 0.6), rng.uniform(150, 200)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(250, 250, 250), outline=(40, 40, 40), width=6)
        d.ellipse(
            [cx - r * 0.85, cy - r * 0.85, cx + r * 0.85, cy + r * 0.85],
            fill=(200, 70 + rng.randint(0, 40), 30),
        )
        for _ in range(rng.randint(10, 18)):  # noodles
            x0, y0 = cx + rng.uniform(-r * 0.6, r * 0.6), cy + rng.uniform(-r * 0.6, r * 0.6)
            d.arc(
                [x0 - 40, y0 - 20, x0 + 40, y0 + 20],
                rng.randint(0, 180),
                rng.randint(190, 360),
                fill=(245, 240, 225),
                width=5,
            )
        for _ in range(rng.randint(3, 6)):  # beef slices
            x0, y0 = cx + rng.uniform(-r * 0.5, r * 0.5), cy + rng.uniform(-r * 0.5, r * 0.5)
            d.ellipse([x0 - 30, y0 - 14, x0 + 30, y0 + 14], fill=(120, 60, 50))
        dots(cx, cy, r * 0.6, (60, 150, 50), rng.randint(10, 20))
    else:  # bun-dau-mam-tom
        x0, y0 = rng.uniform(20, 80), rng.uniform(20, 60)
        d.rounded_rectangle(
            [x0, y0, w - rng.uniform(20, 80), h - rng.uniform(20, 60)], 30, fill=(80, 150, 70)
        )
        for _ in range(rng.randint(3, 5)):  # pressed noodle cakes
            bx, by = rng.uniform(80, w - 180), rng.uniform(80, h - 150)
            d.rounded_rectangle([bx, by, bx + 100, by + 70], 8, fill=(248, 246, 238), outline=(220, 215, 200))
        for _ in range(rng.randint(6, 10)):  # fried tofu
            tx, ty, s = rng.uniform(80, w - 120), rng.uniform(80, h - 120), rng.uniform(30, 45)
            d.rectangle([tx, ty, tx + s, ty + s], fill=(220, 160, 50), outline=(170, 110, 30), width=3)
        mx, my = rng.uniform(w * 0.6, w * 0.8), rng.uniform(h * 0.2, h * 0.4)
        d.ellipse([mx - 45, my - 45, mx + 45, my + 45], fill=(250, 250, 250))
        d.ellipse([mx - 35, my - 35, mx + 35, my + 35], fill=(150, 90, 140))  # mắm tôm
    return img.filter(ImageFilter.GaussianBlur(0.8))


@lru_cache(maxsize=512)
def photo_bytes(slug: str, seed: int, max_side: int | None = None, quality: int = 88) -> bytes:
    """JPEG bytes of a synthetic photo; `max_side` gives the thumbnail sizes a site serves."""
    rng = random.Random(seed)
    img = draw_dish(slug, seed, (rng.randint(400, 520), rng.randint(300, 390)))
    if max_side:
        img.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def bomb_png() -> bytes:
    """A 1-bit 8000x8000 PNG: a few kilobytes on the wire, 64 megapixels once decoded."""
    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, "PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- pages


@dataclass
class Fault:
    """One scripted answer for a path: a delay, then a status/body; `status=None` serves the normal page."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


def _page(title: str, head: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"{head}</head><body>{body}</body></html>"
    )


def _og(title: str, desc: str, image: str) -> str:
    return (
        f'<meta property="og:title" content="{html.escape(title)}">'
        f'<meta property="og:description" content="{html.escape(desc)}">'
        f'<meta property="og:image" content="{html.escape(image)}">'
    )


class FixtureSite:
    """Every page and image of both fixture sites for the given dishes, generated deterministically."""

    def __init__(self, dishes: list[dict], faults: bool = True):
        self.dishes = {d["slug"]: d for d in dishes}
        self.keyword_to_slug = {
            kw.casefold(): d["slug"] for d in dishes for kws in d["keywords"].values() for kw in kws
        }
        self.faults = faults

    def expected_kept(self) -> int:
        """Items a clean scrape keeps per dish (both sites)."""
        return 2 * GOOD_PER_SITE

    def expected_pages(self, site: str) -> int:
        """Pages found per dish on a site (kept + skipped)."""
        faults = {"foody": FOODY_FAULTS, "cooky": COOKY_FAULTS}[site] if self.faults else ()
        return GOOD_PER_SITE + len(faults)

    def _kinds(self, site: str) -> list[str]:
        good = FOODY_GOOD if site == "foody" else COOKY_GOOD
        faults = (FOODY_FAULTS if site == "foody" else COOKY_FAULTS) if self.faults else ()
        return list(good) + list(faults)

    def _seed(self, slug: str, site: str, i: int) -> int:
        return 1000 * list(self.dishes).index(slug) + (0 if site == "foody" else 100) + i

    def _text(self, slug: str, i: int) -> tuple[str, str]:
        text = TEXT[slug]
        title = f"{text['title'][i % len(text['title'])]} #{i + 1}"
        desc = " ".join(text["desc"][j % len(text["desc"])] for j in range(i, i + 2))
        return title, desc

    # ---- routing

    def route(
        self, path: str, query: dict[str, str], headers: dict[str, str], base: str
    ) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET."""
        parts = path.strip("/").split("/")
        if path == "/robots.txt":
            return 200, "text/plain; charset=utf-8", ROBOTS_TXT.encode()
        if path == "/fault/bomb.png":
            return 200, "image/png", bomb_png()
        if path.startswith("/fault/"):
            return (
                200,
                "text/html; charset=utf-8",
                _page("fault", "", "<p>fixture fault endpoint</p>").encode(),
            )
        if len(parts) >= 2 and parts[0] in ("foody", "cooky") and parts[1] == "media":
            return self._image(parts)
        if path == "/foody/ho-chi-minh/dia-diem":
            return self._foody_listing(query, headers, base)
        if path == "/cooky/cong-thuc/tim-kiem":
            return self._cooky_search(query, base)
        if (
            len(parts) == 3
            and parts[0] in ("foody", "cooky")
            and parts[1] in ("ho-chi-minh", "cong-thuc", "private")
        ):
            slug, _, index = parts[2].rpartition("-")
            if slug in self.dishes and index.isdigit() and int(index) < len(self._kinds(parts[0])):
                return self._detail(parts[0], slug, int(index), base)
        return 404, "text/html; charset=utf-8", _page("404", "", "<h1>Không tìm thấy trang</h1>").encode()

    def _detail_path(self, site: str, slug: str, i: int) -> str:
        kind = self._kinds(site)[i]
        folder = "private" if kind == "robots" else "ho-chi-minh" if site == "foody" else "cong-thuc"
        return f"/{site}/{folder}/{slug}-{i}"

    def image_path(self, site: str, slug: str, i: int, size: str = "s") -> str:
        """The path of page `i`'s photo at a size segment (`s` is the original, `s320x240` a thumbnail)."""
        return f"/{site}/media/{slug}/{i}/{size}/photo-{slug}-{i}.jpg"

    def _image(self, parts: list[str]) -> tuple[int, str, bytes]:
        site, slug, index, size = parts[0], parts[2], parts[3], parts[4] if len(parts) > 4 else ""
        if slug not in self.dishes or not index.isdigit() or int(index) >= len(self._kinds(site)):
            return 404, "text/plain", b"no such image"
        i = int(index)
        kind = self._kinds(site)[i]
        seed = self._seed(slug, site, i)
        if kind == "exact-duplicate":  # the same bytes as the first page's photo, under another URL
            seed = self._seed(slug, site, 0)
        if kind == "small-only" and size == "s":
            return 404, "text/plain", b"no large size for this photo"
        max_side = None if size == "s" else int(size[1:].split("x")[0])
        if kind == "near-duplicate":  # another page's photo, re-encoded a little smaller
            return 200, "image/jpeg", photo_bytes(slug, self._seed(slug, site, 1), 600, 70)
        data = photo_bytes(slug, seed, max_side)
        if kind == "truncated":
            data = data[: len(data) // 2]
        if kind == "not-an-image":
            data = _page("Access denied", "", "<h1>Bạn cần đăng nhập</h1>").encode()
        return 200, "image/jpeg", data

    def _foody_listing(self, query: dict[str, str], headers: dict[str, str], base: str):
        slug = self.keyword_to_slug.get(query.get("q", "").casefold())
        if headers.get("x-requested-with", "").lower() != "xmlhttprequest":
            body = "<p>Trang đầu được dựng sẵn; các trang sau tải bằng XHR.</p>"
            return 200, "text/html; charset=utf-8", _page("Foody", "", body).encode()
        indices = list(range(len(self._kinds("foody")))) if slug else []
        page = max(1, int(query.get("page", "1") or 1))
        chosen = indices[(page - 1) * PER_LISTING_PAGE : page * PER_LISTING_PAGE]
        items = []
        for i in chosen:
            title, _ = self._text(slug, i)
            items.append({
                "Id": self._seed(slug, "foody", i), "Name": f"Quán {title}",
                "PicturePath": base + self.image_path("foody", slug, i, "s180x180"),
                "PicturePathLarge": base + self.image_path("foody", slug, i, "s640x400"),
                "AlbumUrl": self._detail_path("foody", slug, i).removeprefix("/foody") + "/album-anh",
                "DetailUrl": self._detail_path("foody", slug, i).removeprefix("/foody"),
            })  # fmt: skip
        body = json.dumps({"searchItems": items, "totalResult": len(indices)}, ensure_ascii=False)
        return 200, "application/json; charset=utf-8", body.encode()

    def _cooky_search(self, query: dict[str, str], base: str):
        slug = self.keyword_to_slug.get(query.get("q", "").casefold())
        indices = list(range(len(self._kinds("cooky")))) if slug else []
        page = max(1, int(query.get("page", "1") or 1))
        chosen = indices[(page - 1) * PER_LISTING_PAGE : page * PER_LISTING_PAGE]
        links = "".join(
            f'<div class="result-recipe-wrapper"><a href="{self._detail_path("cooky", slug, i)}">'
            f"{html.escape(self._text(slug, i)[0])}</a></div>"
            for i in chosen
        )
        links += (
            '<a href="/cooky/cong-thuc/tim-kiem?q=x&amp;page=1">Công thức nổi bật</a>'  # not a recipe link
        )
        if page * PER_LISTING_PAGE < len(indices):
            next_query = html.escape(urlencode({"q": query.get("q", ""), "page": page + 1}))
            links += f'<a rel="next" href="/cooky/cong-thuc/tim-kiem?{next_query}">Sau</a>'
        return 200, "text/html; charset=utf-8", _page("Tìm kiếm", "", links).encode()

    def _detail(self, site: str, slug: str, i: int, base: str) -> tuple[int, str, bytes]:
        kind = self._kinds(site)[i]
        if kind == "gone":
            return 404, "text/html; charset=utf-8", _page("404", "", "<h1>Quán đã đóng cửa</h1>").encode()
        title, desc = self._text(slug, i)
        ingredients = TEXT[slug]["ingredients"][: 3 + i % 3]
        thumb = base + self.image_path(site, slug, i, "s200x150" if kind == "small-only" else "s320x240")
        html_text = self._render(kind, title, desc, ingredients, thumb)
        return 200, "text/html; charset=utf-8", html_text.encode()

    def _render(self, kind: str, title: str, desc: str, ingredients: list[str], image: str) -> str:
        t, dsc, img = html.escape(title), html.escape(desc), html.escape(image)
        items = "".join(f'<li class="ingredient">{html.escape(x)}</li>' for x in ingredients)
        lazy = f'<div class="recipe-image"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="{img}"></div>'
        selectors = f'<h1 class="recipe-title">{t}</h1><div class="summary">{dsc}</div><ul>{items}</ul>{lazy}'
        if kind in ("og", "robots", "exact-duplicate"):
            return _page(title, _og(title, desc, image), f"<h1>{t}</h1><p>{dsc}</p>")
        if kind == "microdata":
            body = (
                f'<div itemscope itemtype="https://schema.org/Restaurant"><h1 itemprop="name">{t}</h1>'
                f'<div itemprop="description">{dsc}</div><img itemprop="image" src="{img}"></div>'
            )
            return _page(title, "", body)
        if kind in ("json-ld", "truncated", "not-an-image", "near-duplicate", "small-only"):
            recipe = {"@context": "https://schema.org", "@type": "Recipe", "name": title, "description": desc,
                      "image": [image], "recipeIngredient": ingredients}  # fmt: skip
            ld = f'<script type="application/ld+json">{json.dumps(recipe, ensure_ascii=False)}</script>'
            return _page(title, ld, selectors)
        if kind == "selectors-lazy":
            return _page(title, "", selectors)
        if kind == "invalid-json-ld":  # a trailing comma: invalid JSON, so extraction falls back
            ld = f'<script type="application/ld+json">{{"@type": "Recipe", "name": "{t}",}}</script>'
            lazy_original = lazy.replace("data-src", "data-original")
            return _page(
                title, ld, f'<h1 class="recipe-title">{t}</h1><div class="summary">{dsc}</div>{lazy_original}'
            )
        if kind == "malformed":  # unclosed tags, a stray closing tag, an unquoted attribute
            return (
                f"<html><head><title>{t}</title><body><div class=summary>{dsc}</span><h1 class=recipe-title>{t}"
                f"<ul><li class=ingredient>{html.escape(ingredients[0])}<li class=ingredient>{html.escape(ingredients[1])}"
                f'<div class="recipe-image"><img data-src={img} src=/static/blank.gif><p>'
            )
        if kind == "no-image":  # a video-only recipe: a title but no photo anywhere
            return _page(title, "", f'<h1 class="recipe-title">{t}</h1><div class="summary">{dsc}</div>')
        raise ValueError(f"unknown fixture page kind {kind!r}")


# --------------------------------------------------------------------------- server


class FixtureServer:
    """A running fixture server: base URLs, request counts per path, and scripted faults."""

    def __init__(self, site: FixtureSite, httpd: ThreadingHTTPServer):
        self.site, self.httpd = site, httpd
        self.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self.base_urls = {"foody": self.base_url + "/foody", "cooky": self.base_url + "/cooky"}
        self.hits: Counter[str] = Counter()
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()

    def inject(self, path: str, *faults: Fault) -> None:
        """Answer the next requests for `path` with `faults`, in order; then serve normally again."""
        with self._lock:
            self._faults.setdefault(path, deque()).extend(faults)

    def url(self, path: str) -> str:
        """The absolute URL of a path on this server."""
        return self.base_url + path

    def take_fault(self, path: str) -> Fault | None:
        """Count a request for `path` and pop its next scripted fault, if any."""
        with self._lock:
            self.hits[path] += 1
            queue = self._faults.get(path)
            return queue.popleft() if queue else None


def _handler(server: FixtureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            fault = server.take_fault(parts.path)
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and fault.status is not None:
                status, ctype, body = fault.status, "text/plain; charset=utf-8", fault.body
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, ctype, body = server.site.route(parts.path, query, headers, server.base_url)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (fault.headers if fault else {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            """Quiet: the scraper's report is the log."""

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        """A client that timed out and hung up is expected here (fault tests); anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve_fixture_site(config: dict, *, faults: bool = True) -> Iterator[FixtureServer]:
    """Serve the fixture sites for `config`'s dishes on 127.0.0.1 (random free port) while the block runs."""
    httpd = _QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server = FixtureServer(FixtureSite(config["dishes"], faults), httpd)
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


FIXTURE_MIN_INTERVAL = 0.01  # our own local server: the 1 request/second courtesy is for other people's


@contextmanager
def serving(config: dict) -> Iterator[dict]:
    """`config` pointed at the fixture sites on 127.0.0.1 while the block runs (what `Profile.sites` gives)."""
    with serve_fixture_site(config) as server:
        yield {**with_base_urls(config, server.base_urls), "request_interval": FIXTURE_MIN_INTERVAL}
