"""Polite, resumable scraping of dish pages and photos (foody.vn, cooky.vn) into a JSONL manifest.

Pieces, in the order a page meets them: `polite_http.HttpClient` (robots.txt, rate limit, retries), a site
adapter (`FoodyAdapter`, `CookyAdapter`: find pages, extract fields), `validate_image`, `Deduper`,
`manifest.Manifest` (atomic image writes, append-only JSONL checked against `manifest.FIELDS`, resume) and
`RunReport` (every page kept or skipped by reason).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import imagehash
from bs4 import BeautifulSoup
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from helpers import jsonl, runtime
from helpers.data.manifest import Manifest, page_key
from helpers.data.polite_http import Fetched, HttpClient, Skip

CONFIG_PATH = runtime.DATA_DIR / "dishes.json"
MAX_IMAGE_BYTES = 15_000_000
IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
TRANSIENT = ("timeout", "connection", "http_429", "http_5")  # skips a resumed run tries again


# --------------------------------------------------------------------------- extraction


@dataclass
class Candidate:
    """A dish page found on a listing, with what the listing already told about it."""

    page_url: str
    title_hint: str = ""
    image_hint: str = ""


@dataclass
class PageData:
    """Fields extracted from a page and which method gave each (json-ld, opengraph, microdata, selectors)."""

    title: str
    description: str
    ingredients: list[str]
    image_url: str
    methods: dict[str, str]
    notes: list[str] = field(default_factory=list)


def clean_text(text: str) -> str:
    """NFC-normalised text with whitespace collapsed (Vietnamese diacritics kept)."""
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def _image_attr(tag) -> str:
    """The real image URL of a tag: lazy-load attributes first, then content/src; never a data: URI."""
    for attr in ("data-src", "data-original", "data-lazy-src", "content", "src", "href"):
        value = (tag.get(attr) or "").strip()
        if value and not value.startswith("data:"):
            return value
    return ""


def _json_ld_recipe(soup: BeautifulSoup, notes: list[str]) -> dict:
    """The first schema.org Recipe in the page's JSON-LD blocks ({} if none); invalid blocks are noted."""
    for block in soup.select('script[type="application/ld+json"]'):
        try:
            data = json.loads(block.string or "")
        except json.JSONDecodeError:
            notes.append("json_ld_invalid")
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            node = stack.pop(0)
            if not isinstance(node, dict):
                continue
            types = node.get("@type")
            if "Recipe" in (types if isinstance(types, list) else [types]):
                return node
            stack.extend(node.get("@graph") or [])
    return {}


