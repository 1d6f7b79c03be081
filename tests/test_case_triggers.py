"""Every trigger opens exactly one case, through the real Telegram path (fake Bot API)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from bot.app import App
from bot.storage.models import Agency, Case, Complaint
from tests.case_support import (
    ROOM,
    cases,
    complaint,
    consent,
    group_message,
    last_answer,
    link_room,
    press,
    press_data,
    register,
    say,
    topic_messages,
)
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import Harness, harness

PETUGAS = User(id=7001, first_name="Budi")
KEPALA = User(id=7002, first_name="Kepala")


def resident(n: int) -> User:
    return User(id=5000 + n, first_name=f"Warga{n}")


def triggers(h: Harness) -> Counter[str]:
    return Counter(c.trigger for c in cases(h))


async def survey(h: Harness, user: User, score_index: int, service: str = "KTP Elektronik") -> list[str]:
    """A whole survey by buttons; ``score_index`` 0 is the best answer, 3 the worst."""
    await press(h, user, "Nilai layanan")
    await press(h, user, "Disdukcapil")
    await press(h, user, service)
    for _ in range(9):
        await press(h, user, h.last_question(user).labels()[score_index])
    return [m.text or "" for m in await press(h, user, "Lewati")]


async def test_each_trigger_opens_exactly_one_case(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await register(h, KEPALA, role="head")
        await link_room(h, PETUGAS)

        # asking for a person: the command, twice -> one case
        a = resident(1)
        await consent(h, a)
        await say(h, a, "/petugas")
        queued = await press(h, a, "Disdukcapil")
        assert "sudah kami teruskan ke petugas Disdukcapil" in (queued[-1].text or "")
        await say(h, a, "/petugas")
        again = await press(h, a, "Disdukcapil")
        assert "masih berjalan" in (again[-1].text or "")
        assert triggers(h) == {"person": 1}
        # the number it was given can be checked like a complaint's ticket
        [asked_for] = [c for c in cases(h) if c.trigger == "person"]
        shown = await say(h, a, f"/status {asked_for.ticket}")
        assert any(f"Tiket {asked_for.ticket}" in (m.text or "") and "Diterima, menunggu petugas" in (m.text or "")
                   for m in shown), [m.text for m in shown]
        # ... typed words, and the menu item
        b, c = resident(2), resident(3)
        await consent(h, b)
        asked = await say(h, b, "mau ngomong sama orang")
        assert asked[-1].text == "Dengan petugas instansi mana Anda ingin bicara?"
        await press(h, b, "Disdukcapil")
        await consent(h, c)
        await press(h, c, "Bicara dengan petugas")
        await press(h, c, "Disdukcapil")
        assert triggers(h) == {"person": 3}
        for case in cases(h):  # each has its card in its own topic
            card = topic_messages(h, case.topic_id or 0)
            assert len(card) == 1 and "Warga meminta bicara langsung dengan petugas." in (card[0].text or "")

        # a very low survey opens one case; a good one none
        d = resident(4)
        await consent(h, d)
        said = await survey(h, d, 3)
        assert any("Penilaian Anda menunjukkan pengalaman yang buruk" in t for t in said)
        await say(h, d, "/menu")
        await survey(h, d, 0, "Kartu Keluarga")  # one questionnaire per service and day
        assert triggers(h)["low_survey"] == 1
        low = next(x for x in cases(h) if x.trigger == "low_survey")
        low_card = topic_messages(h, low.topic_id or 0)[0].text or ""
        assert "nilai 1 pada Persyaratan" in low_card and "IKM responden 25.00 (D)" in low_card

        # a serious complaint, its confirmation delivered twice -> one case, one card
        e = resident(5)
        await consent(h, e)
        await complaint(h, e, "Petugas hanya melayani kenalannya dulu", "Diskriminasi",
                        confidential=False, send=False)
        send = h.server.press_update(e, h.last_question(e), "Kirim")
        await h.feed(send)
        room_before = len(h.server.chat(ROOM))
        await h.feed(send)  # Telegram delivers the same press again
        [serious] = [x for x in cases(h) if x.trigger == "serious"]
        assert triggers(h)["serious"] == 1 and len(h.server.chat(ROOM)) == room_before
        assert serious.reasons == {"reasons": ["category:diskriminasi"]}

        assert serious.priority == "urgent"

        # an ordinary complaint opens a normal case at once; staff may make it urgent by hand (once)
        await complaint(h, e, "Antrian KTP sangat panjang dan lama", "Penundaan berlarut",
                        confidential=False)
        assert triggers(h)["complaint"] == 1 and len(cases(h)) == 6
        with app.factory() as db:
            ordinary = db.scalars(select(Complaint).order_by(Complaint.id.desc())).first()
            assert ordinary is not None
        [normal] = [x for x in cases(h) if x.trigger == "complaint"]
        assert normal.priority == "normal" and normal.complaint_id == ordinary.id
        answer = await say(h, PETUGAS, f"/eskalasi {ordinary.ticket.lower()}")
        assert answer[-1].text == (f"Kasus {ordinary.ticket} kini berprioritas mendesak dan tampil "
                                   "paling atas di antrean.")
        answer = await say(h, PETUGAS, f"/eskalasi {ordinary.ticket}")
        assert "sudah menjadi kasus" in (answer[-1].text or "")
        assert [x.priority for x in cases(h) if x.trigger == "complaint"] == ["urgent"]
        [urgent] = [x for x in cases(h) if x.trigger == "complaint"]
        assert h.server.topics[(ROOM, urgent.topic_id or 0)].startswith(f"🔴 {urgent.ticket}")  # at once

        # a follow-up answered "No" reopens the complaint's own case, once
        await complaint(h, e, "KTP saya salah cetak nama belakang", "Petugas tidak kompeten",
                        confidential=True)
        with app.factory() as db:
            third = db.scalars(select(Complaint).order_by(Complaint.id.desc())).first()
            assert third is not None
        anything = h.server.last(e.id)
        for _ in range(2):
            await press_data(h, e, anything, f"0:fu:c:{third.id}:no")
        [reopened] = [x for x in cases(h) if x.complaint_id == third.id]
        assert reopened.status == "reopened" and triggers(h)["not_resolved"] == 0

        # escalation to the head: the head is told privately; a second press changes nothing
        serious_card = topic_messages(h, serious.topic_id or 0)[0]
        await press_data(h, PETUGAS, serious_card, serious_card.data_for("Naikkan ke kepala"))
        alert = h.server.last(KEPALA.id).text or ""
        assert alert.startswith(
            f"⬆️ Kasus {serious.ticket} di Disdukcapil dinaikkan kepada Anda untuk ditangani.\n\n")
        assert "Ringkasan: Petugas hanya melayani kenalannya dulu" in alert  # what it is about
        assert "Pelapor: Warga" in alert and "/desk/case/" not in alert  # no PUBLIC_BASE_URL
        assert "Tingkat: Kepala instansi" in (serious_card.text or "")
        assert "Naikkan ke kepala" not in serious_card.labels()
        await press_data(h, PETUGAS, serious_card, f"cs:head:{serious.id}")
        assert (last_answer(h) or "").startswith("Tidak ada yang diubah")
        # a private note stays in the room and the audit trail
        await group_message(h, PETUGAS, "/catatan saksi: pak Rahmat", thread=serious.topic_id)
        assert topic_messages(h, serious.topic_id or 0)[-1].text == "Catatan disimpan (tidak dikirim ke warga)."
        assert all("Rahmat" not in (m.text or "") for m in h.server.chat(e.id))

    assert triggers(h) == {"person": 3, "low_survey": 1, "serious": 1, "complaint": 2}
    with app.factory() as db:  # one case per source, whatever the trigger
        keys = db.scalars(select(Case.source_key)).all()
        assert len(keys) == len(set(keys)) == 7


def test_console_resident_never_sees_the_staff_card(sqlite_app: App, clock: FakeClock) -> None:
    """The card of a case opened from another channel waits for the Telegram dispatcher."""
    from bot.runtime.types import Inbound
    from bot.storage.models import OutboxMessage, StaffRoom
    from flows.machine.types import Event

    with sqlite_app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        db.add(StaffRoom(agency_id=agency.id, channel="telegram", chat_id=str(ROOM), linked_at=clock()))
    seen: list[str] = []
    for n, line in enumerate(["/start", "1", "/lapor", "ktp", "Petugas minta uang pelicin 200 ribu",
                              "4", "1", "1", "1", "1", "1", "1"]):
        rows = sqlite_app.runtime.handle(Inbound("console", "u1", "u1", Event("text", f"e{n}", text=line)))
        assert all(r.channel == "console" for r in rows)
        seen += [r.payload["text"] for r in rows]
    assert any("langsung kami teruskan ke petugas" in t for t in seen)
    assert not any("📋 Kasus" in t for t in seen)
    with sqlite_app.factory() as db:
        [case] = db.scalars(select(Case)).all()
        card = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "telegram")).one()
        assert card.status == "pending" and card.chat_id == str(ROOM)
        assert card.payload["case"]["id"] == case.id and "Pelapor dirahasiakan" in card.payload["text"]
