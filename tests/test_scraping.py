"""The scraper against fixture sites on 127.0.0.1 built in foody.vn's and cooky.vn's real shapes.

Covers the extraction rules verified on real pages (title, image, description, ingredients), both JSON listings,
the login wall, robots.txt served as HTML, and notebook 01's fault matrix. Waits (rate limit, backoff,
Retry-After) run on a fake clock: no test sleeps for real beyond a read timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from bs4 import BeautifulSoup

from helpers import jsonl, profiles
from helpers.data import manifest, scraping
from helpers.data.polite_http import Fetched, HttpClient, Skip
from helpers.smoke import scrape_fixtures
from helpers.smoke.scrape_fixtures import Fault, serve_fixture_site

REPO = Path(__file__).resolve().parent.parent


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def config():
    return scraping.load_config()


@pytest.fixture(scope="module")
def server(config):
    with serve_fixture_site(config) as running:
        yield running


@pytest.fixture(scope="module")
def site_config(config, server):
    return scraping.with_base_urls(config, server.base_urls)


def make_client(clock: FakeClock, **kwargs) -> HttpClient:
    options = {"min_interval": 1.0, "timeout": (2.0, 0.2), "max_retries": 2} | kwargs
    return HttpClient(clock=clock, sleep=clock.sleep, **options)


def record_starts(client: HttpClient, clock: FakeClock) -> list[tuple[str, float]]:
    """(host, fake time) of every request the client sends from now on."""
    starts: list[tuple[str, float]] = []
    real_get = client.session.get

    def recording_get(url, **kwargs):
        starts.append((urlsplit(url).netloc, clock()))
        return real_get(url, **kwargs)

    client.session.get = recording_get
    return starts


@pytest.fixture(scope="module")
def clean_run(site_config, tmp_path_factory):
    """One whole scrape of the fixture sites on a fake clock: (output dir, report, request starts per host)."""
    out = tmp_path_factory.mktemp("clean")
    clock = FakeClock()
    client = make_client(clock)
    starts = record_starts(client, clock)
    report = scraping.scrape(site_config, out, client, progress=False)
    return out, report, starts


def read_manifest(out: Path) -> list[dict]:
    return jsonl.read(out / "manifest.jsonl")[0]


def page_of(server, path: str, site: str, config: dict, candidate=None, **fields) -> scraping.PageData:
    """A fixture page's fields under the site's settings (`fields` replaces the order of some)."""
    page = requests.get(server.url(path), timeout=5)
    settings = config["sites"][site]
    settings = {**settings, "fields": {**settings["fields"], **fields}}
    return scraping.extract_page(page.text, page.url, settings, candidate)


def foody_listing(server, site_config, slug: str = "banh-beo") -> tuple[str, dict]:
    """The URL and JSON of a dish's first foody listing page, asked as the scraper asks."""
    dish = next(d for d in site_config["dishes"] if d["slug"] == slug)
    adapter = scraping.SiteAdapter("foody", site_config["sites"]["foody"])
    url = adapter.listing_url(dish, dish["keywords"]["foody"][0], 1)
    return url, requests.get(url, headers=adapter.settings["listing_headers"], timeout=5).json()


# --------------------------------------------------------------------------- whole run


def test_every_fixture_page_is_kept_or_skipped_with_its_reason(clean_run, server):
    out, report, _ = clean_run
    rows = {(r["dish"], r["site"]): r for r in report.rows()}
    assert len(rows) == 6
    for (_, site), row in rows.items():
        assert row["pages"] == server.site.expected_pages(site)
        assert row["kept"] + row["skipped"] == row["pages"]
        assert row["kept"] == 6
        assert row["listing_pages"] == {"foody": 1, "cooky": 2}[site]  # foody: page 2 is behind a login
    tallies = {(t.dish, t.site): t.skipped for t in report.tallies}
    assert tallies["banh-beo", "foody"] == Counter(duplicate=1, http_404=1)
    assert tallies["banh-beo", "cooky"] == Counter(robots=1, bad_image=3, duplicate=1, parse_failure=1)
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved["rows"] == report.rows()
    assert len(saved["skips"]) == sum(r["skipped"] for r in saved["rows"])


