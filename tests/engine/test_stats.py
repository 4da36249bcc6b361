"""The paired difference of two variants on shared episodes, against a hand computation."""
from __future__ import annotations

import math

import pytest

from stsampler.engine.stats import Z95, mean_ci95, paired_difference, seed_mean_per_episode


def test_paired_difference_matches_a_hand_computation() -> None:
    a = [[0.2, 0.4, 0.6, 0.8], [0.4, 0.4, 0.6, 0.6]]  # two seeds, four episodes
    b = [[0.6, 0.4, 1.0, 0.8]]
    # Seed means of A per episode: 0.3, 0.4, 0.6, 0.7; differences: 0.3, 0.0, 0.4, 0.1.
    # Mean 0.2; sample variance ((0.1)^2 + (0.2)^2 + (0.2)^2 + (0.1)^2) / 3 = 0.1 / 3.
    result = paired_difference(a, b)
    assert result.per_episode == pytest.approx([0.3, 0.0, 0.4, 0.1])
    assert result.mean == pytest.approx(0.2)
    se = math.sqrt(0.1 / 3) / 2
    assert result.ci95 == pytest.approx(1.959964 * se, rel=1e-6)
    z = 0.2 / se  # 2.19089
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    assert result.p_value == pytest.approx(0.028459, abs=1e-5)


def test_a_variant_identical_to_the_baseline_differs_by_nothing() -> None:
    runs = [[0.2, 1.0, 0.6, 0.4, 0.8], [0.4, 0.8, 0.6, 0.2, 1.0]]
    result = paired_difference(runs, runs)
    assert result.mean == 0.0 and result.ci95 == 0.0 and result.p_value == 1.0


def test_noise_around_the_same_accuracy_gives_an_interval_covering_zero() -> None:
    a = [[0.2, 0.6, 0.4, 0.8, 0.6, 0.4]]
    b = [[0.4, 0.4, 0.6, 0.6, 0.4, 0.6]]  # per-episode differences +-0.2 with mean 0
    result = paired_difference(a, b)
    assert abs(result.mean) <= result.ci95 and result.p_value > 0.05


def test_mean_ci95_and_seed_means() -> None:
    mean, ci = mean_ci95([0.0, 1.0])
    assert mean == 0.5 and ci == pytest.approx(Z95 * 0.5 / math.sqrt(2))
    assert mean_ci95([0.7]) == (0.7, 0.0)
    assert seed_mean_per_episode([[0.0, 1.0], [1.0, 1.0]]) == [0.5, 1.0]
    with pytest.raises(ValueError, match="same number of episodes"):
        seed_mean_per_episode([[0.0], [1.0, 1.0]])
