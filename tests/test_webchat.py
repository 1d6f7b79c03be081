"""The web chat over HTTP, as a browser without JavaScript uses it: plain form posts and redirects.

A survey is stored and counted like one from a chat; a complaint (typed, a photo uploaded, the
location posted) gets a ticket and a secret shown once; the status needs both; CSRF, rate limits
and uploads are refused politely; the language follows the resident; a web ticket continued on
Telegram through the fake Bot API takes its staff replies there. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.app import App
from bot.channels.webchat.guard import Limits, RateLimit
from bot.channels.webchat.thread import WebSender
from bot.desk.outgoing import to_resident
from bot.runtime import webtickets
from bot.scheduler import build_dispatcher
from bot.storage.models import (
    Case,
    Complaint,
    Contact,
    InboundEvent,
    OutboxMessage,
    SurveyAnswer,
    SurveyResponse,
)
from tests.conftest import FakeClock, make_app
from tests.fake_telegram import User
from tests.telegram_harness import harness
from tests.webchat_support import Resident, chat_client

SCORES = ["4", "3", "2", "4", "Tidak tahu", "4", "3", "2", "1"]
COMPLAINT_START = ["/menu", "2", "pajak motor", "Petugas loket meminta uang tambahan tanpa kuitansi resmi",
                   "4", "1"]


@pytest.fixture
def web_app(db_url: str, clock: FakeClock, tmp_path: Path) -> Any:
    application = make_app(db_url, clock, whatsapp_media_dir=tmp_path / "media",
                           telegram_bot_username="PrimaTestBot")
    yield application
    application.engine.dispose()


def jpeg_with_exif(width: int = 640, height: int = 480) -> bytes:
    img = Image.new("RGB", (width, height), (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "track-me-1.0"  # Software
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def count(app: App, model: type) -> int:
    with app.factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


async def onboard(r: Resident, path: str = "/chat") -> None:
    page = await r.open(path)
    assert page.status == 200 and "Mulai" in page.html
    await r.post(data={"text": page.field("text")})
    await r.press("Setuju")


async def file_complaint(r: Resident, photo: bytes | None = None) -> str:
    for line in COMPLAINT_START:
        await r.say(line)
    page = r.page
    assert page is not None and "foto" in page.messages[-1].lower()
    if photo is not None:
        page = await r.photo(photo)
        assert "Foto" in page.messages[-1] or "foto" in page.messages[-1]
    await r.press("1. ")  # "Lanjut" after a photo, "Lewati" without
    page = await r.post(data={"lat": "-1.485200", "lon": "102.119000"})
    assert "Lokasi diterima" in " ".join(page.messages[-3:])
    for line in ("2",):  # not on the map; then not confidential (no "may we phone you?" on the web)
        await r.say(line)
    page = await r.say("2")
    assert "telepon" not in " ".join(page.messages[-2:])  # nor in the summary
    page = await r.say("1")
    ticket = re.search(r"Nomor tiket: ([0-9A-Z]{4}-[0-9A-Z]{4})", " ".join(page.messages[-3:]))
    assert ticket, page.messages[-3:]
    return ticket.group(1)


async def test_survey_over_plain_forms_is_stored_and_counted_like_chat(web_app: App) -> None:
    async with chat_client(web_app) as client:
        r = Resident(client)
        await onboard(r, "/chat/ktp")  # the QR code's service opens its survey after consent
        assert "KTP Elektronik" in r.page.messages[-1]  # type: ignore[union-attr]
        for score in SCORES:
            await r.press(score)
        page = await r.say("Antrean perlu nomor urut")
        assert "Terima kasih! Penilaian Anda sudah kami simpan" in " ".join(page.messages)
        # the same form posted twice (a reload, a double tap): one delivery
        before = count(web_app, InboundEvent)
        form = {"text": "/menu", "n": "samenonce0123456789", "csrf": page.field("csrf")}
        for _ in range(2):
            await client.post("/chat/send", data=form)
        assert count(web_app, InboundEvent) == before + 1
    with web_app.factory() as db:
        contact = db.scalars(select(Contact)).one()
        assert contact.channel == "web" and contact.consent_at is not None
        resp = db.scalars(select(SurveyResponse)).one()
        assert resp.status == "complete" and resp.suggestion == "Antrean perlu nomor urut"
        scores = dict(db.execute(select(SurveyAnswer.element, SurveyAnswer.score)).all())
        statuses = set(db.scalars(select(OutboxMessage.status).where(OutboxMessage.channel == "web",
                                                                  OutboxMessage.kind == "reply")))
    assert scores == {1: 4, 2: 3, 3: 2, 4: 4, 5: None, 6: 4, 7: 3, 8: 2, 9: 1}
    assert statuses == {"sent"}  # every reply committed, then shown from the thread


async def test_returning_resident_scanning_a_service_qr_code_is_offered_its_survey(web_app: App) -> None:
    """Found by QA: someone who already chatted in this browser and scans the QR code at the KK
    counter saw only their old thread; the code's service must be one press away."""
    async with chat_client(web_app) as client:
        r = Resident(client)
        await onboard(r)
        page = await r.open("/chat/kk")
        assert "Nilai layanan Kartu Keluarga" in page.html
        page = await r.post(data={"text": page.field("text")})
        assert "Kartu Keluarga" in page.messages[-1] and "1/9" in page.messages[-1]
        assert "Nilai layanan Kartu Keluarga" not in page.html  # the thread after it: no offer again
        page = await r.press("Sangat sesuai")
        assert "(2/9)" in page.messages[-1]
        assert "data-qr" not in (await r.open("/chat/kk")).html  # mid-way through that very survey
        assert "Nilai layanan KTP Elektronik" in (await r.open("/chat/ktp")).html
        assert "data-qr" not in (await r.open("/chat/no-such-service")).html


