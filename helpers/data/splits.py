"""Group-aware stratified splits: every row of a group (an image, a near-duplicate set) in one split, the groups of
each stratum shuffled with one seed and cut by fractions; `check_fractions` is the one check of split shares."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence

from helpers.bad_input import BadInput

SPLITS = ("train", "validation", "test")


def check_fractions(fractions: Sequence[float]) -> None:
    """Raise unless `fractions` are three non-negative shares (train, validation, test) summing to 1, train > 0."""
    if len(fractions) != 3 or min(fractions) < 0 or fractions[0] <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise BadInput(
            f"fractions {tuple(fractions)} must be three shares (train > 0, validation, test >= 0) summing to 1"
        )


def group_split(
    groups: Sequence[Hashable],
    fractions: Sequence[float],
    seed: int,
    strata: Sequence[Hashable] | None = None,
    at_least_one: bool = False,
) -> dict[str, list[int]]:
    """Row indices per split, in the order drawn: per stratum (sorted, one `random.Random(seed)`), the distinct
    groups sorted and shuffled, the first round(validation x n) to validation, the next round(test x n) to test, the
    rest to train, each group's rows together; `at_least_one` gives every non-zero share a group at least and
    refuses a stratum too small for that."""
    check_fractions(fractions)
    strata = [None] * len(groups) if strata is None else strata
    if len(strata) != len(groups):
        raise BadInput(f"{len(strata)} strata for {len(groups)} rows")
    rows: dict[Hashable, dict[Hashable, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row, (group, stratum) in enumerate(zip(groups, strata, strict=True)):
        rows[stratum][group].append(row)
    rng, drawn = random.Random(seed), {name: [] for name in SPLITS}
    for stratum in sorted(rows):
        shuffled = sorted(rows[stratum])
        rng.shuffle(shuffled)
        sizes = [round(share * len(shuffled)) for share in fractions[1:]]
        if at_least_one:
            sizes = [
                max(1, size) if share > 0 else 0 for size, share in zip(sizes, fractions[1:], strict=True)
            ]
            if len(shuffled) - sum(sizes) < 1:
                raise BadInput(f"{len(shuffled)} group(s) are too few for the splits {tuple(fractions)}")
        for position, group in enumerate(shuffled):
            name = "validation" if position < sizes[0] else "test" if position < sum(sizes) else "train"
            drawn[name] += rows[stratum][group]
    return drawn
