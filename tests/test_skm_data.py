"""The data an official SKM needs (issue 14): minimum sample, one questionnaire per visit, a
questionnaire counted in the week of its first answer, and the respondent profile."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import func, select, update

from bot.app import App
from bot.catalog import ServiceSpec, survey_window
from bot.channels.console import ConsoleChannel
from bot.reports.digest.data import collect, find_agency
from bot.reports.digest.period import week_bounds
from bot.reports.digest.text import render_text
from bot.reports.digest.xlsx import write_xlsx
from bot.reports.profile import MIN_GROUP, NOT_STATED, profile_breakdown
from bot.reports.sample import YEAR_WEEKS, krejcie_morgan, minimum_sample, scaled_population
from bot.storage.models import Agency, Contact, Service, SurveyAnswer, SurveyResponse
from tests.conftest import FakeClock, make_app
from tests.digest_data import add_response
from tests.engine_driver import Driver

MON_W47 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB


# ---------------------------------------------------------------- Krejcie and Morgan


@pytest.mark.parametrize(("population", "minimum"), [
    # the published table (Krejcie & Morgan 1970, Table 1), where rounding up gives the same
    (10, 10), (100, 80), (200, 132), (346, 183), (1000, 278), (3500, 347), (5000, 357),
    (10000, 370), (1000000, 384),
    # rounded up, as the formula asks: the table prints these rounded to the nearest
    (50, 45),  # 44.34; table 44
    (500, 218),  # 217.47; table 217
    (2000, 323),  # 322.35; table 322
])
def test_krejcie_morgan_minimum(population: int, minimum: int) -> None:
    assert krejcie_morgan(population) == minimum


def test_minimum_never_exceeds_the_population_and_an_empty_one_needs_none() -> None:
    assert krejcie_morgan(1) == 1 and krejcie_morgan(3) == 3 and krejcie_morgan(0) == 0


def test_population_is_scaled_to_the_period() -> None:
    assert scaled_population(12000, "year", YEAR_WEEKS / 4) == 3000
    assert scaled_population(12000, "year", 1) == 231  # 12000 x 7 / 365 = 230.1, rounded up
    assert scaled_population(1000, "month", YEAR_WEEKS / 12) == 1000
    assert scaled_population(40, "week", Fraction(52)) == 2080
    with pytest.raises(ValueError, match="population period"):
        scaled_population(10, "fortnight", 1)
    # two services add up; the week's minimum and progress
    sample = minimum_sample(27, [(12000, "year"), (6000, "semester")], 1)
    assert sample.population == 231 + 231 and sample.minimum == krejcie_morgan(462) == 210
    assert not sample.enough and not sample.trend_ok
    assert minimum_sample(27, [], 1).minimum is None


def test_catalog_keys_are_checked_at_load() -> None:
    def spec(**kw: object) -> ServiceSpec:
        return ServiceSpec.model_validate({"code": "x", "name": "Xx", **kw})

    made = spec(population=12000, population_per="year", survey_once_per=12)
    assert made.survey_once_per == "12" and survey_window("12") == 12
    assert spec().survey_once_per == "day" and survey_window(None) is None
    for bad in ("week", 0, "0", True, 24 * 400):
        with pytest.raises(ValidationError, match="survey_once_per"):
            spec(survey_once_per=bad)
    with pytest.raises(ValidationError):
        spec(population=0)
    with pytest.raises(ValidationError):
        spec(population=10, population_per="decade")


# ---------------------------------------------------------------- respondent profile (engine)


def survey(d: Driver, service: str = "ktp") -> list[str]:
    d.press("survey")
    d.text(service)
    for _ in range(9):
        d.press("4")
    return [r.text for r in d.press("skip")]


@pytest.mark.parametrize(("lang", "skip", "thanks"), [
    ("id", "Tidak ingin menjawab", "profil Anda sudah disimpan"),
    ("en", "Prefer not to say", "your profile is saved"),
])
def test_profile_is_asked_once_after_the_first_survey_and_every_question_can_be_skipped(
    lang: str, skip: str, thanks: str,
) -> None:
    d = Driver(profile_asked=False, language=lang)
    d.onboard()
    said = survey(d)
    assert said[-1].endswith(d.last_question().text) and "1/4" in d.last_question().text
    assert "PermenPANRB 14/2017" in said[-2]  # why it is asked
    assert [c.label for c in d.last_question().choices][-3] == skip
    d.press("p")
    d.press("skip")
    d.press("sma")
    out = d.press("skip")
    assert thanks in out[0].text
    assert d.profile == {"gender": "p", "age": None, "education": "sma", "job": None}
    assert d.state["flow"] == "menu"
    # a second survey (another service) ends at the menu: asked once
    said = survey(d, "kk")
    assert d.state["flow"] == "menu" and not any("1/4" in t for t in said)


def test_profile_is_shown_and_changed_in_my_data() -> None:
    d = Driver(profile_asked=True, profile={"gender": "l", "age": "30-39"})
    d.onboard()
    shown = d.press("data")[-1].text
    assert "Jenis kelamin: Laki-laki" in shown and "Usia: 30-39 tahun" in shown and "Pendidikan: -" in shown
    d.press("profile")
    for code in ("p", "40-49", "d4-s1", "wirausaha"):
        d.press(code)
    shown = d.last_question().text
    assert d.state["flow"] == "data" and "Pekerjaan: Wirausaha" in shown and "Usia: 40-49 tahun" in shown


def test_consent_says_why_the_profile_is_asked() -> None:
    for lang, words in (("id", "PermenPANRB 14/2017"), ("en", "PermenPANRB 14/2017")):
        d = Driver(language=lang)
        assert words in d.text("/start")[-1].text


@pytest.mark.parametrize(("lang", "refused", "replaced"), [
    ("id", "baru saja mengisi survei", "jawaban baru menggantikan"),
    ("en", "You rated Annual Motor Vehicle Tax a short while ago", "the new answers replace"),
])
def test_a_second_questionnaire_is_refused_politely_and_may_change_the_first(
    lang: str, refused: str, replaced: str,
) -> None:
    d = Driver(once_per_visit=True, language=lang)
    d.onboard()
    survey(d, "pajak motor")  # not free by law: no fee question after low scores
    first = next(iter(d.surveys))
    d.press("survey")
    asked = d.text("pajak motor")[-1]
    assert refused in asked.text and [c.id for c in asked.choices] == ["update", "cancel"]
    d.press("update")
    assert replaced in d.last_question().text
    for _ in range(9):
        d.press("2")
    d.press("skip")
    assert list(d.surveys) == [first] and set(d.surveys[first].answers.values()) == {2}
    d.press("survey")
    d.text("pajak motor")
    d.press("cancel")
    assert d.state["flow"] == "menu" and list(d.surveys) == [first]


# ---------------------------------------------------------------- runtime, both databases


class Chat:
    def __init__(self, app: App, user: str = "warga-1") -> None:
        self.out = io.StringIO()
        self.channel = ConsoleChannel(app.runtime, app.texts, stdin=io.StringIO(), stdout=self.out, user_id=user)

    def say(self, *lines: str) -> str:
        start = self.out.tell()
        for line in lines:
            self.channel.send(line)
        return self.out.getvalue()[start:]


SCORES = ["4", "3", "2", "4", "1", "4", "3", "2", "1"]


def responses(app: App) -> list[SurveyResponse]:
    with app.factory() as db:
        return list(db.scalars(select(SurveyResponse).order_by(SurveyResponse.id)))


def test_one_questionnaire_per_service_and_day(db_url: str) -> None:
    clock = FakeClock()
    app = make_app(db_url, clock)
    try:
        chat = Chat(app)
        chat.say("/start", "1", "1", "ktp", *SCORES, "Lewati", "1", "1", "1", "1")
        assert len(responses(app)) == 1
        clock.advance(minutes=40)
        out = chat.say("1", "ktp")
        assert "baru saja mengisi survei untuk layanan KTP Elektronik (09.00)" in out
        out = chat.say("1")  # Ubah jawaban
        assert "jawaban baru menggantikan" in out
        out = chat.say(*["1"] * 9, "Lewati")
        assert "Profil" not in out  # asked once
        [resp] = responses(app)
        with app.factory() as db:
            scores = set(db.scalars(select(SurveyAnswer.score).where(SurveyAnswer.response_id == resp.id)))
            counted = set(db.scalars(select(SurveyAnswer.counted_at)))
        assert scores == {1} and counted == {resp.started_at}
        chat.say("1", "ktp", "2")  # Batal
        assert len(responses(app)) == 1
        chat.say("1", "kk", "4")  # another service: its own questionnaire
        assert len(responses(app)) == 2
        clock.advance(days=1)  # the next day (local): allowed again
        chat.say("/menu", "1", "ktp", "4")
        assert len(responses(app)) == 3
        # an agency may set hours instead of the local day
        with app.factory() as db, db.begin():
            db.execute(update(Service).where(Service.code == "ktp").values(survey_once_per="2"))
        clock.advance(hours=1)
        assert "belum selesai" in chat.say("/menu", "1", "ktp")  # one answer given: unfinished
        clock.advance(hours=2)
        assert "belum selesai" not in chat.say("/menu", "1", "ktp", "4")
        assert len(responses(app)) == 4
    finally:
        app.engine.dispose()


def test_an_unfinished_questionnaire_is_offered_again_not_called_filled(db_url: str) -> None:
    """Two answers and away: back at the same service that day, the resident is told it was left
    unfinished and may fill it in again, not that they "just rated" it."""
    clock = FakeClock()
    app = make_app(db_url, clock)
    try:
        chat = Chat(app)
        chat.say("/start", "1", "1", "ktp", "4", "3", "/menu")
        clock.advance(minutes=10)
        out = chat.say("1", "ktp")
        assert "belum selesai" in out and "Isi lagi" in out and "baru saja" not in out
        assert "jawaban baru menggantikan" in chat.say("1")
        chat.say(*SCORES, "Lewati", "1", "1", "1", "1")
        [resp] = responses(app)
        assert resp.status == "complete"
        out = chat.say("1", "ktp")  # now it was filled in
        assert "baru saja mengisi" in out and "belum selesai" not in out
    finally:
        app.engine.dispose()


def test_profile_snapshot_keeps_history_and_goes_on_deletion(db_url: str) -> None:
    clock = FakeClock()
    app = make_app(db_url, clock)
    try:
        chat = Chat(app)
        chat.say("/start", "1", "1", "ktp", *SCORES, "Lewati", "1", "3", "4", "5")  # l, 30-39, D1-D3, pelajar
        chat.say("1", "kk", "4")
        out = chat.say("/menu", "4")
        assert "Jenis kelamin: Laki-laki" in out and "Pendidikan: D1-D3" in out
        chat.say("1", "2", "7", "7", "7")  # change the profile: Perempuan, the rest not given
        with app.factory() as db:
            c = db.scalars(select(Contact)).one()
            assert (c.profile_gender, c.profile_age, c.profile_education, c.profile_job) == ("p", None, None, None)
        first, second = responses(app)
        assert (first.profile_gender, first.profile_age, first.profile_education, first.profile_job) == (
            "l", "30-39", "d1-d3", "pelajar")
        assert second.profile_gender == "l"  # answered before the change: history kept
        chat.say("/datasaya", "2", "1")  # delete my data
        assert all(r.profile_gender is None and r.profile_job is None for r in responses(app))
    finally:
        app.engine.dispose()


def test_a_questionnaire_crossing_sunday_midnight_counts_in_one_week(db_url: str, tmp_path: Any) -> None:
    clock = FakeClock(datetime(2026, 11, 22, 16, 50, tzinfo=UTC))  # Sunday 23:50 WIB, 2026-W47
    app = make_app(db_url, clock)
    try:
        chat = Chat(app)
        chat.say("/start", "1", "1", "ktp", *SCORES[:5])
        clock.advance(minutes=20)  # Monday 00:10 WIB, 2026-W48
        chat.say(*SCORES[5:], "Lewati")
        with app.factory() as db:
            agency = find_agency(db, "disdukcapil")
            w47, w48 = collect(db, agency, "2026-W47"), collect(db, agency, "2026-W48")
            path = write_xlsx(db, w47, tmp_path / "w47.xlsx")
            rows47 = list(load_workbook(path).worksheets[1].iter_rows(min_row=2, values_only=True))
            path = write_xlsx(db, w48, tmp_path / "w48.xlsx")
            rows48 = list(load_workbook(path).worksheets[1].iter_rows(min_row=2, values_only=True))
        assert w47.respondents_week == 1 and w47.week_ikm.value is not None and not w47.week_ikm.missing
        assert w48.respondents_week == 0 and not w48.week_tallies
        assert len(rows47) == 1 and rows48 == []
    finally:
        app.engine.dispose()


def test_profile_breakdown_never_shows_a_group_under_five(app: App) -> None:
    people = [("l", [4] * 9)] * 6 + [("p", [2] * 9)] * 5 + [(None, [3] * 9)] * 2
    for gender, scores in people:
        add_response(app, "ktp", MON_W47, scores, profile={"gender": gender})
    start, end = week_bounds("2026-W47", "Asia/Jakarta")
    with app.factory() as db:
        agency = find_agency(db, "disdukcapil")
        groups = {g.code: g for g in profile_breakdown(db, agency.id, "gender", start, end)}
    assert MIN_GROUP == 5 and list(groups) == ["l", "p", NOT_STATED]
    assert groups["l"].respondents == 6 and groups["l"].ikm is not None
    assert groups["l"].ikm.value == 100
    # two "not stated" are too few; "p" (5) goes too, else 13 - 6 - 5 would give them away
    assert groups[NOT_STATED].suppressed and groups[NOT_STATED].respondents is None
    assert groups["p"].suppressed and groups["p"].ikm is None
    assert [g.shown for g in groups.values()] == ["6", "< 5", "< 5"]
    with app.factory() as db:
        agency = find_agency(db, "disdukcapil")
        ages = profile_breakdown(db, agency.id, "age", start, end)
    assert [g.respondents for g in ages if not g.suppressed] == [0, 0, 0, 0, 0, 0, 13]  # none given
    with pytest.raises(ValueError, match="unknown profile field"):
        profile_breakdown(db, agency.id, "religion", start, end)


def test_digest_shows_progress_to_the_minimum_and_claims_no_trend_from_few(app: App) -> None:
    with app.factory() as db, db.begin():
        db.execute(update(Service).where(Service.code == "ktp").values(population=50, population_per="week"))
    add_response(app, "ktp", MON_W47, [4] * 9)
    add_response(app, "kk", MON_W47, [4] * 9)
    add_response(app, "ktp", MON_W47 - timedelta(days=7), [3] * 9)
    with app.factory() as db:
        data = collect(db, find_agency(db, "disdukcapil"), "2026-W47")
        n_agencies = db.scalar(select(func.count()).select_from(Agency))
    assert n_agencies and data.sample_week is not None
    assert (data.sample_week.respondents, data.sample_week.population, data.sample_week.minimum) == (2, 50, 45)
    text = render_text(data)
    assert "2 dari 45 responden minimum (Krejcie-Morgan, dari 50 pengguna layanan). IKM ini belum representatif." in text
    assert "naik" not in text and "poin" not in text and "Perubahan tidak disimpulkan" in text
    en = render_text(data, "en")
    assert "2 of 45 respondents minimum" in en and "not yet representative" in en and "No change is concluded" in en


def test_catalog_load_stores_population_and_once_per(app: App, tmp_path: Any) -> None:
    from bot.catalog import load_catalog
    from tests.conftest import ROOT

    base = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    anchor = "      - code: ktp\n        name: KTP Elektronik\n"
    assert anchor in base
    path = tmp_path / "catalog.yaml"
    path.write_text(base.replace(anchor, anchor + "        population: 12000\n        population_per: semester\n"
                                 "        survey_once_per: 12\n"), encoding="utf-8")
    with app.factory() as db, db.begin():
        load_catalog(db, path)
    with app.factory() as db:
        ktp = db.scalars(select(Service).where(Service.code == "ktp")).one()
        assert (ktp.population, ktp.population_per, ktp.survey_once_per) == (12000, "semester", "12")
    with app.factory() as db, db.begin():
        load_catalog(db, ROOT / "catalog.yaml")
    with app.factory() as db:
        ktp = db.scalars(select(Service).where(Service.code == "ktp")).one()
        assert (ktp.population, ktp.population_per, ktp.survey_once_per) == (None, None, None)


@pytest.mark.parametrize("lang", ["id", "en"])
def test_new_choices_fit_whatsapp_titles_uncut(lang: str) -> None:
    """Lists (4-10 choices) show 24 characters, buttons (up to 3) 20, with the typed number."""
    from bot.channels.whatsapp.render import BUTTON_TITLE, ROW_TITLE
    from bot.i18n import TEXTS
    from flows.helpers.profile import FIELDS

    for field, codes in FIELDS:  # each with "Tidak ingin menjawab", back and cancel: a list
        labels = [TEXTS(lang, f"profile.{field}.{c}") for c in codes] + [TEXTS(lang, "profile.skip")]
        assert all(len(f"{n}. {t}") <= ROW_TITLE for n, t in enumerate(labels, 1)), labels
    buttons = [TEXTS(lang, "survey.repeat_update"), TEXTS(lang, "survey.repeat_cancel")]
    assert all(len(f"{n}. {t}") <= BUTTON_TITLE for n, t in enumerate(buttons, 1)), buttons