async def test_a_stale_button_is_not_echoed_as_the_current_questions_answer(web_app: App) -> None:
    """Found by QA: "1. Tidak sesuai" pressed on an older page (another tab) of question 1 showed
    in the thread as "1. Tidak mudah", an answer to question 2 that was never recorded."""
    async with chat_client(web_app) as client:
        r = Resident(client)
        await onboard(r, "/chat/ktp")
        stale = r.page.button("Tidak sesuai")  # type: ignore[union-attr]
        page = await r.press("Sangat sesuai")
        assert "(2/9)" in page.messages[-1]
        page = await r.post(data={"choice": stale})
        said = re.findall(r'<div class="msg me"><p class="text">(.*?)</p>', page.html, re.S)
        assert said[-1] == "4. Sangat sesuai"  # the stale press is not shown as an answer to question 2
        assert "(2/9)" in page.messages[-1]  # asked again, nothing recorded for it


async def test_complaint_gets_ticket_and_secret_and_status_needs_both(web_app: App, tmp_path: Path) -> None:
    async with chat_client(web_app) as client:
        r = Resident(client)
        await onboard(r)
        ticket = await file_complaint(r, photo=jpeg_with_exif())
        page = r.page
        assert page is not None and page.secret is not None and page.secret[0] == ticket
        secret = page.secret[1]
        again = await r.open()
        assert again.secret is None and secret not in again.html  # shown once
    with web_app.factory() as db:
        complaint = db.scalars(select(Complaint)).one()
        assert complaint.ticket == ticket and complaint.channel == "web"
        assert complaint.web_secret_hash == webtickets.digest(secret) and secret not in complaint.web_secret_hash
        assert (complaint.latitude, complaint.longitude) == (-1.4852, 102.119)
        photo = complaint.attachments["photos"][0]
    saved = Path(photo["path"])
    assert saved.parent == tmp_path / "media" and saved.is_file()  # where the desk and erasure look
    data = saved.read_bytes()
    assert b"SecretCam" not in data and b"track-me" not in data
    with Image.open(saved) as img:
        assert img.format == "JPEG" and img.size == (640, 480) and not img.getexif()
    # Another browser: the ticket alone shows nothing; a wrong secret looks like an unknown ticket.
    async with chat_client(web_app) as client:
        other = Resident(client)
        await other.open()
        wrong = await other.post("/chat/status", {"ticket": ticket, "secret": "ZZZZZZ"})
        unknown = await other.post("/chat/status", {"ticket": "ZZZZ-9999", "secret": secret})
        assert "tidak cocok" in wrong.html and "tidak cocok" in unknown.html
        assert ticket not in wrong.html.replace(f'value="{ticket}"', "")
        found = await other.post("/chat/status", {"ticket": ticket.lower().replace("-", " "),
                                                   "secret": secret.lower()})
        assert f"Tiket {ticket}: Diterima, menunggu petugas" in found.html
        # answered with a redirect: reloading the result page does not post (and count) again
        raw = await client.post("/chat/status", data={"ticket": ticket, "secret": secret,
                                                      "csrf": found.field("csrf")}, allow_redirects=False)
        assert raw.status == 303 and raw.headers["Location"] == "/chat#status"


