"""IKM arithmetic checked against cases computed by hand (PermenPANRB 14/2017)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.reports import ikm
from bot.reports.ikm import ElementTally


def uniform(value: str) -> list[ElementTally]:
    """Nine elements whose NRR is exactly value/25, so the exact IKM is ``value``."""
    nrr = Fraction(Decimal(value)) / 25
    # scale to integer sum/count: e.g. 2.5996 = 6499 / 2500
    return [ElementTally(nrr.numerator, nrr.denominator)] * 9


def test_hand_computed_two_respondents_with_skips() -> None:
    # R1 answered all nine; R2 skipped elements 1 and 6 ("tidak tahu").
    r1 = [4, 3, 2, 1, 4, 3, 2, 1, 4]
    r2 = [None, 3, 4, 1, 2, None, 2, 3, 4]
    result = ikm.from_scores([r1, r2])
    # NRR: 4/1, 6/2, 6/2, 2/2, 6/2, 3/1, 4/2, 4/2, 8/2 -> sum 25 -> 25/9 * 25 = 69.444...
    assert result.nrr == (4, 3, 3, 1, 3, 3, 2, 2, 4)
    assert result.value == Decimal("69.44")
    assert (result.grade, result.label) == ("C", "Kurang Baik")
    # Counting a skip as a zero would give element 1 an NRR of 2 instead of 4.
    assert result.nrr_float(1) == 4.0


def test_incomplete_survey_counts_in_answered_elements() -> None:
    full = [3] * 9
    partial = [1, 1, 1]  # stopped after three elements
    result = ikm.from_scores([full, partial])
    assert result.nrr[:3] == (2, 2, 2)
    assert result.nrr[3:] == (3,) * 6
    # (2*3 + 3*6) / 9 * 25 = 66.666... -> 66.67
    assert result.value == Decimal("66.67")


def test_all_best_and_all_worst() -> None:
    assert ikm.from_scores([[4] * 9]).value == Decimal("100.00")
    best = ikm.from_scores([[4] * 9])
    assert (best.grade, best.label) == ("A", "Sangat Baik")
    worst = ikm.from_scores([[1] * 9])
    assert (worst.value, worst.grade, worst.label) == (Decimal("25.00"), "D", "Tidak Baik")


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        ("64.99", "D"), ("65.00", "C"), ("76.60", "C"), ("76.61", "B"), ("88.30", "B"), ("88.31", "A"),
    ],
)
def test_grade_boundaries(value: str, grade: str) -> None:
    result = ikm.compute(uniform(value))
    assert result.value == Decimal(value)
    assert result.grade == grade
    assert ikm.grade(Decimal(value))[0] == grade


@pytest.mark.parametrize(
    ("exact", "shown", "grade"),
    [
        ("64.995", "65.00", "C"),  # rounded first, then graded
        ("64.9949", "64.99", "D"),
        ("76.605", "76.61", "B"),
        ("76.6049", "76.60", "C"),
        ("88.305", "88.31", "A"),
        ("88.3049", "88.30", "B"),
    ],
)
def test_grade_is_decided_on_the_value_rounded_half_up(exact: str, shown: str, grade: str) -> None:
    result = ikm.compute(uniform(exact))
    assert result.value == Decimal(shown)
    assert result.grade == grade


def test_empty_week_has_no_ikm_and_does_not_divide_by_zero() -> None:
    result = ikm.compute({})
    assert result.value is None and result.grade is None
    assert result.missing == tuple(range(1, 10))
    assert result.lowest() == []
    assert not result.available


def test_element_without_answers_makes_ikm_unavailable_and_is_named() -> None:
    rows = [[4, 4, 4, None, 4, 4, 4, 4, 4], [3, 3, 3, None, 3, 3, 3, 3, 3]]
    result = ikm.from_scores(rows)
    assert result.value is None
    assert result.missing == (4,)
    assert result.nrr_float(1) == 3.5


def test_rounded_weights_option() -> None:
    r: list[list[int | None]] = [[4, 3, 2, 1, 4, 3, 2, 1, 4], [None, 3, 4, 1, 2, None, 2, 3, 4]]
    # sum NRR 25 -> 25 * 0.111 * 25 = 69.375 -> 69.38 ; 25 * 0.11 * 25 = 68.75
    assert ikm.from_scores(r, "0.111").value == Decimal("69.38")
    assert ikm.from_scores(r, "0.11").value == Decimal("68.75")
    assert ikm.from_scores([[4] * 9], "0.111").value == Decimal("99.90")
    assert ikm.from_scores(r).value == Decimal("69.44")


def test_lowest_three_ties_in_official_order() -> None:
    result = ikm.compute([ElementTally(s, 1) for s in (3, 2, 4, 2, 1, 4, 2, 3, 3)])
    assert [e for e, _ in result.lowest(3)] == [5, 2, 4]


def test_wrong_number_of_elements_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected 9"):
        ikm.compute([ElementTally(4, 1)] * 8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.integers(1, 4)), min_size=9, max_size=9), min_size=1, max_size=30))
def test_matches_a_plain_float_computation(rows: list[list[int | None]]) -> None:
    result = ikm.from_scores(rows)
    columns: list[list[int]] = [[v for r in rows if (v := r[i]) is not None] for i in range(9)]
    if any(not c for c in columns):
        assert result.value is None
        return
    expected = sum(sum(c) / len(c) for c in columns) / 9 * 25
    assert result.value is not None
    assert abs(float(result.value) - expected) <= 0.005 + 1e-9
    assert 25 <= result.value <= 100
