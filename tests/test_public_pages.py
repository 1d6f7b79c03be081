"""The public pages (issue 15) over real HTTP on SQLite and PostgreSQL, and in a real browser.

The open data's known data set is stored; the pages must print the figures the IKM arithmetic
gives, withhold those from 1-4 people, never show a resident's words, stay under 100 KB, and be
readable (lang, one h1, a titled chart, colour pairs with a contrast of at least 4.5).
"""

from __future__ import annotations

import itertools
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, select

from bot.app import App
from bot.reports import ikm
from bot.storage.models import Agency, PlanAction
from bot.web.server import build_web_app
from tests.conftest import FakeClock
from tests.digest_data import add_response
from tests.test_opendata import BOUNDARY_Q4, KK, KTP, SECRET, seed

ROOT = Path(__file__).resolve().parent.parent
CSS = ROOT / "bot" / "web" / "static" / "public.css"
SUGGESTION = "Saran rahasia: kipas angin di ruang tunggu rusak sejak Agustus"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


def seed_all(app: App) -> None:
    seed(app)
    add_response(app, "kk", datetime(2026, 10, 12, 3, 0, tzinfo=UTC), [4] * 9, suggestion=SUGGESTION)
    with app.factory() as db, db.begin():
        ag = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        at = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
        db.add(PlanAction(agency_id=ag.id, element=3, service_id=None, what="Loket tambahan dibuka",
                          who="Kepala", due_on=at.date(), status="done", done_text="Antrean lebih pendek",
                          done_at=at, created_at=at - timedelta(days=20), updated_at=at))


async def get(app: App, *paths: str) -> list[str]:
    app.settings.telegram_bot_username = "prima_test_bot"
    app.settings.whatsapp_public_number = "+62 812-3456-7890"
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        out = []
        for path in paths:
            resp = await http.get(path)
            assert resp.status == 200, path
            body = await resp.read()
            assert len(body) < 100 * 1024, (path, len(body))
            out.append(body.decode())
        return out


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_figures_match_the_database(app: App, clock: FakeClock) -> None:
    seed_all(app)
    index, agency, service, en = await get(app, "/", "/a/disdukcapil", "/a/disdukcapil/ktp", "/a/disdukcapil?lang=en")
    everyone = ikm.from_scores([*KTP, BOUNDARY_Q4, *KK, [4] * 9])
    assert everyone.value is not None and everyone.grade is not None
    shown = f"{float(everyone.value):.2f}"
    for page in (index, agency):
        assert shown in page and everyone.grade in page
        assert "Loket tambahan dibuka" in text(page)
    row = re.search(r"<th scope=\"row\">2026-Q4</th>(.*?)</tr>", agency, re.S)
    assert row and shown in row.group(1) and ">11<" in row.group(1)  # 11 respondents
    # complaints filed in Q4: 8 resolved, 1 open, 1 confidential (counted), 2 about kk
    crow = re.findall(r"<th scope=\"row\">2026-Q4</th><td>(\d+)</td><td>(\d+)</td>", agency)
    assert crow == [("12", "8")]
    ktp = ikm.from_scores([*KTP, BOUNDARY_Q4])
    assert ktp.value is not None and f"{float(ktp.value):.2f}" in service
    assert "Anda bilang, kami lakukan" in agency and "You said, we did" in en
    assert 'lang="en"' in en and "not enough data yet" in en
    assert "https://t.me/prima_test_bot" in index and "https://wa.me/6281234567890" in index


async def test_under_five_and_no_free_text(app: App, clock: FakeClock) -> None:
    seed_all(app)
    pages = await get(app, "/", "/a/disdukcapil", "/a/disdukcapil/kk", "/tv", "/tv?i=1")
    kk = pages[2]
    q4 = re.search(r"<th scope=\"row\">2026-Q4</th>(.*?)</tr>", kk, re.S)
    assert q4 and "belum cukup data" in q4.group(1)  # 4 respondents for kk
    assert "belum cukup data" in kk
    # 2 complaints about kk in Q4: withheld, not printed as 2
    crow = re.search(r"<th scope=\"row\">2026-Q4</th><td>([^<]*)</td>", kk.split(">Pengaduan<")[1])
    assert crow and crow.group(1) == "belum cukup data"
    for page in pages:
        assert SECRET not in page and SUGGESTION not in page
        assert "Petugas loket tiga" not in page and "kipas angin" not in page