async def test_csrf_and_rate_limits_are_refused_politely(sqlite_app: App) -> None:
    limits = Limits(per_address=RateLimit(100, 100), per_contact=RateLimit(0.001, 3),
                    lookups=RateLimit(0.001, 2))
    async with chat_client(sqlite_app, limits) as client:
        r = Resident(client)
        page = await r.open()
        refused = await r.post(data={"text": "/start"}, csrf="forged")
        assert refused.status == 403 and "kedaluwarsa" in refused.html
        no_cookie = await client.post("/chat/send", data={"text": "/start", "csrf": page.field("csrf")},
                                      cookies={"prima_chat": "x"})
        assert no_cookie.status == 403
        # a browser that keeps no cookie is told so, not sent round in circles by "expired" (found by QA)
        client.session.cookie_jar.clear()
        blocked = await client.post("/chat/send", data={"text": "/start", "csrf": page.field("csrf")})
        text = await blocked.text()
        assert blocked.status == 403 and "Izinkan cookie" in text and "kedaluwarsa" not in text
        assert count(sqlite_app, Contact) == 0  # nothing was handled
        await r.open()
        for _ in range(3):
            assert (await r.say("/start")).status == 200
        slow = await r.say("/menu")
        assert slow.status == 429 and "Terlalu banyak permintaan" in slow.html
    async with chat_client(sqlite_app, limits) as client:
        r = Resident(client)
        await r.open()
        for _ in range(2):
            await r.post("/chat/status", {"ticket": "ZZZZ-9999", "secret": "AAAAAA"})
        slow = await r.post("/chat/status", {"ticket": "ZZZZ-9999", "secret": "AAAAAA"})
        assert slow.status == 429 and "Terlalu banyak percobaan" in slow.html


async def test_uploads_other_than_images_or_too_big_are_refused(web_app: App, tmp_path: Path) -> None:
    media = tmp_path / "media"
    async with chat_client(web_app) as client:
        r = Resident(client)
        await onboard(r)
        at_menu = await r.photo(jpeg_with_exif())  # nobody asked for a photo: not kept
        assert "perlu jawaban teks atau pilihan tombol" in at_menu.messages[-2] and not media.exists()
        for line in COMPLAINT_START:
            await r.say(line)
        fake = await r.photo(b"#!/bin/sh\necho not a picture\n" * 20, name="bukti.jpg")
        assert "bukan foto yang bisa kami baca" in fake.html
        big = await r.photo(b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 10))
        assert "terlalu besar" in big.html
        huge = await r.photo(b"0" * (7 * 1024 * 1024))
        # over the request limit: said in the chat, which stays as it was (the photo question)
        assert huge.status == 200 and "5 MB" in huge.html and "foto" in huge.messages[-1].lower()
        assert not media.exists() or not any(media.iterdir())
        await r.open()  # "back to the chat"
        ok = await r.photo(jpeg_with_exif(3000, 2000))  # large but fine: scaled down
        assert ok.status == 200 and len(list(media.iterdir())) == 1
        with Image.open(next(media.iterdir())) as img:
            assert max(img.size) == 2048


