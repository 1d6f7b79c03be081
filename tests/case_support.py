"""Helpers for the case tests: staff registration, a forum staff room, residents' flows, the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.app import App
from bot.channels.telegram.staffroom import telegram_sender
from bot.desk import staff
from bot.outbox.dispatcher import Dispatcher
from bot.outbox.ratelimit import RateLimiter
from bot.storage.models import Case, CaseEvent
from tests.fake_telegram import Sent, User
from tests.telegram_harness import Harness

ROOM = -1001234  # a supergroup with topics
OTHER_ROOM = -1005678


async def say(h: Harness, user: User, text: str | None = None, **extra: Any) -> list[Sent]:
    """The resident writes in their private chat; fed straight to the dispatcher (no polling)."""
    before = len(h.server.chat(user.id))
    await h.feed(h.server.message_update(user, text, **extra))
    return h.server.chat(user.id)[before:]


async def press(h: Harness, user: User, label: str) -> list[Sent]:
    """The resident presses a button on the last message with a keyboard."""
    before = len(h.server.chat(user.id))
    await h.feed(h.server.press_update(user, h.last_question(user), label))
    return h.server.chat(user.id)[before:]


async def register(h: Harness, user: User, slug: str = "disdukcapil", role: str = "staff") -> None:
    """``/daftar <code>`` with a fresh invite, as a real staff member does."""
    with h.app.factory() as db, db.begin():
        code = staff.create_invite(db, slug, role, h.clock())
    replies = await say(h, user, f"/daftar {code}")
    assert replies, "no answer to /daftar"


async def group_message(h: Harness, user: User, text: str | None, chat_id: int = ROOM,
                        thread: int | None = None, **extra: Any) -> list[Sent]:
    """``user`` writes in the group (in topic ``thread``); returns the bot's new messages there."""
    before = len(h.server.chat(chat_id))
    if thread is not None:
        extra.update(message_thread_id=thread, is_topic_message=True)
    await h.feed(h.server.message_update(user, text, chat_id=chat_id, chat_type="supergroup", **extra))
    return h.server.chat(chat_id)[before:]


async def link_room(h: Harness, user: User, chat_id: int = ROOM, arg: str = "") -> list[Sent]:
    h.server.forums.add(chat_id)
    return await group_message(h, user, f"/ruangstaf@{h.server.username} {arg}".strip(), chat_id)


async def consent(h: Harness, user: User) -> None:
    await say(h, user, "/start")
    await press(h, user, "Setuju")


async def complaint(h: Harness, user: User, text: str, category: str, confidential: bool,
                    photo: bool = False, send: bool = True) -> list[Sent]:
    """File a complaint through the buttons; returns the bot's answer to "Kirim" (if ``send``)."""
    await press(h, user, "Buat pengaduan")
    await press(h, user, "Disdukcapil")
    await press(h, user, "KTP Elektronik")
    await say(h, user, text)
    await press(h, user, category)
    await press(h, user, "Hari ini")
    if photo:
        await say(h, user, photo=[{"file_id": "AgACbukti", "file_unique_id": "b1", "width": 800,
                                  "height": 600}], caption="kuitansi")
    await press(h, user, "Lanjut" if photo else "Lewati")
    await press(h, user, "Lewati")  # no location
    await press(h, user, "Ya" if confidential else "Tidak")
    await press(h, user, "Ya")  # staff may contact me
    return await press(h, user, "Kirim") if send else []


async def press_data(h: Harness, user: User, sent: Sent, data: str) -> None:
    """Press a button with arbitrary (possibly forged) callback data on message ``sent``."""
    await h.feed(h.server.press_update(user, sent, data=data))


def topic_messages(h: Harness, thread: int, chat_id: int = ROOM) -> list[Sent]:
    return [s for s in h.server.chat(chat_id) if s.thread == thread]


def cases(h: Harness) -> list[Case]:
    with h.app.factory() as db:
        return list(db.scalars(select(Case).order_by(Case.id)))


def events(app: App, case_id: int) -> list[CaseEvent]:
    with app.factory() as db:
        return list(db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))


def dispatcher(h: Harness) -> Dispatcher:
    """The outbox dispatcher with the case-aware Telegram sender, no rate limits."""
    return Dispatcher(h.app.factory, {"telegram": telegram_sender(h.bot, h.app.factory)},
                      RateLimiter({}), clock=h.clock)


def last_answer(h: Harness) -> str | None:
    return h.server.callback_answers[-1].get("text") if h.server.callback_answers else None