def _ld_image(value) -> str:
    """A JSON-LD image: a URL, an ImageObject, or a list of either (the first)."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl") or ""
    return value if isinstance(value, str) else ""


def extract_page(html: str, page_url: str, selectors: dict[str, str]) -> PageData:
    """Title, description, ingredients and image URL: JSON-LD Recipe, then OpenGraph, microdata, site selectors."""
    soup = BeautifulSoup(html, "lxml")  # lxml repairs malformed HTML the way browsers roughly do
    notes: list[str] = []
    recipe = _json_ld_recipe(soup, notes)

    def meta(prop: str) -> str:
        tag = soup.find("meta", attrs={"property": prop}) or soup.find("meta", attrs={"name": prop})
        return (tag.get("content") or "") if tag else ""

    def itemprop(name: str, image: bool = False) -> str:
        tag = soup.find(attrs={"itemprop": name})
        return "" if tag is None else _image_attr(tag) if image else (tag.get("content") or tag.get_text(" "))

    def select(key: str, image: bool = False) -> str:
        tag = soup.select_one(selectors[key]) if selectors.get(key) else None
        return "" if tag is None else _image_attr(tag) if image else tag.get_text(" ")

    def ingredient_list(tags) -> list[str]:
        tags = [tags] if isinstance(tags, str) else tags if isinstance(tags, list) else list(tags or [])
        return [t for t in (clean_text(x if isinstance(x, str) else x.get_text(" ")) for x in tags) if t]

    sources = {
        "title": [("json-ld", recipe.get("name")), ("opengraph", meta("og:title")),
                  ("microdata", itemprop("name")), ("selectors", select("title"))],
        "description": [("json-ld", recipe.get("description")), ("opengraph", meta("og:description")),
                        ("microdata", itemprop("description")), ("selectors", select("description"))],
        "image": [("json-ld", _ld_image(recipe.get("image"))), ("opengraph", meta("og:image")),
                  ("microdata", itemprop("image", image=True)), ("selectors", select("image", image=True))],
        "ingredients": [("json-ld", recipe.get("recipeIngredient") or []),
                        ("microdata", soup.find_all(attrs={"itemprop": "recipeIngredient"})),
                        ("selectors", soup.select(selectors["ingredients"]) if selectors.get("ingredients") else [])],
    }  # fmt: skip
    chosen, methods = {}, {}
    for key, options in sources.items():
        chosen[key] = [] if key == "ingredients" else ""
        for method, value in options:
            value = (
                ingredient_list(value)
                if key == "ingredients"
                else clean_text(value if isinstance(value, str) else "")
            )
            if value:
                chosen[key], methods[key] = value, method
                break
    image = urljoin(page_url, chosen["image"]) if chosen["image"] else ""
    return PageData(chosen["title"], chosen["description"], chosen["ingredients"], image, methods, notes)


# --------------------------------------------------------------------------- site adapters


class SiteAdapter:
    """Common interface of a site: `find_pages(client, keyword, tally)` then `extract(candidate, page)`."""

    def __init__(self, name: str, settings: dict):
        self.name, self.settings = name, settings
        self.base_url = settings["base_url"].rstrip("/")

    def listing_url(self, keyword: str, page: int) -> str:
        params = {k: v.format(keyword=keyword, page=page) for k, v in self.settings["listing_params"].items()}
        return f"{self.base_url}{self.settings['listing_path']}?{urlencode(params)}"

    def find_pages(self, client: HttpClient, keyword: str, tally: Tally) -> Iterator[Candidate]:
        raise NotImplementedError

    def extract(self, candidate: Candidate, page: Fetched) -> PageData:
        """Structured data first, then selectors; the listing's title/image fill what the page lacks."""
        data = extract_page(page.text, page.url, self.settings["selectors"])
        if not data.title and candidate.title_hint:
            data.title, data.methods["title"] = clean_text(candidate.title_hint), "listing"
        if not data.image_url and candidate.image_hint:
            data.image_url, data.methods["image"] = urljoin(page.url, candidate.image_hint), "listing"
        missing = [k for k in ("title", "image_url") if not getattr(data, k)]
        if missing:
            raise Skip("parse_failure", f"no {' or '.join(missing)} found", page.url)
        return data

    def image_candidates(self, url: str) -> list[str]:
        """The URL upgraded to the largest size the site serves, then the URL as found (fallback)."""
        largest = re.sub(
            self.settings["image_size_pattern"], self.settings["image_size_largest"], url, count=1
        )
        return [largest, url] if largest != url else [url]


class FoodyAdapter(SiteAdapter):
    """foody.vn: the listing answers JSON to `X-Requested-With: XMLHttpRequest`; detail pages carry OpenGraph."""

    def find_pages(self, client: HttpClient, keyword: str, tally: Tally) -> Iterator[Candidate]:
        fields = self.settings["item_fields"]
        for page_no in range(1, self.settings["max_listing_pages"] + 1):
            url = self.listing_url(keyword, page_no)
            try:
                page = client.get(url, headers=self.settings["listing_headers"])
                tally.listing_pages += 1
                data = json.loads(page.text)
            except Skip as err:
                tally.listing_errors.append(f"{url}: {err.reason} {err.detail}")
                return
            except json.JSONDecodeError:
                tally.listing_errors.append(f"{url}: listing is not JSON (anti-bot page or changed API?)")
                return
            keys = self.settings["listing_item_keys"]
            items = next(
                (data[k] for k in keys if isinstance(data, dict) and isinstance(data.get(k), list)), None
            )
            if items is None:
                tally.listing_errors.append(f"{url}: no item list under {keys} (changed API?)")
                return
            if not items:
                return
            for item in items:
                detail = item.get(fields["url"]) if isinstance(item, dict) else None
                if not detail:
                    tally.listing_errors.append(f"{url}: item without {fields['url']}: {str(item)[:80]}")
                    continue
                image = next((item[k] for k in fields["image"] if item.get(k)), "")
                page_url = self.base_url + detail if detail.startswith("/") else urljoin(url, detail)
                yield Candidate(page_url, item.get(fields["title"], ""), image)