async def test_accessible_structure(app: App, clock: FakeClock) -> None:
    seed_all(app)
    pages = await get(app, "/", "/a/disdukcapil", "/tv", "/a/disdukcapil?lang=en")
    for page in pages:
        assert re.search(r'<html lang="(id|en)">', page)
        assert page.count("<h1") == 1
        levels = [int(h) for h in re.findall(r"<h([1-6])", page)]
        assert levels[0] == 1 and all(b - a <= 1 for a, b in itertools.pairwise(levels))
        assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    agency = pages[1]
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in agency and "<title id=\"ct\">" in agency
    assert "<desc id=\"cd\">" in agency
    assert '<meta http-equiv="refresh" content="20;url=/tv?i=' in pages[2]


async def test_unknown_agency_is_404(app: App, clock: FakeClock) -> None:
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        assert (await http.get("/a/nope")).status == 404
        assert (await http.get("/a/disdukcapil/nope")).status == 404
        css = await http.get("/public.css")
        assert css.status == 200 and css.content_type == "text/css"


async def test_pages_come_from_the_cache(app: App, clock: FakeClock) -> None:
    seed_all(app)
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        first = await (await http.get("/a/disdukcapil")).text()
        seen: list[str] = []
        event.listen(app.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
        again = await (await http.get("/a/disdukcapil")).text()
        assert again == first and seen == []  # no statement for a cached page


def _lum(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    rgb = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_lum(a), _lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# (foreground, background) pairs the stylesheet uses for text and the chart
PAIRS = [("#1a1a1a", "#ffffff"), ("#0b5394", "#ffffff"), ("#ffffff", "#0b3d5c"), ("#4a4a4a", "#ffffff"),
         ("#ffffff", "#10253a")]


def test_contrast_of_the_css_colours() -> None:
    css = CSS.read_text()
    used = {c.lower() for c in re.findall(r"#[0-9a-fA-F]{6}", css)}
    for fg, bg in PAIRS:
        assert fg in used and bg in used
        assert contrast(fg, bg) >= 4.5, (fg, bg, contrast(fg, bg))
    assert used - {"#c8c8c8"} <= {c for p in PAIRS for c in p}  # every other colour is in a checked pair


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)")
async def test_in_a_browser(app: App, clock: FakeClock, tmp_path: Path, request: Any) -> None:
    if "postgres" in request.node.name:
        pytest.skip("the browser run needs one database")
    from playwright.async_api import async_playwright

    seed_all(app)
    app.settings.telegram_bot_username = "prima_test_bot"
    async with TestClient(TestServer(build_web_app(app=app))) as http, async_playwright() as pw:
        base = str(http.make_url("/"))
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            phone = await chromium.new_page(viewport={"width": 390, "height": 844})
            await phone.goto(base)
            assert await phone.locator("h1").count() == 1
            await phone.screenshot(path=str(tmp_path / "public-phone.png"), full_page=True)
            await phone.goto(base + "a/disdukcapil")
            assert "Anda bilang, kami lakukan" in await phone.inner_text("main")
            await phone.screenshot(path=str(tmp_path / "public-agency-phone.png"), full_page=True)
            docs = ROOT / "docs" / "public-page.png"  # the README's: redrawn when missing or asked
            if not docs.exists() or os.environ.get("PRIMA_UPDATE_SCREENSHOTS"):
                await phone.screenshot(path=str(docs), type="png",
                                       clip={"x": 0, "y": 0, "width": 390, "height": 700})
            tv = await chromium.new_page(viewport={"width": 1920, "height": 1080})
            await tv.goto(base + "tv")
            assert await tv.locator("h1").inner_text() != ""
            await tv.screenshot(path=str(tmp_path / "public-tv.png"))
        finally:
            await chromium.close()
    assert (tmp_path / "public-tv.png").stat().st_size > 0