async def test_language_switch_turns_the_page_and_the_bot_english(web_app: App) -> None:
    async with chat_client(web_app) as client:
        r = Resident(client)
        await onboard(r)
        await r.say("/bahasa")
        page = await r.press("English")
        assert page.html.startswith("<!doctype html>\n<html lang=\"en\">")
        assert "Check a ticket" in page.html and "Type a message" in page.html
        page = await r.say("/menu")
        assert "Rate a service" in " ".join(page.buttons)


async def test_web_follow_ups_wait_in_the_thread_and_a_claim_moves_them_to_telegram(
        web_app: App, clock: FakeClock) -> None:
    async with chat_client(web_app) as client:
        r = Resident(client)
        await onboard(r)
        ticket = await file_complaint(r)
        with web_app.factory() as db, db.begin():  # staff answer on the desk: queued for the web
            case = db.scalars(select(Case).where(Case.ticket == ticket)).one()
            to_resident(db, case, "Kami sudah menghubungi loket pajak.", clock(), immediate=False)
        stats = await build_dispatcher(web_app, {"web": WebSender()}).drain()
        assert stats.sent >= 1 and stats.failed == 0
        page = await r.open()
        assert "Kami sudah menghubungi loket pajak." in page.messages
        page = await r.post("/chat/continue", {"ticket": ticket})
        link = re.search(r'href="https://t\.me/PrimaTestBot\?start=(klaim_[^"]+)"', page.html)
        assert link, page.html
    payload = link.group(1)
    assert ticket in payload and len(payload) <= 64
    async with harness(web_app, clock) as h, h.polling():
        user = User(4242)
        await h.say(user, f"/start {payload}")
        replies = await h.press(user, "Setuju")
        assert any(f"Tiket {ticket} sekarang diteruskan ke chat ini" in (s.text or "") for s in replies)
        with web_app.factory() as db, db.begin():
            complaint = db.scalars(select(Complaint).where(Complaint.ticket == ticket)).one()
            tg = db.scalars(select(Contact).where(Contact.channel == "telegram")).one()
            assert complaint.contact_id == tg.id and complaint.web_claim_hash is None
            case = db.scalars(select(Case).where(Case.ticket == ticket)).one()
            assert (case.channel, case.chat_id) == ("telegram", "4242")
            clock.advance(minutes=5)
            to_resident(db, case, "Uang tambahan sudah dikembalikan.", clock(), immediate=False)
        await build_dispatcher(web_app, {"telegram": h.channel.sender, "web": WebSender()}).drain()
        await h.server.wait_for(lambda: any("dikembalikan" in (s.text or "") for s in h.server.chat(4242)))
        again = await h.say(User(777), f"/start {payload}")  # the link works once
        await h.press(User(777), "Setuju")
        assert not any("diteruskan" in (s.text or "") for s in h.server.chat(777))
        assert any("sudah dipakai atau kedaluwarsa" in (s.text or "") for s in h.server.chat(777)), again


def test_claim_codes_expire(sqlite_app: App, clock: FakeClock) -> None:
    from bot.runtime.types import Inbound
    from flows.machine.types import Event

    rt = sqlite_app.runtime
    say = iter(range(1000))

    def send(user: str, text: str, channel: str = "web") -> list[str]:
        n = next(say)
        rows = rt.handle(Inbound(channel, user, user, Event("text", f"e{n}", text=text), event_key=f"k{n}"))
        return [str(row.payload.get("text")) for row in rows]

    for line in ["/start", "1", *COMPLAINT_START[1:], "1", "1", "2", "1"]:
        send("webuser-aaaaaaaaaaaaaaaaaaaaa", line)
    with sqlite_app.factory() as db, db.begin():
        cid = db.scalar(select(Contact.id).where(Contact.channel == "web"))
        ticket = db.scalar(select(Complaint.ticket))
        assert cid is not None and ticket is not None
        payload = webtickets.mint_claim(db, cid, ticket, clock())
        assert payload is not None and webtickets.mint_claim(db, cid + 99, ticket, clock()) is None
    clock.advance(hours=25)
    send("tg-1", "/start", "telegram")
    send("tg-1", "1", "telegram")
    out = send("tg-1", f"/start {payload}", "telegram")
    assert any("kedaluwarsa" in line for line in out)
    with sqlite_app.factory() as db:
        assert db.scalar(select(Complaint.contact_id)) == cid


