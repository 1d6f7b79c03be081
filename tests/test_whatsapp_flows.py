"""A full survey, a complaint and the 24-hour rule over WhatsApp (real HTTP, fake Graph API)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.desk import intake
from bot.storage.models import (
    Complaint,
    Contact,
    ConversationSession,
    FollowupAnswer,
    OutboxMessage,
    SurveyResponse,
)
from tests import fake_graph as fg
from tests.conftest import FakeClock
from tests.whatsapp_harness import WA, harness

SITI = "6281234567890"
BUDI = "6285212345678"


def without_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 24-hour-rule tests use the blind check-in, which only a complaint without a case
    still gets (every complaint opens a case: tests/test_complaint_cases.py)."""
    monkeypatch.setattr(intake, "on_complaint", lambda *args, **kwargs: None)


async def start(h: WA, wa_id: str = SITI) -> None:
    await h.say(wa_id, "halo")
    await h.tap(wa_id, "Setuju")


async def file_complaint(h: WA, wa_id: str = SITI) -> str:
    """The whole complaint flow with taps, typing, a photo and a location; returns the ticket."""
    await start(h, wa_id)
    await h.tap(wa_id, "Buat pengaduan")
    await h.tap(wa_id, "Disdukcapil")
    await h.tap(wa_id, "KTP Elektronik")
    await h.say(wa_id, "Petugas loket meminta uang 50 ribu supaya KTP cepat jadi")
    category = h.graph.last_to(wa_id)
    assert category.type == "text" and "4. " in category.text  # 11 categories: numbered text
    await h.say(wa_id, "4")  # typed number
    await h.tap(wa_id, "Hari ini")
    photo_q = h.graph.last_question(wa_id)
    assert photo_q.interactive["type"] == "button"  # Lewati + back + cancel
    await h.send(wa_id, fg.image_message(wa_id, caption="kuitansi tanpa cap"))
    await h.tap(wa_id, "Lanjut")
    await h.send(wa_id, fg.location_message(wa_id, -1.4852, 102.119))
    await h.tap(wa_id, "Tidak")  # not on the public map
    await h.tap(wa_id, "Ya")  # keep my identity confidential
    await h.tap(wa_id, "Tidak")  # do not contact me
    summary = h.graph.last_question(wa_id)
    assert "Pungutan" in summary.text or "pungli" in summary.text.lower()
    done = await h.tap(wa_id, "Kirim")
    with h.app.factory() as db:
        ticket = db.scalars(select(Complaint.ticket).order_by(Complaint.id.desc())).first()
    assert ticket is not None and any(ticket in m.text for m in done)
    return ticket


