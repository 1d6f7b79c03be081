"""Kiosks over real HTTP on SQLite and PostgreSQL: a questionnaire from the counter tablet is an
anonymous respondent in the survey tables, counted by the digest, the IKM and the periodic
report like a chat one; a retry with the same key stores nothing; one questionnaire per kiosk
per KIOSK_MIN_INTERVAL (injected clock); a wrong or revoked token gets a clear page and stores
nothing; answers that are not the questionnaire's choices are refused; the CLI.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import App
from bot.cli import main as cli
from bot.reports import ikm
from bot.reports.digest.data import collect, find_agency
from bot.reports.digest.kiosks import BURST_PER_HOUR, burst
from bot.reports.digest.text import render_text
from bot.reports.periodic.data import collect as collect_report
from bot.reports.periodic.period import parse_period
from bot.runtime import kiosk
from bot.storage.models import Kiosk, SurveyAnswer, SurveyResponse
from bot.web.server import build_web_app
from tests.conftest import FakeClock
from tests.desk_support import desk_client, member, sign_in
from tests.digest_data import add_response

JSON = {"Accept": "application/json"}
SCORES = ["4", "3", "x", "2", "4", "4", "3", "1", "4"]  # "x": Tidak tahu


def register(app: App, service: str = "ktp", name: str = "Loket 2", agency: str = "disdukcapil") -> str:
    with app.factory() as db, db.begin():
        _, token = kiosk.add(db, agency, service, name, app.runtime.clock())
    return token


def form(key: str, scores: list[str] = SCORES, **profile: str) -> dict[str, str]:
    out = {"key": key, "lang": "id", **{f"e{i}": s for i, s in enumerate(scores, 1)}}
    out.update({"gender": "", "age": "", "education": "", "job": ""})
    out.update(profile)
    return out


def stored(app: App) -> list[SurveyResponse]:
    with app.factory() as db:
        rows = list(db.scalars(select(SurveyResponse).where(SurveyResponse.channel == "kiosk")
                               .order_by(SurveyResponse.id)))
        for r in rows:
            _ = r.answers
        return rows


async def post(http: TestClient[Any, Any], token: str, data: dict[str, str], headers: dict[str, str] | None = JSON,
               ) -> tuple[int, Any]:
    resp = await http.post(f"/kiosk/{token}", data=data, headers=headers or {})
    body = await (resp.json() if headers else resp.text())
    return resp.status, body


async def test_a_kiosk_questionnaire_is_an_anonymous_respondent_counted_everywhere(
        app: App, clock: FakeClock) -> None:
    token = register(app)
    add_response(app, "ktp", clock.now - timedelta(hours=1), [3] * 9)  # a chat questionnaire
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        page = await (await http.get(f"/kiosk/{token}")).text()
        assert "KTP Elektronik" in page and "Tidak tahu" in page and "Sangat sesuai" in page
        assert "Jenis kelamin" in page and "Tidak ingin menjawab" in page and "Electronic ID Card" in page
        status, body = await post(http, token, form("9b2f6f1e-1c1a-4a7e-9d55-0e1f2a3b4c5d",
                                                     gender="p", age="30-39", job="swasta"))
    assert (status, body["status"]) == (200, "stored")
    [resp] = stored(app)
    assert resp.contact_id is None and resp.kiosk_id is not None and resp.status == "complete"
    assert (resp.profile_gender, resp.profile_age, resp.profile_education, resp.profile_job) == \
        ("p", "30-39", None, "swasta")
    assert [(a.element, a.score) for a in resp.answers] == \
        [(i, None if s == "x" else int(s)) for i, s in enumerate(SCORES, 1)]
    assert all(a.counted_at == clock.now for a in resp.answers)

    # the digest and the IKM count both questionnaires with no special case
    with app.factory() as db:
        data = collect(db, find_agency(db, "disdukcapil"), "2026-W48", clock.now)
    expected = ikm.from_scores([[3] * 9, [None if s == "x" else int(s) for s in SCORES]])
    assert data.respondents_week == 2
    assert data.week_ikm.value == expected.value
    [line] = data.kiosks
    assert (line.name, line.count, line.burst) == ("Loket 2", 1, None)
    text = render_text(data)
    assert "Kiosk (kuesioner minggu ini): Loket 2 (KTP Elektronik) 1" in text
    assert "Loket 2 (Electronic ID Card (KTP)) 1" in render_text(data, "en")
    # ... and so does the periodic report (2026-Q4), with the profile snapshot
    with app.factory() as db:
        report = collect_report(db, "disdukcapil", parse_period("2026-Q4"))
    assert report.respondents == 2 and report.ikm.value == expected.value


async def test_a_retry_with_the_same_key_stores_nothing(app: App, clock: FakeClock) -> None:
    token = register(app)
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        status, html = await post(http, token, form("aaaaaaaa-0001"), headers=None)  # no JavaScript
        assert status == 200 and "Terima kasih!" in html and 'http-equiv="refresh"' in html
        assert (await post(http, token, form("aaaaaaaa-0001")))[1]["status"] == "duplicate"
        clock.advance(minutes=5)  # the answer arrives again much later (a flaky line)
        status, body = await post(http, token, form("aaaaaaaa-0001", ["1"] * 9))
        assert (status, body["status"]) == (200, "duplicate")
        # the plain form post gets the same thank-you page
        status, html = await post(http, token, form("aaaaaaaa-0001"), headers=None)
        assert status == 200 and "Terima kasih!" in html
    [resp] = stored(app)
    assert [a.score for a in resp.answers] == [None if s == "x" else int(s) for s in SCORES]  # not the repeat
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(SurveyAnswer)) == 9


async def test_without_javascript_the_next_resident_starts_in_indonesian(app: App) -> None:
    """Found by QA: after an English questionnaire on a kiosk without JavaScript, the thank-you
    page's refresh and "Done" link opened the survey in English for the next resident."""
    token = register(app)
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        status, html = await post(http, token, {**form("eeeeeeee-0001"), "lang": "en"}, headers=None)
        assert status == 200 and '<html lang="en"' in html  # this resident's thank-you in English
        assert f'url=/kiosk/{token}"' in html and f'href="/kiosk/{token}"' in html


