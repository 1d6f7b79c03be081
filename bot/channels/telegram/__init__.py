"""Telegram channel on aiogram 3: updates in, outbox payloads out, polling or webhook.

The adapter only translates: a Telegram update becomes one :class:`bot.runtime.Inbound`, an
outbox payload becomes a message with an inline keyboard. Business rules stay in the engine;
button validation too (``callback_data`` is ``"<q>:<choice id>"`` and the engine refuses a
choice whose question is no longer current). Text goes out without ``parse_mode``: what the
resident typed is echoed back literally and can never break the markup.

The runtime is synchronous, so it runs in an executor: one thread on SQLite (one writer),
a small pool on PostgreSQL, with a per-resident lock so one resident's updates are handled
and answered in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    ChatMemberUpdated,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from aiogram.utils.backoff import BackoffConfig
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.common import KeyedLocks, Pacer, choice_label, decode_choice, encode_choice
from bot.i18n import LANGUAGES
from bot.outbox.ratelimit import SendBudget
from bot.outbox.store import SendError, record_failure, send_within
from bot.runtime import Inbound, Runtime
from bot.storage.db import DatabaseHealth, database_unavailable
from bot.storage.models import Contact, InboundEvent, OutboxMessage
from bot.text import split_text
from flows.types import Event, Texts

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_CALLBACK_BYTES = 64  # Telegram's limit for callback_data
MAX_TEXT = 4096  # Telegram's limit for one message
# Set by the poller for the task that handles one update: resolved once that update's turn is
# committed, so the poller may confirm it to Telegram while the replies are still being sent.
STORED: contextvars.ContextVar[asyncio.Future[None] | None] = contextvars.ContextVar(
    "prima_telegram_stored", default=None)
CHOSEN_MARK = "✅"

# Commands shown in Telegram's menu: Indonesian names, and English names for English users.
# Descriptions come from the catalogs (``tgcmd.<indonesian name>``).
COMMANDS_ID = ("start", "nilai", "lapor", "status", "menu", "batal", "kembali", "bantuan",
               "bahasa", "datasaya", "petugas")
COMMANDS_EN = {"nilai": "rate", "lapor": "complaint", "batal": "cancel", "kembali": "back",
               "bantuan": "help", "bahasa": "language", "datasaya": "mydata", "petugas": "person"}


# ---------------------------------------------------------------------- bot and API server


def api_server(base: str | None) -> TelegramAPIServer:
    """Telegram's own Bot API, or another server (self-hosted telegram-bot-api, a test server)."""
    return TelegramAPIServer.from_base(base) if base else PRODUCTION


def make_bot(token: str, api_base: str | None = None, timeout: float = 30.0) -> Bot:
    """A bot without a default parse_mode: every text is sent as plain text."""
    return Bot(token, session=AiohttpSession(api=api_server(api_base), timeout=timeout))


# ---------------------------------------------------------------------- rendering


KEY_PREFIX = re.compile(r"^\d{1,3}\. ")


def callback_data(q: int | None, choice_id: str) -> str:
    data = encode_choice(q, choice_id)
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback_data over {MAX_CALLBACK_BYTES} bytes: {data!r}")
    return data


def parse_callback(data: str | None) -> tuple[int, str] | None:
    """``"12:agree"`` -> (12, "agree"); anything malformed -> None (never raises)."""
    if not data or len(data.encode()) > MAX_CALLBACK_BYTES:
        return None
    return decode_choice(data)


def keyboard(payload: dict[str, Any]) -> InlineKeyboardMarkup | None:
    """Answers one per row (labels stay readable); back/cancel together on the last row."""
    choices = payload.get("choices") or []
    if not choices:
        return None
    q = payload.get("q")
    return _keyboard(q, tuple((str(c["id"]), choice_label(c), bool(c.get("nav"))) for c in choices))