async def test_full_survey(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        await start(h)
        await h.tap(SITI, "Nilai layanan")
        await h.tap(SITI, "Disdukcapil")
        await h.tap(SITI, "KTP Elektronik")
        described = []
        for n in range(9):
            question = h.graph.last_question(SITI)
            assert question.interactive["type"] == "list"  # 4 answers, skip, back, cancel
            rows = question.options()
            assert len(rows) == 7 and all(len(r["title"]) <= 24 for r in rows)
            described += [r for r in rows if r.get("description")]
            await h.tap(SITI, rows[n % 4]["title"])  # scores 4, 3, 2, 1, 4, ...
        # long labels are cut in the title and given whole in the description
        assert any(r["description"] == "Ada tetapi tidak berfungsi" for r in described)
        replies = await h.say(SITI, "Antrian panjang,\ntolong tambah loket")
        assert any("Terima kasih" in m.text for m in replies)

    with h.app.factory() as db:
        resp = db.scalars(select(SurveyResponse)).one()
        assert resp.status == "complete" and resp.channel == "whatsapp"
        assert resp.suggestion == "Antrian panjang,\ntolong tambah loket"
        assert [a.score for a in resp.answers] == [4, 3, 2, 1, 4, 3, 2, 1, 4]
    assert h.graph.refused == []  # every message respected WhatsApp's limits


async def test_complaint(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        ticket = await file_complaint(h)
        with h.app.factory() as db:
            c = db.scalars(select(Complaint)).one()
        # the photo was saved before Meta deletes it
        saved = Path(c.attachments["photos"][0]["path"])
        media_id = c.attachments["photos"][0]["media_id"]
        assert saved.read_bytes() == h.graph._media_bytes(media_id) and saved.suffix == ".jpg"
        assert h.graph.downloads == [media_id]
    assert c.ticket == ticket and c.channel == "whatsapp" and c.category == "pungli"
    assert c.description == "Petugas loket meminta uang 50 ribu supaya KTP cepat jadi"
    assert c.latitude == -1.4852 and c.longitude == 102.119
    assert c.confidential is True and c.contact_consent is False
    photos = c.attachments["photos"]
    assert len(photos) == 1 and photos[0]["media_id"].startswith("media-in-")
    assert photos[0]["caption"] == "kuitansi tanpa cap"
    assert c.reporter_name == "Siti Aminah"
    assert h.graph.refused == []


async def test_stale_button_refused(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        await start(h)
        menu = h.graph.last_question(SITI)
        await h.tap(SITI, "Nilai layanan")
        replies = await h.tap(SITI, "Buat pengaduan", on=menu)  # an old list, tapped again
        assert "tidak berlaku" in replies[0].text
        with h.app.factory() as db:
            assert db.scalars(select(Complaint)).first() is None


async def test_followup_waits_outside_24h_window_without_template(
        db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    without_case(monkeypatch)
    async with harness(db_url, clock) as h:
        ticket = await file_complaint(h)
        sent_before = len(h.graph.sent)
        clock.advance(days=7, hours=1)  # the check-in is due; her last message was 7 days ago
        await h.drain()
        with h.app.factory() as db:
            row = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "followup_checkin")).one()
        assert row.status == "waiting" and row.attempts == 0
        assert len(h.graph.sent) == sent_before and h.graph.refused == []  # no 131047 provoked
        clock.advance(days=2)
        await h.drain()
        assert len(h.graph.sent) == sent_before  # still waiting, not failed
        # she writes again: the window opens, her message is answered, the check-in follows
        replies = await h.say(SITI, "halo")
        assert replies and ticket not in replies[0].text
        await h.drain()
        checkin = h.graph.last_to(SITI)
        assert ticket in checkin.text and checkin.interactive["type"] == "button"
        assert checkin.titles() == ["Ya, sudah selesai", "Belum", "Tidak, ada masalah"]
        await h.tap(SITI, "Ya, sudah selesai", on=checkin)
        with h.app.factory() as db:
            answer = db.scalars(select(FollowupAnswer)).one()
            status = db.scalars(select(Complaint.status)).one()
        assert answer.answer == "yes" and status == "closed"


async def test_followup_as_template_outside_window(
        sqlite_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    without_case(monkeypatch)
    async with harness(sqlite_url, clock, whatsapp_template_followup="prima_tindak_lanjut",
                       whatsapp_template_buttons=3) as h:
        ticket = await file_complaint(h)
        clock.advance(days=7, hours=1)
        await h.drain()
        sent = h.graph.last_to(SITI)
        assert sent.type == "template"
        template = sent.body["template"]
        assert template["name"] == "prima_tindak_lanjut" and template["language"] == {"code": "id"}
        assert ticket in sent.text and "\n" not in sent.text
        payloads = [c["parameters"][0]["payload"] for c in template["components"][1:]]
        assert [p.rsplit(":", 1)[1] for p in payloads] == ["yes", "notyet", "no"]
        # she taps the template's quick reply "Belum" (type "button" in the webhook)
        tap = fg.message(SITI, "button", {"payload": payloads[1], "text": "Belum"})
        await h.send(SITI, tap)
        with h.app.factory() as db:
            answer = db.scalars(select(FollowupAnswer)).one()
        assert answer.answer == "notyet"


async def test_within_window_the_followup_is_interactive(
        sqlite_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    without_case(monkeypatch)
    async with harness(sqlite_url, clock, whatsapp_template_followup="prima_tindak_lanjut") as h:
        await file_complaint(h)
        clock.advance(days=6, hours=20)
        await h.say(SITI, "menu")  # she wrote 4 hours before the check-in is due
        clock.advance(hours=5)
        await h.drain()
        assert h.graph.last_to(SITI).type == "interactive"


async def test_131047_from_the_api_parks_the_message(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        await start(h)
        h.graph.fail_next(131047)  # Meta counts the window differently from us
        await h.say(SITI, "menu")
        with h.app.factory() as db:
            rows = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1)).all()
        assert rows[0].status == "waiting"
        clock.advance(minutes=1)
        await h.drain()
        assert h.graph.refused[-1][0] == 131047 and len(h.graph.refused) == 1
        await h.say(SITI, "bantuan")
        await h.drain()
        with h.app.factory() as db:
            waiting = db.scalars(select(OutboxMessage).where(OutboxMessage.status == "waiting")).all()
        assert waiting == []


async def test_failed_status_131047_waits_or_goes_as_template(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        await start(h)
        wamid = h.graph.last_to(SITI).wamid
        await h.post(fg.webhook(statuses=[fg.status(wamid, "failed", SITI, error_code=131047)]))
        with h.app.factory() as db:
            row = db.scalars(select(OutboxMessage).where(OutboxMessage.provider_message_id == wamid)).one()
        assert row.status == "waiting" and row.error_code == "131047"

    async with harness(sqlite_url.replace("prima.db", "prima2.db"), FakeClock(),
                       whatsapp_template_followup="prima_tindak_lanjut") as h2:
        await start(h2)
        wamid = h2.graph.last_to(SITI).wamid
        await h2.post(fg.webhook(statuses=[fg.status(wamid, "failed", SITI, error_code=131047)]))
        await h2.drain()
        assert h2.graph.last_to(SITI).type == "template"


async def test_two_residents_do_not_mix(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        both = fg.webhook(messages=[fg.text_message(SITI, "halo"), fg.text_message(BUDI, "halo")],
                          contacts=[fg.contact(SITI, "Siti"), fg.contact(BUDI, "Budi")])
        assert await h.post(both) == 200
        assert len(h.graph.to(SITI)) == 2 and len(h.graph.to(BUDI)) == 2
        with h.app.factory() as db:  # no name is stored before consent
            assert set(db.scalars(select(Contact.display_name))) == {None}
        agree = fg.webhook(messages=[fg.button_reply(SITI, h.graph.last_question(SITI).option("Setuju")),
                                     fg.button_reply(BUDI, h.graph.last_question(BUDI).option("Setuju"))],
                           contacts=[fg.contact(SITI, "Siti"), fg.contact(BUDI, "Budi")])
        assert await h.post(agree) == 200
        with h.app.factory() as db:
            people = {(r[0], r[1]) for r in db.execute(select(Contact.external_id, Contact.display_name))}
        assert people == {(SITI, "Siti"), (BUDI, "Budi")}


async def test_photo_kept_by_id_when_meta_lost_it(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        await start(h)
        await h.tap(SITI, "Buat pengaduan")
        await h.tap(SITI, "Disdukcapil")
        await h.tap(SITI, "KTP Elektronik")
        await h.say(SITI, "Petugas loket meminta uang 50 ribu supaya KTP cepat jadi")
        await h.say(SITI, "4")
        await h.tap(SITI, "Hari ini")
        photo = fg.image_message(SITI)
        h.graph.gone.add(photo["image"]["id"])
        replies = await h.send(SITI, photo)
        assert replies[-1].titles()[0] == "1. Lanjut"  # the resident goes on as usual
        with h.app.factory() as db:
            state = db.scalars(select(ConversationSession.state)).one()
        [kept] = state["data"]["photos"]
        assert kept["media_id"] == photo["image"]["id"] and "path" not in kept


async def test_template_without_buttons_is_a_notice_then_the_question(
        sqlite_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    without_case(monkeypatch)
    async with harness(sqlite_url, clock, whatsapp_template_followup="prima_tindak_lanjut") as h:
        ticket = await file_complaint(h)
        clock.advance(days=7, hours=1)
        await h.drain()
        notice = h.graph.last_to(SITI)
        assert notice.type == "template" and ticket in notice.text
        assert len(notice.body["template"]["components"]) == 1  # no buttons to fill
        with h.app.factory() as db:
            row = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "followup_checkin")).one()
        assert row.status == "waiting"
        clock.advance(days=1)
        await h.drain()
        assert h.graph.last_to(SITI) is notice  # sent once, not again on every tick
        await h.say(SITI, "sudah dibaca")
        await h.drain()
        question = h.graph.last_question(SITI)
        assert ticket in question.text
        await h.tap(SITI, "Belum", on=question)
        with h.app.factory() as db:
            assert db.scalars(select(FollowupAnswer.answer)).one() == "notyet"
