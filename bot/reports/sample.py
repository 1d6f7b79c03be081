"""The minimum sample of an SKM period (Krejcie and Morgan, 1970), as PermenPANRB 14/2017 asks.

    s = X² N P (1 - P) / (d² (N - 1) + X² P (1 - P)),  X² = 3.841, P = 0.5, d = 0.05

rounded up to a whole respondent. ``N`` is the service's users in the period the catalog
gives (``population`` with ``population_per``: year, semester, quarter, month or week); for
another period it is scaled by the period's length (a year's 12,000 users are 3,000 in a
quarter, about 231 in a week). Exact rational arithmetic, so N = 1000 is 278, not 277.99.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

CHI_SQUARE = Fraction(3841, 1000)  # one degree of freedom, 95 % confidence
P = Fraction(1, 2)
D = Fraction(5, 100)

# Periods a population may be given for, in weeks of an average year (52 1/6 weeks).
YEAR_WEEKS = Fraction(365, 7)
PERIOD_WEEKS: dict[str, Fraction] = {
    "year": YEAR_WEEKS,
    "semester": YEAR_WEEKS / 2,
    "quarter": YEAR_WEEKS / 4,
    "month": YEAR_WEEKS / 12,
    "week": Fraction(1),
}
PERIODS = tuple(PERIOD_WEEKS)
# Below this many respondents no change between two weeks is claimed, whatever the minimum.
TREND_FLOOR = 30


def krejcie_morgan(population: int) -> int:
    """Minimum respondents for a population of ``population`` (0 for an empty one)."""
    if population <= 0:
        return 0
    n = Fraction(population)
    s = CHI_SQUARE * n * P * (1 - P) / (D * D * (n - 1) + CHI_SQUARE * P * (1 - P))
    return min(math.ceil(s), population)


def scaled_population(population: int, per: str, weeks: Fraction | int) -> int:
    """The users of a period ``weeks`` long, from ``population`` per ``per`` (rounded up)."""
    if per not in PERIOD_WEEKS:
        raise ValueError(f"population period must be one of {', '.join(PERIODS)}, got {per!r}")
    return math.ceil(Fraction(population) * Fraction(weeks) / PERIOD_WEEKS[per])


@dataclass(frozen=True)
class Sample:
    """Respondents reached against the minimum of one period (``minimum`` None: no population)."""

    respondents: int
    population: int | None
    minimum: int | None

    @property
    def enough(self) -> bool:
        """Representative: the minimum is reached (without a population, the trend floor)."""
        return self.respondents >= (self.minimum if self.minimum is not None else TREND_FLOOR)

    @property
    def trend_ok(self) -> bool:
        """Whether a change from or to this period may be claimed at all."""
        return self.enough and self.respondents >= min(TREND_FLOOR, self.minimum or TREND_FLOOR)


def minimum_sample(respondents: int, populations: list[tuple[int, str]], weeks: Fraction | int) -> Sample:
    """The sample of a period ``weeks`` long over services with (population, per) each.

    The services' users add up to the agency's population; with none given, no minimum.
    """
    if not populations:
        return Sample(respondents, None, None)
    total = sum(scaled_population(n, per, weeks) for n, per in populations)
    return Sample(respondents, total, krejcie_morgan(total))
