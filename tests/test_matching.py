"""Real resident phrasings -> the service (or agency) they mean, against the bundled catalog.

The phrasings are data (tests/data/matching_phrasings.yaml): Indonesian and English, as on
the forms, colloquial and misspelled, with the service expected, "ask" or "not found".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.helpers.matching import ServiceMatcher
from tests.engine_driver import CATALOG

PHRASINGS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "matching_phrasings.yaml").read_text(encoding="utf-8"))


def test_the_table_is_big_and_covers_both_languages_and_every_outcome() -> None:
    assert len(PHRASINGS) >= 60
    langs = {p.get("lang", "id") for p in PHRASINGS}
    kinds = {p["expect"] if p["expect"] in ("ask", "not found") else "decided" for p in PHRASINGS}
    assert langs == {"id", "en"} and kinds == {"ask", "not found", "decided"}


@pytest.mark.parametrize("case", PHRASINGS, ids=lambda p: f"{p.get('lang', 'id')}:{p['text'] or '(empty)'}")
def test_phrasing(case: dict[str, Any]) -> None:
    match = CATALOG.matcher.match(case["text"], lang=case.get("lang", "id"))
    expect = case["expect"]
    if expect == "not found":
        assert match.decided is None and match.candidates == ()
    elif expect == "ask":
        assert match.decided is None
        assert set(case["among"]) <= set(match.candidates)
        assert len(match.candidates) <= 4
    else:
        assert match.decided == expect, match


def test_every_service_has_names_in_both_languages() -> None:
    for svc in CATALOG.services:
        assert svc.name and svc.name_en, svc.code
        assert svc.aliases and svc.aliases_en, svc.code


def test_the_resident_language_wins_a_tie() -> None:
    matcher = ServiceMatcher([("a", [("kartu", "id")]), ("b", [("kartu", "en")])])
    assert matcher.match("kartu", lang="id").decided is None  # 4 points apart: too close to decide
    assert matcher.match("kartu", lang="id").candidates == ("a", "b")
    assert matcher.match("kartu", lang="en").candidates == ("b", "a")


def test_short_words_must_match_whole() -> None:
    matcher = ServiceMatcher([("sip", ["sip dokter"]), ("imb", ["imb"])])
    assert matcher.match("sim").candidates == ()
    assert matcher.match("imb").decided == "imb"


def test_a_long_message_is_answered_and_looks_only_at_its_first_words() -> None:
    text = "ktp " + "kata " * 3000
    assert CATALOG.matcher.match(text).decided == "ktp"
    assert CATALOG.matcher.match("7" * 5000).candidates == ()
