"""When a conversation goes to a human: pure rules, no I/O.

- **Serious categories**: pungli (permintaan imbalan), penyalahgunaan wewenang, diskriminasi.
- **Bribery and illegal-fee words** in a complaint's text, fuzzy-matched so typos and Indonesian
  affixes still count ("pungly", "sogokan", "disuap", "uang rokoknya"), while ordinary words
  that look alike do not ("calon", "gratis", "siap"). Short words (four letters) must match
  exactly after affixes are removed: one typo in "calo" is already another word.
- **The same in English** ("bribe", "bribery", "kickback", "extortion", "pay extra", "under the
  table", "facilitation fee", "illegal fee"): English words of six letters or fewer must match
  exactly ("bride" is not "bribe").
  "terserah" only counts next to money words ("bayar terserah"), and "uang administrasi"
  only for a service that is free by law, because both are everyday phrases otherwise.
- **Asking for a person**: "bicara dengan petugas", "mau bicara sama orang", "mau ngomong sama
  orang", "/petugas".
- **A very low survey**: any element scored 1, or the response's own IKM in grade D
  (configurable per agency: ``any_one``, ``grade_d``, ``both`` or ``off``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from itertools import pairwise

from rapidfuzz import fuzz, process, utils

SERIOUS_CATEGORIES = frozenset({"pungli", "wewenang", "diskriminasi"})

# One entry per term: its written forms (verb forms included) as residents type them.
SINGLE_TERMS: dict[str, tuple[str, ...]] = {
    "pungli": ("pungli", "dipungli", "dipunglii"),
    "calo": ("calo", "percaloan"),
    "suap": ("suap", "disuap", "menyuap", "nyuap", "suapan"),
    "sogok": ("sogok", "disogok", "menyogok", "nyogok", "sogokan"),
    "gratifikasi": ("gratifikasi",),
    "pemerasan": ("pemerasan", "diperas", "memeras"),
    "seikhlasnya": ("seikhlasnya", "sekhlasnya", "seiklasnya"),
    # English, for residents who write in English: "bribe" is one letter from "bride" and
    # "bribed" from "bribes", so English forms allow a typo only from ENGLISH_FUZZY_MIN letters.
    "bribe": ("bribe", "bribes", "bribed", "bribing", "bribery", "briber"),
    "kickback": ("kickback", "kickbacks"),
    "extortion": ("extortion", "extort", "extorted", "extorting", "extorts"),
}
ENGLISH_TERMS = frozenset({"bribe", "kickback", "extortion"})
ENGLISH_FUZZY_MIN = 7
PHRASES: dict[str, tuple[str, str]] = {
    "pungutan liar": ("pungutan", "liar"),
    "uang pelicin": ("uang", "pelicin"),
    "uang rokok": ("uang", "rokok"),
    "uang bensin": ("uang", "bensin"),
    "uang tips": ("uang", "tips"),
    "uang capek": ("uang", "capek"),
    "uang kopi": ("uang", "kopi"),
    "uang terima kasih": ("uang", "terimakasih"),
    "pay extra": ("pay", "extra"),
    "paid extra": ("paid", "extra"),
    "extra payment": ("extra", "payment"),
    "under the table": ("under", "thetable"),
    "facilitation fee": ("facilitation", "fee"),
    "illegal fee": ("illegal", "fee"),
    "illegal fees": ("illegal", "fees"),
    "illegal charge": ("illegal", "charge"),
    "illegal levy": ("illegal", "levy"),
    "grease money": ("grease", "money"),
    "cigarette money": ("cigarette", "money"),
}
MONEY_WORDS = frozenset({"uang", "duit", "bayar", "dibayar", "membayar", "biaya", "kasih", "ongkos"})
SUFFIXES = ("nya", "kan", "an", "lah", "in")
FUZZY_MIN_LENGTH = 5
FUZZY_CUTOFF = 80.0
MONEY_ALIASES = {"duit": "uang", "uangnya": "uang", "duitnya": "uang"}

PERSON_PHRASES: tuple[str, ...] = (
    "bicara dengan petugas",
    "bicara sama petugas",
    "bicara dengan orang",
    "bicara sama orang",
    "berbicara dengan orang",
    "berbicara dengan petugas",
    "ngomong sama orang",
    "ngomong dengan orang",
    "ngobrol sama orang",
    "ngobrol sama petugas",
    "ketemu petugas",
    "hubungi orang",
    "ngomong dengan petugas",
    "ngobrol dengan petugas",
    "hubungi petugas",
    "minta petugas",
    "mau ke petugas",
    "sambungkan ke petugas",
    "bicara dengan manusia",
    "talk to a person",
    "talk to a human",
    "speak to a person",
    "speak to staff",
)
PERSON_CUTOFF = 88.0
# Chat shorthand residents use, expanded before matching.
SHORTHAND = {"dgn": "dengan", "dg": "dengan", "sm": "sama", "ama": "sama", "org": "orang",
             "ptgs": "petugas", "mo": "mau", "pengen": "mau", "ingin": "mau"}


def _tokens(text: str) -> list[str]:
    return utils.default_process(text).split()


def _stems(token: str) -> list[str]:
    """The token and the token without one common suffix ("rokoknya" -> "rokok")."""
    out = [token]
    for suffix in SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            out.append(token[: -len(suffix)])
    return out


def _word_matches(token: str, forms: tuple[str, ...], fuzzy_min: int = FUZZY_MIN_LENGTH) -> bool:
    for stem in _stems(token):
        if stem in forms:
            return True
        if len(stem) >= fuzzy_min:
            long_forms = [f for f in forms if len(f) >= fuzzy_min]
            best = process.extractOne(stem, long_forms, scorer=fuzz.ratio,
                                      processor=utils.default_process, score_cutoff=FUZZY_CUTOFF)
            if best is not None and stem[0] == best[0][0]:
                return True
    return False


def bribery_terms(text: str, free_service: bool = False) -> list[str]:
    """The bribery / illegal-fee terms found in ``text`` (canonical names, in list order)."""
    tokens = [MONEY_ALIASES.get(t, t) for t in _tokens(text)]
    found: list[str] = []
    for term, forms in SINGLE_TERMS.items():
        fuzzy_min = ENGLISH_FUZZY_MIN if term in ENGLISH_TERMS else FUZZY_MIN_LENGTH
        if any(_word_matches(t, forms, fuzzy_min) for t in tokens):
            found.append(term)
    pairs = list(pairwise(tokens))
    joined = [(a, b + c) for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)]
    for term, (first, second) in PHRASES.items():
        if term in found:
            continue
        for a, b in [*pairs, *joined]:
            if _word_matches(a, (first,)) and _word_matches(b, (second,)):
                found.append(term)
                break
    if "terserah" in tokens and MONEY_WORDS & set(tokens):
        found.append("terserah")
    if free_service and any(a == "uang" and _word_matches(b, ("administrasi",)) for a, b in pairs):
        found.append("uang administrasi")
    return found


def about_bribery(category: str | None, text: str, free_service: bool = False) -> bool:
    """Is this complaint about bribery or an illegal fee (the digest and the periodic report
    list these first)? Its category says so, or its words do by :func:`bribery_terms`."""
    return category == "pungli" or bool(bribery_terms(text, free_service))


def asks_for_person(text: str) -> bool:
    """The resident wants a human ("bicara dengan petugas", "/petugas")."""
    if len(text) > 200:
        return False
    processed = " ".join(SHORTHAND.get(t, t) for t in _tokens(text))
    if not processed:
        return False
    if processed in ("petugas", "operator", "manusia", "cs", "human", "staff"):
        return True
    # The whole phrase must stand in the text (give or take a typo), not just one of its words.
    return any(
        len(processed) >= len(phrase) - 2
        and fuzz.partial_ratio(phrase, processed) >= PERSON_CUTOFF
        for phrase in PERSON_PHRASES
    )


def is_serious(category: str | None, description: str, free_service: bool = False) -> list[str]:
    """Why a complaint goes to a human at once: its category and/or the terms found (empty: it does not)."""
    reasons = [f"category:{category}"] if category in SERIOUS_CATEGORIES else []
    reasons += [f"term:{t}" for t in bribery_terms(description, free_service)]
    return reasons


SURVEY_RULES = ("any_one", "grade_d", "both", "off")


def response_ikm(answers: Mapping[int, int | None]) -> Decimal | None:
    """One response's own index: mean of the answered elements x 25, rounded half-up."""
    scores = [s for s in answers.values() if s is not None]
    if not scores:
        return None
    exact = Fraction(sum(scores), len(scores)) * 25
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP)


def low_survey(answers: Mapping[int, int | None], rule: str = "both") -> list[str]:
    """Why a finished survey goes to a human (empty: it does not). Grade D is below 65.00."""
    if rule not in SURVEY_RULES:
        raise ValueError(f"unknown survey escalation rule {rule!r}: use one of {', '.join(SURVEY_RULES)}")
    reasons: list[str] = []
    if rule in ("any_one", "both"):
        reasons += [f"element:{e}" for e, s in sorted(answers.items()) if s == 1]
    if rule in ("grade_d", "both"):
        value = response_ikm(answers)
        if value is not None and value < Decimal("65.00"):
            reasons.append(f"ikm:{value}")
    return reasons
