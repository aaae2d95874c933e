"""Polite, resumable scraping of dish pages and photos (foody.vn, cooky.vn) into a JSONL manifest.

A page meets, in order: `polite_http.HttpClient` (robots.txt, pace, retries), `SiteAdapter` (a site's JSON
listing and field rules from `data/dishes.json`), `validate_image`, `Deduper`, `manifest.Manifest` (atomic
writes, resume) and `RunReport` (every page kept or skipped by reason, and why a listing stopped).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import imagehash
from bs4 import BeautifulSoup, NavigableString, Tag
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from helpers import atomic, images, runtime, vi_text
from helpers.bad_input import BadInput
from helpers.data.manifest import Manifest, page_key
from helpers.data.polite_http import Fetched, HttpClient, Skip, site_root

CONFIG_PATH = runtime.DATA_DIR / "dishes.json"
MAX_IMAGE_BYTES = 15_000_000
IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
TRANSIENT = ("timeout", "connection", "http_429", "http_5")  # skips a resumed run tries again


# --------------------------------------------------------------------------- extraction

# what each field may be read from; a site's `fields` setting orders them
FIELD_METHODS = dict.fromkeys(
    ("title", "description", "image"), ("json-ld", "opengraph", "microdata", "selectors", "listing")
)
FIELD_METHODS["ingredients"] = ("json-ld", "microdata", "selectors")
JSON_LD = {"title": "name", "description": "description", "image": "image", "ingredients": "recipeIngredient"}
OPENGRAPH = {"title": "og:title", "description": "og:description", "image": "og:image"}
ITEMPROPS = {"title": ("name",), "description": ("description",), "image": ("image", "photo"),
             "ingredients": ("recipeIngredient",)}  # fmt: skip
BREADCRUMB = re.compile(r"schema\.org/(BreadcrumbList|ListItem)/?$")
HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")


@dataclass
class Candidate:
    """A dish page found on a listing, with what the listing already told about it."""

    page_url: str
    title_hint: str = ""
    image_hint: str = ""
    text_hint: str = ""


@dataclass
class PageData:
    """Fields extracted from a page and which method gave each (json-ld, opengraph, microdata, selectors, listing)."""

    title: str
    description: str
    ingredients: list[str]
    image_url: str
    methods: dict[str, str]
    notes: list[str] = field(default_factory=list)


def _first(values: Iterable[str]) -> str:
    """The first non-empty string of `values` ('' if none)."""
    return next((value for value in values if value), "")


def _as_list(value: object) -> list:
    """`value` if it is a list, else a list of it (JSON-LD gives one thing or a list of them)."""
    return value if isinstance(value, list) else [value]


def listing_text(value: object) -> str:
    """Listing JSON text as a reader sees it: HTML entities undone (some sites escape them twice), tags dropped."""
    text = value if isinstance(value, str) else ""
    for _ in range(3):  # a pass over text without entities changes nothing: stopping early is not needed
        text = html.unescape(text)
    return vi_text.clean(HTML_TAG.sub(" ", text))


def _join_fractions(soup: BeautifulSoup) -> None:
    """Rewrite `1 <sup>1</sup>/<sub>2</sub>` as the text `1 1/2`, so a quantity reads as written."""
    for sup in soup.find_all("sup"):
        slash = sup.next_sibling
        if not isinstance(slash, NavigableString) or slash.strip() not in ("/", "\u2044"):
            continue
        sub = slash.next_sibling
        if isinstance(sub, Tag) and sub.name == "sub":
            fraction = f"{sup.get_text(strip=True)}/{sub.get_text(strip=True)}"
            slash.extract()
            sub.extract()
            sup.replace_with(fraction)


def _json_ld_recipe(soup: BeautifulSoup, notes: list[str]) -> dict:
    """The first schema.org Recipe in the page's JSON-LD blocks ({} if none); invalid blocks are noted."""
    for block in soup.select('script[type="application/ld+json"]'):
        try:
            data = json.loads(block.string or "")
        except json.JSONDecodeError:
            notes.append("json_ld_invalid")
            continue
        stack = _as_list(data)
        while stack:
            node = stack.pop(0)
            if not isinstance(node, dict):
                continue
            if "Recipe" in _as_list(node.get("@type")):
                return node
            stack.extend(node.get("@graph") or [])
    return {}