class CookyAdapter(SiteAdapter):
    """cooky.vn: an HTML search page of recipe links with a rel=next link; recipe pages carry JSON-LD."""

    def find_pages(self, client: HttpClient, keyword: str, tally: Tally) -> Iterator[Candidate]:
        url, pattern = self.listing_url(keyword, 1), re.compile(self.settings["result_link_pattern"])
        for _ in range(self.settings["max_listing_pages"]):
            try:
                page = client.get(url, headers=self.settings["listing_headers"])
            except Skip as err:
                tally.listing_errors.append(f"{url}: {err.reason} {err.detail}")
                return
            tally.listing_pages += 1
            soup = BeautifulSoup(page.text, "lxml")
            links = [urljoin(page.url, a.get("href", "")) for a in soup.select(self.settings["result_link"])]
            found = list(dict.fromkeys(link for link in links if pattern.search(urlsplit(link).path)))
            if not found and tally.listing_pages == 1:
                tally.listing_errors.append(
                    f"{url}: no recipe links (no results, anti-bot page or new layout?)"
                )
            yield from (Candidate(link) for link in found)
            nxt = soup.select_one(self.settings["next_link"])
            if nxt is None or not nxt.get("href"):
                return
            url = urljoin(page.url, nxt["href"])


ADAPTERS: dict[str, type[SiteAdapter]] = {"foody": FoodyAdapter, "cooky": CookyAdapter}


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
    data: bytes, *, min_side: int = 224, max_pixels: int = runtime.MAX_IMAGE_PIXELS
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
    ) as err:  # Pillow's own limit (Image.MAX_IMAGE_PIXELS), if ours is raised
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
    """Counts for one dish on one site: every page found ends as kept or skipped (one reason)."""

    dish: str
    site: str
    pages: int = 0
    kept: int = 0
    resumed: int = 0
    listing_pages: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    listing_errors: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    """Per dish and site: listing pages, pages found, kept, skips by reason; plus every skip's detail."""

    sites: dict[str, str]
    tallies: list[Tally] = field(default_factory=list)
    skips: list[dict] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    http: dict = field(default_factory=dict)

    def tally(self, dish: str, site: str) -> Tally:
        self.tallies.append(Tally(dish, site))
        return self.tallies[-1]

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
        """Plain sentences for every site that yielded nothing usable, with the evidence."""
        lines = []
        for site in self.sites:
            tallies = [t for t in self.tallies if t.site == site]
            if tallies and not sum(t.kept for t in tallies):
                errors = [e for t in tallies for e in t.listing_errors][:3]
                reasons = sum((t.skipped for t in tallies), Counter())
                lines.append(
                    f"{site}: nothing usable. Listing problems: {errors or 'none'}; page skips: {dict(reasons) or 'none'}."
                    " Likely anti-bot protection or a changed layout/API; see data/dishes.json to adapt settings."
                )
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


def load_config(path: Path = CONFIG_PATH) -> dict:
    """The dish list and per-site settings, checked so a typo names its field instead of failing later."""
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in ("request_interval", "dishes", "sites"):
        if key not in config:
            raise ValueError(f"{path}: missing top-level '{key}'")
    for site, settings in config["sites"].items():
        if site not in ADAPTERS:
            raise ValueError(f"{path}: sites.{site}: no adapter (known: {sorted(ADAPTERS)})")
        for key in ("base_url", "listing_path", "listing_params", "selectors", "image_size_pattern"):
            if key not in settings:
                raise ValueError(f"{path}: sites.{site}: missing '{key}'")
    for i, dish in enumerate(config["dishes"]):
        for key in ("slug", "name_vi", "keywords"):
            if key not in dish:
                raise ValueError(f"{path}: dishes[{i}]: missing '{key}'")
        if not re.fullmatch(r"[a-z0-9-]+", dish["slug"]):
            raise ValueError(f"{path}: dishes[{i}].slug {dish['slug']!r} must be ASCII lowercase with dashes")
    return config