async def test_one_questionnaire_per_kiosk_per_interval(app: App, clock: FakeClock) -> None:
    token = register(app)
    other = register(app, "kk", "Loket 3")
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        assert (await post(http, token, form("bbbbbbbb-0001")))[1]["status"] == "stored"
        clock.advance(seconds=12)
        status, body = await post(http, token, form("bbbbbbbb-0002"))
        assert (status, body) == (429, {"status": "wait", "retry_after": 8})
        # another kiosk is not held up
        assert (await post(http, other, form("bbbbbbbb-0003")))[1]["status"] == "stored"
        # without JavaScript: a polite page that keeps the answers for "Kirim lagi"
        status, html = await post(http, token, form("bbbbbbbb-0002"), headers=None)
        assert status == 429 and "Mohon tunggu 8 detik" in html and "setiap 20 detik" in html
        assert 'name="key" value="bbbbbbbb-0002"' in html and 'name="e9" value="4"' in html
        sneaky = await post(http, token, {**form("bbbbbbbb-0002"), "extra": "<b>x</b>"}, headers=None)
        assert "extra" not in sneaky[1] and "&lt;b&gt;" not in sneaky[1]
        clock.advance(seconds=8)
        assert (await post(http, token, form("bbbbbbbb-0002")))[1]["status"] == "stored"
    assert len(stored(app)) == 3
    app.settings.kiosk_min_interval = 0  # no limit
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        assert (await post(http, token, form("bbbbbbbb-0004")))[1]["status"] == "stored"


async def test_wrong_or_revoked_token_gets_a_clear_page_and_stores_nothing(app: App, clock: FakeClock) -> None:
    token = register(app)
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        wrong = await http.get("/kiosk/not-a-token")
        assert wrong.status == 404 and "Kiosk tidak ditemukan" in await wrong.text()
        assert (await post(http, "not-a-token", form("cccccccc-0001")))[0] == 404
        with app.factory() as db, db.begin():
            kid = db.scalars(select(Kiosk.id)).one()
            kiosk.revoke(db, kid, clock.now)
        page = await http.get(f"/kiosk/{token}?lang=en")
        text = await page.text()
        assert page.status == 403 and "Kiosk tidak aktif" in text and "Kiosk not in use" in text
        assert '<html lang="en" data-lang="en">' in text
        assert 'href="/chat/ktp"' in text  # the resident can still rate the service in the web chat
        assert await post(http, token, form("cccccccc-0002")) == (403, {"status": "revoked", "chat": "/chat/ktp"})
        status, html = await post(http, token, form("cccccccc-0003"), headers=None)
        assert status == 403 and "sudah tidak digunakan" in html and 'href="/chat/ktp"' in html
        app.settings.web_chat = "off"  # no web chat served: no link to it
        assert 'href="/chat/' not in await (await http.get(f"/kiosk/{token}")).text()
    assert stored(app) == []


@pytest.mark.parametrize("change", [
    {"e1": "5"}, {"e9": ""}, {"e3": "tidak tahu"}, {"gender": "x"}, {"age": "99"}, {"key": "short"},
    {"key": "a" * 65}, {"key": "../../etc-passwd"},
])
async def test_answers_must_be_the_questionnaires_choices(sqlite_app: App, change: dict[str, str]) -> None:
    app = sqlite_app
    token = register(app)
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        assert (await post(http, token, {**form("dddddddd-0001"), **change})) == (400, {"status": "invalid"})
        status, html = await post(http, token, {**form("dddddddd-0001"), **change}, headers=None)
        assert status == 400 and "Mohon jawab setiap pertanyaan" in html
    assert stored(app) == []
    with app.factory() as db:
        assert db.scalar(select(Kiosk.last_completed_at)) is None


