"""The smoke profile's sources: tiny models, fixture sites, synthetic data and the image-shuffled control's data.

`profiles.profile("smoke")` hands this package to its `Profile` (`smoke_kit`); `runtime` never imports it. Its
modules load on first use (PEP 562), so notebook 01 asking for fixture sites does not import peft or Trainer.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from helpers import runtime

__all__ = [
    "icon_scenes",
    "mvtec_fixtures",
    "rebuild",
    "scrape_fixtures",
    "shape_captions",
    "shuffled",
    "synthetic_stage3",
    "tiny_models",
    "vivqa_fixtures",
]


def __getattr__(name: str) -> ModuleType:
    """Import the submodule `name` when it is first asked for."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def rebuild(name: str, profile: runtime.Profile) -> None:
    """Make an earlier notebook's output offline (see `runtime.PREREQUISITES`), with that notebook's code."""
    from helpers.data import dish_dataset, scraping

    makers = {
        "scraped": lambda: scraping.run_scrape(profile, progress=False),
        "dataset": lambda: dish_dataset.build_and_save(profile),
    }
    print(f"smoke profile: rebuilding '{name}' offline (notebook {runtime.PREREQUISITES[name][1]})")
    makers[name]()