async def test_web_only_mode_serves_the_chat_and_the_scheduler(sqlite_url: str, clock: FakeClock) -> None:
    from aiohttp import ClientSession

    from bot.channels.webchat.serve import serve
    from tests.conftest import free_port

    port = free_port()
    app = make_app(sqlite_url, clock, web_chat="on", http_port=port)
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(app, stop=stop, started=started))
    try:
        await asyncio.wait_for(started.wait(), 20)
        async with ClientSession() as http, http.get(f"http://127.0.0.1:{port}/chat/ktp") as resp:
            assert resp.status == 200 and "Mulai" in await resp.text()
            assert "prima_chat" in resp.cookies and resp.cookies["prima_chat"]["httponly"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        app.engine.dispose()


async def test_a_desk_reply_to_a_web_resident_joins_the_thread_not_another_channel(sqlite_app: App,
                                                                                    clock: FakeClock) -> None:
    from bot.channels.webchat.serve import mount
    from bot.desk.outgoing import outbox_row
    from bot.web.desk.base import HOOKS, DeskHooks
    from bot.web.desk.routes import add_desk_routes
    from bot.web.server import build_web_app

    handed: list[OutboxMessage] = []

    async def channel_deliver(rows: list[OutboxMessage]) -> None:
        handed.extend(rows)

    web_app = build_web_app()
    add_desk_routes(web_app, sqlite_app, DeskHooks(deliver=channel_deliver))
    senders: dict[str, Any] = {}
    chat = mount(web_app, sqlite_app, senders)
    assert chat is not None and isinstance(senders["web"], WebSender)
    with sqlite_app.factory() as db, db.begin():
        rows = [outbox_row(db, channel=ch, chat_id=chat_id, payload={"text": "Balasan petugas"},
                           now=clock(), immediate=True) for ch, chat_id in (("web", "cookie-id"), ("telegram", "42"))]
        db.flush()
        ids = [r.id for r in rows]
    hooks = web_app[HOOKS]
    assert hooks.deliver is not None
    await hooks.deliver(rows)
    chat.close()
    assert [r.channel for r in handed] == ["telegram"]
    with sqlite_app.factory() as db:
        assert db.get(OutboxMessage, ids[0]).status == "sent"  # type: ignore[union-attr]


async def test_data_deletion_on_the_web_shows_its_confirmation_once_and_forgets_the_browser(
        sqlite_app: App) -> None:
    async with chat_client(sqlite_app) as client:
        r = Resident(client)
        await onboard(r)
        old_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/chat"))["prima_chat"].value
        await r.press("Data saya")
        await r.press("Hapus data saya")
        page = await r.press("Ya, hapus")
        assert "Data Anda sudah dihapus" in page.html and "Mulai" in page.html
        new_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/chat"))["prima_chat"].value
        assert new_cookie != old_cookie
        assert "Data Anda sudah dihapus" not in (await r.open()).html  # shown once
    assert count(sqlite_app, Contact) == 0 and count(sqlite_app, OutboxMessage) == 0


async def test_a_web_ticket_continued_on_whatsapp(sqlite_url: str, clock: FakeClock) -> None:
    from urllib.parse import parse_qs, urlparse

    from tests.whatsapp_harness import harness as wa_harness

    async with wa_harness(sqlite_url, clock, whatsapp_public_number="62 812-3456-7890") as h:
        async with chat_client(h.app) as client:
            r = Resident(client)
            await onboard(r)
            ticket = await file_complaint(r)
            page = await r.post("/chat/continue", {"ticket": ticket})
        link = re.search(r'href="(https://wa\.me/6281234567890\?text=[^"]+)"', page.html)
        assert link, page.html
        text = parse_qs(urlparse(link.group(1).replace("&amp;", "&")).query)["text"][0]
        assert text.startswith("/start klaim_") and ticket in text
        await h.say("628111222333", text)
        replies = await h.tap("628111222333", "Setuju")
        assert any(f"Tiket {ticket} sekarang diteruskan" in (m.text or "") for m in replies)
        with h.app.factory() as db:
            case = db.scalars(select(Case).where(Case.ticket == ticket)).one()
            assert case.channel == "whatsapp" and case.chat_id == "628111222333"


def test_a_transparent_png_is_laid_on_white() -> None:
    """Half-transparent blue shows light blue on a phone; the JPEG must look the same, not opaque blue."""
    from bot.channels.webchat.photos import reencode

    png = io.BytesIO()
    Image.new("RGBA", (40, 40), (0, 0, 255, 128)).save(png, "PNG")
    with Image.open(io.BytesIO(reencode(png.getvalue()))) as out:
        r, g, b = out.convert("RGB").getpixel((20, 20))  # type: ignore[misc]
    assert b > 240 and 110 < r < 145 and 110 < g < 145


async def test_browser_wording_no_chat_id_and_no_slash_start(web_app: App) -> None:
    """A browser has no chat ID and no /start to type: the web chat says what it keeps (a
    cookie's random code) and what to press; the chat channels keep their own wording."""
    async with chat_client(web_app) as client:
        r = Resident(client)
        page = await r.open()
        page = await r.post(data={"text": page.field("text")})
        notice = page.messages[-1]
        assert "kode acak browser ini" in notice and "ID chat" not in notice
        page = await r.press("Tidak setuju")
        assert "Tekan Mulai" in page.html and "/start kapan" not in page.html and "ID chat" not in page.html
    with web_app.factory() as db:
        assert db.scalar(select(func.count()).select_from(Contact)) == 0  # and nothing kept
    from bot.i18n import TEXTS
    assert "ID chat" in TEXTS("id", "consent.notice")  # Telegram and WhatsApp unchanged


async def test_the_thread_shows_what_the_resident_sent(web_app: App) -> None:
    """Typed words and pressed buttons stand in the thread before the bot's answer, so a
    resident can check what they sent; a reload keeps both sides."""
    mine = re.compile(r'<div class="msg me"><p class="text">(.*?)</p></div>', re.S)
    async with chat_client(web_app) as client:
        r = Resident(client)
        await onboard(r, "/chat/ktp")
        page = await r.press("Sangat sesuai")  # a pressed button: its label
        assert mine.findall(page.html)[-1] == "4. Sangat sesuai"
        page = await r.say("3")  # typed: the words as typed
        assert mine.findall(page.html)[-1] == "3"
        order = re.findall(r'<div class="msg (me|bot)"', page.html)
        last_me = max(i for i, kind in enumerate(order) if kind == "me")
        assert last_me < len(order) - 1 and set(order[last_me + 1:]) == {"bot"}  # the answer follows
        again = await r.open("/chat")
        assert mine.findall(again.html)[-2:] == ["4. Sangat sesuai", "3"]
        assert again.messages[-1] == page.messages[-1]  # the bot's question is still the last
        page = await r.post(data={"text": "/menu"})  # the page's Menu button: its label, not "/menu"
        assert mine.findall(page.html)[-1] == "Menu"
        page = await r.post(data={"text": "/bahasa"})
        assert mine.findall(page.html)[-1] == "Bahasa / Language"
    with web_app.factory() as db:  # kept as sent rows of the thread, never sent anywhere
        kinds = set(db.scalars(select(OutboxMessage.status).where(OutboxMessage.kind == "web_said")))
    assert kinds == {"sent"}