class _Page:
    """One parsed page and a site's settings: what each extraction method finds for a field."""

    def __init__(self, html_text: str, settings: dict, listing: Candidate):
        # lxml repairs malformed HTML the way browsers roughly do
        self.soup = BeautifulSoup(html_text, "lxml")
        _join_fractions(self.soup)
        self.notes: list[str] = []
        self.recipe = _json_ld_recipe(self.soup, self.notes)
        self.selectors: dict[str, str] = settings["selectors"]
        ignore = settings.get("image_ignore_pattern")
        self.ignored = re.compile(ignore) if ignore else None
        self.listing = listing

    def image(self, url: object) -> str:
        """`url` if it can be a dish photo: not empty, not a data: URI, not the site's logo or placeholder."""
        url = url.strip() if isinstance(url, str) else ""
        bad = not url or url.startswith("data:") or (self.ignored and self.ignored.search(url))
        return "" if bad else url

    def tag_image(self, tag: Tag) -> str:
        """The real image URL of a tag: lazy-load attributes before content/src (often a placeholder)."""
        attrs = ("data-src", "data-original", "data-lazy-src", "content", "src", "href")
        return _first(self.image(tag.get(a)) for a in attrs)

    def microdata(self, key: str) -> list[Tag]:
        """Tags with one of the field's itemprops, except in a breadcrumb (its `name`s are places and menus)."""
        return [
            tag
            for tag in self.soup.find_all(attrs={"itemprop": True})
            if set(str(tag["itemprop"]).split()) & set(ITEMPROPS[key])
            and tag.find_parent(attrs={"itemtype": BREADCRUMB}) is None
        ]

    def ingredient(self, tag: Tag) -> str:
        """One ingredient line: its name, quantity and unit parts when the site marks them, else all its text."""
        part_selector = self.selectors.get("ingredient_parts")
        parts = tag.select(part_selector) if part_selector else []
        return vi_text.clean(" ".join(part.get_text(" ") for part in parts or [tag]))

    def find(self, method: str, key: str) -> str | list[str]:
        """What `method` finds for field `key` ('' or [] when nothing)."""
        if method == "json-ld":
            value = self.recipe.get(JSON_LD[key])
            if key == "image":  # a URL, an ImageObject, or a list of either
                entries = _as_list(value)
                urls = (e.get("url") or e.get("contentUrl") if isinstance(e, dict) else e for e in entries)
                return _first(map(self.image, urls))
            if key == "ingredients":
                return [vi_text.clean(x) for x in _as_list(value) if isinstance(x, str)]
            return vi_text.clean(value) if isinstance(value, str) else ""
        if method == "opengraph":  # some pages carry two OpenGraph blocks: the first usable value counts
            keep = self.image if key == "image" else vi_text.clean
            metas = self.soup.find_all("meta", attrs={"property": OPENGRAPH[key]})
            return _first(keep(meta.get("content") or "") for meta in metas)
        if method == "listing":
            hint = {"title": self.listing.title_hint, "description": self.listing.text_hint}
            return self.image(self.listing.image_hint) if key == "image" else vi_text.clean(hint[key])
        tags = self.microdata(key) if method == "microdata" else self.soup.select(self.selectors[key])
        if key == "image":
            return _first(map(self.tag_image, tags))
        if key == "ingredients":
            return [text for text in map(self.ingredient, tags) if text]
        return next((vi_text.clean(t.get("content") or t.get_text(" ")) for t in tags), "")


def extract_page(html_text: str, page_url: str, settings: dict, listing: Candidate | None = None) -> PageData:
    """Title, description, ingredients and image URL, each from the first method in the site's `fields` order."""
    page = _Page(html_text, settings, listing or Candidate(page_url))
    chosen: dict[str, str | list[str]] = {"title": "", "description": "", "image": "", "ingredients": []}
    methods: dict[str, str] = {}
    for key, order in settings["fields"].items():
        for method in order:
            value = page.find(method, key)
            if value:
                chosen[key], methods[key] = value, method
                break
    image = urljoin(page_url, str(chosen["image"])) if chosen["image"] else ""
    title, description, ingredients = (
        str(chosen["title"]),
        str(chosen["description"]),
        list(chosen["ingredients"]),
    )
    return PageData(title, description, ingredients, image, methods, page.notes)


