"""WhatsApp webhooks over real HTTP: handshake, signatures, every message shape, statuses, redelivery."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.channels.whatsapp.channel import WEBHOOK_PATH
from bot.channels.whatsapp.ids import event_key
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


def count(h: WA, model: type) -> int:
    with h.app.factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


async def consent(h: WA, wa_id: str = SITI) -> None:
    first = await h.say(wa_id, "halo")
    assert first[-1].titles() == ["1. Setuju", "2. Tidak setuju", "3. English"]
    await h.tap(wa_id, "Setuju")


async def test_verification_handshake(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        ok = await h.http.get(WEBHOOK_PATH, params={
            "hub.mode": "subscribe", "hub.verify_token": fg.VERIFY_TOKEN, "hub.challenge": "1158201444"})
        assert ok.status == 200 and await ok.text() == "1158201444"
        wrong = await h.http.get(WEBHOOK_PATH, params={
            "hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"})
        assert wrong.status == 403 and "1158201444" not in await wrong.text()
        no_mode = await h.http.get(WEBHOOK_PATH, params={
            "hub.verify_token": fg.VERIFY_TOKEN, "hub.challenge": "x"})
        assert no_mode.status == 403


async def test_signature_required(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        body = fg.webhook(messages=[fg.text_message(SITI, "halo")], contacts=[fg.contact(SITI)])
        raw = fg.encode(body)
        assert await h.post(raw, signature=None) == 403
        assert await h.post(raw, signature="sha256=" + "0" * 64) == 403
        assert await h.post(raw, signature=fg.sign(raw, "another-secret")) == 403
        tampered = raw.replace(b"halo", b"hallo")
        assert await h.post(tampered, signature=fg.sign(raw)) == 403
        # nothing stored, nothing answered
        for model in (WhatsAppWebhook, InboundEvent, Contact, OutboxMessage):
            assert count(h, model) == 0
        assert h.graph.sent == [] and h.graph.requests == 0
        # the same bytes with Meta's signature go through
        assert await h.post(raw) == 200
        assert count(h, Contact) == 1
        assert h.graph.last_to(SITI).titles() == ["1. Setuju", "2. Tidak setuju", "3. English"]
        assert count(h, WhatsAppWebhook) == 0  # processed: the stored body is gone


async def test_every_message_shape(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        await consent(h)
        # list reply: the menu has seven entries, so it is a list message
        menu = h.graph.last_question(SITI)
        assert menu.interactive["type"] == "list" and len(menu.options()) == 7
        replies = await h.tap(SITI, "Buat pengaduan")
        agencies = replies[-1]
        assert agencies.interactive["type"] == "list"
        # a sticker is not something the bot reads: a polite answer and the question again
        replies = await h.send(SITI, fg.sticker_message(SITI))
        assert "hanya bisa membaca teks" in replies[0].text
        assert replies[-1].titles() == agencies.titles()
        # typed words still work on a list
        await h.say(SITI, "ktp")
        await h.say(SITI, "Petugas minta uang 50 ribu untuk mempercepat KTP saya")
        category = h.graph.last_to(SITI)
        assert category.type == "text" and "\n1. " in category.text  # 13 choices: numbered text
        await h.say(SITI, "4")
        await h.tap(SITI, "Hari ini")
        # an image is evidence
        replies = await h.send(SITI, fg.image_message(SITI, caption="kuitansi"))
        assert replies and replies[-1].options()
        await h.tap(SITI, "Lanjut")
        # a location
        replies = await h.send(SITI, fg.location_message(SITI, -1.4852, 102.119))
        assert replies[-1].options()
        with h.app.factory() as db:
            state = db.execute(select(OutboxMessage.payload).order_by(OutboxMessage.id.desc())).first()
        assert state is not None
        # a reaction is not answered at all
        before = len(h.graph.sent)
        reaction = fg.message(SITI, "reaction", {"message_id": h.graph.sent[-1].wamid, "emoji": "👍"})
        assert await h.post(fg.webhook(messages=[reaction], contacts=[fg.contact(SITI)])) == 200
        assert len(h.graph.sent) == before
        # an unknown type ("unsupported", as Meta sends it) gets the polite answer
        odd = fg.message(SITI, "unsupported", {})
        odd["errors"] = [{"code": 131051, "title": "Message type unknown"}]
        replies = await h.send(SITI, odd)
        assert "hanya bisa membaca teks" in replies[0].text


async def test_redelivery_is_processed_once(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        msg = fg.text_message(SITI, "halo")
        body = fg.webhook(messages=[msg], contacts=[fg.contact(SITI)])
        assert await h.post(body) == 200
        assert await h.post(body) == 200  # Meta redelivers the same message id
        clock.advance(minutes=5)
        assert await h.post(body) == 200
        assert len(h.graph.to(SITI)) == 2  # the greeting and the consent question, once
        with h.app.factory() as db:
            keys = db.scalars(select(InboundEvent.event_key)).all()
        assert keys == [event_key(msg["id"])]  # hashed: a wamid carries the phone number


async def test_statuses_recorded_on_the_outbox_row(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        await h.say(SITI, "halo")
        wamid = h.graph.last_to(SITI).wamid
        statuses = [fg.status(wamid, "sent", SITI, ts=1764036100),
                    fg.status(wamid, "read", SITI, ts=1764036160),
                    fg.status(wamid, "delivered", SITI, ts=1764036130)]  # out of order
        assert await h.post(fg.webhook(statuses=statuses)) == 200
        with h.app.factory() as db:
            row = db.scalars(select(OutboxMessage).where(OutboxMessage.provider_message_id == wamid)).one()
        assert row.status == "sent" and row.delivery_status == "read"
        assert row.delivered_at is not None and row.read_at is not None
        assert row.delivered_at.timestamp() == 1764036130 and row.read_at.timestamp() == 1764036160

        await h.tap(SITI, "Setuju")
        failed_id = h.graph.last_to(SITI).wamid
        assert await h.post(fg.webhook(statuses=[fg.status(failed_id, "failed", SITI, error_code=131026)])) == 200
        with h.app.factory() as db:
            row = db.scalars(select(OutboxMessage).where(OutboxMessage.provider_message_id == failed_id)).one()
        assert row.status == "failed" and row.delivery_status == "failed"
        assert row.error_code == "131026" and "Message undeliverable" in (row.last_error or "")


async def test_failed_processing_is_kept_and_retried(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        real = h.app.runtime.handle
        calls = {"n": 0}

        def broken(inbound: object) -> list[OutboxMessage]:
            calls["n"] += 1
            raise RuntimeError("database went away")

        h.app.runtime.handle = broken  # type: ignore[method-assign]
        assert await h.post(fg.webhook(messages=[fg.text_message(SITI, "halo")],
                                       contacts=[fg.contact(SITI)])) == 200
        assert calls["n"] == 1 and h.graph.sent == []
        with h.app.factory() as db:
            kept = db.scalars(select(WhatsAppWebhook)).one()
        assert kept.attempts == 1 and "database went away" in (kept.last_error or "")
        h.app.runtime.handle = real  # type: ignore[method-assign]
        clock.advance(minutes=2)
        assert await h.channel.retry_stored() == 1
        assert h.graph.last_to(SITI).titles()[0] == "1. Setuju"  # the resident got the answer after all
        assert count(h, WhatsAppWebhook) == 0


async def test_resident_keyed_by_wa_id_and_business_scoped_id(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        await h.send(SITI, fg.text_message(SITI, "halo"), name="Siti", user_id="ID.1234567890abcdef")
        # the same person agrees, with another display name and only the business-scoped id
        # (the name is stored with the consent, not before)
        only_bsuid = fg.button_reply(SITI, h.graph.last_question(SITI).option("Setuju"))
        del only_bsuid["from"]
        only_bsuid["from_user_id"] = "ID.1234567890abcdef"
        contact = {"profile": {"name": "Bu Siti"}, "user_id": "ID.1234567890abcdef"}
        assert await h.post(fg.webhook(messages=[only_bsuid], contacts=[contact])) == 200
        # a different person with the same display name is someone else
        await h.send("6289876543210", fg.text_message("6289876543210", "halo"), name="Bu Siti")
        with h.app.factory() as db:
            contacts = db.scalars(select(Contact).order_by(Contact.id)).all()
            ident = db.get(WhatsAppIdentity, "ID.1234567890abcdef")
        assert [c.external_id for c in contacts] == [SITI, "6289876543210"]
        assert contacts[0].display_name == "Bu Siti"
        assert ident is not None and ident.wa_id == SITI
        assert len(h.graph.to(SITI)) == 4  # both answers went to her phone number


async def test_other_phone_numbers_and_objects_ignored(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        other = fg.webhook(messages=[fg.text_message(SITI, "halo")], contacts=[fg.contact(SITI)],
                           phone_number_id="999")
        assert await h.post(other) == 200
        page = {"object": "page", "entry": []}
        assert await h.post(page) == 200
        assert await h.post(b"not json") == 400
        assert h.graph.sent == [] and count(h, Contact) == 0


async def test_failure_status_before_the_id_is_recorded(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        await h.say(SITI, "halo")
        early = fg.webhook(statuses=[fg.status("wamid.LATE", "failed", SITI, error_code=131026)])
        assert await h.post(early) == 200
        with h.app.factory() as db:
            kept = db.scalars(select(WhatsAppWebhook)).one()
            assert kept.attempts == 1 and "wamid.LATE" in (kept.last_error or "")
            # the send's bookkeeping lands after the status (a slow commit)
            row = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
            assert row is not None
            row.provider_message_id = "wamid.LATE"
            db.commit()
        clock.advance(minutes=2)
        assert await h.channel.retry_stored() == 1
        with h.app.factory() as db:
            row = db.scalars(select(OutboxMessage).where(OutboxMessage.provider_message_id == "wamid.LATE")).one()
        assert row.status == "failed" and row.error_code == "131026"
        assert count(h, WhatsAppWebhook) == 0


async def test_failure_status_for_a_message_never_ours_is_dropped(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        assert await h.post(fg.webhook(statuses=[fg.status("wamid.OTHER", "failed", SITI,
                                                           error_code=131026)])) == 200
        for _ in range(3):
            clock.advance(minutes=2)
            await h.channel.retry_stored()
        assert count(h, WhatsAppWebhook) == 0  # looked for twice more, then logged and dropped
