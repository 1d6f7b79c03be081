"""The web chat in a real browser: Debian's Chromium driven by Playwright, the chat served by the
bot's aiohttp app on 127.0.0.1. On a 390x844 phone: a complaint with a photo and the browser's
location, its ticket and secret, then the status looked up with them; and the same page with
JavaScript disabled (plain form posts). Screenshots go to $PRIMA_TEST_ARTEFACTS (default: the
test's tmp dir); docs/webchat-*.png in the README were made this way.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image
from sqlalchemy import select

from bot.app import App
from bot.channels.webchat.routes import add_webchat_routes
from bot.storage.models import Complaint
from bot.web.server import build_web_app
from tests.browser_support import BROWSER_MARKS
from tests.conftest import FakeClock, make_app

pytestmark = BROWSER_MARKS
PHONE = {"width": 390, "height": 844}
DESCRIPTION = "Petugas loket meminta uang tambahan tanpa kuitansi resmi"


@pytest.fixture
def chat_app(sqlite_url: str, clock: FakeClock, tmp_path: Path) -> Any:
    application = make_app(sqlite_url, clock, whatsapp_media_dir=tmp_path / "media",
                           telegram_bot_username="PrimaBungoBot")
    yield application
    application.engine.dispose()


@asynccontextmanager
async def served(app: App) -> AsyncIterator[str]:
    web_app = build_web_app()
    chat = add_webchat_routes(web_app, app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        if chat is not None:
            chat.close()


def photo_bytes() -> bytes:
    img = Image.new("RGB", (800, 600), (30, 120, 200))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return buf.getvalue()


async def swapped(page: Any, action: Any) -> None:
    """Do ``action`` and wait until chat.js has put the server's new page in place."""
    await page.evaluate("document.getElementById('main').dataset.old = '1'")
    await action()
    await page.wait_for_function("() => { const m = document.getElementById('main');"
                                 " return m && !m.dataset.old; }", timeout=15000)


async def type_line(page: Any, text: str) -> None:
    async def act() -> None:
        await page.fill("#text", text)
        await page.press("#text", "Enter")

    await swapped(page, act)


async def click(page: Any, name: str) -> None:
    await swapped(page, lambda: page.get_by_role("button", name=name).first.click())


async def test_complaint_with_photo_on_a_phone_then_status_by_ticket_and_secret(
        browser: Any, chat_app: App, artefacts: Path, tmp_path: Path) -> None:
    shot = Path(os.environ.get("PRIMA_DOCS_SHOTS") or artefacts)
    async with served(chat_app) as base:
        context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                            has_touch=True, geolocation={"latitude": -1.4852,
                                                                         "longitude": 102.119},
                                            permissions=["geolocation"], locale="id-ID")
        page = await context.new_page()
        try:
            await page.goto(f"{base}/chat")
            await click(page, "Mulai")
            await click(page, "1. Setuju")
            await page.screenshot(path=str(shot / "webchat-menu.png"))
            for line in ("2", "pajak motor", DESCRIPTION, "4", "1"):
                await type_line(page, line)
            huge = tmp_path / "besar.jpg"  # over 5 MB: refused on the phone, before it is sent
            huge.write_bytes(b"\xff\xd8\xff" + b"0" * (6 * 1024 * 1024))
            posts: list[str] = []
            page.on("request", lambda req: posts.append(req.url) if req.method == "POST" else None)
            await page.set_input_files("input[name=photo]", str(huge))
            await page.get_by_role("button", name="Kirim foto").click()
            await page.locator(".note.error").wait_for()
            assert "5 MB" in await page.locator(".note.error").inner_text() and posts == []
            photo = tmp_path / "bukti.jpg"
            photo.write_bytes(photo_bytes())
            await page.set_input_files("input[name=photo]", str(photo))
            await click(page, "Kirim foto")
            assert "1 foto" in (await page.locator(".thread").inner_text()).lower() or \
                "foto" in (await page.locator(".msg.bot").last.inner_text()).lower()
            await click(page, "1. Lanjut")
            await click(page, "Kirim lokasi saya")  # the browser asks; this context allows it
            assert "Lokasi diterima" in await page.locator(".thread").inner_text()
            for line in ("2", "2", "1"):  # no "may we phone you?" on the web
                await type_line(page, line)
            ticket = (await page.locator("[data-ticket]").inner_text()).strip()
            secret = (await page.locator("[data-secret]").inner_text()).strip()
            assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", ticket) and len(secret) == 6
            assert ticket in await page.locator(".thread").inner_text()
            await page.screenshot(path=str(shot / "webchat-ticket.png"))
            # another phone: the status by ticket and secret (JavaScript is not needed for it)
            other = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                              locale="id-ID")
            lookup = await other.new_page()
            await lookup.goto(f"{base}/chat")
            await lookup.fill("input[name=ticket]", ticket)
            await lookup.fill("input[name=secret]", secret)
            await lookup.get_by_role("button", name="Cek status").click()
            await lookup.wait_for_selector("[data-lookup]")
            found = await lookup.locator("[data-lookup]").inner_text()
            assert f"Tiket {ticket}: Diterima, menunggu petugas" in found
            await lookup.screenshot(path=str(shot / "webchat-status.png"))
            await other.close()
        finally:
            await context.close()
    with chat_app.factory() as db:
        complaint = db.scalars(select(Complaint)).one()
    assert complaint.ticket == ticket and complaint.description == DESCRIPTION
    assert (complaint.latitude, complaint.longitude) == (-1.4852, 102.119)
    saved = Path(complaint.attachments["photos"][0]["path"])
    assert saved.is_file() and saved.read_bytes()[:3] == b"\xff\xd8\xff"