def with_base_urls(config: dict, base_urls: dict[str, str]) -> dict:
    """A copy of `config` whose sites point elsewhere (the fixture server); nothing else changes."""
    sites = {
        name: {**s, "base_url": base_urls.get(name, s["base_url"])} for name, s in config["sites"].items()
    }
    return {**config, "sites": sites}


def _fetch_image(client: HttpClient, adapter: SiteAdapter, url: str) -> tuple[str, bytes]:
    """The largest size first; on a 4xx for it, the size the page linked."""
    candidates = adapter.image_candidates(url)
    for i, candidate in enumerate(candidates):
        try:
            return candidate, client.get(candidate, max_bytes=MAX_IMAGE_BYTES).content
        except Skip as err:
            if not (err.reason.startswith("http_4") and err.reason != "http_429") or i == len(candidates) - 1:
                raise
            client.stats["image_size_fallback"] += 1
    raise AssertionError("unreachable")


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
        tally.notes.update(data.notes + [f"image_from:{data.methods['image']}"])
        image_url, image = _fetch_image(self.client, adapter, data.image_url)
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
    max_pixels: int = runtime.MAX_IMAGE_PIXELS,
    near_duplicate_distance: int = 6,
    progress: bool = True,
) -> RunReport:
    """Scrape every dish on every site into `out_dir` (resuming what is there); writes and returns the report."""
    manifest = Manifest(out_dir)
    hosts = {name: urlsplit(settings["base_url"]).hostname for name, settings in config["sites"].items()}
    for item in manifest.items:
        if item["site"] in hosts and urlsplit(item["page_url"]).hostname != hosts[item["site"]]:
            raise ValueError(
                f"{manifest.path} holds items from {urlsplit(item['page_url']).hostname}, not {hosts[item['site']]}"
                " (offline fixture and live data must not mix): delete that folder or pick another out_dir"
            )
    dedup = Deduper(near_duplicate_distance)
    for item in manifest.items:
        dedup.add(item["sha256"], item["phash"], item["id"])
    report = RunReport({name: s["base_url"] for name, s in config["sites"].items()}, cleaned=manifest.cleaned)
    run = _Run(client, manifest, dedup, report, {"min_side": min_side, "max_pixels": max_pixels})
    try:
        for dish in config["dishes"]:
            for site, settings in config["sites"].items():
                adapter, tally = ADAPTERS[site](site, settings), report.tally(dish["slug"], site)
                seen: set[str] = set()
                with tqdm(desc=f"{dish['slug']} @ {site}", unit="page", disable=not progress) as bar:
                    for keyword in dish["keywords"].get(site, []):
                        for candidate in adapter.find_pages(client, keyword, tally):
                            if candidate.page_url in seen:
                                continue
                            if len(seen) >= settings["max_pages_per_dish"]:
                                break
                            seen.add(candidate.page_url)
                            run.process(adapter, dish, candidate, tally)
                            bar.update()
                            bar.set_postfix(kept=tally.kept, skipped=sum(tally.skipped.values()))
    finally:
        report.http = {"stats": dict(client.stats), "robots": client.robots_status}
        report_json = json.dumps(report.to_json(), ensure_ascii=False, indent=1)
        jsonl.atomic_write(Path(out_dir) / "report.json", report_json.encode())
    report.check()
    return report


def run_scrape(profile: runtime.Profile, *, progress: bool = True) -> RunReport:
    """Scrape into the profile's `scraped/` folder: the live sites in full, fixture sites in smoke (same code)."""
    with profile.sites(load_config()) as config:
        client = HttpClient(min_interval=config["request_interval"])
        try:
            return scrape(config, profile.output_dir("scraped"), client, progress=progress)
        finally:
            client.close()
