"""WhatsApp webhook intake: body size, bad JSON, business-scoped ids, changed numbers, order.

Every body is posted over HTTP with Meta's signature to the real channel; replies go to the
fake Graph API, which refuses a business-scoped id in ``to`` as Meta documents.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.channels.whatsapp import channel as wa
from bot.channels.whatsapp.ids import event_key
from bot.channels.whatsapp.inbound import parse_webhook
from bot.storage.models import (
    Contact,
    InboundEvent,
    OutboxMessage,
    WhatsAppIdentity,
    WhatsAppWebhook,
)
from tests import fake_graph as fg
from tests.conftest import FakeClock
from tests.whatsapp_harness import WA, harness

SITI = "6281234567890"
NEW_NUMBER = "6285711112222"
# A country code, a period and 128 characters: the longest business-scoped id Meta documents.
BSUID = "ID." + "A1b2C3d4" * 16
LONG_WAMID = "wamid." + "HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBMDlGRTk3QjY0" * 5


def count(h: WA, model: type) -> int:
    with h.app.factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def nested(depth: int) -> bytes:
    return b'{"object":"whatsapp_business_account","entry":' + b"[" * depth + b"]" * depth + b"}"


async def test_signed_bodies_up_to_the_documented_cap_are_accepted(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        body = fg.webhook(messages=[fg.text_message(SITI, "halo")], contacts=[fg.contact(SITI)])
        body["entry"][0]["changes"][0]["value"]["padding"] = "x" * int(1.15 * 1024 * 1024)
        raw = fg.encode(body)
        assert 1024 * 1024 < len(raw) < wa.MAX_WEBHOOK_BODY
        assert await h.post(raw) == 200  # was 413, and Meta would have redelivered it for days
        assert h.graph.last_to(SITI).titles() == ["1. Setuju", "2. Tidak setuju", "3. English"]
        body["entry"][0]["changes"][0]["value"]["padding"] = "x" * (3 * 1024 * 1024)
        assert await h.post(fg.encode(body)) == 200  # Meta's 3 MB
        too_big = fg.encode(body).replace(b'"padding":"', b'"padding":"' + b"y" * wa.MAX_WEBHOOK_BODY)
        assert await h.post(too_big) == 413


async def test_deeply_nested_json_is_a_bad_request_with_one_line(
    sqlite_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(sqlite_url, clock) as h:
        caplog.set_level(logging.INFO)
        assert await h.post(nested(100_000)) == 400
        assert count(h, WhatsAppWebhook) == 0 and h.graph.sent == []
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) == 1 and "RecursionError" in lines[0].getMessage() and not lines[0].exc_info


async def test_telegram_webhook_refuses_deep_nesting_with_400(caplog: pytest.LogCaptureFixture) -> None:
    from aiogram import Bot, Dispatcher
    from aiohttp.test_utils import TestClient, TestServer

    from bot.channels.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH, add_telegram_webhook
    from bot.web.server import build_web_app

    bot = Bot("123456:" + "A" * 35)
    web_app = build_web_app()
    add_telegram_webhook(web_app, Dispatcher(), bot, "s" * 32)
    client: TestClient[Any, Any] = TestClient(TestServer(web_app, host="127.0.0.1", port=0))
    await client.start_server()
    caplog.set_level(logging.INFO)
    try:
        deep = b'{"update_id":1,"message":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        resp = await client.post(WEBHOOK_PATH, data=deep, headers={SECRET_HEADER: "s" * 32})
        assert resp.status == 400
        # parses, but carries no update type this version knows (deep junk in an extra field):
        # skipped with 200, as Telegram would resend it for ever after a 500
        odd = b'{"update_id":2,"x":' + b'{"a":' * 900 + b"1" + b"}" * 900 + b"}"
        resp = await client.post(WEBHOOK_PATH, data=odd, headers={SECRET_HEADER: "s" * 32})
        assert resp.status == 200 and (await resp.json())["ignored"] is True
    finally:
        await client.close()
        await bot.session.close()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2 and not any(r.exc_info for r in caplog.records)


async def test_resident_known_only_by_business_scoped_id(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        msg = fg.text_message(SITI, "halo", msg_id=LONG_WAMID)
        del msg["from"]
        msg["from_user_id"] = BSUID
        body = fg.webhook(messages=[msg], contacts=[{"profile": {"name": "Siti"}, "user_id": BSUID}])
        assert await h.post(body) == 200
        assert count(h, WhatsAppWebhook) == 0  # processed, not failing every retry
        sent = h.graph.to(BSUID)
        assert [s.titles() for s in sent][-1] == ["1. Setuju", "2. Tidak setuju", "3. English"]
        assert all(s.body.get("recipient") == BSUID and "to" not in s.body for s in sent)
        assert h.graph.refused == []
        with h.app.factory() as db:
            assert db.scalars(select(Contact.external_id)).one() == BSUID
            assert db.scalars(select(InboundEvent.event_key)).one() == event_key(LONG_WAMID)
        await h.tap(BSUID, "Setuju")  # the button answer comes back with the same id
        assert "1. Setuju" not in h.graph.last_to(BSUID).titles()


async def test_changed_number_keeps_the_resident(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        await h.say(SITI, "halo")
        await h.tap(SITI, "Setuju")
        with h.app.factory() as db:
            before = db.scalars(select(Contact)).one()
        parked = OutboxMessage(contact_id=before.id, channel="whatsapp", chat_id=SITI, kind="followup_checkin",
                               payload={"text": "Apakah masalahnya sudah selesai?"}, status="waiting",
                               due_at=clock.now, created_at=clock.now, dedupe_key="test:parked")
        with h.app.factory() as db, db.begin():
            db.add(parked)
        system = fg.message(SITI, "system", {
            "body": f"User Siti changed from {SITI} to {NEW_NUMBER}",
            "wa_id": NEW_NUMBER, "type": "user_changed_number"})
        assert await h.post(fg.webhook(messages=[system])) == 200
        replies = await h.say(NEW_NUMBER, "menu")
        assert "2. Buat pengaduan" in replies[-1].titles()  # the menu, not the consent question again
        with h.app.factory() as db:
            contacts = db.scalars(select(Contact)).all()
            moved = db.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key == "test:parked")).one()
        assert [(c.id, c.external_id) for c in contacts] == [(before.id, NEW_NUMBER)]
        assert contacts[0].consent_at == before.consent_at is not None
        assert moved.chat_id == NEW_NUMBER
        with h.app.factory() as db:
            assert db.scalar(select(func.count()).select_from(WhatsAppIdentity)) == 0


def bsuid_message(user_id: str, text: str) -> dict[str, Any]:
    msg = fg.text_message(SITI, text)
    del msg["from"]
    msg["from_user_id"] = user_id
    return msg


async def test_changed_business_scoped_id_keeps_the_resident(db_url: str, clock: FakeClock) -> None:
    new_id = "ID." + "N3w" * 20
    async with harness(db_url, clock) as h:
        assert await h.post(fg.webhook(messages=[bsuid_message(BSUID, "halo")])) == 200
        await h.tap(BSUID, "Setuju")
        system = fg.message(SITI, "system", {"body": "User changed their business-scoped user id",
                                             "user_id": new_id, "type": "user_changed_user_id"})
        del system["from"]
        system["from_user_id"] = BSUID
        assert await h.post(fg.webhook(messages=[system])) == 200
        assert await h.post(fg.webhook(messages=[bsuid_message(new_id, "menu")])) == 200
        assert "2. Buat pengaduan" in h.graph.last_to(new_id).titles()  # no second consent question
        with h.app.factory() as db:
            assert db.scalars(select(Contact.external_id)).all() == [new_id]
        # a phone-keyed resident whose business-scoped id changes: the new id maps to the phone
        await h.say(SITI, "halo")
        system = fg.message(SITI, "system", {"body": "changed", "user_id": new_id + "P",
                                             "type": "user_changed_user_id"})
        assert await h.post(fg.webhook(messages=[system])) == 200
        with h.app.factory() as db:
            ident = db.get(WhatsAppIdentity, new_id + "P")
        assert ident is not None and ident.wa_id == SITI


async def test_failed_status_for_an_unknown_message_is_one_warning(
    sqlite_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(sqlite_url, clock) as h:
        caplog.set_level(logging.DEBUG, logger="bot")
        assert await h.post(fg.webhook(statuses=[fg.status("wamid.OTHER", "failed", SITI,
                                                           error_code=131026)])) == 200
        for _ in range(3):
            clock.advance(minutes=2)
            await h.channel.retry_stored()
        assert count(h, WhatsAppWebhook) == 0
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and loud[0].levelno == logging.WARNING and "wamid.OTHER" in loud[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert SITI not in loud[0].getMessage()  # no phone numbers in the log


async def test_one_residents_concurrent_deliveries_are_processed_in_storage_order(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with harness(db_url, clock) as h:
        await h.say(SITI, "halo")
        await h.tap(SITI, "Setuju")
        stored: list[str] = []  # message ids in the order their bodies were committed
        real_store = wa.store_webhooks

        def store(factory: Any, bodies: list[dict[str, Any]], now: Any, conn: Any = None) -> list[int]:
            ids = real_store(factory, bodies, now, conn)
            stored.extend(b["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for b in bodies)
            return ids

        monkeypatch.setattr(wa, "store_webhooks", store)
        bodies = [fg.encode(fg.webhook(messages=[fg.text_message(SITI, f"pesan {i}")],
                                       contacts=[fg.contact(SITI)])) for i in range(50)]

        async def deliver(raw: bytes) -> int:
            resp = await h.http.post(wa.WEBHOOK_PATH, data=raw, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": fg.sign(raw)})
            return resp.status

        statuses = await asyncio.gather(*(deliver(raw) for raw in bodies))
        await h.channel.idle()
        assert statuses == [200] * 50
        with h.app.factory() as db:
            processed = db.scalars(select(InboundEvent.event_key).order_by(InboundEvent.id)).all()[-50:]
        # The storage order by a counter, not by row id: SQLite gives a new row the highest id
        # plus one, so once the newest bodies were processed and deleted an id comes back (the
        # old version of this test sorted by row id and saw "swapped" pairs on SQLite).
        assert processed == [event_key(msg_id) for msg_id in stored]


def test_messages_in_one_body_follow_metas_timestamps() -> None:
    late = fg.text_message(SITI, "kedua", ts=1764036005)
    early = fg.text_message(SITI, "pertama", ts=1764036001)
    other = fg.text_message("6289876543210", "halo", ts=1764036003)
    parsed = parse_webhook(fg.webhook(messages=[late, other, early], contacts=[fg.contact(SITI)]))
    assert [m.message_id for m in parsed.messages] == [early["id"], other["id"], late["id"]]


def test_graph_api_version_is_a_setting() -> None:
    from bot.config import ConfigError, load_settings

    assert load_settings().whatsapp_graph_url == "https://graph.facebook.com/v26.0"
    assert load_settings(whatsapp_api_version="v27.0").whatsapp_graph_url.endswith("/v27.0")
    assert load_settings(whatsapp_api_base="http://proxy:8080/").whatsapp_graph_url == "http://proxy:8080/v26.0"
    assert load_settings(whatsapp_api_base="http://proxy:8080/v23.0",
                         whatsapp_api_version="v27.0").whatsapp_graph_url == "http://proxy:8080/v23.0"
    with pytest.raises(ConfigError, match=r"^Configuration error: WHATSAPP_API_VERSION: "):
        load_settings(whatsapp_api_version="26")
