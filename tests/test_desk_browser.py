"""The web desk in a real browser: Debian's Chromium driven by Playwright (one browser for the
module), the desk served by the bot's aiohttp app on 127.0.0.1, Telegram faked by
tests/fake_telegram.py. Sign in with the link the bot sends on /masuk, see the queue, reply,
and the resident gets the reply; the refusals (another agency, no CSRF token, a used or
expired link) are checked here too. Phone-sized screenshots of the queue and the case page are
saved under $PRIMA_TEST_ARTEFACTS (default: the test's tmp dir).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.app import App
from bot.channels.telegram.deskhooks import telegram_desk_hooks
from bot.storage.models import CaseEvent, DeskSession
from bot.web.desk.routes import add_desk_routes
from bot.web.server import build_web_app
from tests.browser_support import BROWSER_MARKS
from tests.case_support import cases, complaint, consent, link_room, register, say
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import Harness, harness

pytestmark = BROWSER_MARKS
PHONE = {"width": 390, "height": 844}
WARGA = User(id=5101, first_name="Siti", last_name="Aminah")
PETUGAS = User(id=7101, first_name="Budi", last_name="Santoso")
LAIN = User(id=7103, first_name="Andi", last_name="Pajak")  # staff of another agency
PUNGLI = "Permintaan imbalan uang/barang (pungli)"
LINK = re.compile(r"https?://\S+/desk/login/\S+")


@asynccontextmanager
async def desk(app: App, h: Harness) -> AsyncIterator[str]:
    """The desk on a real TCP port, with the Telegram channel's hooks; yields its base URL."""
    web_app = build_web_app()
    add_desk_routes(web_app, app, telegram_desk_hooks(h.channel))
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    app.runtime.public_base_url = base
    try:
        yield base
    finally:
        await runner.cleanup()


async def login_link(h: Harness, user: User) -> str:
    replies = await say(h, user, "/masuk")
    found = [m.group(0) for s in replies if (m := LINK.search(s.text or ""))]
    assert found, [s.text for s in replies]
    return found[-1]


async def signed_in(browser: Any, link: str) -> Any:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=1)
    page = await context.new_page()
    await page.goto(link)
    await page.click("#signin")
    return page


async def test_sign_in_queue_reply_and_refusals(app: App, clock: FakeClock, browser: Any,
                                                artefacts: Path) -> None:
    async with harness(app, clock) as h, desk(app, h) as base:
        await h.channel.setup()
        await register(h, PETUGAS)
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        await complaint(h, WARGA, "Petugas minta uang untuk cetak KTP", PUNGLI, confidential=False, photo=True)
        [case] = cases(h)

        # a resident is not staff: a polite refusal, no link
        refused = await say(h, WARGA, "/masuk")
        assert any("hanya untuk petugas yang sudah terdaftar" in (s.text or "") for s in refused)

        link = await login_link(h, PETUGAS)
        assert link.startswith(base)
        page = await signed_in(browser, link)
        assert page.url == f"{base}/desk/"
        cookie = next(c for c in await page.context.cookies() if c["name"] == "desk_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        with app.factory() as db:  # only a hash of the cookie is stored
            assert db.scalar(select(DeskSession.session_hash)) != cookie["value"]
        row = page.locator("ul.queue li.row").first
        assert case.ticket in (await row.inner_text())
        assert "Permintaan imbalan" in (await row.inner_text())
        await page.screenshot(path=str(artefacts / "desk-queue-phone.png"), full_page=False)

        # the case page, and a reply that reaches the resident as "Petugas Disdukcapil"
        await row.locator("a").click()
        await page.wait_for_url(f"{base}/desk/case/{case.id}")
        assert "Petugas minta uang untuk cetak KTP" in await page.locator("section.thread").inner_text()
        # the resident's photo, fetched from Telegram by the desk after the access check
        photo = page.locator(".photos img").first
        await photo.wait_for()
        assert await photo.evaluate("img => img.complete && img.naturalWidth") == 160
        before = len(h.server.chat(WARGA.id))
        await page.fill("#reply-text", "Mohon maaf, kami sedang memeriksa loket KTP hari ini.")
        await page.click("#send-reply")
        await page.wait_for_selector("article.k-to_resident")
        told = h.server.chat(WARGA.id)[before:]
        assert any("kami sedang memeriksa loket KTP" in (s.text or "") and "Disdukcapil" in (s.text or "")
                   for s in told), [s.text for s in told]
        assert all("Budi" not in (s.text or "") for s in told)
        # the case was taken by answering: the Telegram card shows it
        assert any("Ditangani" in str(p.get("text")) for p in h.server.calls("editMessageText"))
        await page.screenshot(path=str(artefacts / "desk-case-phone.png"), full_page=False)

        # a POST without the CSRF token changes nothing
        response = await page.request.post(f"{base}/desk/case/{case.id}", form={"do": "resolve"})
        assert response.status == 403
        assert cases(h)[0].status == "open"

        # the same link again: refused
        again = await signed_in(browser, link)
        assert "sudah dipakai" in await again.inner_text("main")
        # an expired link: refused
        late = await login_link(h, PETUGAS)
        clock.advance(minutes=11)
        expired = await signed_in(browser, late)
        assert "kedaluwarsa" in await expired.inner_text("main")

        # staff of another agency: signed in, but 403 on this case, and the attempt recorded
        await register(h, LAIN, slug="bpprd")
        other = await signed_in(browser, await login_link(h, LAIN))
        assert case.ticket not in await other.inner_text("main")
        response = await other.goto(f"{base}/desk/case/{case.id}")
        assert response is not None and response.status == 403
        with app.factory() as db:
            kinds = list(db.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)))
        assert "refused" in kinds
        for p in (page, again, expired, other):
            await p.context.close()