def test_manifest_items_follow_the_contract(clean_run):
    out, _, _ = clean_run
    items = read_manifest(out)
    assert Counter(i["dish"] for i in items) == {"banh-beo": 12, "bun-bo-hue": 12, "bun-dau-mam-tom": 12}
    assert len({i["id"] for i in items}) == len({i["sha256"] for i in items}) == 36
    names = {"banh-beo": "bánh bèo", "bun-bo-hue": "bún bò Huế", "bun-dau-mam-tom": "bún đậu mắm tôm"}
    no_reviews = f"-{scrape_fixtures.FOODY_NO_REVIEWS}"
    for item in items:
        assert set(item) == set(manifest.FIELDS) and manifest.field_problem(item) is None
        assert item["dish_name"] == names[item["dish"]]
        data = (out / item["image_path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        assert min(item["width"], item["height"]) >= 224
        assert "/s/" in item["image_url"]  # upgraded from the thumbnail the page linked
        assert item["title"] and item["retrieved_at"].endswith("+00:00")
        empty_text = item["site"] == "foody" and item["page_url"].endswith(no_reviews)
        assert bool(item["text_vi"]) is not empty_text  # no review, no description: empty beats wrong
        assert all(isinstance(x, str) for x in item["ingredients"])
        assert bool(item["ingredients"]) is (item["site"] == "cooky")
    assert not list(out.rglob("*.tmp"))


def test_rate_limit_spaces_requests_to_one_host(clean_run):
    _, report, starts = clean_run
    assert report.http["stats"]["requests"] > 100
    by_host: dict[str, list[float]] = {}
    for host, at in starts:
        by_host.setdefault(host, []).append(at)
    assert len(by_host) == 2  # one host per site, each with its own robots.txt
    for times in by_host.values():
        assert all(b - a >= 1.0 for a, b in zip(times, times[1:], strict=False))


def test_requests_to_one_host_are_at_least_min_interval_apart(server):
    clock = FakeClock()
    client = make_client(clock, min_interval=1.5)
    starts = record_starts(client, clock)
    for path in ("/cooky/cong-thuc/banh-beo-0", "/cooky/cong-thuc/banh-beo-1", "/cooky/cong-thuc/banh-beo-2"):
        client.get(server.url(path))
    times = [at for _, at in starts]
    assert len(times) == 4  # robots.txt, then three pages
    assert all(b - a >= 1.5 for a, b in zip(times, times[1:], strict=False))


# --------------------------------------------------------------------------- HTTP faults


def test_429_honours_retry_after(server):
    path = server.site.image_path("foody", "bun-bo-hue", 0)
    server.inject(path, Fault(status=429, headers={"Retry-After": "7"}))
    clock = FakeClock()
    client = make_client(clock)
    before = server.hits[path]
    fetched = client.get(server.url(path))
    assert fetched.content[:2] == b"\xff\xd8"
    assert 7.0 in clock.sleeps
    assert server.hits[path] - before == 2
    assert client.stats["requests"] == 3 and client.stats["http_429"] == 1  # robots.txt, then two attempts


def test_retry_after_beyond_max_wait_gives_up(server):
    path = server.site.image_path("foody", "bun-bo-hue", 1)
    server.inject(path, Fault(status=429, headers={"Retry-After": "3600"}))
    clock = FakeClock()
    before = server.hits[path]
    with pytest.raises(Skip) as err:
        make_client(clock).get(server.url(path))
    assert err.value.reason == "http_429" and "asks to wait 3600 s" in err.value.detail
    assert clock.sleeps == [1.0] and server.hits[path] - before == 1  # only the pace after robots.txt


def test_500_then_success_backs_off_exponentially_with_jitter(server):
    path = "/cooky/cong-thuc/bun-bo-hue-0"
    server.inject(path, Fault(status=500), Fault(status=503))
    clock = FakeClock()
    client = make_client(clock)
    assert "bún bò" in client.get(server.url(path)).text.lower()
    # The pace after robots.txt; urllib3's backoff: none before the first retry (the host's 1 s pace holds),
    # then backoff_factor * 2 plus up to backoff_jitter (1 s) before the second.
    assert clock.sleeps[:2] == [1.0, 1.0] and 2.0 <= clock.sleeps[2] < 3.0 and len(clock.sleeps) == 3
    assert client.stats["retries"] == 2 and client.stats["http_500"] == client.stats["http_503"] == 1


def test_a_page_neither_site_has_is_a_404(server):
    for host, path in (("foody", "/ha-noi/khong-co-trang"), ("cooky", "/cong-thuc/khong-co-trang")):
        answer = requests.get(server.base_urls[host] + path, timeout=5)
        assert (answer.status_code, "Không tìm thấy trang" in answer.text) == (404, True), host


def test_other_4xx_is_not_retried(server):
    path = server.site.detail_path("foody", "bun-bo-hue", server.site.index("foody", "gone"))
    before = server.hits[path]
    with pytest.raises(Skip) as err:
        make_client(FakeClock()).get(server.url(path))
    assert err.value.reason == "http_404"
    assert server.hits[path] - before == 1


def test_read_timeout_is_retried_then_reported(server):
    path = "/cooky/cong-thuc/bun-bo-hue-1"
    server.inject(path, Fault(delay=0.5))
    assert make_client(FakeClock()).get(server.url(path)).status == 200  # second attempt answers in time
    server.inject(path, Fault(delay=0.5), Fault(delay=0.5))
    with pytest.raises(Skip) as err:
        make_client(FakeClock(), max_retries=1).get(server.url(path))
    assert err.value.reason == "timeout"


def test_robots_disallowed_url_is_never_fetched(server):
    client = make_client(FakeClock())
    with pytest.raises(Skip) as err:
        client.get(server.url("/fault/private/secret"))
    assert err.value.reason == "robots"
    assert server.hits["/fault/private/secret"] == 0
    assert client.stats["robots_blocked"] == 1
    assert client.allowed(server.url("/fault/public"))


def test_unreachable_robots_txt_means_stay_out(server):
    server.inject("/robots.txt", *[Fault(status=503)] * 3)
    client = make_client(FakeClock())
    assert not client.allowed(server.url("/foody/hue/banh-beo-0"))
    assert "disallow all" in next(iter(client.robots_status.values()))


# --------------------------------------------------------------------------- images


def test_truncated_image_is_rejected(server):
    data = requests.get(
        server.url(server.site.image_path("cooky", "banh-beo", server.site.index("cooky", "truncated"))),
        timeout=5,
    ).content
    with pytest.raises(Skip, match="truncated") as err:
        scraping.validate_image(data)
    assert err.value.reason == "bad_image"


def test_non_image_served_as_jpeg_is_rejected(server):
    resp = requests.get(
        server.url(server.site.image_path("cooky", "banh-beo", server.site.index("cooky", "not-an-image"))),
        timeout=5,
    )
    assert resp.headers["Content-Type"] == "image/jpeg"
    with pytest.raises(Skip, match="not an image"):
        scraping.validate_image(resp.content)


def test_oversized_image_is_rejected_before_decoding(server):
    data = make_client(FakeClock(), timeout=(2.0, 10.0)).get(server.url("/fault/bomb.png")).content
    assert len(data) < 100_000
    with pytest.raises(Skip, match="too large"):
        scraping.validate_image(data)
    with pytest.raises(Skip, match="larger than"):
        make_client(FakeClock()).get(server.url("/fault/bomb.png"), max_bytes=1000)


def test_small_image_is_rejected_and_good_one_measured(server):
    small = requests.get(
        server.url(
            server.site.image_path("cooky", "banh-beo", server.site.index("cooky", "small-only"), "s200x150")
        ),
        timeout=5,
    ).content
    with pytest.raises(Skip, match="too small"):
        scraping.validate_image(small)
    info = scraping.validate_image(
        requests.get(server.url(server.site.image_path("cooky", "banh-beo", 0)), timeout=5).content
    )
    assert min(info.width, info.height) >= 224 and info.extension == "jpg" and len(info.phash) == 16


def test_duplicates_under_different_urls_are_skipped(clean_run, server):
    _, report, _ = clean_run
    details = [s["detail"] for s in report.skips if s["reason"] == "duplicate"]
    assert sum(d.startswith("exact duplicate") for d in details) == 3
    assert sum(d.startswith("near duplicate") for d in details) == 3
    first = requests.get(server.url(server.site.image_path("foody", "banh-beo", 0)), timeout=5).content
    again = requests.get(
        server.url(
            server.site.image_path("foody", "banh-beo", server.site.index("foody", "exact-duplicate"))
        ),
        timeout=5,
    ).content
    assert first == again  # same bytes, another URL
    dedup = scraping.Deduper()
    info = scraping.validate_image(first)
    dedup.add(info.sha256, info.phash, "a")
    with pytest.raises(Skip, match="exact"):
        dedup.check(info.sha256, info.phash)
    other = scraping.validate_image(
        requests.get(server.url(server.site.image_path("foody", "banh-beo", 1)), timeout=5).content
    )
    dedup.check(other.sha256, other.phash)  # a different photo of the same dish passes


# --------------------------------------------------------------------------- robots.txt and the run report


def test_robots_txt_served_as_html_is_unreadable_and_keeps_the_scraper_off_api_paths(server):
    client = make_client(FakeClock())
    api = server.base_urls["foody"] + "/__get/"
    client.stay_off_without_robots(api)
    robots = requests.get(server.roots["foody"] + "/robots.txt", timeout=5)
    assert robots.status_code == 200 and robots.headers["Content-Type"].startswith("text/html")  # as foody.vn
    assert client.allowed(server.url("/foody/hue/banh-beo-0"))  # no rules read, but the pages stay open
    before = server.hits["/foody/__get/Review/ResLoadMore"]
    with pytest.raises(Skip) as err:
        client.get(api + "Review/ResLoadMore?ResId=1&Count=1")
    assert err.value.reason == "robots" and "unreadable" in err.value.detail
    assert server.hits["/foody/__get/Review/ResLoadMore"] == before
    status = client.robots_status[server.roots["foody"]]
    assert status.startswith("unreadable: served as text/html") and api in status
    assert client.allowed(server.url("/cooky/cong-thuc/banh-beo-0"))
    assert client.robots_status[server.roots["cooky"]] == "read"  # text/plain: parsed as rules


def test_the_run_reports_unreadable_robots_and_the_login_wall(clean_run):
    _, report, _ = clean_run
    problems = report.problems()
    assert any(p.startswith("foody: robots.txt unreadable: served as text/html") for p in problems)
    (wall,) = [p for p in problems if "login" in p]
    assert wall.startswith("foody: listing page 2 asks for a login (redirected to /foody/account/login)")
    assert "never logs in" in wall and "listing page 1 only" in wall
    assert not any(p.startswith("cooky") for p in problems)


# --------------------------------------------------------------------------- foody


def test_foody_title_is_the_h1_never_a_breadcrumb_item(server, config):
    path = server.site.detail_path("foody", "banh-beo", 0)
    soup = BeautifulSoup(requests.get(server.url(path), timeout=5).text, "lxml")
    assert soup.find(attrs={"itemprop": "name"}).get_text(strip=True) == "Huế"  # the trap: a breadcrumb item
    assert soup.select_one("h1").find_previous(attrs={"itemprop": "name"}) is not None
    data = page_of(server, path, "foody", config)
    assert data.title == "Quán Bánh bèo chén tôm chấy #1" and data.methods["title"] == "selectors"
    assert page_of(server, path, "foody", config, title=["microdata"]).title == data.title


def test_foody_image_skips_the_empty_and_logo_opengraph_values(server, config):
    path = server.site.detail_path("foody", "banh-beo", 0)
    metas = BeautifulSoup(requests.get(server.url(path), timeout=5).text, "lxml").select(
        'meta[property="og:image"]'
    )
    assert [m["content"] for m in metas] == ["", "/style/images/logofoody.jpg"]
    assert page_of(server, path, "foody", config, image=["opengraph"]).image_url == ""
    data = page_of(server, path, "foody", config)
    assert data.methods["image"] == "selectors" and data.image_url.endswith(
        "/s576x330/foody-mobile-banh-beo-0.jpg"
    )
    old = server.site.detail_path("foody", "banh-beo", server.site.index("foody", "place-old"))
    assert 'itemprop="photo"' in requests.get(server.url(old), timeout=5).text
    assert "/s576x330/" in page_of(server, old, "foody", config, image=["microdata"]).image_url


def test_foody_description_is_the_review_comments_unescaped_and_nothing_else(server, site_config, config):
    url, listing = foody_listing(server, site_config)
    raw = listing["searchItems"][0]["Reviews"][0]
    assert "&amp;#" in raw["Comment"] and raw["Owner"]["DisplayName"]  # entities escaped twice, a user name
    adapter = scraping.SiteAdapter("foody", site_config["sites"]["foody"])
    candidate = adapter.candidate(listing["searchItems"][0], url)
    assert "Giá trung bình" in candidate.text_hint and "&" not in candidate.text_hint
    reviewers = scrape_fixtures.REVIEWERS
    assert not any(name in candidate.text_hint for name in reviewers) and "avt" not in candidate.text_hint
    data = page_of(server, urlsplit(candidate.page_url).path, "foody", config, candidate)
    assert data.description == candidate.text_hint and data.methods["description"] == "listing"
    for clutter in ("Giá cả", "Bình luận", "Lê Lợi", "06:00", "Huế"):  # scores, address, hours, breadcrumb
        assert clutter not in data.description
    quiet = adapter.candidate(listing["searchItems"][scrape_fixtures.FOODY_NO_REVIEWS], url)
    data = page_of(server, urlsplit(quiet.page_url).path, "foody", config, quiet)
    assert quiet.text_hint == data.description == "" and "description" not in data.methods


def test_foody_listing_falls_back_to_the_listing_photo(server, site_config, config):
    url, listing = foody_listing(server, site_config)
    candidate = scraping.SiteAdapter("foody", site_config["sites"]["foody"]).candidate(
        listing["searchItems"][1], url
    )
    page = requests.get(candidate.page_url, timeout=5)
    soup = BeautifulSoup(page.text, "lxml")
    soup.select_one("img.pic-place").decompose()
    data = scraping.extract_page(str(soup), page.url, config["sites"]["foody"], candidate)
    assert data.methods["image"] == "listing" and "/s640x400/" in data.image_url  # PicturePathLarge


def test_foody_listing_asks_the_province_path_with_the_crawlers_parameters(clean_run, server):
    listings = [r for r in server.requests if r.path.endswith("/food/dia-diem")]
    provinces = {r.query["q"]: r.path for r in listings if r.query.get("page") == "1"}
    assert provinces == {"bánh bèo": "/foody/hue/food/dia-diem", "bún bò Huế": "/foody/hue/food/dia-diem",
                         "bún đậu mắm tôm": "/foody/ha-noi/food/dia-diem"}  # fmt: skip
    for request in listings:
        assert {k: request.query[k] for k in ("ds", "vt", "st", "append")} == {
            "ds": "Restaurant", "vt": "row", "st": "1", "append": "true"
        }  # fmt: skip
        assert request.headers["x-requested-with"] == "XMLHttpRequest"


def test_province_decides_what_the_foody_listing_finds(site_config, tmp_path):
    dish = {**site_config["dishes"][2], "province": "hue"}  # bún đậu mắm tôm is a Hà Nội dish
    config = {**site_config, "dishes": [dish], "sites": {"foody": site_config["sites"]["foody"]}}
    report = scraping.scrape(config, tmp_path, make_client(FakeClock()), progress=False)
    assert report.tallies[0].pages == 0 and report.problems()[0].startswith("foody: nothing usable")


def test_ad_items_are_never_visited(clean_run, server):
    assert not [r for r in server.requests if r.path.endswith("/lau-nam-ashima")]


def test_foody_listing_link_may_be_named_url(server, site_config):
    dish = site_config["dishes"][0]
    adapter = scraping.SiteAdapter("foody", site_config["sites"]["foody"])
    listing = urlsplit(adapter.listing_url(dish, "bánh bèo", 1)).path
    items = [{"Name": "Quán Bánh bèo Huế", "Url": "/hue/banh-beo-1?utm_source=app"}, {"Name": "no link"}]
    body = json.dumps({"searchItems": items, "adItems": [], "totalResult": 2, "currentPage": 1}).encode()
    server.inject(listing, Fault(status=200, headers={"Content-Type": "application/json"}, body=body))
    tally = scraping.Tally("banh-beo", "foody")
    (found,) = adapter.find_pages(make_client(FakeClock()), dish, "bánh bèo", tally)
    assert found.page_url == site_config["sites"]["foody"]["base_url"] + "/hue/banh-beo-1"
    assert found.title_hint == "Quán Bánh bèo Huế" and len(tally.listing_errors) == 1


def test_login_wall_stops_the_listing_for_the_site_without_logging_in(site_config, server, tmp_path):
    config = {**site_config, "sites": {"foody": site_config["sites"]["foody"]}}
    start = len(server.requests)
    report = scraping.scrape(config, tmp_path, make_client(FakeClock()), progress=False)
    seen = server.requests[start:]
    second_pages = [r for r in seen if r.path.endswith("/food/dia-diem") and r.query.get("page") == "2"]
    assert len(second_pages) == 1  # asked once; the other dishes stop before page 2
    assert [r.path for r in seen if "login" in r.path] == ["/foody/account/login"]
    assert not any("cookie" in r.headers or "authorization" in r.headers for r in seen)
    assert (
        len({t.listing_stop for t in report.tallies}) == 1
        and "never logs in" in report.tallies[0].listing_stop
    )
    assert [t.kept for t in report.tallies] == [6, 6, 6]  # page 1's places are all kept


def test_listing_answering_401_is_a_login_wall(server, site_config):
    dish = site_config["dishes"][1]
    adapter = scraping.SiteAdapter("foody", site_config["sites"]["foody"])
    server.inject(urlsplit(adapter.listing_url(dish, "bún bò Huế", 1)).path, Fault(status=401))
    tally = scraping.Tally(dish["slug"], "foody")
    assert list(adapter.find_pages(make_client(FakeClock()), dish, "bún bò Huế", tally)) == []
    assert "listing page 1 asks for a login (HTTP 401)" in tally.listing_stop
    assert "reads no listing page" in tally.listing_stop and not tally.listing_errors


# --------------------------------------------------------------------------- cooky


def test_cooky_title_is_the_h1_not_the_json_ld_headline(server, config):
    path = server.site.detail_path("cooky", "banh-beo", 0)
    page = requests.get(server.url(path), timeout=5).text
    ld = json.loads(BeautifulSoup(page, "lxml").select_one('script[type="application/ld+json"]').string)
    assert ld["name"] == "Cách Làm Bánh bèo chén tôm chấy #1 cực ngon"
    data = page_of(server, path, "cooky", config)
    assert data.title == "Bánh bèo chén tôm chấy #1" and data.methods["title"] == "selectors"
    assert data.description.startswith("Những chén bánh bèo") and data.methods["description"] == "selectors"


@pytest.mark.parametrize("kind", ["recipe", "recipe-image-list", "recipe-image-string"])
def test_cooky_json_ld_image_as_image_object_list_or_url(server, config, kind):
    i = server.site.index("cooky", kind)
    data = page_of(server, server.site.detail_path("cooky", "banh-beo", i), "cooky", config)
    assert data.methods["image"] == "json-ld"
    assert data.image_url == server.url(server.site.image_path("cooky", "banh-beo", i, "s400x400"))


def test_lazy_image_reads_data_src_not_the_placeholder(server, config, site_config):
    path = server.site.detail_path("cooky", "banh-beo", server.site.index("cooky", "recipe-lazy"))
    header = BeautifulSoup(requests.get(server.url(path), timeout=5).text, "lxml").select_one("img.u-photo")
    assert header["src"].endswith("/imgs/blank-img/400x400.jpg") and "/s400x400/" in header["data-src"]
    data = page_of(server, path, "cooky", config)
    assert data.methods["image"] == "selectors" and data.image_url == header["data-src"]
    video_only = server.site.detail_path("cooky", "banh-beo", server.site.index("cooky", "no-image"))
    page = make_client(FakeClock()).get(server.url(video_only))
    with pytest.raises(Skip, match="no image_url") as err:  # its only photo is the placeholder
        scraping.SiteAdapter("cooky", site_config["sites"]["cooky"]).extract(
            scraping.Candidate(page.url), page
        )
    assert err.value.reason == "parse_failure"


def test_cooky_ingredients_read_fractions_as_written(server, config):
    path = server.site.detail_path("cooky", "banh-beo", server.site.index("cooky", "recipe-lazy"))
    assert "1 <sup>1</sup>/<sub>2</sub>" in requests.get(server.url(path), timeout=5).text
    data = page_of(server, path, "cooky", config)
    assert data.methods["ingredients"] == "selectors"
    assert data.ingredients == ["Bột gạo 200 gr", "Bột năng 2 muỗng canh", "Tôm khô 1 1/2 chén", "Tóp mỡ 100 gr",
                                "Hành lá 3 cây", "Nước mắm 1/2 chén"]  # fmt: skip


def test_cooky_search_is_json_paged_and_links_lose_their_query(server, site_config):
    dish = site_config["dishes"][0]
    settings = site_config["sites"]["cooky"]
    for page_size, pages in (("12", 2), ("5", 3)):
        adapter = scraping.SiteAdapter("cooky", {**settings, "listing_params": {**settings["listing_params"],
                                                                                "pageSize": page_size}})  # fmt: skip
        start, tally = len(server.requests), scraping.Tally(dish["slug"], "cooky")
        found = [c.page_url for c in adapter.find_pages(make_client(FakeClock()), dish, "bánh bèo", tally)]
        asked = [r for r in server.requests[start:] if r.path == "/cooky/directory/search"]
        assert (
            [r.query["page"] for r in asked]
            == [str(n) for n in range(1, pages + 1)]
            == [str(n) for n in range(1, tally.listing_pages + 1)]
        )
        assert {k: asked[0].query[k] for k in ("q", "st", "pageSize", "append", "video")} == {
            "q": "bánh bèo", "st": "2", "pageSize": page_size, "append": "true", "video": "false"
        }  # fmt: skip
        assert len(found) == 13 and len(set(found)) == 12 and not any("?" in url for url in found)


def test_malformed_html_still_yields_fields(server, config):
    path = server.site.detail_path("cooky", "banh-beo", server.site.index("cooky", "malformed"))
    data = page_of(server, path, "cooky", config)
    assert data.title == "Bánh bèo Huế #6" and data.description.startswith("Món bánh dân dã")
    assert data.image_url.endswith(
        "/s400x400/cooky-recipe-banh-beo-5.jpg"
    )  # from data-src, not the blank src
    assert data.ingredients == ["Bột gạo 200 gr", "Bột năng 2 muỗng canh"]


def test_invalid_json_ld_falls_back_to_selectors(server, config):
    path = server.site.detail_path("cooky", "banh-beo", server.site.index("cooky", "invalid-json-ld"))
    data = page_of(server, path, "cooky", config)
    assert data.notes == ["json_ld_invalid"]
    assert data.methods == {key: "selectors" for key in ("title", "description", "image", "ingredients")}
    assert "/s400x400/" in data.image_url  # lazy image from data-original


def test_site_that_answers_html_instead_of_json_is_reported(site_config, tmp_path):
    foody = {**site_config["sites"]["foody"], "listing_headers": {}}  # as an anti-bot page would look
    broken = {**site_config, "sites": {"foody": foody}}
    report = scraping.scrape(broken, tmp_path, make_client(FakeClock()), progress=False)
    assert sum(t.kept for t in report.tallies) == 0
    (problem,) = [p for p in report.problems() if "nothing usable" in p]
    assert problem.startswith("foody: nothing usable") and "not JSON" in problem


def test_bad_config_and_manifest_name_the_culprit(tmp_path, config):
    bad = tmp_path / "dishes.json"
    dishes = [{"slug": "Bún Bò", "name_vi": "x", "keywords": {}}]
    bad.write_text(json.dumps({"request_interval": 1.0, "dishes": dishes, "sites": {}}))
    with pytest.raises(ValueError, match=r"dishes\[0\]\.slug"):
        scraping.load_config(bad)
    bad.write_text(json.dumps({"dishes": dishes, "sites": {}}))
    with pytest.raises(ValueError, match="missing top-level 'request_interval'"):
        scraping.load_config(bad)
    foody = config["sites"]["foody"]
    for settings, message in (
        (
            {**foody, "fields": {**foody["fields"], "title": ["selector"]}},
            r"fields\.title: 'selector' is not",
        ),
        ({**foody, "fields": {"ingredients": ["listing"]}}, r"fields\.ingredients: 'listing' is not"),
        ({**foody, "fields": {"description": ["selectors"]}}, r"selectors\.description is empty"),
        ({**foody, "image_ignore_pattern": "(?i"}, r"image_ignore_pattern: not a regular expression"),
    ):
        bad.write_text(json.dumps({**config, "sites": {"foody": settings}}))
        with pytest.raises(ValueError, match=message):
            scraping.load_config(bad)
    no_province = [{k: v for k, v in d.items() if k != "province"} for d in config["dishes"]]
    bad.write_text(json.dumps({**config, "dishes": no_province}))
    with pytest.raises(ValueError, match=r"sites\.foody: the listing uses \{province\}"):
        scraping.load_config(bad)
    (tmp_path / "manifest.jsonl").write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    with pytest.raises(ValueError, match=r"manifest.jsonl:2: not valid JSON"):
        manifest.Manifest(tmp_path)
    (tmp_path / "manifest.jsonl").write_text('\n{"id": "a", "width": 1}\n')
    with pytest.raises(ValueError, match=r"manifest.jsonl:2: missing field\(s\) dish, dish_name"):
        manifest.Manifest(tmp_path)


# --------------------------------------------------------------------------- kill and resume

KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from helpers.data import polite_http, scraping

    calls, real_replace = 0, os.replace

    def replace_then_die(src, dst):
        global calls
        calls += 1
        if calls == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)  # the temp file is written, the rename never happens
        real_replace(src, dst)

    os.replace = replace_then_die
    config = scraping.with_base_urls(scraping.load_config(), json.loads(sys.argv[2]))
    scraping.scrape(config, Path(sys.argv[1]), polite_http.HttpClient(min_interval=0.0), progress=False)
    """
)


def test_killed_run_resumes_without_duplicates_losses_or_partial_files(
    clean_run, site_config, server, tmp_path
):
    out = tmp_path / "scraped"
    args = [sys.executable, "-c", KILL_SCRIPT, str(out), json.dumps(server.base_urls), "9"]
    proc = subprocess.run(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(list(out.rglob(".*.tmp"))) == 1  # the image being written when the process died
    assert len(read_manifest(out)) == 8
    with open(out / "manifest.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"id": "cut-short-by-a-kill", "dish": "ba')  # as if killed while appending
    resumed_page = "/foody/hue/banh-beo-0"
    hits_before = server.hits[resumed_page]

    report = scraping.scrape(site_config, out, make_client(FakeClock()), progress=False)

    items = read_manifest(out)
    assert len(items) == len({i["sha256"] for i in items}) == 36
    clean_keys = {manifest.page_key(i["site"], i["page_url"]) for i in read_manifest(clean_run[0])}
    assert {manifest.page_key(i["site"], i["page_url"]) for i in items} == clean_keys
    on_disk = {str(p.relative_to(out)) for p in (out / "images").rglob("*") if p.is_file()}
    assert on_disk == {i["image_path"] for i in items}
    assert not list(out.rglob("*.tmp"))
    assert sum(t.resumed for t in report.tallies) == 8
    assert server.hits[resumed_page] == hits_before  # a kept page is not fetched again
    assert any("cut short" in c for c in report.cleaned) and any(c.endswith(".tmp") for c in report.cleaned)
    report.check()


def test_run_scrape_fills_the_smoke_profile_folder_and_resumes_there(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    profile = profiles.profile("smoke")
    report = scraping.run_scrape(profile, progress=False)
    items = read_manifest(tmp_path / "smoke" / "scraped")
    assert len(items) == sum(t.kept for t in report.tallies) == 36
    assert {urlsplit(i["page_url"]).hostname for i in items} == {"127.0.0.1"}
    again = scraping.run_scrape(profile, progress=False)  # a new fixture server, on another port
    assert sum(t.resumed for t in again.tallies) == 36
    assert not (tmp_path / "full").exists()


def test_fixture_and_live_data_never_mix(clean_run):
    with pytest.raises(ValueError, match="must not mix"):
        scraping.scrape(scraping.load_config(), clean_run[0], make_client(FakeClock()), progress=False)


def test_page_listed_under_two_dishes_is_kept_once(site_config, tmp_path):
    first, second = site_config["dishes"][:2]
    second = {
        **second,
        "keywords": first["keywords"],
    }  # the second dish's search finds the first dish's pages
    config = {**site_config, "dishes": [first, second], "sites": {"foody": site_config["sites"]["foody"]}}
    report = scraping.scrape(config, tmp_path, make_client(FakeClock()), progress=False)
    kept = [t.kept for t in report.tallies]
    assert kept == [6, 0]
    assert (
        report.tallies[1].skipped["duplicate"] == 7
    )  # 6 pages kept for the first dish + its duplicate photo
    assert len(read_manifest(tmp_path)) == 6


def test_html_without_charset_is_read_as_utf8():
    page = Fetched("http://127.0.0.1/x", 200, {"Content-Type": "text/html"}, "bún bò".encode(), None)
    assert page.text == "bún bò"
    assert Fetched("u", 200, {}, "bún".encode("utf-16"), "utf-16").text == "bún"
