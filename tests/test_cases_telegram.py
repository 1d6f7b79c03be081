"""Cases in human review, end to end through the fake Bot API with a supergroup with topics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.desk import deadlines, intake, outgoing
from bot.outbox import followups
from bot.reports.digest.data import collect
from bot.reports.digest.text import render_text
from bot.scheduler import build_scheduler
from bot.storage.models import Agency, Case, Complaint, OutboxMessage
from tests.case_support import (
    OTHER_ROOM,
    ROOM,
    cases,
    complaint,
    consent,
    dispatcher,
    events,
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
from tests.fake_telegram import Sent, User
from tests.telegram_harness import Harness, harness

WARGA = User(id=5001, first_name="Siti", last_name="Aminah")
PETUGAS = User(id=7001, first_name="Budi", last_name="Santoso")
KEPALA = User(id=7002, first_name="Kepala", last_name="Dinas")
LAIN = User(id=7003, first_name="Andi", last_name="Pajak")  # staff of another agency
PUNGLI = "Permintaan imbalan uang/barang (pungli)"


async def test_round_trip_resident_topic_staff_resident(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        linked = await link_room(h, PETUGAS)
        assert "ruang petugas" in (linked[-1].text or "")
        await consent(h, WARGA)
        text = "Petugas minta <b>uang</b> & bilang 'seikhlasnya' untuk cetak KTP"
        done = await complaint(h, WARGA, text, PUNGLI, confidential=True, photo=True)
        assert any("langsung kami teruskan ke petugas" in (m.text or "") for m in done)

        [case] = cases(h)
        assert case.trigger == "serious" and case.status == "new"
        assert case.priority == "urgent"
        # the card: in its own topic, named by the ticket (marked urgent), with the text shown literally
        topic = case.topic_id
        assert topic is not None and h.server.topics[(ROOM, topic)].startswith(f"🔴 {case.ticket}")
        card, photo = topic_messages(h, topic)
        assert card.text is not None and case.ticket in card.text and text in card.text
        assert card.text.startswith(f"🔴 MENDESAK\n📋 Kasus {case.ticket}")  # urgent: said first
        assert "Pelapor dirahasiakan" in card.text
        # Mon 09:00 + 8 h of the bundled catalog's hours: 6 h on Monday (break 12:00-13:00),
        # then Tuesday 07:30 + 2 h
        assert "Batas tanggapan pertama: 24-11-2026 09:30 WIB" in card.text
        assert card.labels() == ["Ambil kasus", "Selesai", "Naikkan ke kepala", "Catatan internal"]
        assert photo.method == "sendPhoto" and photo.params["photo"] == "AgACbukti"
        # confidentiality: the resident's name appears nowhere in the staff room
        assert all("Siti" not in (m.text or "") and "Aminah" not in (m.text or "")
                   for m in h.server.chat(ROOM))
        assert all("parse_mode" not in p for p in h.server.calls("sendMessage"))

        # staff take the case: the card shows it, the resident is told
        before = len(h.server.chat(WARGA.id))
        await press_data(h, PETUGAS, card, card.data_for("Ambil kasus"))
        assert last_answer(h) == "Kasus ini sekarang Anda tangani; Anda penanggung jawabnya."
        assert "Status: Ditangani" in (card.text or "") and "Budi Santoso" in (card.text or "")
        told = h.server.chat(WARGA.id)[before:]
        assert any("Petugas sedang menangani" in (m.text or "") for m in told)

        # a staff message in the topic reaches the resident from the bot, without the staff name
        await group_message(h, PETUGAS, "Mohon kirim foto kuitansinya, Bu.", thread=topic)
        relayed = h.server.last(WARGA.id)
        assert relayed.text == f"💬 Petugas Disdukcapil ({case.ticket}):\nMohon kirim foto kuitansinya, Bu."
        assert "Budi" not in relayed.text

        # waiting for the resident; their answer puts the case back in progress
        await press_data(h, PETUGAS, card, card.data_for("Menunggu warga"))
        assert "Status: Menunggu warga" in (card.text or "")
        # the resident's reply goes back into the topic; the bot stays out of the way
        replies = await say(h, WARGA, "Baik, ini kuitansinya <i>asli</i>")
        assert [m.text for m in replies] == [
            f"Pesan Anda sudah diteruskan ke petugas ({case.ticket}). Bot tidak menjawab selama "
            "petugas menangani; ketik /menu untuk kembali ke menu bot."]
        back = topic_messages(h, topic)[-1]
        assert back.text == "💬 Warga (Pelapor dirahasiakan):\nBaik, ini kuitansinya <i>asli</i>"
        assert await say(h, WARGA, "Terima kasih pak") == []  # no second notice, no menu
        assert topic_messages(h, topic)[-1].text == "💬 Warga (Pelapor dirahasiakan):\nTerima kasih pak"
        menu = await say(h, WARGA, "/menu")  # commands still reach the bot
        assert menu and "7. Bicara dengan petugas" in menu[-1].labels()
        # a menu choice typed right after /menu is for the bot, as its button would be
        helped = await say(h, WARGA, "6")
        assert helped and not any("diteruskan ke petugas" in (m.text or "") for m in helped)
        assert helped[-1].text == "Apa yang ingin Anda lakukan?"
        assert topic_messages(h, topic)[-1].text == "💬 Warga (Pelapor dirahasiakan):\nTerima kasih pak"
        # words the menu acts on (a service, a ticket) are for the bot too, not swallowed
        await say(h, WARGA, "/menu")
        named = await say(h, WARGA, "pajak motor")
        assert named and not any("diteruskan ke petugas" in (m.text or "") for m in named)
        await say(h, WARGA, "/menu")
        looked_up = await say(h, WARGA, f"cek tiket {case.ticket}")
        assert looked_up and not any("diteruskan ke petugas" in (m.text or "") for m in looked_up)
        if any(ch.isdigit() for ch in case.ticket):  # a ticket among words needs a digit to be one
            assert any(case.ticket in (m.text or "") for m in looked_up)  # its status, from the bot
        else:  # an all-letter ticket among words is not taken as one: the status question
            assert "tiket" in (looked_up[-1].text or "")
            await say(h, WARGA, "/menu")
        assert topic_messages(h, topic)[-1].text == "💬 Warga (Pelapor dirahasiakan):\nTerima kasih pak"

        # resolve: the resident is asked to confirm and rate, in one message (quiet hours
        # apply, sent by the dispatcher)
        await press_data(h, PETUGAS, card, card.data_for("Selesai"))
        before = len(h.server.chat(WARGA.id))
        await dispatcher(h).tick()
        news = h.server.chat(WARGA.id)[before:]  # (with the status news held by quiet hours)
        rating = news[-1]
        assert not any("“Selesai" in (m.text or "") for m in news)  # one message, not two
        assert f"Petugas menyatakan {case.ticket} sudah selesai ditangani" in (rating.text or "")
        assert "seberapa puas Anda dengan penanganannya" in (rating.text or "")
        assert rating.labels() == ["Sangat puas", "Puas", "Cukup", "Kurang puas", "Tidak puas",
                                   "Belum selesai"]
        before = len(h.server.chat(WARGA.id))
        await press_data(h, WARGA, rating, rating.data_for("Sangat puas"))
        # not a dead end: thanks in the chat, then where the resident is (the menu)
        after = h.server.chat(WARGA.id)[before:]
        assert after[0].text == "Terima kasih atas penilaian Anda."
        assert after[-1].text == "Apa yang ingin Anda lakukan?" and after[-1].buttons
        # staff hear of the rating and the card shows the closed case (with a way back)
        assert topic_messages(h, topic)[-1].text == (
            f"⭐ Warga menilai penanganan {case.ticket}: 5 - Sangat puas.\nKasus ditutup.")
        assert "Status: Ditutup" in (card.text or "")
        assert card.labels() == ["Buka kembali", "Catatan internal"]

    [case] = cases(h)
    assert case.status == "closed" and case.rating == 5
    trail = [(e.kind, e.from_status, e.to_status) for e in events(app, case.id)
             if e.kind == "status"]
    assert trail == [("status", None, "new"), ("status", "new", "open"), ("status", "open", "pending"),
                     ("status", "pending", "open"), ("status", "open", "resolved"),
                     ("status", "resolved", "closed")]
    kinds = [e.kind for e in events(app, case.id)]
    assert kinds.count("to_resident") == 1 and kinds.count("from_resident") == 2
    with app.factory() as db:
        c = db.scalars(select(Complaint)).one()
        assert c.status == "closed"
        assert [h.to_status for h in c.history] == ["new", "open", "pending", "open", "resolved", "closed"]


async def test_refusals_for_other_agencies_residents_and_stale_presses(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await register(h, LAIN, "bpprd")
        refused = await link_room(h, WARGA)  # a resident cannot link a staff room
        assert "Hanya petugas terdaftar" in (refused[-1].text or "")
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        await complaint(h, WARGA, "Ada calo di depan kantor minta 100 ribu", "Penundaan berlarut",
                        confidential=False)
        [case] = cases(h)
        assert case.reasons == {"reasons": ["term:calo"]}
        card = topic_messages(h, case.topic_id or 0)[0]
        assert "Pelapor: Siti Aminah" in (card.text or "")  # not confidential: name shown
        take = card.data_for("Ambil kasus")
        before_resident = len(h.server.chat(WARGA.id))

        await press_data(h, LAIN, card, take)  # staff of another agency, in the same group
        assert last_answer(h) == outgoing.texts("case.refused.not_staff")
        await press_data(h, WARGA, card, take)  # the resident
        assert last_answer(h) == outgoing.texts("case.refused.not_staff")
        await press_data(h, PETUGAS, card, "cs:take:9999")  # forged: no such case
        assert last_answer(h) == outgoing.texts("case.refused.unknown")
        await press_data(h, PETUGAS, card, "cs:explode:1")  # forged action
        assert last_answer(h) == outgoing.texts("case.refused.unknown")
        # another agency's staff writing in the topic reaches nobody
        refused = await group_message(h, LAIN, "Halo bu, saya dari pajak", thread=case.topic_id)
        assert refused[-1].text == outgoing.texts("case.refused.not_staff")
        assert len(h.server.chat(WARGA.id)) == before_resident
        assert cases(h)[0].status == "new"

        await press_data(h, PETUGAS, card, take)
        await press_data(h, PETUGAS, card, take)  # stale: taken already
        assert last_answer(h) == "Tidak ada yang diubah: status kasus sekarang “Ditangani”."
        # a press from another group (forged into a group the case does not belong to)
        h.server.forums.add(OTHER_ROOM)
        stray = h.server.sent[-1]
        stray.chat_id = OTHER_ROOM
        await press_data(h, PETUGAS, stray, f"cs:resolve:{case.id}")
        assert last_answer(h) == outgoing.texts("case.refused.wrong_room")

        # /kasus: own agency's queue only
        own = await say(h, PETUGAS, "/kasus")
        assert case.ticket in (own[-1].text or "")
        other = await say(h, LAIN, "/kasus")
        assert case.ticket not in (other[-1].text or "")

    [case] = cases(h)
    assert case.status == "open"
    assert [e.to_status for e in events(app, case.id) if e.kind == "status"] == ["new", "open"]


async def test_queue_without_a_room_then_linking_posts_the_cards(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await register(h, KEPALA, role="head")
        await consent(h, WARGA)
        await complaint(h, WARGA, "Petugas minta sogokan supaya cepat", "Lainnya", confidential=True)
        [case] = cases(h)
        assert case.topic_id is None and h.server.chat(ROOM) == []
        listed = await say(h, KEPALA, "/kasus")  # a head sees the agency's cases
        assert case.ticket in (listed[-1].text or "") and listed[-1].labels() == [f"Ambil {case.ticket}"]
        answer = await say(h, PETUGAS, f"/balas {case.ticket} Kami cek ke loket, Bu.")
        assert answer[-1].text == outgoing.texts("case.sent_unassigned", ticket=case.ticket)
        assert h.server.last(WARGA.id).text == f"💬 Petugas Disdukcapil ({case.ticket}):\nKami cek ke loket, Bu."
        await say(h, WARGA, "Terima kasih, saya tunggu")  # stored while no room exists
        listed = await say(h, PETUGAS, "/kasus")
        assert "↳ pesan terakhir warga: Terima kasih, saya tunggu" in (listed[-1].text or "")
        linked = await link_room(h, PETUGAS)
        assert "Kasus yang mengantre: 1" in (linked[0].text or "")
        [case] = cases(h)
        assert case.topic_id is not None
        card, reply = topic_messages(h, case.topic_id)
        assert case.ticket in (card.text or "")
        assert reply.text == "💬 Warga (Pelapor dirahasiakan):\nTerima kasih, saya tunggu"


async def test_sla_breach_across_a_weekend(app: App, clock: FakeClock) -> None:
    clock.now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # Friday 15:00 WIB
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await register(h, KEPALA, role="head")
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        await complaint(h, WARGA, "Diminta uang rokok oleh oknum", "Lainnya", confidential=False)
        [case] = cases(h)
        assert case.first_response_due == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Mon 15:00 WIB
        dispatch = dispatcher(h)
        for at in (datetime(2026, 11, 28, 8, 0, tzinfo=UTC),  # Saturday: still in time
                   datetime(2026, 11, 30, 7, 59, tzinfo=UTC)):  # Monday 14:59 WIB
            clock.now = at
            with app.factory() as db, db.begin():
                assert deadlines.sla_tick(db, clock()) == 0
        clock.now = datetime(2026, 11, 30, 8, 1, tzinfo=UTC)
        with app.factory() as db, db.begin():
            assert deadlines.sla_tick(db, clock()) == 1
        with app.factory() as db, db.begin():
            assert deadlines.sla_tick(db, clock()) == 0  # flagged once
            assert deadlines.overdue_count(db, case.agency_id, clock()) == 1
        await dispatch.tick()
        flag = topic_messages(h, case.topic_id or 0)[-1]
        assert flag.text == (f"⏰ Kasus {case.ticket} (Disdukcapil) belum ditanggapi; batas tanggapan "
                             "pertama 30-11-2026 15:00 WIB terlewati.")
        assert h.server.last(KEPALA.id).text == flag.text
        assert all(m.text != flag.text for m in h.server.chat(PETUGAS.id))  # heads only
    assert [e.kind for e in events(app, case.id)].count("overdue") == 1
    with app.factory() as db:  # the weekly digest counts it
        agency = db.get(Agency, case.agency_id)
        assert agency is not None
        text = render_text(collect(db, agency, "2026-W49"))
    assert "⏰ Kasus yang ditangani petugas melewati batas waktu kerja: 1." in text
    scheduler = build_scheduler(app, {})  # the check runs on the scheduler's clock
    assert deadlines.SLA_JOB in {job.id for job in scheduler.get_jobs()}


async def test_reopen_when_the_resident_says_not_solved(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        await complaint(h, WARGA, "Ada pungutan liar di loket KTP", "Lainnya", confidential=False)
        [case] = cases(h)
        card = topic_messages(h, case.topic_id or 0)[0]
        await press_data(h, PETUGAS, card, card.data_for("Selesai"))
        # no blind check-in a week later: the question comes when staff resolve
        await dispatcher(h).tick()
        confirm = [m for m in h.server.chat(WARGA.id) if "Belum selesai" in m.labels()][-1]
        before = len(topic_messages(h, case.topic_id or 0))
        seen = len(h.server.chat(WARGA.id))
        await press_data(h, WARGA, confirm, confirm.data_for("Belum selesai"))
        assert any("buka kembali" in (m.text or "") for m in h.server.chat(WARGA.id)[seen:])
        await dispatcher(h).tick()  # the room hears it through the outbox
        new = topic_messages(h, case.topic_id or 0)[before:]
        assert [m.text for m in new] == [f"🔁 Kasus {case.ticket} dibuka kembali: warga menyatakan "
                                         "masalahnya belum selesai."]
        assert new[0].labels()[0] == "Ambil kasus"
        clock.advance(days=8)
        seen = len(h.server.chat(WARGA.id))
        await dispatcher(h).tick()
        assert h.server.chat(WARGA.id)[seen:] == []  # nothing was scheduled by a timer
    [case] = cases(h)  # the same case, reopened: not a second one
    assert case.status == "reopened" and case.first_response_at is None and case.rating is None
    assert [e.to_status for e in events(app, case.id) if e.kind == "status"] == [
        "new", "resolved", "reopened"]
    with app.factory() as db:
        assert db.scalars(select(Complaint.status)).one() == "reopened"
        assert db.scalar(select(func.count()).select_from(OutboxMessage)
                         .where(OutboxMessage.kind == followups.KIND_CHECKIN)) == 0


async def test_erasure_keeps_the_case_without_the_person(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        await say(h, WARGA, "/petugas")
        await press(h, WARGA, "Disdukcapil")
        [case] = cases(h)
        assert case.reporter_name == "Siti Aminah" and case.relay
        await say(h, WARGA, "/datasaya")
        await press(h, WARGA, "Hapus data saya")
        await press(h, WARGA, "Ya, hapus")
        refused = await group_message(h, PETUGAS, "Halo Bu Siti", thread=case.topic_id)
        assert refused[-1].text == "Pesan tidak dikirim: data pelapor sudah dihapus atas permintaannya."
    [case] = cases(h)
    assert case.contact_id is None and case.reporter_name is None and case.chat_id is None
    assert events(app, case.id)[-1].reason == "reporter deleted their personal data"


async def test_redelivered_staff_updates_act_once(app: App, clock: FakeClock) -> None:
    """The same update_id twice (a redelivery, also after a restart): /balas, a topic reply and
    a case button reach the resident / change the case once."""
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await consent(h, WARGA)
        await complaint(h, WARGA, "Petugas minta sogokan supaya cepat", "Lainnya", confidential=True)
        [case] = cases(h)
        before = len(h.server.chat(WARGA.id))
        balas = h.server.message_update(PETUGAS, f"/balas {case.ticket} Kami cek ke loket, Bu.")
        await h.feed(balas)
        await h.feed(balas)  # delivered again
        got = h.server.chat(WARGA.id)[before:]
        assert [m.text for m in got] == [f"💬 Petugas Disdukcapil ({case.ticket}):\nKami cek ke loket, Bu."]
        assert [m.text for m in h.server.chat(PETUGAS.id)].count(
            outgoing.texts("case.sent_unassigned", ticket=case.ticket)) == 1
        await link_room(h, PETUGAS)
        [case] = cases(h)
        assert case.topic_id is not None
        topic_reply = h.server.message_update(PETUGAS, "Sudah kami tegur petugasnya.", chat_id=ROOM,
                                              chat_type="supergroup", message_thread_id=case.topic_id,
                                              is_topic_message=True)
        await h.feed(topic_reply)
        await h.feed(topic_reply)
        assert [m.text for m in h.server.chat(WARGA.id)[before:]].count(
            f"💬 Petugas Disdukcapil ({case.ticket}):\nSudah kami tegur petugasnya.") == 1
    # A restart: a new channel on the same database gets the same updates again.
    async with harness(app, clock) as h2:
        h2.server._next_update = 10_000
        await h2.channel.setup()
        before = len(h2.server.chat(WARGA.id))
        await h2.feed(balas)
        await h2.feed(topic_reply)
        assert h2.server.chat(WARGA.id)[before:] == []
    relayed = [e.reason for e in events(app, case.id) if e.kind == "to_resident"]
    assert relayed == ["Kami cek ke loket, Bu.", "Sudah kami tegur petugasnya."]  # once each


# ---------------------------------------------------------------- staff room fixes (issue 13)

BASIC_GROUP = -4001  # a basic group: no topics possible


async def test_ruangstaf_refuses_a_group_without_topics_or_rights(app: App, clock: FakeClock) -> None:
    """getChat (is_forum) and getChatMember (the bot's rights) are asked first; a group that
    cannot hold topics is not linked, and staff are told what to change."""
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        # a resident still learns only that staff link rooms
        refused = await group_message(h, WARGA, f"/ruangstaf@{h.server.username}", BASIC_GROUP)
        assert refused[-1].text == outgoing.texts("case.room.refused")
        refused = await group_message(h, PETUGAS, f"/ruangstaf@{h.server.username}", BASIC_GROUP)
        assert refused[-1].text == outgoing.texts("case.room.no_topics")
        assert "Topik" in (refused[-1].text or "") and "/ruangstaf" in (refused[-1].text or "")
        refused = await group_message(h, PETUGAS, "/ruangstaf", ROOM)  # a supergroup, Topics off
        assert refused[-1].text == outgoing.texts("case.room.no_topics")
        h.server.forums.add(ROOM)
        h.server.bot_rights[ROOM] = {"status": "member"}
        refused = await group_message(h, PETUGAS, "/ruangstaf", ROOM)
        assert refused[-1].text == outgoing.texts("case.room.not_admin")
        assert "Kelola Topik" in (refused[-1].text or "")
        h.server.bot_rights[ROOM] = {"status": "administrator", "can_manage_topics": False}
        refused = await group_message(h, PETUGAS, "/ruangstaf", ROOM)
        assert refused[-1].text == outgoing.texts("case.room.no_manage_topics")
        # nothing half-linked: a case opened now still queues
        await consent(h, WARGA)
        await complaint(h, WARGA, "Diminta uang pelicin oleh oknum", PUNGLI, confidential=False)
        [case] = cases(h)
        assert case.room_chat_id is None and case.topic_id is None
        assert not h.server.calls("createForumTopic")
        asked = [p for p in h.server.calls("getChatMember")]
        assert asked and all(int(p["user_id"]) == h.bot.id for p in asked)
        # the rights given: linked, and the queued case gets its topic (unless Telegram fails)
        h.server.bot_rights[ROOM] = {"status": "administrator", "can_manage_topics": True}
        h.server.fail_next("getChat", 500)
        refused = await group_message(h, PETUGAS, "/ruangstaf", ROOM)
        assert refused[-1].text == outgoing.texts("case.room.check_failed")
        linked = await group_message(h, PETUGAS, "/ruangstaf", ROOM)
        assert "Kasus yang mengantre: 1" in (linked[0].text or "")
        assert cases(h)[0].topic_id is not None


def test_split_ticket_reads_a_ticket_typed_loosely() -> None:
    from flows.helpers.tickets import split_ticket

    for typed in ("w61h x923 Baik, Bu", "W61H-X923 Baik, Bu", "w61hx923  Baik, Bu", "W6 1H X923 Baik, Bu"):
        assert split_ticket(typed) == ("W61H-X923", "Baik, Bu"), typed
    assert split_ticket("w61h x923") == ("W61H-X923", "")
    assert split_ticket("w61 Baik Bu") is None  # words do not add up to eight characters
    assert split_ticket("Baik, Bu") is None


async def test_balas_takes_a_loosely_typed_ticket_and_shows_the_reply_in_the_topic(
        app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        await complaint(h, WARGA, "Diminta uang pelicin oleh oknum", PUNGLI, confidential=True)
        [case] = cases(h)
        card = topic_messages(h, case.topic_id or 0)[0]
        spaced = f"{case.ticket[:4].lower()} {case.ticket[5:].lower()}"  # "w61h x923"
        answer = await say(h, PETUGAS, f"/balas {spaced} Kami cek ke loket, Bu.")
        assert answer[-1].text == outgoing.texts("case.sent_unassigned", ticket=case.ticket)
        assert h.server.last(WARGA.id).text == (
            f"💬 Petugas Disdukcapil ({case.ticket}):\nKami cek ke loket, Bu.")
        # the topic shows it as the staff reply it is, not as the resident's message
        copy = topic_messages(h, case.topic_id or 0)[-1]
        assert copy.text == "↩️ Dibalas ke warga lewat /balas oleh Budi Santoso:\nKami cek ke loket, Bu."
        assert not any((m.text or "").startswith("💬 Warga") for m in h.server.chat(ROOM))
        # the card follows: answered (first response), nobody responsible yet
        assert "Status: Ditangani" in (card.text or "")
        assert "Penanggung jawab: belum ada" in (card.text or "")
        dashed = f"{case.ticket[:4].lower()}-{case.ticket[5:]}"
        await say(h, PETUGAS, f"/balas {dashed} Sudah kami tegur.")
        assert h.server.last(WARGA.id).text == f"💬 Petugas Disdukcapil ({case.ticket}):\nSudah kami tegur."
        helped = await say(h, PETUGAS, f"/balas {spaced}")  # no message: the help, nothing sent
        assert helped[-1].text == outgoing.texts("case.queue.reply_help")
    assert [e.reason for e in events(app, case.id) if e.kind == "to_resident"] == [
        "Kami cek ke loket, Bu.", "Sudah kami tegur."]


async def test_writing_in_a_topic_answers_but_does_not_assign(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        await complaint(h, WARGA, "Diminta uang pelicin oleh oknum", PUNGLI, confidential=False)
        [case] = cases(h)
        topic = case.topic_id or 0
        card = topic_messages(h, topic)[0]
        said = await group_message(h, PETUGAS, "Selamat siang Bu, kami pelajari dulu.", thread=topic)
        assert h.server.last(WARGA.id).text == (
            f"💬 Petugas Disdukcapil ({case.ticket}):\nSelamat siang Bu, kami pelajari dulu.")
        assert [m.text for m in said] == [outgoing.texts("case.sent_unassigned", ticket=case.ticket)]
        [case] = cases(h)
        assert case.status == "open" and case.assignee_id is None and case.first_response_at
        assert "Penanggung jawab: belum ada" in (card.text or "") and "Ambil kasus" in card.labels()
        # a second message: no second notice
        assert await group_message(h, PETUGAS, "Mohon ditunggu.", thread=topic) == []
        await press_data(h, PETUGAS, card, card.data_for("Ambil kasus"))
        assert "Penanggung jawab: Budi Santoso" in (card.text or "")
        assert "Ambil kasus" not in card.labels()
        await press_data(h, PETUGAS, card, f"cs:take:{case.id}")  # taken already
        assert (last_answer(h) or "").startswith("Tidak ada yang diubah")
    assert [(e.kind, e.to_status) for e in events(app, case.id) if e.kind in ("status", "assign")] == [
        ("status", "new"), ("status", "open"), ("assign", "open")]


async def _resolved_and_rated(h: Harness, label: str) -> tuple[Case, Sent]:
    """A case taken, resolved and rated ``label`` by its resident; returns it and its card."""
    await h.channel.setup()
    await register(h, PETUGAS)
    await register(h, KEPALA, role="head")
    await link_room(h, PETUGAS)
    await consent(h, WARGA)
    await complaint(h, WARGA, "Diminta uang pelicin oleh oknum", PUNGLI, confidential=False)
    [case] = cases(h)
    card = topic_messages(h, case.topic_id or 0)[0]
    await press_data(h, PETUGAS, card, card.data_for("Ambil kasus"))
    await press_data(h, PETUGAS, card, card.data_for("Selesai"))
    await dispatcher(h).tick()
    rating = h.server.last(WARGA.id)
    await press_data(h, WARGA, rating, rating.data_for(label))
    return cases(h)[0], card


async def test_a_low_rating_closes_loudly(app: App, clock: FakeClock) -> None:
    """"2 - Kurang puas" closes the case, but the topic and the heads are told, and the card
    offers to reopen it."""
    async with harness(app, clock) as h:
        case, card = await _resolved_and_rated(h, "Kurang puas")
        assert case.status == "closed" and case.rating == 2
        said = topic_messages(h, case.topic_id or 0)[-1].text or ""
        assert said.startswith(f"⚠️ Warga menilai penanganan {case.ticket} rendah: 2 - Kurang puas.")
        assert said.endswith("Kasus ditutup.")
        assert h.server.last(KEPALA.id).text == outgoing.texts(
            "case.head_rated_low", ticket=case.ticket, agency="Disdukcapil", rating="2 - Kurang puas")
        assert "Status: Ditutup" in (card.text or "") and card.labels() == ["Buka kembali",
                                                                           "Catatan internal"]


async def test_staff_reopen_a_closed_case(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        case, card = await _resolved_and_rated(h, "Tidak puas")
        await press_data(h, LAIN, card, card.data_for("Buka kembali"))  # not their agency
        assert last_answer(h) == outgoing.texts("case.refused.not_staff")
        await press_data(h, PETUGAS, card, card.data_for("Buka kembali"))
        assert last_answer(h) == outgoing.texts("case.done.reopen")
        assert "Status: Dibuka kembali" in (card.text or "")
        assert card.labels() == ["Ambil kasus", "Menunggu warga", "Selesai", "Naikkan ke kepala",
                                 "Catatan internal"]
        before = len(h.server.chat(WARGA.id))
        await dispatcher(h).tick()  # the resident hears the complaint is open again
        assert any("Dibuka kembali" in (m.text or "") for m in h.server.chat(WARGA.id)[before:])
        [case] = cases(h)
        assert case.status == "reopened" and case.closed_at is None and case.rating is None
        # handled again, resolved again, and the resident may rate the new resolution
        clock.advance(minutes=30)
        await press_data(h, PETUGAS, card, card.data_for("Ambil kasus"))
        await press_data(h, PETUGAS, card, card.data_for("Selesai"))
        await dispatcher(h).tick()
        rating = h.server.last(WARGA.id)
        await press_data(h, WARGA, rating, rating.data_for("Puas"))
    [case] = cases(h)
    assert case.status == "closed" and case.rating == 4
    reopened = [e for e in events(app, case.id) if e.to_status == "reopened"]
    assert [(e.from_status, e.reason) for e in reopened] == [("closed", "reopened by staff")]
    assert reopened[0].actor.startswith("staff:")
    with app.factory() as db:
        assert [c.to_status for c in db.scalars(select(Complaint)).one().history][-4:] == [
            "reopened", "open", "resolved", "closed"]


async def test_the_card_shows_words_not_codes(app: App, clock: FakeClock,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A complaint filed before every complaint opened a case: its "not solved" answer opens one.
    monkeypatch.setattr(intake, "on_complaint", lambda *args, **kwargs: None)
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        await complaint(h, WARGA, "Antrian KTP sangat panjang", "Penundaan berlarut",
                        confidential=False)
        with app.factory() as db:
            ordinary = db.scalars(select(Complaint).order_by(Complaint.id.desc())).first()
            assert ordinary is not None
        await press_data(h, WARGA, h.server.last(WARGA.id), f"0:fu:c:{ordinary.id}:no")
        other = User(id=5002, first_name="Rina")
        await consent(h, other)
        await say(h, other, "/petugas")  # no reasons: the trigger says it
        await press(h, other, "Disdukcapil")
        not_resolved, person = cases(h)
        person_card = topic_messages(h, person.topic_id or 0)[0].text or ""
        assert "Pemicu: Warga minta bicara dengan petugas\n" in person_card
        assert "Penanggung jawab: belum ada" in person_card
        assert "Lokasi: tidak dicantumkan" in person_card
        card = topic_messages(h, not_resolved.topic_id or 0)[0].text or ""
        assert not_resolved.reasons == {"reasons": ["followup:no"]}
        assert "Pemicu: Warga menyatakan belum selesai (warga menjawab masalahnya belum selesai)" in card
        for text in (person_card, card):
            assert "(-)" not in text and "followup:" not in text


async def test_head_alert_has_the_summary_masked_and_the_desk_link(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        h.channel.public_base_url = "https://prima.example.go.id/"
        await h.channel.setup()
        await register(h, PETUGAS)
        await register(h, KEPALA, role="head")
        await link_room(h, PETUGAS)
        await consent(h, WARGA)
        text = "Nama saya Siti Aminah, HP 0812-3456-7890. Petugas minta uang rokok ke bu Aminah."
        await complaint(h, WARGA, text, PUNGLI, confidential=True)
        [case] = cases(h)
        card = topic_messages(h, case.topic_id or 0)[0]
        await press_data(h, PETUGAS, card, card.data_for("Naikkan ke kepala"))
        alert = h.server.last(KEPALA.id).text or ""
        assert alert.startswith(f"⬆️ Kasus {case.ticket} di Disdukcapil dinaikkan kepada Anda")
        assert "Pelapor: Pelapor dirahasiakan" in alert
        assert "Petugas minta uang rokok ke bu [nama]." in alert  # what it is about
        assert "Siti" not in alert and "3456" not in alert  # but not who
        assert alert.endswith(f"Buka di desk: https://prima.example.go.id/desk/case/{case.id}")