# --------------------------------------------------------------------------- the site adapter


class SiteAdapter:
    """One site's settings (`data/dishes.json`) at work: a JSON search listing, then HTML detail pages.
    A listing stops at its end, at `max_listing_pages`, on an error, and at a login wall (never logged into)."""

    def __init__(self, name: str, settings: dict):
        self.name, self.settings = name, settings
        self.base_url = settings["base_url"].rstrip("/")
        self.login_wall: tuple[int, str] | None = None  # (first page that asked for a login, why we stopped)

    def listing_url(self, dish: dict, keyword: str, page: int) -> str:
        """The listing URL for a keyword and page; `{province}` and other dish fields fill the path."""
        values = {**dish, "keyword": keyword, "page": page}
        path = self.settings["listing_path"].format(**values)
        params = {k: str(v).format(**values) for k, v in self.settings["listing_params"].items()}
        return f"{self.base_url}{path}?{urlencode(params)}"

    def find_pages(self, client: HttpClient, dish: dict, keyword: str, tally: Tally) -> Iterator[Candidate]:
        """The detail pages a keyword's listing links, page by page, until the listing ends or stops."""
        found, keys = 0, self.settings["listing_item_keys"]
        for page_no in range(1, self.settings["max_listing_pages"] + 1):
            if self.login_wall and page_no >= self.login_wall[0]:
                tally.listing_stop = self.login_wall[1]
                return
            url = self.listing_url(dish, keyword, page_no)
            data = self._listing_page(client, url, page_no, tally)
            items = next((data[k] for k in keys if isinstance(data.get(k), list)), None) if data else None
            if data is not None and items is None:
                tally.listing_errors.append(f"{url}: no item list under {keys} (changed API?)")
            if not items:
                return
            tally.listing_pages += 1
            for item in items:
                candidate = self.candidate(item, url)
                if candidate is None:
                    tally.listing_errors.append(f"{url}: item without {self.settings['item_fields']['url']}")
                else:
                    yield candidate
            found += len(items)
            total = data.get(self.settings.get("listing_total_key", ""))
            if isinstance(total, int) and found >= total:
                return

    def _listing_page(self, client: HttpClient, url: str, page_no: int, tally: Tally) -> dict | None:
        """One listing page's JSON object; None (with the reason noted) on an error or a login wall."""
        login = self.settings.get("login_url_pattern")
        try:
            page = client.get(url, headers=self.settings["listing_headers"])
        except Skip as err:
            if err.reason == "http_401":
                self._stop_at_login(page_no, "HTTP 401", tally)
            else:
                tally.listing_errors.append(f"{url}: {err.reason} {err.detail}")
            return None
        if login and re.search(login, page.url):
            self._stop_at_login(page_no, f"redirected to {urlsplit(page.url).path}", tally)
            return None
        try:
            data = json.loads(page.text)
        except json.JSONDecodeError:
            tally.listing_errors.append(f"{url}: listing is not JSON (anti-bot page or changed API?)")
            return None
        if not isinstance(data, dict):
            tally.listing_errors.append(f"{url}: listing JSON is not an object (changed API?)")
            return None
        return data

    def _stop_at_login(self, page_no: int, how: str, tally: Tally) -> None:
        """Note the login wall: this listing and the later ones stop before `page_no`."""
        why = f"listing page {page_no} asks for a login ({how}); the scraper never logs in, so it reads "
        read = {1: "no listing page", 2: "listing page 1 only"}
        self.login_wall = (page_no, why + read.get(page_no, f"listing pages 1-{page_no - 1}"))
        tally.listing_stop = self.login_wall[1]

    def candidate(self, item: object, listing_url: str) -> Candidate | None:
        """A listing item as a page to visit (query string dropped: one page, one link), or None without a link."""
        if not isinstance(item, dict):
            return None
        fields = self.settings["item_fields"]
        link = _first(item[k].strip() for k in fields["url"] if isinstance(item.get(k), str))
        if not link:
            return None
        absolute = self.base_url + link if link.startswith("/") else urljoin(listing_url, link)
        page_url = urlunsplit(urlsplit(absolute)._replace(query="", fragment=""))
        title = _first(listing_text(item.get(k)) for k in fields.get("title", []))
        image = _first(item[k] for k in fields.get("image", []) if isinstance(item.get(k), str))
        return Candidate(page_url, title, urljoin(listing_url, image) if image else "", self._reviews(item))

    def _reviews(self, item: dict) -> str:
        """The text of the item's reviews, joined: the comment only, never who wrote it."""
        fields = self.settings["item_fields"]
        reviews = item.get(fields["reviews"]) if "reviews" in fields else None
        reviews = reviews if isinstance(reviews, list) else []
        texts = [listing_text(r.get(fields["review_text"])) for r in reviews if isinstance(r, dict)]
        return " ".join(text for text in texts if text)

    def extract(self, candidate: Candidate, page: Fetched) -> PageData:
        """The page's fields in the site's order of methods; a page without title or image is a parse failure."""
        data = extract_page(page.text, page.url, self.settings, candidate)
        missing = [k for k in ("title", "image_url") if not getattr(data, k)]
        if missing:
            raise Skip("parse_failure", f"no {' or '.join(missing)} found", page.url)
        return data

    def fetch_image(self, client: HttpClient, url: str) -> tuple[str, bytes]:
        """The image upgraded to the largest size the site serves; on a 4xx for that, the size the page linked."""
        size, largest = self.settings["image_size_pattern"], self.settings["image_size_largest"]
        upgraded = re.sub(size, largest, url, count=1)
        if upgraded != url:
            try:
                return upgraded, client.get(upgraded, max_bytes=MAX_IMAGE_BYTES).content
            except Skip as err:
                if not err.reason.startswith("http_4") or err.reason == "http_429":
                    raise
                client.stats["image_size_fallback"] += 1
        return url, client.get(url, max_bytes=MAX_IMAGE_BYTES).content


