"""Offline stand-ins for foody.vn and cooky.vn in the shapes the real sites serve, each on its own HTTP server
(127.0.0.1, a free port), so each has its own robots.txt as the real hosts do. Modelled on real pages and crawlers:

- foody: the listing `/{province}/food/dia-diem` answers JSON (`searchItems`, `adItems`, `totalResult`,
  `currentPage`) to `X-Requested-With: XMLHttpRequest`; items carry `Name`, `DetailUrl`, `PicturePath`
  (s180x180), `PicturePathLarge` (s640x400) and `Reviews` whose `Title`/`Comment` are HTML-encoded (the comment
  twice). Place pages: two OpenGraph blocks (the first with an empty og:image, the second the site logo), a
  BreadcrumbList whose `span[itemprop=name]` items come before `h1[itemprop=name]`, `div.res-common-info`
  clutter (scores, address, hours) and the photo in `img.pic-place` (`itemprop=image`; `itemprop=photo` on the
  older layout). robots.txt answers 200 with an HTML "not found" page. `/__get/` is its API.
- cooky: the search `/directory/search?q=…&page=…&pageSize=…` answers JSON (`recipes[].DetailUrl`,
  `totalResults`); recipe pages carry a JSON-LD Recipe whose `name` is an SEO headline and whose `image` is an
  ImageObject (a list or a plain URL on some pages), the title in `h1.p-name.fn.recipe-title`, the header photo
  in `div.recipe-header-photo img.u-photo`, lazy images with a placeholder `src` and the real `data-src`,
  `div.summary.p-summary`, and `ul.recipe-ingredient-list li.ingredient` with fractions as `<sup>`/`<sub>`.

Not verified, so chosen here: foody's login wall (listing page 2 and on answer an XHR with a 302 to
`/account/login?returnUrl=…`, as an ASP.NET site redirects an anonymous visitor; `totalResult` counts more places
than page 1 shows), the reviewers' field names, and one search result repeated with utm_ tags. Each dish's pages
(`KINDS`) include realistic faults for the run report to skip, and kept pages with invalid JSON-LD or malformed
HTML. Tests script more with `FixtureServer.inject`; `/fault/bomb.png` is a decompression bomb.
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
from urllib.parse import parse_qs, quote, urlsplit

from PIL import Image, ImageDraw, ImageFilter
from requests.structures import CaseInsensitiveDict

from helpers import runtime
from helpers.data.scraping import with_base_urls

COOKY_ROBOTS_TXT = "User-agent: *\nDisallow: /cooky/private/\nDisallow: /fault/private/\n"
# Page kinds per site: six kept, then the faults (served unless `faults=False`).
KINDS = {
    "foody": (("place", "place", "place-old", "place", "place", "place-old"), ("exact-duplicate", "gone")),
    "cooky": (
        ("recipe", "recipe-image-list", "recipe-image-string", "recipe-lazy", "invalid-json-ld", "malformed"),
        ("robots", "no-image", "truncated", "not-an-image", "near-duplicate", "small-only"),
    ),
}
FOODY_NO_REVIEWS = 4  # the place whose listing item has no review: its description stays empty
FOODY_BEHIND_LOGIN = 16  # places `totalResult` counts beyond page 1, which only a logged-in visitor sees
COOKY_PAGE_SIZE = 12  # the search's default pageSize
COOKY_UTM = "?utm_source=cooky&utm_medium=search&utm_campaign=tim-kiem"
BLANK_IMG = "/imgs/blank-img/400x400.jpg"  # cooky's lazy-image placeholder
PROVINCES = {"hue": ("Huế", "Thành phố Huế", "Lê Lợi"), "ha-noi": ("Hà Nội", "Quận Hoàn Kiếm", "Hàng Khay"),
             "ho-chi-minh": ("TP. HCM", "Quận 1", "Lê Thánh Tôn")}  # fmt: skip
REVIEWERS = ("Minh Anh", "Thu Trang", "Hoàng Nam")

TEXT = {
    "banh-beo": {
        "title": ["Bánh bèo chén tôm chấy", "Bánh bèo Huế", "Bánh bèo nhân tôm thịt", "Bánh bèo mỡ hành"],
        "desc": ["Những chén bánh bèo trắng mịn, phủ tôm chấy đỏ cam và tóp mỡ giòn.",
                 "Bánh bèo mềm dẻo ăn kèm nước mắm chua ngọt và ớt tươi.",
                 "Món bánh dân dã xứ Huế, rắc hành phi và da heo chiên giòn."],
        "ingredients": [("Bột gạo", "200", "gr"), ("Bột năng", "2", "muỗng canh"),
                        ("Tôm khô", "1 <sup>1</sup>/<sub>2</sub>", "chén"), ("Tóp mỡ", "100", "gr"),
                        ("Hành lá", "3", "cây"), ("Nước mắm", "<sup>1</sup>/<sub>2</sub>", "chén")],
        "reviews": ["Bánh bèo mềm, tôm chấy thơm, nước mắm vừa miệng. Giá trung bình.",
                    "Quán nhỏ nhưng sạch sẽ, bánh nóng, ăn với tóp mỡ rất ngon.",
                    "Chén bánh hơi nhỏ, được cái nước chấm đậm đà, sẽ quay lại."],
    },
    "bun-bo-hue": {
        "title": ["Bún bò Huế chuẩn vị", "Bún bò Huế giò heo", "Bún bò Huế chả cua", "Bún bò Huế đặc biệt"],
        "desc": ["Tô bún bò nước dùng đỏ au, thơm mùi sả và mắm ruốc.",
                 "Sợi bún to, thịt bò bắp thái mỏng, giò heo và chả cua.",
                 "Ăn kèm rau thơm, bắp chuối, chanh và ớt sa tế cay nồng."],
        "ingredients": [("Bún sợi to", "1", "kg"), ("Bắp bò", "500", "gr"), ("Giò heo", "1", "cái"),
                        ("Sả", "5", "cây"), ("Mắm ruốc", "1 <sup>1</sup>/<sub>2</sub>", "muỗng canh"),
                        ("Ớt sa tế", "<sup>1</sup>/<sub>2</sub>", "chén")],
        "reviews": ["Nước dùng đậm vị sả, bắp bò mềm, giá trung bình so với khu này.",
                    "Tô bún đầy đặn, có chả cua và giò heo, rau sống tươi.",
                    "Hơi cay nhưng đúng kiểu Huế, sáng nào cũng đông khách."],
    },
    "bun-dau-mam-tom": {
        "title": ["Bún đậu mắm tôm Hà Nội", "Mẹt bún đậu thập cẩm", "Bún đậu chả cốm", "Bún đậu mắm tôm lá chuối"],
        "desc": ["Mẹt bún lá, đậu phụ rán vàng giòn và chén mắm tôm pha chanh.",
                 "Đậu rán nóng hổi, chả cốm, thịt luộc và rau kinh giới.",
                 "Món ăn vỉa hè Hà Nội bày trên lá chuối xanh."],
        "ingredients": [("Bún lá", "500", "gr"), ("Đậu phụ", "4", "bìa"), ("Mắm tôm", "<sup>1</sup>/<sub>2</sub>", "chén"),
                        ("Thịt chân giò", "300", "gr"), ("Chả cốm", "200", "gr"),
                        ("Rau kinh giới", "1 <sup>1</sup>/<sub>2</sub>", "bó")],
        "reviews": ["Đậu rán giòn, mắm tôm pha chanh chuẩn vị, giá trung bình.",
                    "Mẹt đầy đủ chả cốm và thịt luộc, rau kinh giới thơm.",
                    "Quán vỉa hè đông vui, phục vụ nhanh, đậu phụ nóng hổi."],
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
        end, grain = y + rng.randint(-20, 20), tuple(max(0, c - rng.randint(15, 40)) for c in wood)
        d.line([(0, y), (w, end)], fill=grain, width=2)

    def box(cx: float, cy: float, rx: float, ry: float | None = None) -> list[float]:
        ry = rx if ry is None else ry
        return [cx - rx, cy - ry, cx + rx, cy + ry]

    def dots(cx, cy, r, colour, n):
        for _ in range(n):
            d.ellipse(box(cx + rng.uniform(-r, r), cy + rng.uniform(-r, r), 3), fill=colour)

    if slug == "banh-beo":
        for _ in range(rng.randint(5, 9)):
            cx, cy, r = rng.uniform(60, w - 60), rng.uniform(60, h - 60), rng.uniform(35, 55)
            d.ellipse(box(cx, cy, r), fill=(245, 245, 240), outline=(60, 90, 160), width=4)
            d.ellipse(box(cx, cy, r * 0.75), fill=(236, 228, 205))
            dots(cx, cy, r * 0.4, (230, 110, 40), rng.randint(6, 14))
            dots(cx, cy, r * 0.5, (70, 160, 60), rng.randint(3, 8))
    elif slug == "bun-bo-hue":
        cx, cy, r = rng.uniform(w * 0.35, w * 0.65), rng.uniform(h * 0.4, h * 0.6), rng.uniform(150, 200)
        d.ellipse(box(cx, cy, r), fill=(250, 250, 250), outline=(40, 40, 40), width=6)
        d.ellipse(box(cx, cy, r * 0.85), fill=(200, 70 + rng.randint(0, 40), 30))
        for _ in range(rng.randint(10, 18)):  # noodles
            x0, y0 = cx + rng.uniform(-r * 0.6, r * 0.6), cy + rng.uniform(-r * 0.6, r * 0.6)
            d.arc(
                box(x0, y0, 40, 20), rng.randint(0, 180), rng.randint(190, 360), fill=(245, 240, 225), width=5
            )
        for _ in range(rng.randint(3, 6)):  # beef slices
            x0, y0 = cx + rng.uniform(-r * 0.5, r * 0.5), cy + rng.uniform(-r * 0.5, r * 0.5)
            d.ellipse(box(x0, y0, 30, 14), fill=(120, 60, 50))
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
        d.ellipse(box(mx, my, 45), fill=(250, 250, 250))
        d.ellipse(box(mx, my, 35), fill=(150, 90, 140))  # mắm tôm
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
    """One scripted answer for a path: a delay, then a status/body; `status=None` serves the normal page.
    `headers` are added to the answer's, replacing any of the same name (a scripted body's text/plain too)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass
