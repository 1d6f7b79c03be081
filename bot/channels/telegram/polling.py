"""Long polling that confirms an update to Telegram only once it is stored (:class:`Poller`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.types import Update
from aiogram.utils.backoff import BackoffConfig
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.render import CHANNEL
from bot.channels.telegram.turns import STORED
from bot.storage.db import DatabaseHealth, database_unavailable
from bot.storage.models import InboundEvent

log = logging.getLogger(__name__)
T = TypeVar("T")


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

