"""A notebook's profile, made once: the run's settings from `runtime`, and in smoke the `smoke` package handed in.

This module sits above both, so `runtime` never imports the smoke profile's machinery.
"""

from __future__ import annotations

import os
from dataclasses import replace

from helpers import runtime, smoke


def profile(name: str | None = None) -> runtime.Profile:
    """The profile `name` (default: the one the environment selects), with its outputs root and recipes (their
    session budget replaced by `TUTORIAL_SESSION_MINUTES` when set, full sizes scaled by `TUTORIAL_SCALE`)."""
    name = name or runtime.profile_name()
    if name not in runtime.PROFILES:
        raise ValueError(f"{name!r} is not a profile; use one of {', '.join(runtime.PROFILES)}")
    # both checked in every profile, the scale used in full only
    minutes, factor = runtime.session_minutes_override(), runtime.scale()
    factor = factor if name == "full" else 1.0

    def adjusted(recipe: runtime.Recipe) -> runtime.Recipe:
        recipe = runtime.scaled(recipe, factor)
        return recipe if minutes is None else replace(recipe, session_minutes=minutes)

    recipes = {
        run: {chapter: adjusted(r) for chapter, r in chapters.items()}
        for run, chapters in runtime.RECIPES[name].items()
    }
    return runtime.Profile(name, runtime.outputs_root(), recipes, smoke if name == "smoke" else None)


def start(notebook: str, setting: str = "auto", seed: int = 42) -> runtime.Profile:
    """A notebook's first call: resolve the profile from its `PROFILE` setting (`runtime.profile_name`), keep the
    choice in `TUTORIAL_PROFILE` so every later call and every process the kernel starts agrees, print the banner,
    seed."""
    name = runtime.profile_name(setting)
    os.environ["TUTORIAL_PROFILE"] = name
    current = profile(name)
    current.banner(notebook)
    runtime.seed_everything(seed)
    return current
