"""After "Data saya" -> "Hapus", nothing in any table or stored file identifies the person.

A resident with a name, username, NIK, phone number and e-mail goes through real
conversations (a survey with a suggestion naming them, a complaint with a photo and their
data in the description, a case in the staff room with relayed messages both ways, a
follow-up, a weekly digest that quotes them), then deletes their data. Every text and JSON
column of every table in the metadata, and every file under the data directories, is then
scanned for their identifiers, as written and as bare digits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.reports.digest.job import produce_digest
from bot.storage.models import (
    Case,
    CaseEvent,
    Complaint,
    Contact,
    ConversationSession,
    OutboxMessage,
    SurveyAnswer,
    SurveyResponse,
    WhatsAppIdentity,
    WhatsAppWebhook,
)
from tests import fake_graph as fg
from tests.case_support import (
    complaint,
    consent,
    dispatcher,
    group_message,
    link_room,
    press,
    press_data,
    register,
    say,
    topic_messages,
)
from tests.conftest import FakeClock, make_app
from tests.fake_telegram import User
from tests.privacy_scan import Person, all_files, scan_database, scan_files
from tests.telegram_harness import harness
from tests.whatsapp_harness import harness as wa_harness

NIK_TYPED = "3201 0123 4567 0001"
PHONE_TYPED = "0812-3456-7890"
EMAIL = "siti.aminah@mail.co.id"
WARGA = User(id=7345012345, first_name="Siti", last_name="Aminah", username="sitibungo")
PETUGAS = User(id=7001, first_name="Budi", last_name="Santoso")
KEPALA = User(id=7002, first_name="Kepala", last_name="Dinas")
PUNGLI = "Permintaan imbalan uang/barang (pungli)"
TELEGRAM_PERSON = Person(
    words=("Siti", "Aminah", "sitibungo", EMAIL, str(WARGA.id)),
    numbers=("3201012345670001", "081234567890"),
)
WA_PHONE = "6281298765432"
WA_BSUID = "ID.siti0000aminah"
WA_PERSON = Person(
    words=("Siti", "Aminah", EMAIL, WA_BSUID),
    numbers=("3201012345670001", "081234567890", WA_PHONE),
)


def week_of(clock: FakeClock) -> str:
    year, week, _ = clock.now.isocalendar()
    return f"{year}-W{week:02d}"


@pytest.fixture
def app_dirs(db_url: str, clock: FakeClock, tmp_path: Path) -> Iterator[tuple[App, Path]]:
    digests = tmp_path / "digests"
    app = make_app(db_url, clock, digest_dir=digests)
    yield app, digests
    app.engine.dispose()


def count(app: App, model: type) -> int:
    with app.factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


async def test_telegram_erasure_leaves_nothing_that_identifies(app_dirs: tuple[App, Path],
                                                               clock: FakeClock) -> None:
    app, digests = app_dirs
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await register(h, KEPALA, role="head")
        await link_room(h, PETUGAS)
        await consent(h, WARGA)

        # a photo at the menu: nobody asked for it, its file id is stored nowhere
        await say(h, WARGA, photo=[{"file_id": "AgACmenuphoto", "file_unique_id": "m1", "width": 800,
                                    "height": 600}], caption="foto KTP saya")
        assert scan_database(app.factory, Person(words=("AgACmenuphoto", "foto KTP saya"), numbers=())) == []

        # a survey with a suggestion naming them
        await press(h, WARGA, "Nilai layanan")
        await press(h, WARGA, "Disdukcapil")
        await press(h, WARGA, "KTP Elektronik")
        for _ in range(9):
            await press(h, WARGA, h.last_question(WARGA).labels()[0])
        await say(h, WARGA, f"Saya Siti Aminah (@sitibungo), hubungi {PHONE_TYPED} atau {EMAIL}. "
                            f"NIK {NIK_TYPED}")

        # a complaint with their data in the description and a photo: straight to staff
        text = (f"Nama saya Siti Aminah, NIK {NIK_TYPED}, HP +62 812 3456 7890, email {EMAIL}. "
                "Petugas minta Rp 50.000 untuk cetak KTP.")
        await say(h, WARGA, "/menu")
        done = await complaint(h, WARGA, text, PUNGLI, confidential=False, photo=True)
        assert any("langsung kami teruskan ke petugas" in (m.text or "") for m in done)
        with app.factory() as db:
            case = db.scalars(select(Case)).one()
            ticket = case.ticket
        topic = case.topic_id
        assert topic is not None
        card = topic_messages(h, topic)[0]
        assert "Siti Aminah" in (card.text or "")  # the card names the reporter (not confidential)

        # staff take it and write; the resident answers with more personal data
        await press_data(h, PETUGAS, card, card.data_for("Ambil kasus"))
        await group_message(h, PETUGAS, f"Baik Bu Siti Aminah, NIK {NIK_TYPED} sudah kami cek.",
                            thread=topic)
        await say(h, WARGA, f"Terima kasih, nomor saya {PHONE_TYPED}, email {EMAIL}")
        assert "Siti Aminah" in (topic_messages(h, topic)[-1].text or "")

        # the follow-up a week later, and the weekly digest that quotes them
        week = week_of(clock)
        clock.advance(days=7, hours=1)
        await dispatcher(h).drain()
        produced = produce_digest(app, "disdukcapil", week, clock.now)
        assert produced is not None and produced.recipients == 1
        assert scan_files([digests], TELEGRAM_PERSON), "the digest files quote the resident"
        assert scan_database(app.factory, TELEGRAM_PERSON), "the seeding stored the identifiers"

        # erasure
        await say(h, WARGA, "/datasaya")
        await press(h, WARGA, "Hapus data saya")
        confirmation = await press(h, WARGA, "Ya, hapus")
        assert any("Data Anda sudah dihapus" in (m.text or "") for m in confirmation)
        refused = await group_message(h, PETUGAS, "Halo Bu", thread=topic)
        assert refused[-1].text == "Pesan tidak dikirim: data pelapor sudah dihapus atas permintaannya."

    assert scan_database(app.factory, TELEGRAM_PERSON) == []
    assert all_files([digests]) and scan_files([digests], TELEGRAM_PERSON) == []
    # what the agency keeps: the complaint, the case and the scores, anonymised
    with app.factory() as db:
        kept = db.scalars(select(Complaint)).one()
        assert kept.ticket == ticket and kept.contact_id is None and kept.anonymised_at is not None
        assert "[NIK]" in kept.description and "Rp 50.000" in kept.description
        assert kept.attachments["photos"][0]["file_id"] == "AgACbukti"  # the evidence stays
        case = db.scalars(select(Case)).one()
        assert case.contact_id is None and case.chat_id is None and case.ticket == ticket
        relayed = db.scalars(select(CaseEvent.reason).where(CaseEvent.kind == "from_resident")).all()
        assert relayed == ["Terima kasih, nomor saya [telepon], email [email]"]
        response = db.scalars(select(SurveyResponse)).one()
        assert response.contact_id is None and response.suggestion is not None
        assert "[telepon]" in response.suggestion and "[NIK]" in response.suggestion
    assert count(app, SurveyAnswer) == 9
    assert count(app, ConversationSession) == 2  # the two staff members'
    with app.factory() as db:
        assert db.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == str(WARGA.id))).all() == []


async def test_whatsapp_erasure_leaves_nothing_that_identifies(db_url: str, clock: FakeClock,
                                                               tmp_path: Path) -> None:
    digests = tmp_path / "digests"
    async with wa_harness(db_url, clock, digest_dir=digests) as h:
        media = h.channel.media_dir
        assert media is not None

        async def send(msg: dict[str, object]) -> list[fg.Sent]:
            return await h.send(WA_PHONE, msg, name="Siti Aminah", user_id=WA_BSUID)

        async def say(text: str) -> list[fg.Sent]:
            return await send(fg.text_message(WA_PHONE, text))

        async def tap(title: str) -> list[fg.Sent]:
            q = h.graph.last_question(WA_PHONE)
            option = q.option(title)
            msg = fg.button_reply(WA_PHONE, option) if q.interactive["type"] == "button" \
                else fg.list_reply(WA_PHONE, option)
            return await send(msg)

        await say("halo")
        await tap("Setuju")
        # a photo at the menu: not downloaded, not saved
        await send(fg.image_message(WA_PHONE, caption="foto KTP saya"))
        assert h.graph.downloads == [] and all_files([media]) == []

        await tap("Nilai layanan")
        await tap("Disdukcapil")
        await tap("KTP Elektronik")
        for _ in range(9):
            await tap(h.graph.last_question(WA_PHONE).options()[0]["title"])
        await say(f"Saya Siti Aminah, hubungi {PHONE_TYPED} atau {EMAIL}. NIK {NIK_TYPED}")
        for answer in ("Perempuan", "30-39 tahun", "Tidak ingin menjawab", "Wirausaha"):  # her profile
            await tap(answer)
        with h.app.factory() as db:
            assert db.scalars(select(SurveyResponse.profile_age)).one() == "30-39"

        await tap("Buat pengaduan")
        await tap("Disdukcapil")
        await tap("KTP Elektronik")
        await say(f"Nama saya Siti Aminah, NIK {NIK_TYPED}, HP 0812 3456 7890, email {EMAIL}. "
                  "Petugas minta Rp 50.000 untuk cetak KTP.")
        await say("4")  # pungli: straight to staff
        await tap("Hari ini")
        await send(fg.image_message(WA_PHONE, caption=f"kuitansi, hubungi {PHONE_TYPED}"))
        assert len(h.graph.downloads) == 1 and len(all_files([media])) == 1  # asked for: kept
        await tap("Lanjut")
        await tap("Lewati")  # no location
        await tap("Tidak")  # not confidential
        await tap("Ya")  # staff may contact me
        await tap("Kirim")
        # she asks for a person: from then on her messages are relayed (kept as case events)
        await say("/petugas")
        await tap("Disdukcapil")
        await say(f"Tolong dibantu, saya Siti Aminah {PHONE_TYPED}")
        week = week_of(clock)
        clock.advance(days=7, hours=1)
        await h.drain()  # the check-in follow-up
        assert produce_digest(h.app, "disdukcapil", week, clock.now) is not None
        with h.app.factory() as db:
            assert db.scalar(select(func.count()).select_from(WhatsAppIdentity)) == 1
            assert db.scalar(select(func.count()).select_from(CaseEvent)
                             .where(CaseEvent.kind == "from_resident")) == 1
        assert scan_database(h.app.factory, WA_PERSON)
        # a body that failed processing waits for a retry: it carries her number
        with h.app.factory() as db, db.begin():
            db.add(WhatsAppWebhook(body=fg.webhook(messages=[fg.text_message(WA_PHONE, "x")],
                                                   contacts=[fg.contact(WA_PHONE, "Siti Aminah")]),
                                   received_at=clock.now, attempts=5, last_error="boom"))

        await say("/datasaya")
        await tap("Hapus data saya")
        done = await tap("Ya, hapus")
        # the confirmation reaches her although her contact row (and its 24-hour window) is gone
        assert any("Data Anda sudah dihapus" in m.text for m in done)
        wamid = done[-1].wamid
        assert await h.post(fg.webhook(statuses=[fg.status(wamid, "delivered", WA_PHONE)])) == 200
        assert await h.post(fg.webhook(statuses=[fg.status(wamid, "read", WA_PHONE)])) == 200
        await h.drain()

        assert scan_database(h.app.factory, WA_PERSON) == []
        assert scan_files([media, digests], WA_PERSON) == []
        assert len(all_files([media])) == 1  # the complaint's evidence stays, named by Meta's id
        assert count(h.app, WhatsAppWebhook) == 0 and count(h.app, WhatsAppIdentity) == 0
        assert count(h.app, Contact) == 0
        with h.app.factory() as db:
            kept = db.scalars(select(Complaint)).one()
            snapshot = db.execute(select(SurveyResponse.profile_gender, SurveyResponse.profile_age,
                                         SurveyResponse.profile_education, SurveyResponse.profile_job)).one()
        assert kept.contact_id is None and "Rp 50.000" in kept.description
        assert tuple(snapshot) == (None,) * 4  # her profile went with her; the scores stay


async def test_erasure_confirmation_left_to_the_dispatcher_is_purged(sqlite_url: str,
                                                                     clock: FakeClock) -> None:
    """A confirmation the immediate send could not deliver goes out later, then is deleted."""
    from bot.privacy.purge import run_purge

    app = make_app(sqlite_url, clock)
    try:
        async with harness(app, clock) as h:
            await consent(h, WARGA)
            await say(h, WARGA, "/datasaya")
            await press(h, WARGA, "Hapus data saya")
            h.server.fail_next("sendMessage", 500, count=10)
            await press(h, WARGA, "Ya, hapus")
            with app.factory() as db:
                [row] = db.scalars(select(OutboxMessage)).all()
            assert row.kind == "erasure" and row.status == "pending" and row.chat_id == str(WARGA.id)
            assert run_purge(app.factory) == 0  # not sent yet: kept, it is the only way to reach her
            h.server.faults.clear()
            clock.advance(minutes=15)
            await dispatcher(h).drain()
            assert "Data Anda sudah dihapus" in (h.server.last(WARGA.id).text or "")
            assert run_purge(app.factory) == 1
            assert count(app, OutboxMessage) == 0 and count(app, Contact) == 0
    finally:
        app.engine.dispose()


async def test_namesakes_and_the_bots_own_words_are_left_alone(app: App, clock: FakeClock) -> None:
    """Another resident with the same name keeps theirs; a resident called "Warga" (a word of
    the bot's own messages) does not make erasure rewrite everyone's rows."""
    twin = User(id=7345012399, first_name="Siti", last_name="Aminah")
    warga = User(id=7345012377, first_name="Warga")
    async with harness(app, clock) as h:
        for user in (WARGA, twin, warga):
            await consent(h, user)
            await say(h, user, "/menu")
            await complaint(h, user, f"Antrian lama sekali, saya {user.first_name} dari Warga Bungo",
                            "Penundaan berlarut", confidential=False)
        for user in (WARGA, warga):
            await say(h, user, "/datasaya")
            await press(h, user, "Hapus data saya")
            await press(h, user, "Ya, hapus")
    with app.factory() as db:
        descriptions = sorted(db.scalars(select(Complaint.description)))
        assert descriptions == sorted([
            "Antrian lama sekali, saya [nama] dari Warga Bungo",  # Siti, erased
            "Antrian lama sekali, saya Siti dari Warga Bungo",  # her namesake, untouched
            # the erased "Warga": their own text loses their name; nobody else's loses the word
            "Antrian lama sekali, saya [nama] dari [nama] Bungo",
        ])
        twin_row = db.scalars(select(Contact).where(Contact.external_id == str(twin.id))).one()
        assert twin_row.display_name == "Siti Aminah"
        assert db.scalars(select(Complaint.reporter_name).where(Complaint.contact_id == twin_row.id)).one() \
            == "Siti Aminah"
