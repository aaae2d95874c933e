"""The smoke machinery computes each tiny model and learning-check result once, under a key of all its inputs, and
loads its parts only when asked; a proof names every bound it misses."""

import json
import subprocess
import sys

import pytest

from helpers import runtime
from helpers.smoke import cache, controls


@pytest.fixture
def cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_result_is_computed_once_per_key(cache_root):
    calls = []

    def compute():
        calls.append(1)
        return {"accuracy": 0.75, "predictions": ["màu đỏ"]}

    first = cache.result("demo", compute, seed=0)
    assert cache.result("demo", compute, seed=0) == first == {"accuracy": 0.75, "predictions": ["màu đỏ"]}
    cache.result("demo", compute, seed=1)  # another argument, another key
    assert len(calls) == 2 and len(list((cache_root / "results").glob("demo-*.json"))) == 2


def test_the_key_follows_file_contents_and_library_versions(tmp_path, monkeypatch):
    source = runtime.REPO_ROOT / "data" / "dishes.json"
    before = cache.key([source], "x")
    assert cache.key([source], "x") == before and cache.key([source], "y") != before
    monkeypatch.setattr(cache, "libraries", lambda: "torch=0.0")
    assert cache.key([source], "x") != before


def test_a_folder_is_built_once_and_never_seen_half_made(cache_root):
    made = []

    def make(path):
        assert path.name.startswith(".")  # built beside its final name, renamed when done
        (path / "config.json").write_text(json.dumps({"made": len(made)}))
        made.append(path)

    files = [runtime.REPO_ROOT / "data" / "dishes.json"]
    first = cache.folder("models", files, make)
    assert cache.folder("models", files, make) == first and len(made) == 1
    assert json.loads((first / "config.json").read_text()) == {"made": 0}
    assert [p.name for p in (cache_root / "models").iterdir() if not p.name.endswith(".lock")] == [first.name]


def test_a_proof_names_every_bound_it_misses():
    bounds = [
        controls.Bound("a >= 0.9", 0.0, strict=False),
        controls.Bound("b > c", 0.0),
        controls.Bound("d", -0.2),
    ]
    with pytest.raises(AssertionError, match=r"b > c \(margin \+0.000\); d \(margin -0.200\)"):
        controls.check(bounds)
    assert controls.check(bounds[:1]) == bounds[:1]


def test_the_smoke_package_loads_its_parts_on_first_use():
    probe = (
        "import sys; from helpers import runtime\n"
        "kit = runtime.profile('smoke').smoke_kit(); kit.scrape_fixtures\n"
        "print(sorted(m for m in ('peft', 'bitsandbytes', 'transformers.trainer') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=runtime.REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