@functools.lru_cache(maxsize=1024)
def _keyboard(q: Any, choices: tuple[tuple[str, str, bool], ...]) -> InlineKeyboardMarkup:
    """Built once per distinct keyboard: residents at the same question share it.

    Building the pydantic models cost more per message than sending it; aiogram only reads
    the markup, so one instance can serve every send.
    """
    rows: list[list[InlineKeyboardButton]] = []
    nav: list[InlineKeyboardButton] = []
    for choice_id, label, is_nav in choices:
        button = InlineKeyboardButton(text=label[:120], callback_data=callback_data(q, choice_id))
        if is_nav:
            nav.append(button)
        else:
            rows.append([button])
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)




def classify(exc: Exception) -> SendError:
    """Map aiogram's errors onto the outbox's retry rules."""
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TelegramRetryAfter):
        return SendError(reason, retry_after=float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError):
        return SendError(reason, permanent=True, unreachable=True)
    if isinstance(exc, TelegramBadRequest | TelegramNotFound | TelegramMigrateToChat
                  | TelegramEntityTooLarge):
        return SendError(reason, permanent=True)
    if isinstance(exc, TelegramNetworkError):
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            return SendError(reason)  # never connected: nothing arrived, safe to retry
        # A read timeout or a connection dropped after the request left: it may have arrived.
        return SendError(reason, unknown=True)
    if isinstance(exc, ClientDecodeError):
        return SendError(reason, unknown=True)
    return SendError(reason)  # 5xx (TelegramServerError) and the rest: retry later


class TelegramSender:
    """:class:`bot.outbox.store.Sender` for Telegram. Raises :class:`SendError`, classified."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        try:
            return await self._send(chat_id, payload)
        except (TelegramAPIError, ClientDecodeError) as exc:
            raise classify(exc) from exc
        except OSError as exc:  # a file to upload went missing: retrying will not help
            raise SendError(f"{type(exc).__name__}: {exc}", permanent=True) from exc

    async def _send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        markup = keyboard(payload)
        text = str(payload.get("text") or "")
        if payload.get("photo"):
            photo = payload["photo"]
            msg = await self.bot.send_photo(chat_id, FSInputFile(photo["path"]),
                                            caption=(photo.get("caption") or text)[:1024] or None,
                                            reply_markup=markup)
            return str(msg.message_id)
        if payload.get("document"):
            doc = payload["document"]
            msg = await self.bot.send_document(
                chat_id, FSInputFile(doc["path"], filename=doc.get("filename")),
                caption=(doc.get("caption") or text)[:1024] or None, reply_markup=markup)
            return str(msg.message_id)
        parts = split_text(text, MAX_TEXT)
        msg_id = None
        for n, part in enumerate(parts):
            last = n == len(parts) - 1
            msg = await self.bot.send_message(chat_id, part, reply_markup=markup if last else None)
            msg_id = str(msg.message_id)
        return msg_id


# ---------------------------------------------------------------------- storage helpers


def mark_sent_many(runtime: Runtime, sent: list[tuple[int, str | None]], now: datetime) -> None:
    """:func:`bot.outbox.store.mark_sent` as one executemany on the driver: many turns' rows in one
    Core transaction (see bot/hotsql.py for why not through SQLAlchemy's execute)."""
    if not sent:
        return
    with runtime.engine.begin() as conn:
        runtime.raw.mark_sent.many(conn.connection.cursor(),
                                   [{"row_id": r, "provider_id": p, "now": now} for r, p in sent])
    runtime.settle_erasures(r for r, _ in sent)  # erasure confirmations: deleted once sent


class GroupCommit:
    """Records sent rows for many concurrent turns in one transaction (group commit).

    Each caller waits until its own rows are committed, so a turn is finished only when its
    bookkeeping is stored; under load one transaction serves every turn that arrived
    meanwhile, which halves the database work per update.
    """

    def __init__(self, write: Callable[[list[tuple[int, str | None]]], Awaitable[None]]) -> None:
        self.write = write
        self._batch: list[tuple[int, str | None]] = []
        self._done: asyncio.Future[None] | None = None
        self._running = False

    async def record(self, rows: list[tuple[int, str | None]]) -> None:
        if not rows:
            return
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        done = self._done
        self._batch.extend(rows)
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._batch:
                batch, done = self._batch, self._done
                self._batch, self._done = [], None
                assert done is not None
                try:
                    await self.write(batch)
                except Exception as exc:  # each waiting turn sees the failure
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        finally:
            self._running = False


class TurnBatcher:
    """Runs the turns that arrived meanwhile in one executor job, each in its own transaction.

    A hop to the database thread and back (futures, a thread wake-up, the loop's self-pipe)
    cost about as much as a short turn; under load one hop now serves every waiting turn.
    Each resident still has one turn in flight at a time (the channel's per-resident lock),
    and a turn's failure reaches only its own caller. Up to ``threads`` jobs run at once, so
    PostgreSQL keeps its parallel connections.
    """

    def __init__(self, channel: TelegramChannel, threads: int) -> None:
        self.channel = channel
        self.threads = threads
        self._queue: list[tuple[Inbound, asyncio.Future[list[OutboxMessage]]]] = []
        self._jobs = 0
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, inbound: Inbound) -> list[OutboxMessage]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[OutboxMessage]] = loop.create_future()
        self._queue.append((inbound, done))
        if self._jobs < self.threads:
            self._jobs += 1
            job = loop.create_task(self._drain())
            self._running.add(job)
            job.add_done_callback(self._running.discard)
        rows = await done
        stored = STORED.get()
        if stored is not None and not stored.done():
            stored.set_result(None)  # committed (or a duplicate): the poller may confirm it
        return rows

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    outcomes = await self.channel._db(self._handle_all, [i for i, _ in batch])
                except Exception as exc:  # the hop itself failed (shut down): tell each caller
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, done), (rows, error) in zip(batch, outcomes, strict=True):
                    if done.done():  # the caller was cancelled meanwhile
                        continue
                    if error is not None:
                        done.set_exception(error)
                    else:
                        done.set_result(rows)
        finally:
            self._jobs -= 1

    def _handle_all(self, inbounds: list[Inbound],
                    ) -> list[tuple[list[OutboxMessage], Exception | None]]:
        handle = self.channel.runtime.handle
        outcomes: list[tuple[list[OutboxMessage], Exception | None]] = []
        for inbound in inbounds:
            try:
                outcomes.append((handle(inbound), None))
            except Exception as exc:  # this turn rolled back; the others stand
                outcomes.append(([], exc))
        return outcomes


