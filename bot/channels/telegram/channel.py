"""The Telegram channel: aiogram handlers that turn updates into turns, then send the replies.

The adapter only translates: a Telegram update becomes one :class:`bot.runtime.Inbound`, an
outbox payload becomes a message with an inline keyboard (render.py, sender.py). Business rules
stay in the engine; button validation too (the engine refuses a choice whose question is no
longer current).

The runtime is synchronous, so it runs in an executor (turns.py): one thread on SQLite (one
writer), a small pool on PostgreSQL, with a per-resident lock so one resident's updates are
handled and answered in order. Replies go out after the commit; what cannot go out now is left
to the outbox dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, CallbackQuery, ChatMemberUpdated, Message, Update

from bot.channels.common import KeyedLocks, Pacer
from bot.channels.telegram.render import (
    CHANNEL,
    CHOSEN_MARK,
    KEY_PREFIX,
    MAX_TEXT,
    parse_callback,
)
from bot.channels.telegram.sender import TelegramSender
from bot.channels.telegram.staffroom import install as install_staffroom
from bot.channels.telegram.turns import (
    GroupCommit,
    TurnBatcher,
    mark_sent_many,
    release,
    set_reachable,
)
from bot.channels.telegram.webhook import WebhookReply
from bot.i18n import LANGUAGES
from bot.outbox.ratelimit import SendBudget
from bot.outbox.store import SendError, record_failure, send_within
from bot.runtime.facade import Runtime
from bot.runtime.types import Inbound
from bot.storage.models import OutboxMessage
from flows.machine.types import Event, Texts

log = logging.getLogger(__name__)
T = TypeVar("T")

# Commands shown in Telegram's menu: Indonesian names, and English names for English users.
# Descriptions come from the catalogs (``tgcmd.<indonesian name>``).
COMMANDS_ID = ("start", "nilai", "lapor", "status", "menu", "batal", "kembali", "bantuan",
               "bahasa", "datasaya", "petugas")
COMMANDS_EN = {"nilai": "rate", "lapor": "complaint", "batal": "cancel", "kembali": "back",
               "bantuan": "help", "bahasa": "language", "datasaya": "mydata", "petugas": "person"}


# ---------------------------------------------------------------------- the channel


class TelegramChannel:
    """Handlers for the dispatcher plus the send-after-commit path for immediate replies.

    ``sleep`` is injectable so tests honour ``retry_after`` without waiting for real.
    """

    def __init__(
        self,
        runtime: Runtime,
        bot: Bot,
        texts: Texts,
        *,
        username: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        send_retries: int = 3,
        max_inline_wait: float = 30.0,
        workers: int | None = None,
        limiter: SendBudget | None = None,
    ) -> None:
        self.runtime = runtime
        self.factory = runtime.factory
        self.bot = bot
        self.texts = texts
        self.sender = TelegramSender(bot)
        self.username = username
        self.sleep = sleep
        self.send_retries = send_retries
        self.max_inline_wait = max_inline_wait
        threads = workers or (4 if runtime.postgres else 1)  # SQLite has one writer
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="prima-db")
        self._locks = KeyedLocks()
        self.pacer = Pacer(CHANNEL, limiter, sleep, runtime.metrics)
        self._stale = {texts(lang, "stale_button") for lang in LANGUAGES}
        self._sent = GroupCommit(self._write_sent)
        self._turns = TurnBatcher(self, threads)
        # PUBLIC_BASE_URL, for links to the web desk in staff alerts (set by run.py)
        self.public_base_url: str | None = None

    # -------------------------------------------------------------- wiring

    def dispatcher(self) -> Dispatcher:
        # No aiogram FSM: the conversation state lives in the database (bot/runtime.py), and
        # the FSM middleware resolved a storage context for every update.
        dp = Dispatcher(disable_fsm=True)
        received = self.runtime.metrics.updates.labels(CHANNEL)

        async def count(handler: Callable[..., Awaitable[Any]], update: Any, data: dict[str, Any]) -> Any:
            received.inc()  # polled or pushed by the webhook alike
            return await handler(update, data)

        dp.update.outer_middleware(count)
        install_staffroom(self, dp)  # staff rooms and case buttons first (bot/desk/cases.py)
        dp.message.register(self.on_message)
        dp.callback_query.register(self.on_callback)
        dp.my_chat_member.register(self.on_member)
        return dp

    async def setup(self) -> None:
        """Learn our username (for group commands) and register the command menu."""
        me = await self.bot.get_me()
        self.username = me.username
        await self.bot.set_my_commands(self.commands("id"))
        for lang in LANGUAGES:
            await self.bot.set_my_commands(self.commands(lang), language_code=lang)

    def commands(self, lang: str) -> list[BotCommand]:
        names = COMMANDS_ID if lang == "id" else tuple(COMMANDS_EN.get(c, c) for c in COMMANDS_ID)
        return [BotCommand(command=name, description=self.texts(lang, f"tgcmd.{base}"))
                for name, base in zip(names, COMMANDS_ID, strict=True)]

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -------------------------------------------------------------- updates -> Inbound

    def addressed_to_us(self, message: Message) -> bool:
        """Private chats: always. Groups: only ``/command@OurBot``."""
        if message.chat.type == "private":
            return True
        text = message.text or ""
        if not text.startswith("/") or not self.username:
            return False
        head = text.split(maxsplit=1)[0]
        _, at, name = head.partition("@")
        return bool(at) and name.lower() == self.username.lower()

    def to_inbound(self, message: Message, update_id: int) -> Inbound | None:
        user = message.from_user
        if user is None or user.is_bot or not self.addressed_to_us(message):
            return None
        event_id = f"tg:{update_id}"
        if message.text is not None:
            event = Event("text", event_id, text=message.text)
        elif message.photo:
            size = message.photo[-1]  # the largest rendition
            media: dict[str, Any] = {"type": "photo", "file_id": size.file_id,
                                     "file_unique_id": size.file_unique_id,
                                     "width": size.width, "height": size.height}
            if message.caption:
                media["caption"] = message.caption[:1024]
            event = Event("photo", event_id, media=media)
        elif message.location is not None:
            event = Event("location", event_id,
                          location=(message.location.latitude, message.location.longitude))
        else:
            event = Event("unsupported", event_id)
        return Inbound(CHANNEL, str(user.id), str(message.chat.id), event,
                       event_key=str(update_id), display_name=user.full_name,
                       username=user.username, language_hint=user.language_code)

    # -------------------------------------------------------------- handlers

    async def on_message(self, message: Message, event_update: Update) -> None:
        inbound = self.to_inbound(message, event_update.update_id)
        if inbound is None:
            return

        async def work() -> None:
            rows = await self._turns.run(inbound)
            await self.deliver(rows)

        await self._locks.run(inbound.user_id, work)

    async def on_callback(self, query: CallbackQuery, event_update: Update,
                          webhook_reply: WebhookReply | None = None) -> None:
        """Every callback query is answered, whatever happens; only valid presses edit the question.

        In webhook mode the answer rides on the webhook's 200 (``webhook_reply``) when the turn
        went through; the question's edit, made before the next question is sent, removes the
        pressed keyboard (and its spinner) first.
        """
        user = query.from_user
        parsed = parse_callback(query.data)
        lang = (user.language_code or "id")[:2] if user else "id"
        if parsed is None:
            log.info("malformed callback_data %r from %s", query.data, user.id if user else "?")
            await self._answer(query, self.texts(lang, "tg.button_invalid"), webhook_reply)
            return
        q, choice = parsed
        chat_id = query.message.chat.id if query.message is not None else user.id
        inbound = Inbound(CHANNEL, str(user.id), str(chat_id),
                          Event("choice", f"tg:{event_update.update_id}", choice=choice, q=q),
                          event_key=str(event_update.update_id), display_name=user.full_name,
                          username=user.username, language_hint=user.language_code)

        async def work() -> None:
            answered = False
            try:
                rows = await self._turns.run(inbound)
                # The engine's own words, in the language the resident chose (not the phone's).
                stale_text = next((str(r.payload["text"]) for r in rows
                                   if r.payload.get("text") in self._stale), None)
                stale = stale_text is not None
                answered = True
                await self._answer(query, stale_text, webhook_reply)
                if rows:
                    await self._show_choice(query, None if stale else query.data)
                await self.deliver(rows)
            finally:
                if not answered:  # the turn failed: the webhook answers 500, so call directly
                    await self._answer(query, None)

        await self._locks.run(inbound.user_id, work)

    async def on_member(self, event: ChatMemberUpdated) -> None:
        """A resident blocked (kicked) or unblocked the bot in a private chat."""
        if event.chat.type != "private":
            return
        status = event.new_chat_member.status
        when = self.runtime.clock() if status == "kicked" else None
        await self._db(set_reachable, self.factory, str(event.chat.id), when)

    async def _answer(self, query: CallbackQuery, text: str | None,
                      webhook_reply: WebhookReply | None = None) -> None:
        if webhook_reply is not None and webhook_reply.take(
                "answerCallbackQuery", callback_query_id=query.id, text=text):
            return
        try:
            await self.bot.answer_callback_query(query.id, text=text)
        except TelegramAPIError as exc:  # too old to answer: nothing the resident can see
            log.info("answerCallbackQuery failed: %s", exc)

    async def _show_choice(self, query: CallbackQuery, data: str | None) -> None:
        """Edit the question to show the pressed answer and drop its keyboard (stale: just drop)."""
        message = query.message
        if not isinstance(message, Message):
            return  # inaccessible (too old)
        label = None
        if data is not None and message.reply_markup is not None:
            for row in message.reply_markup.inline_keyboard:
                for button in row:
                    if button.callback_data == data:  # the words, as a typed answer is echoed
                        label = KEY_PREFIX.sub("", button.text)
        try:
            if label is not None and message.text is not None:
                suffix = f"\n\n{CHOSEN_MARK} {label}"
                text = message.text[: MAX_TEXT - len(suffix)] + suffix
                await self.bot.edit_message_text(text=text, chat_id=message.chat.id,
                                                 message_id=message.message_id)
            elif message.reply_markup is not None:
                await self.bot.edit_message_reply_markup(chat_id=message.chat.id,
                                                         message_id=message.message_id)
        except TelegramAPIError as exc:
            log.info("could not edit the answered question: %s", exc)

    # -------------------------------------------------------------- sending

    async def deliver(self, rows: list[OutboxMessage]) -> None:
        """Send committed replies in order and record each outcome.

        After a failure the rest of this turn's messages to that chat are not attempted (order
        matters in a conversation): they wait behind the failed one, or go on once it is
        settled (:func:`bot.outbox.store.hand_back`). A send whose outcome is unknown (timeout,
        dropped connection) follows ``OUTBOX_RESEND_UNKNOWN`` like any outbox send: the
        dispatcher resends it, counted as a possible duplicate. Rows for another channel (a
        relay to a resident on WhatsApp) go back to the outbox dispatcher.
        """
        sent: list[tuple[int, str | None]] = []
        failed: list[tuple[int, SendError, list[int]]] = []
        stop: dict[str, list[int]] = {}  # chat -> the rows queued behind its failed one
        other = [row.id for row in rows if row.channel != CHANNEL]
        sending: int | None = None
        try:
            for row in rows:
                if row.channel != CHANNEL:
                    continue
                behind = stop.get(row.chat_id)
                if behind is not None:
                    behind.append(row.id)
                    continue
                sending = row.id
                try:
                    sent.append((row.id, await self._send_retrying(row.chat_id, row.payload)))
                except SendError as err:
                    untried: list[int] = []
                    failed.append((row.id, err, untried))
                    stop[row.chat_id] = untried
                sending = None
        except asyncio.CancelledError:
            # A stop that could not wait any longer: record what went out and hand the rest
            # back to the outbox dispatcher. The one being sent stays
            # claimed (it may have arrived; sending it again could duplicate it).
            done = {r for r, _ in sent} | {sending}
            back = [row.id for row in rows if row.id not in done]
            await asyncio.shield(self._db(self._hand_back, sent, back))
            raise
        await self._sent.record(sent)
        if failed or other:
            await self._db(self._record_failures, failed, other)

    def _hand_back(self, sent: list[tuple[int, str | None]], back: list[int]) -> None:
        mark_sent_many(self.runtime, sent, self.runtime.clock())
        release(self.factory, back)

    async def _write_sent(self, batch: list[tuple[int, str | None]]) -> None:
        await self._db(mark_sent_many, self.runtime, batch, self.runtime.clock())

    def _record_failures(self, failed: list[tuple[int, SendError, list[int]]], other: list[int]) -> None:
        now = self.runtime.clock()
        policy = self.runtime.send_policy
        for row_id, err, untried in failed:
            status = record_failure(self.factory, row_id, err, now, max_attempts=policy.max_attempts,
                                    resend_unknown=policy.resend_unknown, untried=untried)
            log.warning("outbox %s not sent (%s): %s", row_id, status, err.reason)
        release(self.factory, other)

    async def _send_retrying(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        """429: wait ``retry_after`` (if short); 5xx/network: back off 0.5, 1, 2 s; else give up.

        An unknown outcome is never retried here: the outbox policy decides (and counts it).
        """
        attempt = 0
        timeout = self.runtime.send_policy.send_timeout
        while True:
            await self.pacer.wait(chat_id)
            try:
                provider_id = await send_within(self.sender, chat_id, payload, timeout)
            except SendError as err:
                self.pacer.record(err)
                attempt += 1
                if err.retry_after is not None:
                    await self.pacer.penalise(chat_id, err.retry_after)
                if err.permanent or err.unknown or attempt > self.send_retries:
                    raise
                wait = err.retry_after if err.retry_after is not None else 0.5 * 2 ** (attempt - 1)
                if wait > self.max_inline_wait:
                    raise  # the outbox dispatcher sends it when due
                log.info("send to %s failed (%s); retrying in %.1fs", chat_id, err.reason, wait)
                await self.sleep(wait)
            else:
                self.pacer.record()
                return provider_id

