"""IKM arithmetic of PermenPANRB 14/2017, kept pure so it can be checked by hand.

- NRR of an element = sum of its scores / number of respondents who answered it. A skipped
  answer ("tidak tahu", a NULL score) is left out of both: it neither lowers nor raises the NRR.
- IKM = mean of the nine NRR x 25 (weight exactly 1/9 each). Some agencies' spreadsheets use
  the rounded weights 0.111 or 0.11; those are available as options, never the default.
- The IKM is rounded half-up to two decimals and the grade is decided on that rounded value,
  so 76.605 becomes 76.61 and is "B", exactly as a head reading the published figure expects.
- An element nobody answered has no NRR. The regulation's mean of nine is then undefined, so
  the IKM is reported as unavailable with the missing elements named, never divided by zero
  and never silently averaged over fewer elements.

Exact rational arithmetic (``Fraction``) is used throughout: grade boundaries such as 88.305
must not flip because of binary floating point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Literal

ELEMENT_COUNT = 9
Weighting = Literal["exact", "0.111", "0.11"]
WEIGHTS: dict[str, Fraction] = {
    "exact": Fraction(1, ELEMENT_COUNT),
    "0.111": Fraction(111, 1000),
    "0.11": Fraction(11, 100),
}

# (lowest IKM of the grade, grade letter, official label), best first.
GRADES: tuple[tuple[Decimal, str, str], ...] = (
    (Decimal("88.31"), "A", "Sangat Baik"),
    (Decimal("76.61"), "B", "Baik"),
    (Decimal("65.00"), "C", "Kurang Baik"),
    (Decimal("25.00"), "D", "Tidak Baik"),
)
# The same bands on the NRR scale (IKM / 25), for charts.
NRR_BANDS: tuple[tuple[float, float, str], ...] = (
    (1.0, 65.00 / 25, "D"),
    (65.00 / 25, 76.61 / 25, "C"),
    (76.61 / 25, 88.31 / 25, "B"),
    (88.31 / 25, 4.0, "A"),
)


@dataclass(frozen=True)
class ElementTally:
    """What SQL returns for one element: the sum of scores and how many answered (non-NULL)."""

    total: int = 0
    answered: int = 0

    def __add__(self, other: ElementTally) -> ElementTally:
        return ElementTally(self.total + other.total, self.answered + other.answered)

    @property
    def nrr(self) -> Fraction | None:
        return Fraction(self.total, self.answered) if self.answered else None


@dataclass(frozen=True)
class Ikm:
    """The index for one group of answers (an agency or a service, a week or a year)."""

    nrr: tuple[Fraction | None, ...]  # nine entries, None = nobody answered that element
    value: Decimal | None  # rounded to two decimals; None when an element has no answers
    grade: str | None
    label: str | None
    missing: tuple[int, ...]  # 1-based elements without any answer

    @property
    def available(self) -> bool:
        return self.value is not None

    def nrr_float(self, element: int) -> float | None:
        v = self.nrr[element - 1]
        return float(v) if v is not None else None

    def lowest(self, n: int = 3) -> list[tuple[int, Fraction]]:
        """The ``n`` elements with the lowest NRR (ties: the official element order)."""
        known = [(i + 1, v) for i, v in enumerate(self.nrr) if v is not None]
        return sorted(known, key=lambda item: (item[1], item[0]))[:n]


def round2(value: Fraction) -> Decimal:
    """Round half-up to two decimals, exactly."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def grade(value: Decimal) -> tuple[str, str]:
    """Grade letter and label of an IKM already rounded to two decimals."""
    for lowest, letter, label in GRADES:
        if value >= lowest:
            return letter, label
    return GRADES[-1][1], GRADES[-1][2]  # below 25.00 cannot come from scores 1-4


def compute(
    tallies: Mapping[int, ElementTally] | Sequence[ElementTally], weighting: Weighting = "exact"
) -> Ikm:
    """IKM from per-element tallies (a mapping keyed 1..9, or a sequence of nine)."""
    if isinstance(tallies, Mapping):
        items = [tallies.get(e, ElementTally()) for e in range(1, ELEMENT_COUNT + 1)]
    else:
        items = list(tallies)
        if len(items) != ELEMENT_COUNT:
            raise ValueError(f"expected {ELEMENT_COUNT} elements, got {len(items)}")
    nrr = tuple(t.nrr for t in items)
    missing = tuple(i + 1 for i, v in enumerate(nrr) if v is None)
    if missing:
        return Ikm(nrr, None, None, None, missing)
    weight = WEIGHTS[weighting]
    exact = sum((v * weight for v in nrr if v is not None), Fraction(0)) * 25
    value = round2(exact)
    letter, label = grade(value)
    return Ikm(nrr, value, letter, label, ())


def from_scores(rows: Sequence[Sequence[int | None]], weighting: Weighting = "exact") -> Ikm:
    """IKM from raw questionnaires (nine scores each, None = skipped); for tests and small data."""
    tallies = [ElementTally() for _ in range(ELEMENT_COUNT)]
    for row in rows:
        for i, score in enumerate(row):
            if score is not None:
                tallies[i] = tallies[i] + ElementTally(score, 1)
    return compute(tallies, weighting)
