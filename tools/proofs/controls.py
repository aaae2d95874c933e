"""The bounds a learning proof checks: the trained model against its image-shuffled control
(`helpers.smoke.shuffled`) and the blind baselines."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bound:
    """One inequality of a learning proof, as a margin: it holds when `margin` > 0 (>= 0 when not `strict`)."""

    name: str
    margin: float
    strict: bool = True

    @property
    def holds(self) -> bool:
        """Whether the inequality is met."""
        return self.margin > 0 if self.strict else self.margin >= 0


def check(bounds: list[Bound]) -> list[Bound]:
    """`bounds`, after raising AssertionError naming every one that fails (the proof cells of appendix A1 §6)."""
    failed = [f"{b.name} (margin {b.margin:+.3f})" for b in bounds if not b.holds]
    if failed:
        raise AssertionError("the tiny model did not learn from the images: " + "; ".join(failed))
    return bounds
