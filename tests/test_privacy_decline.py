"""Declining consent keeps nothing: no contact row, no name, no session, no messages.

The decline is honoured by forgetting: the next message starts over with the consent
question, so nothing needs remembering. Only the de-duplication keys of the deliveries stay
(Telegram update numbers, WhatsApp message ids), which name nobody.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.app import App
from bot.storage.models import (
    Contact,
    ConversationSession,
    InboundEvent,
    OutboxMessage,
    WhatsAppIdentity,
    WhatsAppWebhook,
)
from tests import fake_graph as fg
from tests.case_support import press, say
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.privacy_scan import Person, all_files, scan_database
from tests.telegram_harness import harness
from tests.whatsapp_harness import harness as wa_harness

WARGA = User(id=7345012345, first_name="Siti", last_name="Aminah", username="sitibungo")
DECLINED = ("Baik. Kami tidak menyimpan data Anda: percakapan ini, nama, dan ID chat Anda sudah kami "
            "hapus. Ketik /start kapan saja jika Anda berubah pikiran.")


def count(app: App, model: type) -> int:
    with app.factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


async def test_telegram_decline_stores_nothing(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        first = await say(h, WARGA, "/start")
        assert "UU 27/2022" in (first[-1].text or "")
        with app.factory() as db:  # before an answer: the row that locks the turn, without a name
            assert db.scalars(select(Contact.display_name)).all() == [None]
        replies = await press(h, WARGA, "Tidak setuju")
        assert [m.text for m in replies if m.method == "sendMessage"] == [DECLINED]

        assert count(app, Contact) == 0 and count(app, ConversationSession) == 0
        assert count(app, OutboxMessage) == 0  # the answer was sent, then deleted
        person = Person(words=("Siti", "Aminah", "sitibungo", str(WARGA.id)), numbers=())
        assert scan_database(app.factory, person) == []
        assert count(app, InboundEvent) == 2  # update numbers only

        again = await say(h, WARGA, "1")  # not a yes: the consent question comes again
        assert again[-1].labels()[:2] == ["1. Setuju", "2. Tidak setuju"]


async def test_whatsapp_decline_stores_nothing(db_url: str, clock: FakeClock) -> None:
    wa_id, bsuid = "6281298765432", "ID.siti0000aminah"
    async with wa_harness(db_url, clock) as h:
        await h.send(wa_id, fg.text_message(wa_id, "halo"), name="Siti Aminah", user_id=bsuid)
        # a photo before consent: not downloaded
        await h.send(wa_id, fg.image_message(wa_id, caption="KTP saya"), name="Siti Aminah", user_id=bsuid)
        assert h.graph.downloads == []
        question = h.graph.last_question(wa_id)
        done = await h.send(wa_id, fg.button_reply(wa_id, question.option("Tidak setuju")),
                            name="Siti Aminah", user_id=bsuid)
        assert [m.text for m in done] == [DECLINED]
        wamid = done[-1].wamid
        assert await h.post(fg.webhook(statuses=[fg.status(wamid, "delivered", wa_id)])) == 200

        for model in (Contact, ConversationSession, OutboxMessage, WhatsAppIdentity, WhatsAppWebhook):
            assert count(h.app, model) == 0, model.__name__
        person = Person(words=("Siti", "Aminah", bsuid, "KTP saya"), numbers=(wa_id,))
        assert scan_database(h.app.factory, person) == []
        assert h.channel.media_dir is not None and all_files([h.channel.media_dir]) == []
