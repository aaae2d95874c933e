"""The one group-aware stratified split (helpers.data.splits) that ViVQA, IconQA and MVTec-AD use."""

import pytest

from helpers.bad_input import BadInput
from helpers.data import splits


def test_a_group_stays_whole_each_stratum_is_cut_by_the_fractions_and_the_seed_repeats():
    groups = [k // 2 for k in range(80)]  # 40 groups of two rows
    strata = ["a" if k < 40 else "b" for k in range(80)]
    drawn = splits.group_split(groups, (0.5, 0.25, 0.25), seed=3, strata=strata)
    assert sorted(sum(drawn.values(), [])) == list(range(80))
    for name, rows in drawn.items():
        assert all(groups[row] in {groups[r] for r in rows} for row in rows)
        others = {groups[r] for other, rs in drawn.items() if other != name for r in rs}
        assert not {groups[r] for r in rows} & others  # no group on two sides
        assert [strata[r] for r in rows].count("a") == [strata[r] for r in rows].count("b")
    assert {name: len(rows) for name, rows in drawn.items()} == {"train": 40, "validation": 20, "test": 20}
    assert splits.group_split(groups, (0.5, 0.25, 0.25), seed=3, strata=strata) == drawn
    assert splits.group_split(groups, (0.5, 0.25, 0.25), seed=4, strata=strata) != drawn


def test_at_least_one_group_per_share_and_a_clear_error_when_there_are_too_few():
    assert len(splits.group_split([1, 2, 3], (0.9, 0.05, 0.05), seed=0, at_least_one=True)["test"]) == 1
    assert splits.group_split([1, 2, 3], (0.9, 0.05, 0.05), seed=0)["test"] == []
    with pytest.raises(BadInput, match="2 group\\(s\\) are too few"):
        splits.group_split([1, 2], (0.5, 0.25, 0.25), seed=0, at_least_one=True)
    with pytest.raises(BadInput, match="3 strata for 2 rows"):
        splits.group_split([1, 2], (0.5, 0.25, 0.25), seed=0, strata=["a", "b", "c"])
