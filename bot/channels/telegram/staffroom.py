"""The staff side on Telegram: a staff room (a supergroup with topics), one topic per case.

- ``/ruangstaf`` in a group links it as the agency's staff room (registered staff/admins only).
- Every case gets a forum topic, created by :class:`StaffSender` the first time something is
  sent about the case; the card has buttons (take, pending, resolve, escalate to head, note).
- A staff member's message in a case topic goes to the resident as the bot ("Petugas
  Disdukcapil"), never from the staff member's own account; ``/catatan <text>`` stores a
  private note instead.
- ``/kasus`` in a private chat lists the agency's open cases (the queue when there is no
  staff room yet) and ``/balas <ticket> <text>`` answers a resident from there.

Every press and message is checked in bot/desk/cases.py against the case's agency and the
person's registration; a forged or stale press changes nothing and is answered with a notice.
Staff messages are plain text (no parse mode), so what residents typed is shown literally.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import ClientDecodeError, TelegramAPIError, TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.telegram.render import CHANNEL, MAX_TEXT
from bot.channels.telegram.roomcheck import room_problem
from bot.channels.telegram.sender import TelegramSender, classify
from bot.desk import cases, intake, outgoing, relay, rooms, states
from bot.desk import queue as case_queue
from bot.outbox.store import Sender
from bot.privacy.scrub import scrub
from bot.runtime.types import Inbound
from bot.storage.models import Case, OutboxMessage
from bot.text import split_text
from flows.helpers.tickets import normalise_ticket, split_ticket
from flows.machine.types import Event

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel

log = logging.getLogger(__name__)
T = TypeVar("T")

_COMMAND = re.compile(r"^/(?P<name>[a-z]+)(?:@(?P<bot>\w+))?(?:\s+(?P<arg>.*))?$", re.DOTALL | re.IGNORECASE)


def parse_command(text: str | None, username: str | None) -> tuple[str, str] | None:
    """``/kasus@PrimaBot arg`` -> ("kasus", "arg"); a command for another bot -> None."""
    m = _COMMAND.match((text or "").strip())
    if not m:
        return None
    if m["bot"] and (not username or m["bot"].lower() != username.lower()):
        return None
    return m["name"].lower(), (m["arg"] or "").strip()


def case_keyboard(choices: list[dict[str, Any]]) -> InlineKeyboardMarkup | None:
    """Case buttons carry their own callback data (``cs:<action>:<case>``), two per row."""
    if not choices:
        return None
    buttons = [InlineKeyboardButton(text=str(c["label"])[:64], callback_data=str(c["id"])[:64])
               for c in choices]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[i:i + 2] for i in range(0, len(buttons), 2)])


def _topic_of(factory: sessionmaker[Session], case_id: int) -> tuple[str | None, int | None]:
    with factory() as db:
        row = db.get(Case, case_id)
        return (row.room_chat_id, row.topic_id) if row else (None, None)


def _store(factory: sessionmaker[Session], case_id: int, **values: Any) -> None:
    with factory() as db, db.begin():
        db.execute(update(Case).where(Case.id == case_id).values(**values))


class StaffSender:
    """:class:`bot.outbox.store.Sender` for Telegram that knows case topics and case buttons.

    Wraps the plain sender: a payload about a case (``payload["case"]``) goes into the case's
    forum topic, created on first use; a group without topics gets it in the main chat.
    """

    channel = CHANNEL

    def __init__(self, inner: Sender, bot: Bot, factory: sessionmaker[Session]) -> None:
        self.inner = inner
        self.bot = bot
        self.factory = factory
        self._locks: dict[int, asyncio.Lock] = {}

    @staticmethod
    def handles(payload: dict[str, Any]) -> bool:
        choices = payload.get("choices") or []
        return bool(payload.get("case") or payload.get("tg_photo")
                    or any(str(c.get("id", "")).startswith(states.PREFIX) for c in choices))

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        if not self.handles(payload):
            return await self.inner.send(chat_id, payload)
        try:
            return await self._send(chat_id, payload)
        except (TelegramAPIError, ClientDecodeError) as exc:
            raise classify(exc) from exc

    async def _topic(self, chat_id: str, case: dict[str, Any]) -> int | None:
        case_id = int(case["id"])
        lock = self._locks.setdefault(case_id, asyncio.Lock())
        async with lock:
            room, topic = await asyncio.to_thread(_topic_of, self.factory, case_id)
            if topic is not None and room == chat_id:
                return topic
            try:
                created = await self.bot.create_forum_topic(chat_id, name=str(case["topic"])[:128])
            except TelegramBadRequest as exc:  # not a forum: the main chat will do
                log.warning("no topic for case %s in %s: %s", case_id, chat_id, exc)
                return None
            await asyncio.to_thread(_store, self.factory, case_id, room_chat_id=chat_id,
                                    topic_id=created.message_thread_id)
            return created.message_thread_id

    async def _send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        case = payload.get("case")
        markup = case_keyboard(payload.get("choices") or [])
        text = str(payload.get("text") or "")
        if case and case.get("edit"):  # the card, refreshed after a change outside the room
            try:
                await self.bot.edit_message_text(text=text[:MAX_TEXT], chat_id=chat_id,
                                                 message_id=int(case["edit"]), reply_markup=markup)
            except TelegramBadRequest as exc:
                if "not modified" not in str(exc):
                    raise
            return str(case["edit"])
        thread = await self._topic(chat_id, case) if case else None
        if case and case.get("rename") and thread is not None:
            await self._rename(chat_id, thread, str(case["topic"]))
        if payload.get("tg_photo"):
            msg = await self.bot.send_photo(chat_id, str(payload["tg_photo"]), caption=text[:1024] or None,
                                            message_thread_id=thread, reply_markup=markup)
            return str(msg.message_id)
        parts = split_text(text, MAX_TEXT)
        msg_id = None
        for n, part in enumerate(parts):
            last = n == len(parts) - 1
            msg = await self.bot.send_message(chat_id, part, message_thread_id=thread,
                                              reply_markup=markup if last else None)
            msg_id = str(msg.message_id)
        if case and case.get("card") and msg_id is not None:
            await asyncio.to_thread(_store, self.factory, int(case["id"]), card_message_id=msg_id)
        return msg_id


    async def _rename(self, chat_id: str, thread: int, name: str) -> None:
        """The topic shows the case's new name (an urgent case's red mark) at once; a topic
        that already has it, or a right the bot lost, leaves the message to go out anyway."""
        try:
            await self.bot.edit_forum_topic(chat_id, message_thread_id=thread, name=name[:128])
        except TelegramBadRequest as exc:
            if "not_modified" not in str(exc).lower():
                log.warning("topic %s in %s not renamed: %s", thread, chat_id, exc)


def with_cases(sender: Sender, factory: sessionmaker[Session]) -> Sender:
    """Make a Telegram sender case-aware (topics, case buttons); other senders pass through."""
    bot = getattr(sender, "bot", None)
    if isinstance(sender, StaffSender) or sender.channel != CHANNEL or not isinstance(bot, Bot):
        return sender
    return StaffSender(sender, bot, factory)


def telegram_sender(bot: Bot, factory: sessionmaker[Session]) -> StaffSender:
    """The Telegram sender to give the outbox dispatcher, so case rows reach their topics."""
    return StaffSender(TelegramSender(bot), bot, factory)


class _Duplicate:
    """The update was handled before."""


DUPLICATE = _Duplicate()


class _NotOurs(Exception):
    """Rolls back the de-duplication mark of an update the resident handlers take."""


class StaffDesk:
    """Handlers for staff rooms, case buttons, ``/kasus`` and ``/balas``."""

    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel
        self.runtime = channel.runtime
        self.factory = channel.runtime.factory
        self.bot = channel.bot

    def register(self, dp: Dispatcher) -> None:
        """Install ahead of the resident handlers (first matching handler wins)."""
        if not isinstance(self.channel.sender, StaffSender):
            self.channel.sender = StaffSender(  # type: ignore[assignment]
                self.channel.sender, self.bot, self.factory)
        # Coroutine filters: aiogram runs a plain (or magic F) filter in a worker thread, a
        # thread hop per filter on every update.
        dp.callback_query.register(self.on_button, _case_button)
        dp.message.register(self.on_group, _in_group)
        dp.message.register(self.on_private, _private_command)

    async def _once(self, update_id: int, fn: Callable[..., T], *args: Any,
                    none_is_not_ours: bool = False, **kwargs: Any) -> T | _Duplicate:
        """``fn`` in a transaction that also records the update as handled, like a resident's
        turn: the same update delivered twice (a redelivery, a restart) acts once. With
        ``none_is_not_ours``, ``fn`` returning None means "not a staff matter": nothing is
        kept, so the resident handlers still see the update as new."""
        def run() -> T | _Duplicate:
            try:
                with self.factory() as db, db.begin():
                    first = db.execute(self.runtime.sql.first_delivery, {
                        "channel": CHANNEL, "event_key": str(update_id),
                        "received_at": self._now()}).first()
                    if first is None:
                        return DUPLICATE
                    result = fn(db, *args, **kwargs)
                    if result is None and none_is_not_ours:
                        raise _NotOurs
                    return result
            except _NotOurs:
                return None  # type: ignore[return-value]

        outcome = await self.channel._db(run)
        if outcome is DUPLICATE:
            log.info("duplicate delivery of staff update %s ignored", update_id)
        return outcome

    def _now(self) -> Any:
        return self.runtime.clock()

    # ---------------------------------------------------------------- buttons

    async def on_button(self, query: CallbackQuery, event_update: Update) -> None:
        parsed = states.parse_callback(query.data)
        user = query.from_user
        message = query.message
        chat = message.chat if message is not None else None
        if parsed is None or chat is None:
            await self._answer(query, outgoing.texts("case.refused.unknown"))
            return
        action, case_id, _score = parsed
        if action == "rate":
            # Through the resident's conversation (bot/runtime.py): the rating is recorded, the
            # thanks said in the chat and the resident shown where they are, not left at a toast.
            inbound = Inbound(CHANNEL, str(user.id), str(chat.id),
                              Event("choice", f"tg:cb:{query.id}", choice=query.data or ""),
                              event_key=f"cb:{query.id}", display_name=user.full_name,
                              language_hint=user.language_code)

            async def work() -> None:
                rows = await self.channel._turns.run(inbound)
                await self._answer(query, None)
                if isinstance(message, Message) and message.reply_markup is not None:
                    try:
                        await self.bot.edit_message_reply_markup(chat_id=chat.id,
                                                                 message_id=message.message_id)
                    except TelegramAPIError as exc:
                        log.info("could not drop the rating buttons: %s", exc)
                await self.channel.deliver(rows)

            await self.channel._locks.run(inbound.user_id, work)
            return
        if action == "note":
            await self._answer(query, outgoing.texts("case.note_how"), alert=True)
            return
        outcome = await self._once(
            event_update.update_id, self._act, case_id, action, str(user.id), str(chat.id),
            chat.type == "private")
        if isinstance(outcome, _Duplicate):
            await self._answer(query, None)
            return
        ok, notice, rows, card, room, card_id = outcome
        await self._answer(query, notice, alert=not ok)
        if card is not None and room and card_id:
            await self._edit_card(room, card_id, card)
        await self.channel.deliver(rows)

    def _act(self, db: Session, case_id: int, action: str, user_id: str, chat_id: str,
             private: bool) -> tuple[bool, str, list[OutboxMessage], dict[str, Any] | None,
                                     str | None, str | None]:
        out = cases.act(db, case_id, action, channel=CHANNEL, user_id=user_id, chat_id=chat_id,
                        now=self._now(), private=private, mask=scrub,
                        desk_url=self.channel.public_base_url)
        case = out.case
        return (out.ok, out.notice, out.rows, out.card,
                case.room_chat_id if case else None, case.card_message_id if case else None)

    async def _edit_card(self, chat_id: str, message_id: str, card: dict[str, Any]) -> None:
        try:
            await self.bot.edit_message_text(text=card["text"][:MAX_TEXT], chat_id=chat_id,
                                             message_id=int(message_id),
                                             reply_markup=case_keyboard(card["choices"]))
        except TelegramAPIError as exc:
            log.info("could not refresh the case card: %s", exc)

    async def _answer(self, query: CallbackQuery, text: str | None, alert: bool = False) -> None:
        try:
            await self.bot.answer_callback_query(query.id, text=(text or None) and text[:200],
                                                 show_alert=alert)
        except TelegramAPIError as exc:
            log.info("answerCallbackQuery failed: %s", exc)

    # ---------------------------------------------------------------- group messages

    async def on_group(self, message: Message, event_update: Update) -> None:
        user = message.from_user
        if user is None or user.is_bot:
            raise SkipHandler
        command = parse_command(message.text, self.channel.username)
        chat_id = str(message.chat.id)
        uid = event_update.update_id
        if command is not None and command[0] == "eskalasi":
            await self._escalate(message, str(user.id), command[1], uid)
            return
        if command is not None and command[0] == "ruangstaf":
            problem = await room_problem(self.bot, message.chat.id)  # Topics on, bot may manage them
            linked = await self._once(uid, rooms.link_room, CHANNEL, str(user.id), chat_id,
                                      command[1] or None, self._now(), problem)
            if isinstance(linked, _Duplicate):
                return
            _ok, notice, rows = linked
            await self._reply(message, notice)
            await self.channel.deliver(rows)
            return
        thread = message.message_thread_id if message.is_topic_message else None
        if thread is None:
            raise SkipHandler  # not in a topic: the resident handlers decide (commands only)
        if command is not None and command[0] == "catatan":
            result = await self._once(uid, self._note, chat_id, thread, str(user.id), command[1],
                                      none_is_not_ours=True)
            if result is None:
                raise SkipHandler
            if isinstance(result, _Duplicate):
                return
            await self._reply(message, result)
            return
        if command is not None:
            raise SkipHandler
        photo = message.photo[-1].file_id if message.photo else None
        text = message.text if message.text is not None else (message.caption or "")
        if not text and not photo:
            return
        outcome = await self._once(uid, self._relay, chat_id, thread, str(user.id), text, photo,
                                   none_is_not_ours=True)
        if outcome is None:
            raise SkipHandler  # a topic that is not a case
        if isinstance(outcome, _Duplicate):
            return
        _ok, notice, rows, card, room, card_id = outcome
        await self._reply(message, notice)  # a refusal, or that nobody has taken the case yet
        if card is not None and room and card_id:
            await self._edit_card(room, card_id, card)
        await self.channel.deliver(rows)

    def _note(self, db: Session, chat_id: str, thread: int, user_id: str, text: str) -> str | None:
        case = db.query(Case).filter(Case.room_chat_id == chat_id, Case.topic_id == thread).first()
        if case is None:
            return None
        out = cases.act(db, case.id, "note", channel=CHANNEL, user_id=user_id, chat_id=chat_id,
                        now=self._now(), note=text.strip())
        return out.notice

    def _relay(self, db: Session, chat_id: str, thread: int | None, user_id: str, text: str,
               photo: str | None, ticket: str | None = None, private: bool = False,
               ) -> tuple[bool, str, list[OutboxMessage], dict[str, Any] | None, str | None,
                          str | None] | None:
        out = relay.staff_message(db, channel=CHANNEL, user_id=user_id, room_chat_id=chat_id,
                                  topic_id=thread, text=text, photo=photo, now=self._now(),
                                  ticket=ticket, private=private)
        if out is None:
            return None
        case = out.case
        return (out.ok, out.notice, out.rows, out.card,
                case.room_chat_id if case else None, case.card_message_id if case else None)

    async def _reply(self, message: Message, text: str) -> None:
        if not text:
            return
        try:
            await self.bot.send_message(message.chat.id, text[:MAX_TEXT],
                                        message_thread_id=message.message_thread_id
                                        if message.is_topic_message else None)
        except TelegramAPIError as exc:
            log.info("could not answer in the staff room: %s", exc)

    # ---------------------------------------------------------------- private commands

    async def on_private(self, message: Message, event_update: Update) -> None:
        user = message.from_user
        command = parse_command(message.text, self.channel.username)
        if user is None or command is None or command[0] not in ("kasus", "balas", "eskalasi"):
            raise SkipHandler  # everything else is the resident conversation
        name, arg = command
        uid = event_update.update_id
        if name == "eskalasi":
            await self._escalate(message, str(user.id), arg, uid)
            return
        if name == "kasus":
            queue = await self._once(uid, case_queue.queue, CHANNEL, str(user.id), self._now())
            if isinstance(queue, _Duplicate):
                return
            text, choices = queue
            parts = split_text(text, MAX_TEXT)
            for n, part in enumerate(parts):
                last = n == len(parts) - 1
                await self.bot.send_message(message.chat.id, part,
                                            reply_markup=case_keyboard(choices) if last else None)
            return
        found = split_ticket(arg)  # typed as residents type them: w61h x923, W61H-X923
        if found is None or not found[1]:
            await self.bot.send_message(message.chat.id, outgoing.texts("case.queue.reply_help"))
            return
        canonical, body = found
        outcome = await self._once(uid, self._relay, str(message.chat.id), None, str(user.id),
                                   body, None, canonical, True)
        if isinstance(outcome, _Duplicate):
            return
        assert outcome is not None  # a ticket lookup always answers
        _ok, notice, rows, card, room, card_id = outcome
        await self.bot.send_message(message.chat.id, notice or outgoing.texts("case.sent"))
        if card is not None and room and card_id:  # the card in the staff room shows it too
            await self._edit_card(room, card_id, card)
        await self.channel.deliver(rows)


    async def _escalate(self, message: Message, user_id: str, arg: str, update_id: int) -> None:
        ticket = normalise_ticket(arg)
        if ticket is None:
            await self._reply(message, outgoing.texts("case.escalate_how"))
            return
        escalated = await self._once(update_id, intake.escalate_complaint, CHANNEL, user_id, ticket,
                                     self._now())
        if isinstance(escalated, _Duplicate):
            return
        notice, rows = escalated
        await self._reply(message, notice)
        await self.channel.deliver(rows)


async def _case_button(query: CallbackQuery) -> bool:
    return (query.data or "").startswith(states.PREFIX)


async def _in_group(message: Message) -> bool:
    return message.chat.type in ("group", "supergroup")


async def _private_command(message: Message) -> bool:
    return message.chat.type == "private" and (message.text or "").startswith("/")


def install(channel: TelegramChannel, dp: Dispatcher) -> StaffDesk:
    """Called by the Telegram channel when it builds its dispatcher."""
    desk = StaffDesk(channel)
    desk.register(dp)
    return desk


__all__ = ["StaffDesk", "StaffSender", "install", "parse_command", "telegram_sender"]