# --------------------------------------------------------------------------- images


@dataclass
class ImageInfo:
    """What validation learned about an image's bytes."""

    width: int
    height: int
    extension: str
    sha256: str
    phash: str


def validate_image(
    data: bytes, *, min_side: int = 224, max_pixels: int = images.MAX_IMAGE_PIXELS
) -> ImageInfo:
    """Check that `data` is a whole JPEG/PNG/WebP of sane size; raises `Skip('bad_image', why)`."""
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            width, height, fmt = img.width, img.height, img.format
            if width * height > max_pixels:
                raise Skip(
                    "bad_image", f"too large: {width}x{height} > {max_pixels} pixels (decompression bomb?)"
                )
            if fmt not in IMAGE_FORMATS:
                raise Skip("bad_image", f"unsupported format {fmt}")
            if min(width, height) < min_side:
                raise Skip("bad_image", f"too small: {width}x{height} (min side {min_side})")
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # verify() misses truncated JPEG scans; a full decode does not
            phash = str(imagehash.phash(img.convert("RGB")))
    except UnidentifiedImageError as err:
        raise Skip("bad_image", "not an image (unidentified bytes)") from err
    except (
        Image.DecompressionBombError
    ) as err:  # Pillow's own limit (Image.MAX_IMAGE_PIXELS), if ours is higher
        raise Skip("bad_image", f"too large: {err}") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise Skip("bad_image", f"corrupt or truncated: {err}") from err
    return ImageInfo(width, height, IMAGE_FORMATS[fmt], hashlib.sha256(data).hexdigest(), phash)