def release(factory: sessionmaker[Session], ids: list[int]) -> None:
    """Hand rows this process will not send back to the outbox dispatcher, untouched."""
    if not ids:
        return
    with factory() as db, db.begin():
        db.execute(update(OutboxMessage)
                   .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "claimed")
                   .values(status="pending", claimed_at=None))


def set_reachable(factory: sessionmaker[Session], user_id: str, when: datetime | None) -> None:
    with factory() as db, db.begin():
        db.execute(update(Contact)
                   .where(Contact.channel == CHANNEL, Contact.external_id == user_id)
                   .values(unreachable_at=when))


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
        self.pacer = Pacer(CHANNEL, limiter, sleep)
        self._stale = {texts(lang, "stale_button") for lang in LANGUAGES}
        self._sent = GroupCommit(self._write_sent)
        self._turns = TurnBatcher(self, threads)

    # -------------------------------------------------------------- wiring

    def dispatcher(self) -> Dispatcher:
        # No aiogram FSM: the conversation state lives in the database (bot/runtime.py), and
        # the FSM middleware resolved a storage context for every update.
        dp = Dispatcher(disable_fsm=True)
        from bot.channels.telegram.staffroom import (
            install,  # staff rooms and case buttons first (bot/cases.py)
        )

        install(self, dp)
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

    async def on_callback(self, query: CallbackQuery, event_update: Update) -> None:
        """Every callback query is answered, whatever happens; only valid presses edit the question."""
        user = query.from_user
        parsed = parse_callback(query.data)
        lang = (user.language_code or "id")[:2] if user else "id"
        if parsed is None:
            log.info("malformed callback_data %r from %s", query.data, user.id if user else "?")
            await self._answer(query, self.texts(lang, "tg.button_invalid"))
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
                await self._answer(query, stale_text)
                if rows:
                    await self._show_choice(query, None if stale else query.data)
                await self.deliver(rows)
            finally:
                if not answered:
                    await self._answer(query, None)

        await self._locks.run(inbound.user_id, work)

    async def on_member(self, event: ChatMemberUpdated) -> None:
        """A resident blocked (kicked) or unblocked the bot in a private chat."""
        if event.chat.type != "private":
            return
        status = event.new_chat_member.status
        when = self.runtime.clock() if status == "kicked" else None
        await self._db(set_reachable, self.factory, str(event.chat.id), when)

    async def _answer(self, query: CallbackQuery, text: str | None) -> None:
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
                return await send_within(self.sender, chat_id, payload, timeout)
            except SendError as err:
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


