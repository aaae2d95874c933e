"""The smoke profile's machinery: tiny models, fixture sites, synthetic data and learning checks.

Only `runtime.Profile.smoke_kit()` imports this package from the rest of `helpers`.
"""

from __future__ import annotations

from helpers import runtime
from helpers.smoke import (
    icon_scenes,
    learning,
    mvtec_fixtures,
    mvtec_learning,
    scrape_fixtures,
    shape_captions,
    synthetic_stage3,
    tiny_models,
    vivqa_fixtures,
    vivqa_learning,
    vqa_learning,
)

__all__ = [
    "icon_scenes",
    "learning",
    "mvtec_fixtures",
    "mvtec_learning",
    "rebuild",
    "scrape_fixtures",
    "shape_captions",
    "synthetic_stage3",
    "tiny_models",
    "vivqa_fixtures",
    "vivqa_learning",
    "vqa_learning",
]


def rebuild(name: str, profile: runtime.Profile) -> None:
    """Make an earlier notebook's output offline (see `runtime.PREREQUISITES`), with that notebook's code."""
    from helpers.data import dish_dataset, scraping

    makers = {
        "scraped": lambda: scraping.run_scrape(profile, progress=False),
        "dataset": lambda: dish_dataset.build_and_save(profile),
        "caption-predictions": lambda: learning.caption_predictions(profile),
    }
    print(f"smoke profile: rebuilding '{name}' offline (notebook {runtime.PREREQUISITES[name][1]})")
    makers[name]()
