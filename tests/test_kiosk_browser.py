"""The kiosk in a real browser: Debian's Chromium driven by Playwright on a 1280x800 tablet
viewport, the page served by the bot's aiohttp app on 127.0.0.1 (the server's clock is the
injected FakeClock). A full questionnaire with the profile, the thank-you and the reset; the
idle reset mid-way; the language switch; the stuffing limit shown politely and the answers
sent once it allows; a lost connection (and a lost answer to a stored questionnaire) retried
from the page and counted once. Screenshots go to $PRIMA_TEST_ARTEFACTS (default: tmp dir).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.app import App
from bot.reports.digest.data import collect, find_agency
from bot.runtime import kiosk
from bot.storage.models import SurveyResponse
from bot.web.server import build_web_app
from tests.browser_support import BROWSER_MARKS
from tests.conftest import FakeClock

pytestmark = BROWSER_MARKS
TABLET = {"width": 1280, "height": 800}
# one pick per screen: elements 1-9 (score class or "skip"), then gender, age, education, job
QUEUED = "JSON.parse(localStorage.getItem(Object.keys(localStorage)[0]) || '[]').length"
PICKS = ["v4", "v3", "skip", "v2", "v4", "v4", "v3", "v1", "v4", "vp", "skip", "vsma", "vswasta"]


@asynccontextmanager
async def served(app: App) -> AsyncIterator[str]:
    runner = web.AppRunner(build_web_app(app=app))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def responses(app: App) -> list[SurveyResponse]:
    with app.factory() as db:
        rows = list(db.scalars(select(SurveyResponse).order_by(SurveyResponse.id)))
        for r in rows:
            _ = r.answers
        return rows


async def until(check: Any, seconds: float = 20) -> None:
    for _ in range(int(seconds * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the page did not get there in time")


async def answer(page: Any, picks: list[str]) -> None:
    """Touch one answer per screen, from the first question on."""
    for n, pick in enumerate(picks, 1):
        screen = page.locator(f'[data-screen="{n}"]')
        await screen.wait_for(state="visible")
        await screen.locator(f"label.choice.{pick}").click()


async def test_full_survey_reset_idle_language_and_limits(sqlite_app: App, clock: FakeClock, browser: Any,
                                                         artefacts: Path) -> None:
    app = sqlite_app
    app.settings.kiosk_min_interval = 3
    with app.factory() as db, db.begin():
        _, token = kiosk.add(db, "disdukcapil", "ktp", "Loket 2", clock.now)
    errors: list[str] = []
    async with served(app) as base:
        context = await browser.new_context(viewport=TABLET, device_scale_factor=1)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{base}/kiosk/{token}")
        # the thank-you stays until the test says otherwise (a loaded host may be slow to look)
        await page.eval_on_selector("#kiosk", "f => f.setAttribute('data-thanks', '600')")
        start = page.locator('[data-screen="0"]')
        assert "KTP Elektronik" in await start.inner_text()
        assert not await page.locator('[data-screen="1"]').is_visible()  # one screen at a time
        await page.screenshot(path=str(artefacts / "kiosk-start.png"))
        await page.click("#start")
        first = page.locator('[data-screen="1"]')
        assert "1/9" in await first.inner_text() and "Persyaratan" in await first.inner_text()
        box = await first.locator("label.choice.v4").bounding_box()
        assert box["height"] >= 64  # a large touch target
        await page.screenshot(path=str(artefacts / "kiosk-question.png"))
        # answer three, go back once, and go on
        await answer(page, PICKS[:4])
        await page.locator('[data-screen="5"]').wait_for(state="visible")
        await page.locator('[data-screen="5"] button.back').click()
        await page.locator('[data-screen="4"]').wait_for(state="visible")
        await page.locator('[data-screen="4"] label.choice.v2').click()
        for n, pick in enumerate(PICKS[4:], 5):
            await page.locator(f'[data-screen="{n}"]').wait_for(state="visible")
            if n == 10:
                assert "Jenis kelamin" in await page.locator('[data-screen="10"]').inner_text()
            await page.locator(f'[data-screen="{n}"] label.choice.{pick}').click()
        done = page.locator('[data-screen="done"]')
        await done.wait_for(state="visible")
        await page.locator(".msg-stored").wait_for(state="visible")
        assert "Terima kasih!" in await done.inner_text()
        await page.screenshot(path=str(artefacts / "kiosk-thanks.png"))
        [resp] = responses(app)
        assert (resp.channel, resp.contact_id, resp.status) == ("kiosk", None, "complete")
        assert [a.score for a in resp.answers] == [4, 3, None, 2, 4, 4, 3, 1, 4]
        assert (resp.profile_gender, resp.profile_age, resp.profile_education, resp.profile_job) == \
            ("p", None, "sma", "swasta")
        with app.factory() as db:
            data = collect(db, find_agency(db, "disdukcapil"), "2026-W48", clock.now)
        assert data.respondents_week == 1 and [k.count for k in data.kiosks] == [1]

        # the thank-you resets the page for the next resident: clean answers, a new key
        key = await page.input_value("input[name=key]")
        await page.eval_on_selector("#kiosk", "f => f.setAttribute('data-thanks', '1')")
        await start.wait_for(state="visible")
        assert await page.input_value("input[name=key]") != key
        assert await page.locator("input[type=radio]:checked").count() == 0

        # idle mid-way: back to the start, nothing stored; the language goes back to Indonesian
        await page.click("a[data-set-lang=en]")
        assert "Start" in await page.locator("#start").inner_text()
        await page.click("#start")
        assert "How well did the requirements" in await page.locator('[data-screen="1"]').inner_text()
        await answer(page, PICKS[:2])
        await page.eval_on_selector("#kiosk", "f => f.setAttribute('data-idle', '1')")
        await start.wait_for(state="visible")
        assert await page.get_attribute("html", "lang") == "id"
        assert await page.locator("input[type=radio]:checked").count() == 0
        await page.eval_on_selector("#kiosk", "f => f.setAttribute('data-idle', '60')")
        assert len(responses(app)) == 1

        # too soon after the last one: said politely, stored only once the kiosk's interval passed
        await page.eval_on_selector("#kiosk", "f => f.setAttribute('data-thanks', '60')")
        await page.click("#start")
        await answer(page, PICKS)
        await page.locator(".msg-wait").wait_for(state="visible")
        assert "satu kuesioner setiap 3 detik" in await done.inner_text()
        assert len(responses(app)) == 1
        clock.advance(seconds=3)
        await page.locator(".msg-stored").wait_for(state="visible", timeout=15000)
        assert len(responses(app)) == 2

        # the connection drops: kept on the tablet, sent when it is back
        await page.click("button[data-reset]")
        clock.advance(seconds=10)
        await context.set_offline(True)
        await page.click("#start")
        await answer(page, PICKS)
        await page.locator(".msg-queued").wait_for(state="visible")
        assert await page.evaluate("Object.keys(localStorage).length") == 1
        assert len(responses(app)) == 2
        await context.set_offline(False)
        await until(lambda: len(responses(app)) == 3)

        # stored, but the answer is lost on the way back: the retry is not counted twice
        await page.click("button[data-reset]")
        clock.advance(seconds=10)
        lost: list[int] = []

        async def drop_answer(route: Any) -> None:
            if lost:
                await route.continue_()
                return
            lost.append(1)
            await route.fetch()  # the server stores it ...
            await route.abort()  # ... and the page never hears so

        await page.route("**/kiosk/*", drop_answer)
        await page.click("#start")
        await answer(page, PICKS)
        await until(lambda: len(responses(app)) == 4)
        for _ in range(200):  # the page's queue empties once the retry is confirmed
            if await page.evaluate(QUEUED) == 0:
                break
            await asyncio.sleep(0.1)
        assert await page.evaluate(QUEUED) == 0
        await page.locator(".msg-stored").wait_for(state="visible")
        assert len(responses(app)) == 4
        assert len({r.response_key for r in responses(app)}) == 4
        assert errors == []
        await context.close()


async def test_revoked_kiosk_page_in_the_browser(sqlite_app: App, clock: FakeClock, browser: Any) -> None:
    app = sqlite_app
    with app.factory() as db, db.begin():
        row, token = kiosk.add(db, "disdukcapil", "ktp", "Loket 2", clock.now)
        kiosk.revoke(db, row.id, clock.now)
    async with served(app) as base:
        context = await browser.new_context(viewport=TABLET)
        page = await context.new_page()
        resp = await page.goto(f"{base}/kiosk/{token}")
        assert resp.status == 403
        assert "Kiosk tidak aktif" in await page.locator("h1").inner_text()
        await page.click("a[lang=en]")
        assert "Kiosk not in use" in await page.locator("h1").inner_text()
        await context.close()


async def test_double_tap_answers_one_question(sqlite_app: App, clock: FakeClock, browser: Any) -> None:
    """A resident double-taps an answer (two touches 200 ms apart, found by QA): the second
    touch lands where the next question's answer now is, and must not answer it."""
    app = sqlite_app
    with app.factory() as db, db.begin():
        _, token = kiosk.add(db, "disdukcapil", "ktp", "Loket 2", clock.now)
    async with served(app) as base:
        context = await browser.new_context(viewport=TABLET, device_scale_factor=1)
        page = await context.new_page()
        await page.goto(f"{base}/kiosk/{token}")
        await page.click("#start")
        box = await page.locator('[data-screen="1"] label.choice.v3').bounding_box()
        await asyncio.sleep(0.5)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await page.mouse.click(x, y)
        await asyncio.sleep(0.2)
        await page.mouse.click(x, y)
        await asyncio.sleep(0.6)
        assert await page.locator('[data-screen="2"]').is_visible()  # the second question waits
        assert await page.locator("input[name=e1]:checked").get_attribute("value") == "3"
        assert await page.locator("input[name=e2]:checked").count() == 0
        # the same goes for « Kembali tapped twice: one step back
        await page.locator('[data-screen="2"] label.choice.v4').click()
        await page.locator('[data-screen="3"]').wait_for(state="visible")
        await page.locator('[data-screen="3"] button.back').dblclick(delay=200)
        await asyncio.sleep(0.6)
        assert await page.locator('[data-screen="2"]').is_visible()
        await context.close()
