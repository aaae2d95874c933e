"""The scraper against the fixture sites on 127.0.0.1, with every fault of notebook 01's matrix.

Waits (rate limit, backoff, Retry-After) run on a fake clock: no test sleeps for real beyond a read timeout.
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

from helpers import jsonl, runtime
from helpers.data import manifest, scraping
from helpers.data.polite_http import Fetched, HttpClient, Skip
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


@pytest.fixture(scope="module")
def clean_run(site_config, tmp_path_factory):
    """One whole scrape of the fixture sites on a fake clock: (output dir, report, clock)."""
    out = tmp_path_factory.mktemp("clean")
    clock = FakeClock()
    report = scraping.scrape(site_config, out, make_client(clock), progress=False)
    return out, report, clock


def read_manifest(out: Path) -> list[dict]:
    return jsonl.read(out / "manifest.jsonl")[0]


# --------------------------------------------------------------------------- whole run


def test_every_fixture_page_is_kept_or_skipped_with_its_reason(clean_run, server):
    out, report, _ = clean_run
    rows = {(r["dish"], r["site"]): r for r in report.rows()}
    assert len(rows) == 6
    for (_, site), row in rows.items():
        assert row["pages"] == server.site.expected_pages(site)
        assert row["kept"] + row["skipped"] == row["pages"]
        assert row["kept"] == 6
    tallies = {(t.dish, t.site): t.skipped for t in report.tallies}
    assert tallies["banh-beo", "foody"] == Counter(robots=1, duplicate=1, http_404=1)
    assert tallies["banh-beo", "cooky"] == Counter(bad_image=3, duplicate=1, parse_failure=1)
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved["rows"] == report.rows()
    assert len(saved["skips"]) == sum(r["skipped"] for r in saved["rows"])


def test_manifest_items_follow_the_contract(clean_run):
    out, _, _ = clean_run
    items = read_manifest(out)
    assert Counter(i["dish"] for i in items) == {"banh-beo": 12, "bun-bo-hue": 12, "bun-dau-mam-tom": 12}
    assert len({i["id"] for i in items}) == len({i["sha256"] for i in items}) == 36
    names = {"banh-beo": "bánh bèo", "bun-bo-hue": "bún bò Huế", "bun-dau-mam-tom": "bún đậu mắm tôm"}
    for item in items:
        assert set(item) == set(manifest.FIELDS) and manifest.field_problem(item) is None
        assert item["dish_name"] == names[item["dish"]]
        data = (out / item["image_path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        assert min(item["width"], item["height"]) >= 224
        assert "/s/" in item["image_url"]  # upgraded from the thumbnail the page linked
        assert item["title"] and item["text_vi"]
        assert item["retrieved_at"].endswith("+00:00")
    cooky_json_ld = [i for i in items if i["site"] == "cooky" and i["ingredients"]]
    assert cooky_json_ld and all(isinstance(x, str) for i in cooky_json_ld for x in i["ingredients"])
    assert not list(out.rglob("*.tmp"))


def test_rate_limit_spaces_requests_to_one_host(clean_run):
    _, report, clock = clean_run
    assert report.http["stats"]["requests"] > 100
    assert clock.now >= report.http["stats"]["requests"] - 1  # >= 1 s apart on the fake clock


def test_requests_to_one_host_are_at_least_min_interval_apart(server):
    clock, starts = FakeClock(), []
    client = make_client(clock, min_interval=1.5)
    real_get = client.session.get

    def recording_get(url, **kwargs):
        starts.append(clock())
        return real_get(url, **kwargs)

    client.session.get = recording_get
    for path in (
        "/foody/ho-chi-minh/banh-beo-0",
        "/foody/ho-chi-minh/banh-beo-1",
        "/cooky/cong-thuc/banh-beo-0",
    ):
        client.get(server.url(path))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 4  # robots.txt, then three pages
    assert all(gap >= 1.5 for gap in gaps)


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


def test_other_4xx_is_not_retried(server):
    path = "/foody/ho-chi-minh/bun-bo-hue-8"  # the fixture's closed restaurant
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
    assert not client.allowed(server.url("/foody/ho-chi-minh/banh-beo-0"))
    assert "disallow all" in next(iter(client.robots_status.values()))


# --------------------------------------------------------------------------- images


def test_truncated_image_is_rejected(server):
    data = requests.get(server.url(server.site.image_path("cooky", "banh-beo", 7)), timeout=5).content
    with pytest.raises(Skip, match="truncated") as err:
        scraping.validate_image(data)
    assert err.value.reason == "bad_image"


def test_non_image_served_as_jpeg_is_rejected(server):
    resp = requests.get(server.url(server.site.image_path("cooky", "banh-beo", 8)), timeout=5)
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
        server.url(server.site.image_path("cooky", "banh-beo", 10, "s200x150")), timeout=5
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
    again = requests.get(server.url(server.site.image_path("foody", "banh-beo", 7)), timeout=5).content
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


# --------------------------------------------------------------------------- extraction


def test_malformed_html_still_yields_fields(server):
    page = requests.get(server.url("/cooky/cong-thuc/banh-beo-5"), timeout=5)
    data = scraping.extract_page(page.text, page.url, scraping.load_config()["sites"]["cooky"]["selectors"])
    assert data.title.startswith("Bánh bèo") and data.description
    assert data.image_url.endswith("/s320x240/photo-banh-beo-5.jpg")  # from data-src, not the blank src
    assert len(data.ingredients) == 2


def test_invalid_json_ld_falls_back_to_selectors(server, config):
    page = requests.get(server.url("/cooky/cong-thuc/banh-beo-4"), timeout=5)
    data = scraping.extract_page(page.text, page.url, config["sites"]["cooky"]["selectors"])
    assert data.notes == ["json_ld_invalid"]
    assert data.methods == {"title": "selectors", "description": "selectors", "image": "selectors"}
    assert "/s320x240/" in data.image_url  # lazy image from data-original


def test_json_ld_recipe_is_preferred(server, config):
    page = requests.get(server.url("/cooky/cong-thuc/banh-beo-0"), timeout=5)
    data = scraping.extract_page(page.text, page.url, config["sites"]["cooky"]["selectors"])
    assert set(data.methods.values()) == {"json-ld"}
    assert data.ingredients[0] == "bột gạo"


def test_site_that_answers_html_instead_of_json_is_reported(site_config, tmp_path):
    foody = {**site_config["sites"]["foody"], "listing_headers": {}}  # as an anti-bot page would look
    broken = {**site_config, "sites": {"foody": foody}}
    report = scraping.scrape(broken, tmp_path, make_client(FakeClock()), progress=False)
    assert sum(t.kept for t in report.tallies) == 0
    (problem,) = report.problems()
    assert problem.startswith("foody: nothing usable") and "not JSON" in problem


def test_bad_config_and_manifest_name_the_culprit(tmp_path):
    bad = tmp_path / "dishes.json"
    dishes = [{"slug": "Bún Bò", "name_vi": "x", "keywords": {}}]
    bad.write_text(json.dumps({"request_interval": 1.0, "dishes": dishes, "sites": {}}))
    with pytest.raises(ValueError, match=r"dishes\[0\]\.slug"):
        scraping.load_config(bad)
    bad.write_text(json.dumps({"dishes": dishes, "sites": {}}))
    with pytest.raises(ValueError, match="missing top-level 'request_interval'"):
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
    resumed_page = "/foody/ho-chi-minh/banh-beo-0"
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
    profile = runtime.profile("smoke")
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