async def test_the_chat_works_without_javascript(browser: Any, chat_app: App, artefacts: Path) -> None:
    async with served(chat_app) as base:
        context = await browser.new_context(viewport=PHONE, java_script_enabled=False, locale="id-ID")
        page = await context.new_page()
        try:
            await page.goto(f"{base}/chat/ktp")
            await page.get_by_role("button", name="Mulai").click()
            await page.wait_for_load_state()
            await page.get_by_role("button", name="1. Setuju").click()
            await page.wait_for_load_state()
            assert "KTP Elektronik" in await page.locator(".thread").inner_text()
            await page.get_by_role("button", name="4. Sangat sesuai").click()
            await page.wait_for_load_state()
            assert "(2/9)" in await page.locator(".msg.bot").last.inner_text()
            await page.fill("#text", "3")  # typed, sent with the button
            await page.get_by_role("button", name="Kirim", exact=True).click()
            await page.wait_for_load_state()
            assert "(3/9)" in await page.locator(".msg.bot").last.inner_text()
            assert not await page.locator("[data-geo]").is_visible()  # needs JavaScript: not offered
            await page.screenshot(path=str(artefacts / "webchat-nojs.png"))
        finally:
            await context.close()


async def test_after_a_qr_codes_survey_starts_a_reload_does_not_offer_it_again(browser: Any, chat_app: App) -> None:
    """Found by QA: chat.js kept the address /chat/<service> after its posts, so reloading the
    page mid-survey offered that service's survey again ("Nilai layanan ...")."""
    async with served(chat_app) as base:
        context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="id-ID")
        page = await context.new_page()
        await page.goto(f"{base}/chat/ktp")
        await click(page, "Mulai")
        await click(page, "1. Setuju")
        assert "(1/9)" in await page.locator(".msg.bot").last.inner_text()
        assert page.url == f"{base}/chat"
        await page.reload()
        assert "(1/9)" in await page.locator(".msg.bot").last.inner_text()
        assert await page.locator("[data-qr]").count() == 0
        await context.close()


async def test_a_refused_location_says_what_to_do(browser: Any, chat_app: App) -> None:
    """Found by QA: when the phone refuses the location, the page showed only a "✕"."""
    async with served(chat_app) as base:
        context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="id-ID")
        page = await context.new_page()  # no geolocation permission: the browser refuses
        await page.goto(f"{base}/chat")
        await click(page, "Mulai")
        await click(page, "1. Setuju")
        for line in ("2", "pajak motor", DESCRIPTION, "4", "1"):
            await type_line(page, line)
        await click(page, "1. Lewati")  # no photo
        await page.get_by_role("button", name="Kirim lokasi saya").click()
        status = page.locator("[data-geo-status]")
        await page.wait_for_function("() => !['', '\\u2026'].includes("
                                     "document.querySelector('[data-geo-status]').textContent)")
        assert "Ketik alamat" in await status.inner_text()
        await context.close()