class Deduper:
    """Exact (SHA-256) and perceptual (pHash Hamming distance) duplicate check against kept items."""

    def __init__(self, max_distance: int = 6):
        self.max_distance = max_distance
        self._sha: dict[str, str] = {}
        self._phash: list[tuple[imagehash.ImageHash, str]] = []

    def add(self, sha256: str, phash: str, item_id: str) -> None:
        self._sha[sha256] = item_id
        self._phash.append((imagehash.hex_to_hash(phash), item_id))

    def check(self, sha256: str, phash: str) -> None:
        """Raise `Skip('duplicate', ...)` if the image was kept already, byte-identical or near."""
        if sha256 in self._sha:
            raise Skip("duplicate", f"exact duplicate of {self._sha[sha256]}")
        query = imagehash.hex_to_hash(phash)
        for known, item_id in self._phash:  # linear scan: a few hundred items, no index needed
            if query - known <= self.max_distance:
                raise Skip("duplicate", f"near duplicate of {item_id} (pHash distance {query - known})")


# --------------------------------------------------------------------------- report


@dataclass
class Tally:
    """Counts for one dish on one site: every page found ends as kept or skipped (one reason); `listing_errors`
    are listing pages that failed, `listing_stop` why a listing ended before its last page."""

    dish: str
    site: str
    pages: int = 0
    kept: int = 0
    resumed: int = 0
    listing_pages: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    listing_errors: list[str] = field(default_factory=list)
    listing_stop: str = ""


@dataclass
class RunReport:
    """Per dish and site: listing pages, pages found, kept, skips by reason; plus every skip's detail."""

    sites: dict[str, str]
    tallies: list[Tally] = field(default_factory=list)
    skips: list[dict] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    http: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One flat row per dish and site (skip reasons as columns), for a table."""
        reasons = sorted({r for t in self.tallies for r in t.skipped})
        return [
            {"dish": t.dish, "site": t.site, "listing_pages": t.listing_pages, "pages": t.pages, "kept": t.kept,
             "resumed": t.resumed, **{f"skip:{r}": t.skipped[r] for r in reasons},
             "skipped": sum(t.skipped.values())}
            for t in self.tallies
        ]  # fmt: skip

    def check(self) -> None:
        """Fail loudly if any page is unaccounted for (kept + skipped must equal pages)."""
        for t in self.tallies:
            if t.kept + sum(t.skipped.values()) != t.pages:
                raise AssertionError(
                    f"{t.dish}/{t.site}: kept {t.kept} + skipped {dict(t.skipped)} != {t.pages}"
                )

    def problems(self) -> list[str]:
        """Plain sentences, with the evidence, for what a person must know: a site that yielded nothing usable,
        a listing stopped at a login wall, a robots.txt that could not be read."""
        lines = []
        for site, base_url in self.sites.items():
            tallies = [t for t in self.tallies if t.site == site]
            if tallies and not sum(t.kept for t in tallies):
                errors = [e for t in tallies for e in t.listing_errors][:3]
                reasons = sum((t.skipped for t in tallies), Counter())
                lines.append(
                    f"{site}: nothing usable. Listing problems: {errors or 'none'}; page skips: {dict(reasons) or 'none'}."
                    " Likely anti-bot protection or a changed layout/API; see data/dishes.json to adapt settings."
                )
            stops = dict.fromkeys(t.listing_stop for t in tallies if t.listing_stop)
            lines += [f"{site}: {stop}." for stop in stops]
            robots = self.http.get("robots", {}).get(site_root(base_url), "")
            if robots.startswith("unreadable"):
                lines.append(f"{site}: robots.txt {robots}.")
        return lines

    def to_json(self) -> dict:
        return {
            "generated_at": _now(),
            "sites": self.sites,
            "rows": self.rows(),
            "tallies": [
                {**asdict(t), "skipped": dict(t.skipped), "notes": dict(t.notes)} for t in self.tallies
            ],
            "skips": self.skips,
            "cleaned_on_resume": self.cleaned,
            "http": self.http,
        }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- the run


SITE_KEYS = ("base_url", "listing_path", "listing_params", "listing_headers", "listing_item_keys", "item_fields",
             "fields", "selectors", "image_size_pattern", "image_size_largest", "max_listing_pages",
             "max_pages_per_dish")  # fmt: skip


def load_config(path: Path = CONFIG_PATH) -> dict:
    """The dish list and per-site settings, checked so a typo names its field instead of failing later."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: not valid JSON ({error})") from error
    _require(f"{path}: missing top-level", config, ("request_interval", "dishes", "sites"))
    for i, dish in enumerate(config["dishes"]):
        _require(f"{path}: dishes[{i}]: missing", dish, ("slug", "name_vi", "keywords"))
        if not re.fullmatch(r"[a-z0-9-]+", dish["slug"]):
            raise BadInput(f"{path}: dishes[{i}].slug {dish['slug']!r} must be ASCII lowercase with dashes")
    for site, settings in config["sites"].items():
        _check_site(f"{path}: sites.{site}", settings, config["dishes"])
    return config


