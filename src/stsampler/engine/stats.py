"""Statistics of a comparison on shared test episodes: seed summaries and the paired difference.

Every run of a comparison is tested on the same saved list of E episodes, so two variants can be
compared episode by episode. Per episode ``i`` the difference is ``d_i = mean over seeds of B_i -
mean over seeds of A_i``; the paired test is a one-sample test of ``mean(d) = 0`` over the E
episodes (the t statistic ``mean(d) / (sd(d) / sqrt(E))``, ``sd`` with E - 1 degrees of freedom),
with its two-sided p-value and 95% interval from the normal approximation of the t distribution
(exact enough for the hundreds of episodes a comparison uses: at E = 100 the t quantile is 1.98
against 1.96). Pairing removes what the two variants share, chiefly how hard each episode is, so
its interval is much tighter than the two variants' own intervals side by side. The spread over
training seeds is a separate source of variation and is reported separately (min/max over seeds).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

#: The two-sided 95% quantile of the standard normal distribution.
Z95 = 1.959963984540054


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean of ``values`` and the half-width of its 95% interval, ``1.96 * std / sqrt(n)`` with the
    population std (the formula of :func:`stsampler.engine.evaluate.evaluate`, so one seed's interval
    equals ``stsampler eval``'s); 0 for a single value."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    return statistics.fmean(values), (Z95 * statistics.pstdev(values) / math.sqrt(n) if n > 1 else 0.0)


def seed_mean_per_episode(runs: Sequence[Sequence[float]]) -> list[float]:
    """Per-episode accuracies ``[seeds][E]`` averaged over the seeds: a list of E values."""
    lengths = {len(r) for r in runs}
    if len(lengths) != 1 or not runs:
        raise ValueError(f"every run needs the same number of episodes, got lengths {sorted(lengths)}")
    return [statistics.fmean(values) for values in zip(*runs, strict=True)]


@dataclass
class PairedDifference:
    """B minus A on shared episodes, in the units of the inputs.

    Attributes:
        mean: mean over episodes of the per-episode difference.
        ci95: half-width of its 95% interval, ``1.96 * sd / sqrt(E)``.
        p_value: two-sided p-value of ``mean = 0`` (normal approximation of the paired t-test).
        per_episode: the E per-episode differences.
    """

    mean: float
    ci95: float
    p_value: float
    per_episode: list[float]


def paired_difference(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> PairedDifference:
    """The paired difference of B against A (module docstring).

    Args:
        a, b: per-episode accuracies ``[seeds][E]`` of each variant's runs on the same E episodes
            (the seed counts may differ).
    """
    mean_a, mean_b = seed_mean_per_episode(a), seed_mean_per_episode(b)
    if len(mean_a) != len(mean_b):
        raise ValueError(f"the variants were tested on different episode counts ({len(mean_a)}, {len(mean_b)})")
    diffs = [y - x for x, y in zip(mean_a, mean_b, strict=True)]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs) if n > 1 else 0.0
    se = sd / math.sqrt(n)
    if se > 0:
        p_value = math.erfc(abs(mean / se) / math.sqrt(2.0))
    else:
        p_value = 1.0 if mean == 0 else 0.0
    return PairedDifference(mean=mean, ci95=Z95 * se, p_value=p_value, per_episode=diffs)