def test_concurrent_requests_for_one_kiosk_take_turns(app: App, clock: FakeClock) -> None:
    """The kiosk's row is locked: a retry racing its original, or two questionnaires at once,
    still give one stored questionnaire."""
    token = register(app)
    barrier = threading.Barrier(4)

    def send(key: str) -> str:
        q = kiosk.parse(form(key))
        assert q is not None
        barrier.wait()
        return kiosk.record(app.factory, token, q, clock.now, 20).status

    with ThreadPoolExecutor(4) as pool:
        same = sorted(pool.map(send, ["ffffffff-0001"] * 4))
        clock.advance(seconds=30)
        different = sorted(pool.map(send, [f"ffffffff-100{i}" for i in range(4)]))
    assert same == ["duplicate", "duplicate", "duplicate", "stored"]
    assert different == ["stored", "wait", "wait", "wait"]
    assert len(stored(app)) == 2


def test_a_burst_is_flagged_in_the_digest(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    token = register(app)
    start = clock.now
    for i in range(BURST_PER_HOUR + 1):  # 31 in 50 minutes, each after the 20-second limit
        clock.now = start + timedelta(seconds=100 * i)
        q = kiosk.parse(form(f"eeeeeeee-{i:04d}"))
        assert q is not None
        assert kiosk.record(app.factory, token, q, clock.now, 20).status == "stored"
    with app.factory() as db:
        data = collect(db, find_agency(db, "disdukcapil"), "2026-W48", clock.now)
    [line] = data.kiosks
    assert line.count == BURST_PER_HOUR + 1 and line.burst == (BURST_PER_HOUR + 1, start)
    text = render_text(data)
    assert "Kiosk (kuesioner minggu ini): Loket 2 (KTP Elektronik) 31" in text
    assert "⚠️ Lonjakan di kiosk Loket 2: 31 kuesioner dalam satu jam (23-11-2026 09.00 WIB)" in text
    # 30 in an hour is not a burst; spread over hours, many are fine
    at = datetime(2026, 11, 24, tzinfo=UTC)
    assert burst([at + timedelta(minutes=2 * i) for i in range(BURST_PER_HOUR)]) is None
    assert burst([at + timedelta(minutes=3 * i) for i in range(200)]) is None


async def test_heads_see_their_kiosks_on_the_desk(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    token = register(app)
    register(app, "pkb", "Kiosk Samsat", agency="samsat")
    for i in range(BURST_PER_HOUR + 1):
        q = kiosk.parse(form(f"gggggggg-{i:04d}"))
        assert q is not None
        assert kiosk.record(app.factory, token, q, clock.now, 20).status == "stored"
        clock.advance(seconds=60)
    head, _ = member(app, "Kepala Dinas", role="head")
    clerk, _ = member(app, "Budi")
    async with desk_client(app) as (client, _seen):
        await sign_in(client, app, head)
        assert 'href="/desk/kiosks"' in await (await client.get("/desk/")).text()
        resp = await client.get("/desk/kiosks")
        html = await resp.text()
        assert resp.status == 200 and "Loket 2" in html and "<td>31</td>" in html
        assert "⚠️ 31 dalam satu jam sejak 23-11-2026 09:00 WIB" in html
        assert "Kiosk Samsat" not in html  # another agency's
        await sign_in(client, app, clerk)
        assert (await client.get("/desk/kiosks")).status == 403


def test_cli_add_list_revoke(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str], app: App) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    assert cli.main(["kiosk", "add", "--agency", "disdukcapil", "--service", "ktp"]) == 2
    assert "PUBLIC_BASE_URL is not set" in capsys.readouterr().err
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://prima.example.go.id/")
    qr = tmp_path / "qr" / "loket2.png"
    assert cli.main(["kiosk", "add", "--agency", "disdukcapil", "--service", "ktp", "--name", "Loket 2",
                     "--qr", str(qr)]) == 0
    out = capsys.readouterr().out
    found = re.search(r"https://prima\.example\.go\.id/kiosk/(\S+)", out)
    assert found and qr.read_bytes().startswith(b"\x89PNG")
    token = found.group(1)
    with app.factory() as db:
        row = db.scalars(select(Kiosk)).one()
        assert row.name == "Loket 2" and row.token_hash == kiosk.token_hash(token) and token not in row.token_hash
        assert kiosk.place(db, token) is not None
    assert cli.main(["kiosk", "add", "--agency", "disdukcapil", "--service", "pkb"]) == 2
    assert "not an active service of 'disdukcapil'" in capsys.readouterr().err
    assert cli.main(["kiosk", "list"]) == 0
    assert re.search(r"Loket 2\s+disdukcapil/ktp\s+active", capsys.readouterr().out)
    assert cli.main(["kiosk", "revoke", str(row.id)]) == 0
    assert cli.main(["kiosk", "list", "--agency", "disdukcapil"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli.main(["kiosk", "revoke", "999"]) == 1