def _check_site(where: str, settings: dict, dishes: list[dict]) -> None:
    """Raise BadInput, naming the setting, for what would otherwise fail in the middle of a run."""
    _require(f"{where}: missing", settings, SITE_KEYS)
    if not settings["item_fields"].get("url"):
        raise BadInput(f"{where}.item_fields.url: name at least one listing field that holds the page link")
    for key, order in settings["fields"].items():
        if key not in FIELD_METHODS:
            raise BadInput(f"{where}.fields.{key}: unknown field (known: {', '.join(FIELD_METHODS)})")
        for method in order:
            if method not in FIELD_METHODS[key]:
                raise BadInput(f"{where}.fields.{key}: {method!r} is not one of {FIELD_METHODS[key]}")
            if method == "selectors" and not settings["selectors"].get(key):
                raise BadInput(f"{where}.fields.{key} reads 'selectors' but selectors.{key} is empty")
    templates = [settings["listing_path"], *map(str, settings["listing_params"].values())]
    names = {name for t in templates for _, name, _, _ in string.Formatter().parse(t) if name}
    for name in names - {"keyword", "page"}:
        lacking = [d["slug"] for d in dishes if name not in d]
        if lacking:
            raise BadInput(f"{where}: the listing uses {{{name}}}, which dishes {lacking} do not give")
    for key in ("image_size_pattern", "image_ignore_pattern", "login_url_pattern"):
        try:
            re.compile(settings.get(key, ""))
        except re.error as err:
            raise BadInput(f"{where}.{key}: not a regular expression ({err})") from err


def _require(missing: str, mapping: dict, keys: Iterable[str]) -> None:
    """Raise BadInput `missing 'key'` for the first of `keys` that `mapping` lacks."""
    for key in keys:
        if key not in mapping:
            raise BadInput(f"{missing} '{key}'")


def with_base_urls(config: dict, base_urls: dict[str, str]) -> dict:
    """A copy of `config` whose sites point elsewhere (the fixture server); nothing else changes."""
    sites = {
        name: {**s, "base_url": base_urls.get(name, s["base_url"])} for name, s in config["sites"].items()
    }
    return {**config, "sites": sites}


@dataclass
class _Run:
    """What every page of one scrape shares: the client, the manifest, the deduper, the report, the limits."""

    client: HttpClient
    manifest: Manifest
    dedup: Deduper
    report: RunReport
    limits: dict[str, int]

    def process(self, adapter: SiteAdapter, dish: dict, candidate: Candidate, tally: Tally) -> None:
        """Account for one page: resumed, kept, or skipped with its reason."""
        tally.pages += 1
        key = page_key(adapter.name, candidate.page_url)
        done = self.manifest.by_page.get(key)
        remembered = self.manifest.skips.get(key)
        try:
            if done and done["dish"] != dish["slug"]:
                raise Skip("duplicate", f"page already kept for dish {done['dish']}", candidate.page_url)
            if done:
                tally.kept += 1
                tally.resumed += 1
            elif remembered:
                tally.skipped[remembered["reason"]] += 1
            else:
                self.scrape_page(adapter, dish, candidate, tally)
                tally.kept += 1
        except Skip as skip:
            tally.skipped[skip.reason] += 1
            record = {"page_url": candidate.page_url, "dish": dish["slug"], "site": adapter.name,
                      "reason": skip.reason, "detail": skip.detail, "url": skip.url or candidate.page_url,
                      "at": _now()}  # fmt: skip
            self.report.skips.append(record)
            if not skip.reason.startswith(TRANSIENT) and not done:
                self.manifest.add_skip(record)

    def scrape_page(self, adapter: SiteAdapter, dish: dict, candidate: Candidate, tally: Tally) -> None:
        """Fetch, extract, download, validate, dedupe and write one page's item; raises `Skip`."""
        page = self.client.get(candidate.page_url)
        data = adapter.extract(candidate, page)
        tally.notes.update(data.notes + [f"{key}_from:{method}" for key, method in data.methods.items()])
        image_url, image = adapter.fetch_image(self.client, data.image_url)
        info = validate_image(image, **self.limits)
        self.dedup.check(info.sha256, info.phash)
        item_id = f"{dish['slug']}-{adapter.name}-{info.sha256[:12]}"
        item = {
            "id": item_id, "dish": dish["slug"], "dish_name": dish["name_vi"], "site": adapter.name,
            "page_url": candidate.page_url, "image_url": image_url, "title": data.title,
            "text_vi": data.description, "ingredients": data.ingredients, "retrieved_at": _now(),
            "sha256": info.sha256, "phash": info.phash, "width": info.width, "height": info.height,
            "image_path": f"images/{dish['slug']}/{item_id}.{info.extension}",
        }  # fmt: skip
        self.manifest.add(item, image)
        self.dedup.add(info.sha256, info.phash, item_id)