class Answer:
    """What a fixture host sends back for one GET."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


HTML = "text/html; charset=utf-8"


def _page(title: str, head: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"{head}</head><body>{body}</body></html>"
    )


def _html(status: int, title: str, body: str) -> Answer:
    return Answer(status, HTML, _page(title, "", body).encode())


def _json(data: dict) -> Answer:
    return Answer(200, "application/json; charset=utf-8", json.dumps(data, ensure_ascii=False).encode())


def aspnet_encoded(text: str, times: int = 1) -> str:
    """`text` as ASP.NET's HtmlEncode writes it (`&<>"` and Latin-1 letters such as ì as `&#236;`), `times` over."""
    for _ in range(times):
        text = html.escape(text, quote=False).replace('"', "&quot;")
        text = "".join(f"&#{ord(c)};" if 160 <= ord(c) <= 255 else c for c in text)
    return text


class FixtureSite:
    """Every page, listing and image of both fixture sites for the given dishes, generated deterministically."""

    def __init__(self, dishes: list[dict], faults: bool = True):
        self.dishes = {d["slug"]: d for d in dishes}
        self.keyword_to_slug = {
            kw.casefold(): d["slug"] for d in dishes for kws in d["keywords"].values() for kw in kws
        }
        self.kinds = {site: [*good, *(bad if faults else ())] for site, (good, bad) in KINDS.items()}

    def expected_pages(self, site: str) -> int:
        """Pages found per dish on a site (kept + skipped)."""
        return len(self.kinds[site])

    def index(self, site: str, kind: str) -> int:
        """The page number of the first page of a kind ('truncated', 'place-old', ...) on a site."""
        return self.kinds[site].index(kind)

    def _seed(self, slug: str, site: str, i: int) -> int:
        return 1000 * list(self.dishes).index(slug) + (0 if site == "foody" else 100) + i

    def _text(self, slug: str, i: int) -> tuple[str, str]:
        text = TEXT[slug]
        title = f"{text['title'][i % len(text['title'])]} #{i + 1}"
        desc = " ".join(text["desc"][j % len(text["desc"])] for j in range(i, i + 2))
        return title, desc

    def detail_path(self, site: str, slug: str, i: int) -> str:
        """The path of page `i` of a dish on a site."""
        if site == "foody":
            return f"/foody/{self.dishes[slug]['province']}/{slug}-{i}"
        return f"/cooky/{'private' if self.kinds[site][i] == 'robots' else 'cong-thuc'}/{slug}-{i}"

    def image_path(self, site: str, slug: str, i: int, size: str = "s") -> str:
        """The path of page `i`'s photo at a size segment (`s` is the original, `s320x240` a thumbnail)."""
        if site == "foody":
            return f"/foody/res/g1/{slug}-{i}/prof/{size}/foody-mobile-{slug}-{i}.jpg"
        return f"/cooky/recipe/g1/{slug}-{i}/{size}/cooky-recipe-{slug}-{i}.jpg"

    def route(self, request: Request, root: str) -> Answer:
        """The answer of `request.host` ('foody' or 'cooky', at `root`) to a GET."""
        host, path = request.host, request.path
        parts = path.strip("/").split("/")
        if path == "/robots.txt" and host == "foody":  # the real site answers 200 with its "not found" page
            return _html(200, "Foody - Không tìm thấy trang", "<h1>Không tìm thấy trang bạn yêu cầu</h1>")
        if path == "/robots.txt":
            return Answer(200, "text/plain; charset=utf-8", COOKY_ROBOTS_TXT.encode())
        answer = None  # _foody and _cooky give None for a path they do not serve
        if host == "foody" and parts[0] == "foody":
            answer = self._foody(parts[1:], request, root)
        elif host == "cooky" and parts[0] in ("cooky", "fault"):
            answer = self._cooky(parts, request.query, root)
        return answer or _html(404, "404", "<h1>Không tìm thấy trang</h1>")

    def _foody(self, parts: list[str], request: Request, root: str) -> Answer | None:
        if parts[:1] == ["res"] and len(parts) == 6:
            return self._image("foody", parts[2], parts[4])
        if parts[:1] == ["__get"]:  # the site's API: robots.txt unreadable, so the scraper never comes here
            return _json({"Items": []})
        if parts[:2] == ["account", "login"]:
            return _html(200, "Đăng nhập - Foody", '<form method="post"><input name="Email"></form>')
        if len(parts) == 3 and parts[1:] == ["food", "dia-diem"]:
            return self._foody_listing(parts[0], request, root)
        if len(parts) == 2 and parts[0] in PROVINCES:
            slug, index = self._page_of("foody", parts[1])
            if slug and self.dishes[slug]["province"] == parts[0]:
                return self._foody_place(slug, index, root)
        return None  # not a page of this site

    def _cooky(self, parts: list[str], query: dict[str, str], root: str) -> Answer | None:
        if parts == ["fault", "bomb.png"]:
            return Answer(200, "image/png", bomb_png())
        if parts[0] == "fault":
            return _html(200, "fault", "<p>fixture fault endpoint</p>")
        if parts[1:3] == ["directory", "search"]:
            return self._cooky_search(query)
        if parts[1:2] == ["recipe"] and len(parts) == 6:
            return self._image("cooky", parts[3], parts[4])
        if len(parts) == 3 and parts[1] in ("cong-thuc", "private"):
            slug, index = self._page_of("cooky", parts[2])
            if slug and self.detail_path("cooky", slug, index) == "/" + "/".join(parts):
                return self._cooky_recipe(slug, index, root)
        return None  # not a page of this site

    def _page_of(self, site: str, name: str) -> tuple[str, int]:
        """('slug', page number) for a page name such as 'banh-beo-3'; ('', 0) if there is no such page."""
        slug, _, index = name.rpartition("-")
        if slug in self.dishes and index.isdigit() and int(index) < len(self.kinds[site]):
            return slug, int(index)
        return "", 0

    def _image(self, site: str, page_name: str, size: str) -> Answer:
        slug, i = self._page_of(site, page_name)
        if not slug:
            return Answer(404, "text/plain", b"no such image")
        kind = self.kinds[site][i]
        # exact-duplicate: the same bytes as the first page's photo, under another URL
        seed = self._seed(slug, site, 0 if kind == "exact-duplicate" else i)
        if kind == "small-only" and size == "s":
            return Answer(404, "text/plain", b"no large size for this photo")
        max_side = None if size == "s" else int(size[1:].split("x")[0])
        if kind == "near-duplicate":  # another page's photo, re-encoded a little smaller
            return Answer(200, "image/jpeg", photo_bytes(slug, self._seed(slug, site, 1), 600, 70))
        data = photo_bytes(slug, seed, max_side)
        if kind == "truncated":
            data = data[: len(data) // 2]
        if kind == "not-an-image":
            data = _page("Access denied", "", "<h1>Bạn cần đăng nhập</h1>").encode()
        return Answer(200, "image/jpeg", data)

    def _foody_listing(self, province: str, request: Request, root: str) -> Answer:
        query = request.query
        if request.headers.get("x-requested-with", "").lower() != "xmlhttprequest":
            return _html(200, "Foody", "<p>Trang đầu được dựng sẵn; các trang sau tải bằng XHR.</p>")
        page = max(1, int(query.get("page", "1") or 1))
        if page > 1:  # an anonymous visitor is sent to the login page
            listing = quote(f"/foody/{province}/food/dia-diem?page={page}", safe="")
            return Answer(302, HTML, b"", {"Location": f"/foody/account/login?returnUrl={listing}"})
        slug = self.keyword_to_slug.get(query.get("q", "").casefold(), "")
        found = slug and self.dishes[slug]["province"] == province  # a dish's places are in its home province
        items = [self._foody_item(slug, i, root) for i in range(len(self.kinds["foody"]))] if found else []
        ad = {"Id": 999, "Name": "Lẩu Nấm Ashima", "IsAd": True, "DetailUrl": f"/{province}/lau-nam-ashima"}
        total = len(items) + FOODY_BEHIND_LOGIN if items else 0
        return _json({"searchItems": items, "adItems": [ad], "totalResult": total, "currentPage": page})

    def _foody_item(self, slug: str, i: int, root: str) -> dict:
        title, _ = self._text(slug, i)
        detail = self.detail_path("foody", slug, i).removeprefix("/foody")
        city, district, street = PROVINCES[self.dishes[slug]["province"]]
        count = 0 if i == FOODY_NO_REVIEWS else 1 + i % 2
        reviews = [
            {"Id": 50 * i + r, "Title": aspnet_encoded("Ngon, sẽ quay lại"), "Rating": 7.5 + r,
             "Comment": aspnet_encoded(TEXT[slug]["reviews"][(i + r) % 3], times=2),
             "Owner": {"DisplayName": REVIEWERS[(i + r) % 3], "Avatar": f"{root}/foody/usr/g1/{i}{r}/avt/c100x100/a.jpg"}}
            for r in range(count)
        ]  # fmt: skip
        return {
            "Id": self._seed(slug, "foody", i), "Name": f"Quán {title}", "Address": f"{10 + i} {street}",
            "District": district, "City": city, "TotalReview": count,
            "PicturePath": root + self.image_path("foody", slug, i, "s180x180"),
            "PicturePathLarge": root + self.image_path("foody", slug, i, "s640x400"),
            "AlbumUrl": detail + "/album-anh", "ReviewUrl": detail + "/binh-luan", "DetailUrl": detail,
            "Reviews": reviews,
        }  # fmt: skip

    def _foody_place(self, slug: str, i: int, root: str) -> Answer:
        kind = self.kinds["foody"][i]
        if kind == "gone":
            return _html(404, "404", "<h1>Quán đã đóng cửa</h1>")
        title, _ = self._text(slug, i)
        province = self.dishes[slug]["province"]
        city, district, street = PROVINCES[province]
        name, photo = html.escape(f"Quán {title}"), root + self.image_path("foody", slug, i, "s576x330")
        logo_block = (
            f'<meta property="og:title" content="{name} | Foody.vn"><meta property="og:image" '
            'content="/style/images/logofoody.jpg"><meta property="og:description" content="Foody.vn là '
            'website #1 tại VN về tìm kiếm địa điểm, có hàng ngàn bình luận, hình ảnh">'
        )
        clutter = (
            '<div class="category"><a href="#">Quán ăn</a> - <span itemprop="servesCuisine">Món Việt</span></div>'
            '</div><div id="res-summary-point"><div class="microsite-points-summary">'
            + "".join(
                f'<div class="microsite-top-points"><span class="avg-txt-highlight">{p}</span>'
                f'<div class="label">{label}</div></div>'
                for p, label in zip((8.0, 8.0, 7.0, 7.0, 7.0), ("Giá cả", "Chất lượng", "Vị trí", "Phục vụ", "Không gian"), strict=True)
            )
            + '<div itemprop="aggregateRating" itemscope itemtype="http://schema.org/AggregateRating" '
            'class="microsite-top-points-block"><div itemprop="ratingValue" class="microsite-point-avg">7.4</div>'
            '<div class="microsite-review-text">Bình luận</div></div></div></div>'
            '<div itemprop="address" itemscope itemtype="http://schema.org/PostalAddress"><div class="res-common-add">'
            f'<span itemprop="streetAddress">{10 + i} {street}</span>, <span itemprop="addressLocality">{district}'
            f'</span>, <span itemprop="addressRegion">{city}</span></div></div>'
            '<div class="res-common-price"><div class="micro-timesopen"><span>06:00 - 21:00</span></div></div>'
        )  # fmt: skip
        # The older layout: no breadcrumb, the photo as itemprop=photo, one OpenGraph block.
        if kind == "place-old":
            body = (
                f'<div class="micro-header"><div class="main-image"><div class="img"><img class="pic-place" '
                f'itemprop="photo" src="{photo}" alt="{name}"></div></div><div class="main-information">'
                f'<div class="res-common"><div class="res-common-info"><div class="main-info-title">'
                f'<h1 itemprop="name">{name}</h1>{clutter}</div></div></div></div>'
            )
            return Answer(200, HTML, _page(f"{title} | Foody.vn", logo_block, body).encode())
        crumbs = "".join(
            f'<span itemprop="itemListElement" itemscope itemtype="http://schema.org/ListItem"><meta '
            f'itemprop="position" content="{n}"><a itemprop="item" href="/{province}/{href}"><span '
            f'itemprop="name">{label}</span> »</a></span>'
            for n, (href, label) in enumerate((("dia-diem", city), ("khu-vuc", district)), start=1)
        )
        head = (
            f'<meta property="og:title" content="{name}"><meta property="og:description" content="">'
            '<meta property="og:type" content="foodyvn:restaurant"><meta property="og:image" content="">'
            f'<meta property="og:image:url" content="">{logo_block}'
        )
        body = (
            '<div class="micro-header" itemscope itemtype="http://schema.org/Restaurant"><div class="main-image">'
            f'<div class="img"><a href="/{province}/{slug}-{i}/album-anh"><img itemprop="image" class="pic-place" '
            f'src="{photo}" onerror="this.onerror=null;this.src=\'/Style/images/deli-dish-no-image.png\';" '
            f'alt="{name}"></a></div></div><div class="main-information disableSection"><div class="res-common">'
            '<div class="res-common-info"><div class="breadcrum"><div class="breadcrum-microsite"><span itemscope '
            f'itemtype="http://schema.org/BreadcrumbList">{crumbs}</span></div></div><div class="main-info-title">'
            f'<h1 itemprop="name">{name}</h1>{clutter}</div></div></div></div>'
        )
        return Answer(200, HTML, _page(f"{title} ở {city} | Foody.vn", head, body).encode())

    def _cooky_search(self, query: dict[str, str]) -> Answer:
        slug = self.keyword_to_slug.get(query.get("q", "").casefold(), "")
        entries = [(i, "") for i in range(len(self.kinds["cooky"]))] + [(0, COOKY_UTM)] if slug else []
        size = max(1, int(query.get("pageSize", "") or COOKY_PAGE_SIZE))
        page = max(1, int(query.get("page", "1") or 1))
        recipes = [
            {"Id": self._seed(slug, "cooky", i), "Name": self._text(slug, i)[0],
             "DetailUrl": self.detail_path("cooky", slug, i).removeprefix("/cooky") + utm}
            for i, utm in entries[(page - 1) * size : page * size]
        ]  # fmt: skip
        return _json({"recipes": recipes, "totalResults": len(entries)})

    def _cooky_recipe(self, slug: str, i: int, root: str) -> Answer:
        kind = self.kinds["cooky"][i]
        title, desc = self._text(slug, i)
        photo = root + self.image_path("cooky", slug, i, "s200x150" if kind == "small-only" else "s400x400")
        blank = root + BLANK_IMG
        t, d, p = html.escape(title), html.escape(desc), html.escape(photo)
        image: object = {"@type": "ImageObject", "url": photo, "width": 400, "height": 400}
        if kind == "recipe-image-list":
            image = [photo, photo.replace("/s400x400/", "/s320x240/")]
        if kind == "recipe-image-string":
            image = photo
        recipe = {"@context": "http://schema.org", "@type": "Recipe", "name": f"Cách Làm {title} cực ngon",
                  "author": {"@type": "Person", "name": "Vị Xưa"}, "totalTime": "PT45M", "image": image}  # fmt: skip
        if kind in ("recipe-lazy", "no-image"):
            del recipe["image"]
        ld = f'<script type="application/ld+json">{json.dumps(recipe, ensure_ascii=False)}</script>'
        if kind == "invalid-json-ld":  # a trailing comma: invalid JSON; the image comes from the header photo
            ld = f'<script type="application/ld+json">{{"@type": "Recipe", "name": "{t}",}}</script>'
        src = {  # no-image: a video-only recipe, whose header keeps its placeholder
            "recipe-lazy": f'src="{blank}" data-src="{p}"',
            "no-image": f'src="{blank}"',
            "invalid-json-ld": f'src="{blank}" data-original="{p}"',
        }.get(kind, f'src="{p}"')
        header = f'<img class="photo img-responsive u-photo" {src} alt="{t}">'
        ingredients = TEXT[slug]["ingredients"][: 3 + i % 4]
        if kind == "malformed":  # unclosed tags, a stray closing tag, unquoted attributes
            items = "".join(
                f"<li class=ingredient><span class=name>{name}</span> <span class=ingredient-quality>{qty}"
                f"</span> <span class=ingredient-unit>{unit}</span>"
                for name, qty, unit in ingredients[:2]
            )
            text = (
                f"<html><head><title>{t}</title>{ld}<body><div class='summary p-summary'><p>{d}</span></div>"
                f"<div class=recipe-header-photo><img class=u-photo data-src={p} src={blank}></div>"
                f"<h1 class='p-name fn recipe-title'>{t}</h1><ul class='list-inline recipe-ingredient-list'>{items}<p>"
            )
            return Answer(200, HTML, text.encode())
        items = "".join(
            f'<li class="ingredient"><span class="name">{name}</span> <span class="ingredient-quality">{qty}'
            f'</span> <span class="ingredient-unit">{unit}</span></li>'
            for name, qty, unit in ingredients
        )
        body = (
            '<div class="recipe-header hrecipe h-recipe"><div class="recipe-header-info">'
            f'<div class="recipe-header-photo">{header}</div><div class="recipe-header-detail"><div '
            f'class="recipe-headline"><h1 class="p-name fn recipe-title">{t}</h1></div></div></div></div>'
            '<div class="recipe-profile inner"><a class="author text-highlight url cooky-user-link p-name u-url" '
            'href="/thanh-vien/vi-xua">Vị Xưa</a></div>'
            f'<div class="rm"><div class="recipe-info"><div class="summary p-summary"><p>{d}</p></div></div></div>'
            f'<ul class="list-inline recipe-ingredient-list">{items}</ul>'
            '<div class="recipe-direction-box"><div class="step-photos col2"><a class="cooky-photo">'
            f'<img src="{blank}" data-src="{p}"></a></div></div>'
        )
        return Answer(200, HTML, _page(f"Cách Làm {title} cực ngon", ld, body).encode())


# --------------------------------------------------------------------------- servers


@dataclass
class Request:
    """One request a fixture host answered: which host, the path, the query and the headers (lower-case keys)."""

    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FixtureServer:
    """The running fixture hosts: base URLs, request counts per path, a request log, and scripted faults."""

    def __init__(self, site: FixtureSite, httpds: dict[str, ThreadingHTTPServer]):
        self.site = site
        self.roots = {name: f"http://127.0.0.1:{httpd.server_address[1]}" for name, httpd in httpds.items()}
        self.base_urls = {name: f"{root}/{name}" for name, root in self.roots.items()}
        self.hits: Counter[str] = Counter()
        self.requests: list[Request] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()

    def inject(self, path: str, *faults: Fault) -> None:
        """Answer the next requests for `path` (on either host) with `faults`, in order; then serve normally."""
        with self._lock:
            self._faults.setdefault(path, deque()).extend(faults)

    def url(self, path: str) -> str:
        """The absolute URL of a path: `/foody/...` on the foody host, anything else on the cooky host."""
        return self.roots["foody" if path.startswith("/foody/") else "cooky"] + path

    def take_fault(self, request: Request) -> Fault | None:
        """Log and count a request and pop its path's next scripted fault, if any."""
        with self._lock:
            self.requests.append(request)
            self.hits[request.path] += 1
            queue = self._faults.get(request.path)
            return queue.popleft() if queue else None


def _handler(server: FixtureServer, host: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(host, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}, headers)
            fault = server.take_fault(request) or Fault()
            time.sleep(fault.delay)
            if fault.status is None:
                answer = server.site.route(request, server.roots[host])
            else:
                answer = Answer(fault.status, "text/plain; charset=utf-8", fault.body)
            self.send_response(answer.status)
            self.send_header("Content-Length", str(len(answer.body)))
            sent = CaseInsensitiveDict({"Content-Type": answer.content_type, **answer.headers})
            sent.update(fault.headers)  # a scripted header replaces the page's of the same name, in any case
            for key, value in sent.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(answer.body)

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
    """Serve the fixture sites for `config`'s dishes on 127.0.0.1 (one free port per site) while the block runs."""
    httpds = {name: _QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler) for name in ("foody", "cooky")}
    server = FixtureServer(FixtureSite(config["dishes"], faults), httpds)
    for name, httpd in httpds.items():
        httpd.RequestHandlerClass = _handler(server, name)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        for httpd in httpds.values():
            httpd.shutdown()  # returns once serve_forever has
            httpd.server_close()


@contextmanager
def serving(config: dict) -> Iterator[dict]:
    """`config` pointed at the fixture sites on 127.0.0.1 while the block runs (what `Profile.sites` gives)."""
    with serve_fixture_site(config) as server:
        yield with_base_urls(config, server.base_urls) | {
            "request_interval": runtime.LOOPBACK_REQUEST_INTERVAL
        }
