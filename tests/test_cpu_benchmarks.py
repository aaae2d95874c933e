"""The CPU benchmarks' figures in the README are the ones their scripts last wrote to benchmarks/results/."""

import json

from benchmarks import results
from helpers import runtime


def test_the_readme_lists_each_benchmarks_latest_figures():
    readme = (runtime.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert results.readme_with_section(readme) == readme, "run: python -m benchmarks.results"


def test_a_new_measurement_changes_the_listed_figures(tmp_path, monkeypatch):
    record = results.read("generation") | {"figures": {"speed-up": 99.5}}
    (tmp_path / "generation.json").write_text(json.dumps(record), encoding="utf-8")
    for name in ("blip2_collate", "metrics"):
        (tmp_path / f"{name}.json").write_text(json.dumps(results.read(name)), encoding="utf-8")
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    section = results.readme_section()
    assert "| speed-up | 99.5 |" in section and section.startswith(results.START)