def scrape(
    config: dict,
    out_dir: Path,
    client: HttpClient,
    *,
    min_side: int = 224,
    max_pixels: int = images.MAX_IMAGE_PIXELS,
    near_duplicate_distance: int = 6,
    progress: bool = True,
) -> RunReport:
    """Scrape every dish on every site into `out_dir` (resuming what is there); writes and returns the report."""
    manifest, dedup = Manifest(out_dir), Deduper(near_duplicate_distance)
    adapters = [SiteAdapter(site, settings) for site, settings in config["sites"].items()]
    hosts = {adapter.name: urlsplit(adapter.base_url).hostname for adapter in adapters}
    for item in manifest.items:
        if item["site"] in hosts and urlsplit(item["page_url"]).hostname != hosts[item["site"]]:
            raise ValueError(
                f"{manifest.path} holds items from {urlsplit(item['page_url']).hostname}, not {hosts[item['site']]}"
                " (offline fixture and live data must not mix): delete that folder or pick another out_dir"
            )
        dedup.add(item["sha256"], item["phash"], item["id"])
    report = RunReport({name: s["base_url"] for name, s in config["sites"].items()}, cleaned=manifest.cleaned)
    run = _Run(client, manifest, dedup, report, {"min_side": min_side, "max_pixels": max_pixels})
    for adapter in adapters:
        for path in adapter.settings.get("stay_off_without_robots", []):
            client.stay_off_without_robots(adapter.base_url + path)
    try:
        for dish in config["dishes"]:
            for adapter in adapters:
                tally = Tally(dish["slug"], adapter.name)
                report.tallies.append(tally)
                seen: set[str] = set()
                with tqdm(desc=f"{dish['slug']} @ {adapter.name}", unit="page", disable=not progress) as bar:
                    for keyword in dish["keywords"].get(adapter.name, []):
                        for candidate in adapter.find_pages(client, dish, keyword, tally):
                            if candidate.page_url in seen:
                                continue
                            if len(seen) >= adapter.settings["max_pages_per_dish"]:
                                break
                            seen.add(candidate.page_url)
                            run.process(adapter, dish, candidate, tally)
                            bar.update()
                            bar.set_postfix(kept=tally.kept, skipped=sum(tally.skipped.values()))
    finally:
        report.http = {"stats": dict(client.stats), "robots": client.robots_status}
        report_json = json.dumps(report.to_json(), ensure_ascii=False, indent=1)
        atomic.write_text(Path(out_dir) / "report.json", report_json)
    report.check()
    return report


def run_scrape(profile: runtime.Profile, *, progress: bool = True) -> RunReport:
    """Scrape into the profile's `scraped/` folder: the live sites in full, fixture sites in smoke (same code)."""
    with profile.sites(load_config()) as config:
        with closing(HttpClient(min_interval=config["request_interval"])) as client:
            return scrape(config, profile.output_dir("scraped"), client, progress=progress)