# ---------------------------------------------------------------------- running


POLLING_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=1.5, jitter=0.1)
DB_RETRY = BackoffConfig(min_delay=0.25, max_delay=5.0, factor=2.0, jitter=0.0)


def resident_key(raw: dict[str, Any]) -> str:
    """Who an update comes from, read from the raw JSON (so even an unparseable one has a key).

    Updates with the same key are handled one after another, in update_id order.
    """
    for name, value in raw.items():
        if name == "update_id" or not isinstance(value, dict):
            continue
        for field in ("from", "user", "chat"):
            who = value.get(field)
            if isinstance(who, dict) and "id" in who:
                return str(who["id"])
    return f"update:{raw.get('update_id')}"


class Poller:
    """Long polling that confirms an update to Telegram only once it is stored.

    Telegram forgets every update below the ``offset`` of the next getUpdates call. aiogram's
    own polling handles updates as background tasks and asks for the next batch at once, so
    a crash, a stop or a database outage lost the batch in flight. Here the next call is made
    only when every update of the batch is stored: its turn committed (the runtime's
    ``inbound_events`` row makes a redelivery harmless), or the update needed no storage, or
    it could not be parsed and was recorded as received. Replies keep being sent in the
    background; a graceful stop waits for them.

    The batch is read as raw JSON, so one update the installed aiogram cannot parse is set
    aside (logged once, with its JSON) instead of failing the whole batch forever. Updates
    from one resident are fed one after another; different residents run side by side, and
    the channel's turn batching joins their database work.

    While the database is unreachable the updates in hand are retried with backoff and no new
    batch is fetched: one log line when the outage starts, one when it ends.
    """

    def __init__(self, channel: TelegramChannel, dp: Dispatcher, bot: Bot, *,
                 timeout: int = 30, limit: int = 100, backoff: BackoffConfig = POLLING_BACKOFF,
                 db_retry: BackoffConfig = DB_RETRY, drain_timeout: float = 30.0) -> None:
        self.channel = channel
        self.dp = dp
        self.bot = bot
        self.timeout = timeout
        self.limit = limit
        self.backoff = backoff
        self.db_retry = db_retry
        self.drain_timeout = drain_timeout
        self.health = DatabaseHealth("polling paused")
        self.offset: int | None = None
        self.sending: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._api_down = False

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set, then finish the updates in hand and their replies."""
        self._stop = stop
        allowed = self.dp.resolve_used_update_types()
        delay = self.backoff.min_delay
        try:
            while not stop.is_set():
                try:
                    batch = await self._until_stop(self.fetch(self.offset, self.timeout, allowed))
                except (aiohttp.ClientError, TimeoutError, _BotAPIError) as exc:
                    if not self._api_down:
                        log.warning("getUpdates failed (%s); retrying", _reason(exc))
                        self._api_down = True
                    retry_after = getattr(exc, "retry_after", None)
                    await self._until_stop(asyncio.sleep(retry_after or delay))
                    delay = min(self.backoff.max_delay, delay * self.backoff.factor)
                    continue
                if batch is None:  # stopped while waiting: nothing was confirmed by it
                    break
                if self._api_down:
                    log.warning("getUpdates works again")
                    self._api_down = False
                delay = self.backoff.min_delay
                if batch and await self.take(batch):
                    self.offset = max(int(u["update_id"]) for u in batch) + 1
        finally:
            await self.drain()
        if self.offset is not None:  # confirm the last batch now, not on the next start
            with contextlib.suppress(Exception):
                await self.fetch(self.offset, 0, allowed, limit=1)

    async def _until_stop(self, work: Awaitable[T]) -> T | None:
        """``work``'s result, or None if ``stop`` is set first (``work`` is then cancelled)."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return None

    async def fetch(self, offset: int | None, timeout: int, allowed: list[str],
                    limit: int | None = None) -> list[dict[str, Any]]:
        """getUpdates, with the updates left as JSON (each is parsed on its own later)."""
        from aiogram.exceptions import TelegramUnauthorizedError
        from aiogram.methods import GetUpdates

        session = self.bot.session
        assert isinstance(session, AiohttpSession)
        http = await session.create_session()
        params: dict[str, Any] = {"timeout": timeout, "limit": limit or self.limit,
                                  "allowed_updates": allowed}
        if offset is not None:
            params["offset"] = offset
        url = session.api.api_url(token=self.bot.token, method="getUpdates")
        async with http.post(url, json=params,
                             timeout=aiohttp.ClientTimeout(total=timeout + 30)) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError as exc:
                raise _BotAPIError(f"HTTP {resp.status}: not JSON") from exc
        if not isinstance(body, dict):
            raise _BotAPIError(f"HTTP {resp.status}: unexpected answer")
        if body.get("ok") and isinstance(body.get("result"), list):
            return [u for u in body["result"] if isinstance(u, dict) and "update_id" in u]
        description = str(body.get("description") or f"HTTP {resp.status}")
        if body.get("error_code") == 401 or resp.status == 401:
            raise TelegramUnauthorizedError(GetUpdates(), description)
        retry_after = (body.get("parameters") or {}).get("retry_after")
        raise _BotAPIError(description, float(retry_after) if retry_after else None)

    async def take(self, batch: list[dict[str, Any]]) -> bool:
        """Handle a batch until each update is stored; False if a stop came first."""
        by_resident: dict[str, list[dict[str, Any]]] = {}
        for raw in sorted(batch, key=lambda u: int(u["update_id"])):
            by_resident.setdefault(resident_key(raw), []).append(raw)

        async def one_by_one(updates: list[dict[str, Any]]) -> bool:
            for raw in updates:
                if not await self.store(raw):
                    return False
            return True

        done = await asyncio.gather(*(one_by_one(u) for u in by_resident.values()))
        return all(done)

    async def store(self, raw: dict[str, Any]) -> bool:
        """Feed one update and wait until it is stored, retrying while the database is away."""
        try:
            upd = Update.model_validate(raw, context={"bot": self.bot})
        except ValidationError as exc:
            error = exc  # ``exc`` is unbound after the except block; the retries need it
            return await self._retrying(raw, lambda: self._set_aside(raw, error))
        return await self._retrying(raw, lambda: self._feed(upd))

    async def _retrying(self, raw: dict[str, Any], attempt: Callable[[], Awaitable[None]]) -> bool:
        delay = self.db_retry.min_delay
        while True:
            try:
                await attempt()
            except Exception as exc:
                if not database_unavailable(exc):
                    # A bug, not an outage: retrying would block every resident behind it.
                    log.error("update %s (%s) failed and is skipped; its body is kept in "
                              "inbound_events.raw", raw.get("update_id"), _shape(raw), exc_info=exc)
                    with contextlib.suppress(Exception):
                        await self.channel._db(mark_received, self.channel.factory,
                                               str(raw.get("update_id")),
                                               self.channel.runtime.clock(), raw)
                    return True
                self.health.failed(exc)
                if self._stop.is_set():
                    return False  # not confirmed: Telegram delivers it again after the restart
                await self._until_stop(asyncio.sleep(delay))
                delay = min(self.db_retry.max_delay, delay * self.db_retry.factor)
                continue
            self.health.ok()
            return True

    async def _feed(self, upd: Update) -> None:
        """Start handling ``upd``; return once its turn is committed (the sending goes on)."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def handle() -> None:
            STORED.set(stored)
            try:
                await self.dp.feed_update(self.bot, upd)
            except Exception as exc:
                if not stored.done():
                    stored.set_exception(exc)
                elif database_unavailable(exc):  # recording the sends failed; the turn stands
                    self.health.failed(exc)
                else:
                    log.exception("update %s: replies not fully sent", upd.update_id)
                return
            if not stored.done():
                stored.set_result(None)  # nothing to store (or a handler without a turn)

        task = asyncio.create_task(handle())
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)
        await stored

    async def _set_aside(self, raw: dict[str, Any], exc: ValidationError) -> None:
        """An update aiogram cannot read: marked received (never handled twice) and logged once."""
        await self.channel._db(mark_received, self.channel.factory, str(raw["update_id"]),
                               self.channel.runtime.clock(), raw)
        log.warning("update %s (%s) could not be parsed and is skipped (%s); its body is kept in "
                    "inbound_events.raw", raw["update_id"], _shape(raw),
                    exc.errors(include_url=False)[0].get("msg", "invalid") if exc.errors() else exc)

    async def drain(self) -> None:
        """Let the replies in flight be sent and recorded (bounded), before the database closes."""
        if not self.sending:
            return
        _, pending = await asyncio.wait(set(self.sending), timeout=self.drain_timeout)
        if pending:
            log.warning("%d updates still sending after %.0f s; stopping them", len(pending),
                        self.drain_timeout)
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)


class _BotAPIError(Exception):
    def __init__(self, description: str, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _shape(raw: dict[str, Any]) -> str:
    """What kind of update it was (its fields, never their values: those are a resident's)."""
    return ", ".join(sorted(k for k in raw if k != "update_id")) or "empty"


def mark_received(factory: sessionmaker[Session], event_key: str, now: datetime,
                  raw: dict[str, Any] | None = None) -> None:
    """Record an update as received in the runtime's de-duplication table (no turn ran);
    ``raw`` keeps the body of one that could not be handled."""
    with factory() as db, db.begin():
        insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
        db.execute(insert(InboundEvent).values(channel=CHANNEL, event_key=event_key,
                                               received_at=now, raw=raw).on_conflict_do_nothing())


async def serve(app: App, bot: Bot, *, channel: TelegramChannel | None = None,
                dp: Dispatcher | None = None, stop: asyncio.Event | None = None,
                backoff: BackoffConfig = POLLING_BACKOFF, polling_timeout: int = 30,
                background: bool = True) -> None:
    """Run the channel until ``stop`` is set (or a signal arrives in polling mode).

    ``background`` also starts the scheduler (outbox dispatcher for follow-ups and retries,
    weekly digests) in this event loop.
    """
    from bot.web.server import build_web_app, database_check, start_site

    own = channel is None
    from bot.scheduler import shared_limiter

    channel = channel or TelegramChannel(app.runtime, bot, app.texts, limiter=shared_limiter(app))
    dp = dp or channel.dispatcher()
    await _setup_until_reachable(channel, backoff)
    settings = app.settings
    scheduler = None
    if background:
        from bot.channels.telegram.staffroom import with_cases  # case rows go to their topics
        from bot.scheduler import start_background

        scheduler = await start_background(app, {CHANNEL: with_cases(channel.sender, app.factory)})
    try:
        if settings.telegram_webhook_url:
            secret = settings.telegram_webhook_secret or secrets.token_urlsafe(32)
            web_app = build_web_app(checks={"database": database_check(app, channel.executor)})
            add_telegram_webhook(web_app, dp, bot, secret)
            from aiohttp import web

            runner = web.AppRunner(web_app, handle_signals=False)
            await runner.setup()
            await start_site(runner, settings.http_host, settings.http_port)
            await bot.set_webhook(settings.telegram_webhook_url, secret_token=secret,
                                  allowed_updates=dp.resolve_used_update_types())
            log.info("Telegram webhook mode on %s:%s%s", settings.http_host, settings.http_port,
                     WEBHOOK_PATH)
            try:
                await (stop or _until_signal()).wait()
            finally:
                await runner.cleanup()
        else:
            from bot.storage.locks import poller_lock  # a second poller: 409 Conflict, so refused

            with poller_lock(app.engine, bot.id):
                await bot.delete_webhook(drop_pending_updates=False)
                log.info("Telegram long polling")
                poller = Poller(channel, dp, bot, timeout=polling_timeout, backoff=backoff)
                await poller.run(stop or _until_signal())
    finally:
        if scheduler is not None:
            from bot.scheduler import stop_background

            await stop_background(scheduler)  # a tick in progress records what it sent
        if own:
            channel.close()


def _until_signal() -> asyncio.Event:
    """Set on SIGTERM/SIGINT, so webhook mode shuts down cleanly like polling does."""
    import signal

    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not available on Windows
            loop.add_signal_handler(sig, event.set)
    return event


async def _setup_until_reachable(channel: TelegramChannel, backoff: BackoffConfig) -> None:
    """Start even if the Bot API is briefly unreachable; a refused token stops at once."""
    delay = backoff.min_delay
    while True:
        try:
            await channel.setup()
            return
        except (TelegramNetworkError, TelegramServerError) as exc:
            log.warning("Bot API not reachable (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(backoff.max_delay, delay * backoff.factor)


def add_telegram_webhook(web_app: Any, dp: Dispatcher, bot: Bot, secret: str,
                         path: str = WEBHOOK_PATH) -> None:
    """Serve Telegram's webhook on ``path``: 401 without the secret, 200 after the commit."""
    import hmac

    from aiogram.types.update import UpdateTypeLookupError
    from aiohttp import web
    from pydantic import ValidationError

    expected = secret.encode()

    async def webhook(request: web.Request) -> web.Response:
        got = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(got, expected):
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        try:
            raw = await request.json()
            upd = Update.model_validate(raw, context={"bot": bot})
        except (ValueError, ValidationError, RecursionError) as exc:  # RecursionError: deep nesting
            log.warning("Telegram webhook body refused (%s): not a Telegram update", type(exc).__name__)
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        try:
            upd.event_type  # noqa: B018 - raises for an update type this version does not know
        except UpdateTypeLookupError:  # a newer Bot API type: skip it, or Telegram resends it
            log.warning("Telegram update %s of an unknown type skipped", upd.update_id)
            return web.json_response({"ok": True, "ignored": True})
        try:
            await dp.feed_update(bot, upd)
        except Exception:  # Telegram redelivers on 5xx; the update_id makes that safe
            log.exception("update %s failed", upd.update_id)
            return web.json_response({"ok": False}, status=500)
        return web.json_response({"ok": True})

    web_app.router.add_post(path, webhook)


def run_telegram(app: App) -> int:
    """Entry point used by ``python bot.py`` when TELEGRAM_BOT_TOKEN is set."""
    from aiogram.exceptions import TelegramUnauthorizedError

    settings = app.settings
    assert settings.telegram_bot_token

    async def main() -> int:
        bot = make_bot(settings.telegram_bot_token or "", settings.telegram_api_base)
        try:
            await serve(app, bot)
        except TelegramUnauthorizedError:
            log.error("TELEGRAM_BOT_TOKEN was refused by the Bot API (401 Unauthorized)")
            return 2
        finally:
            await bot.session.close()
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
