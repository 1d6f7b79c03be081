"""The WhatsApp channel: webhook routes, webhook processing, and replies sent after commit.

The adapter only translates. A signed webhook is stored (with the bodies that arrived
meanwhile, in one commit), answered 200 as soon as that commit is done, and then processed
from memory: each message becomes one :class:`bot.runtime.Inbound` keyed by its message id
(the runtime's unique key makes Meta's redeliveries harmless), each status is written on
its outbox row. A body whose processing fails, or that a crash interrupted, stays stored and
is retried (:meth:`WhatsAppChannel.retry_stored`), so nothing a resident sent is lost. One
resident's bodies are processed in the order they were stored, other residents' side by side.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import mimetypes
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from sqlalchemy.exc import DBAPIError

from bot.channels.common import KeyedLocks, Pacer
from bot.channels.whatsapp.graph import GraphClient, GraphError
from bot.channels.whatsapp.ids import CHANNEL, event_key
from bot.channels.whatsapp.inbound import (
    SIGNATURE_HEADER,
    Incoming,
    Parsed,
    parse_webhook,
    valid_signature,
)
from bot.channels.whatsapp.lanes import Lanes
from bot.channels.whatsapp.replies import Replies
from bot.channels.whatsapp.sender import Templates, WhatsAppSender
from bot.channels.whatsapp.store import (
    HeldConnection,
    change_number,
    contact_language,
    finish_webhook,
    load_webhook,
    photo_wanted,
    record_statuses,
    resolve_identity,
    store_webhooks,
    stored_webhooks,
)
from bot.config import ConfigError, Settings
from bot.outbox.ratelimit import SendBudget
from bot.runtime.facade import Runtime
from bot.runtime.types import Inbound
from bot.storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/whatsapp/webhook"
# Meta sends webhook bodies of up to 3 MB; a body refused with 413 is redelivered for days.
# 4 MiB leaves room (the rest of the server keeps bot.web.server.MAX_BODY).
MAX_WEBHOOK_BODY = 4 * 1024 * 1024
STATUS_RETRIES = 2  # a failure status for a message id we do not know yet: look again twice
POSTGRES_WORKERS = 8  # turns side by side on PostgreSQL (each mostly waits for the server)
MAX_IN_FLIGHT = 1000  # bodies stored and not yet processed before the next 200 waits for room
REQUIRED = ("whatsapp_token", "whatsapp_phone_number_id", "whatsapp_app_secret", "whatsapp_verify_token")


def whatsapp_missing(settings: Settings) -> list[str]:
    """Names of the WhatsApp settings still missing (all four are needed)."""
    return [name.upper() for name in REQUIRED if not getattr(settings, name)]


def whatsapp_requested(settings: Settings) -> bool:
    """Any of the four set: the operator wants WhatsApp (a missing one is then an error)."""
    return any(getattr(settings, name) for name in REQUIRED)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


class StatusNotYetKnown(LookupError):
    """A failure status for a message id not recorded yet (the send may still be committing)."""


class WhatsAppChannel:
    """Webhook routes, webhook processing and the send-after-commit path for replies."""

    def __init__(
        self,
        runtime: Runtime,
        sender: WhatsAppSender,
        *,
        app_secret: str,
        verify_token: str,
        phone_number_id: str | None = None,
        media_dir: Path | None = None,
        workers: int | None = None,
        limiter: SendBudget | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.runtime = runtime
        self.factory = runtime.factory
        self.sender = sender
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.phone_number_id = phone_number_id
        self.media_dir = media_dir
        # SQLite has one writer: one thread for all of it; PostgreSQL: turns side by side.
        self.lanes: Lanes[dict[str, Any]] = Lanes(self._store, workers or POSTGRES_WORKERS,
                                                  shared=not runtime.postgres)
        self._held = HeldConnection(self.factory)  # used only by the thread that stores
        self._locks = KeyedLocks()
        self.pacer = Pacer(CHANNEL, limiter, metrics=runtime.metrics)
        self.replies = Replies(runtime, sender, self.lanes, self.pacer)
        self._admitted = asyncio.Semaphore(max_in_flight)  # bodies stored and not yet processed
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()
        self._tails: dict[str, asyncio.Future[None]] = {}  # per resident: their last body's end

    @classmethod
    def from_app(cls, app: App, limiter: SendBudget | None = None, workers: int | None = None,
                 ) -> WhatsAppChannel:
        s = app.settings
        missing = whatsapp_missing(s)
        if missing:
            raise ConfigError(f"Configuration error: {missing[0]}: required for WhatsApp "
                              f"(missing: {', '.join(missing)})")
        client = GraphClient(s.whatsapp_token or "", s.whatsapp_phone_number_id or "", s.whatsapp_graph_url)
        sender = WhatsAppSender(client, app.factory, app.runtime.clock, app.texts,
                                Templates.from_settings(s), s.default_language)
        return cls(app.runtime, sender, app_secret=s.whatsapp_app_secret or "",
                   verify_token=s.whatsapp_verify_token or "", phone_number_id=s.whatsapp_phone_number_id,
                   media_dir=s.whatsapp_media_dir, limiter=limiter, workers=workers)

    def add_routes(self, web_app: web.Application, path: str = WEBHOOK_PATH) -> None:
        """Serve the webhook on ``path`` of the shared aiohttp app (next to /healthz)."""
        web_app.router.add_get(path, self.verify)
        web_app.router.add_post(path, self.webhook)

    async def close(self) -> None:
        """Finish what was accepted, then stop."""
        await self.idle()
        await self.sender.client.close()
        await asyncio.to_thread(self.lanes.close)
        self._held.close()

    async def idle(self) -> None:
        """Wait until every accepted webhook has been processed and recorded (tests, shutdown)."""
        while self._tasks or self.replies.busy:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                await self.replies.flush()

    def _store(self, bodies: list[dict[str, Any]]) -> list[int]:
        try:
            return store_webhooks(self.factory, bodies, self.runtime.clock(), self._held.get())
        except DBAPIError as exc:
            self._held.close()  # the next try starts on a new connection
            if not exc.connection_invalidated:
                raise
        # The held connection had died (a database restart): nothing was committed, so once more.
        return store_webhooks(self.factory, bodies, self.runtime.clock(), self._held.get())

    # -------------------------------------------------------------- HTTP

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription handshake: echo the challenge for the right token only."""
        q = request.query
        token = q.get("hub.verify_token", "")
        if q.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), self.verify_token.encode()):
            return web.Response(text=q.get("hub.challenge", ""))
        return web.Response(status=403, text="forbidden")

    async def webhook(self, request: web.Request) -> web.Response:
        """Check the signature, store the body, answer 200; the work happens after.

        The 200 waits only for the body's commit (shared with the bodies that came in
        meanwhile). Beyond ``max_in_flight`` bodies not yet processed, the next one waits
        for room before it is stored: Meta is answered slower instead of the memory growing.
        """
        raw = await request.clone(client_max_size=MAX_WEBHOOK_BODY).read()
        if not valid_signature(self.app_secret, raw, request.headers.get(SIGNATURE_HEADER)):
            log.warning("WhatsApp webhook with a missing or wrong signature refused")
            return web.json_response({"error": "invalid signature"}, status=403)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to store
            log.warning("signed WhatsApp webhook body refused (%s): not usable JSON", type(exc).__name__)
            return web.json_response({"error": "not JSON"}, status=400)
        metrics = self.runtime.metrics
        metrics.webhooks.labels(CHANNEL).inc()
        if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
            return web.json_response({"ok": True, "ignored": True})
        parsed = parse_webhook(body, self.phone_number_id)
        metrics.updates.labels(CHANNEL).inc(len(parsed.messages))
        await self._admitted.acquire()
        try:
            row_id = await self.lanes.store(body)  # in arrival order, so spawned in storage order
        except BaseException:
            self._admitted.release()
            raise
        self._spawn(row_id, {m.key for m in parsed.messages}, parsed, admitted=True)
        return web.json_response({"ok": True})

    def resident_keys(self, body: dict[str, Any]) -> set[str]:
        """The residents a body is about: its processing waits for their earlier bodies."""
        return {m.key for m in parse_webhook(body, self.phone_number_id).messages}

    def _spawn(self, row_id: int, keys: set[str], parsed: Parsed | None = None, attempts: int = 0,
               admitted: bool = False) -> asyncio.Task[None] | None:
        """Start processing a stored body after the earlier bodies of the same residents.

        Called in storage order; each body waits for the previous one of each of its
        residents (until that one's replies were sent), so one resident's messages are
        handled and answered in the order they were stored, other residents' side by side.
        ``parsed``: the body as parsed on arrival (None: read it from the database).
        """
        if row_id in self._in_flight:
            if admitted:
                self._admitted.release()
            return None
        self._in_flight.add(row_id)
        before = {self._tails[k] for k in keys if k in self._tails}
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for k in keys:
            self._tails[k] = finished
        task = asyncio.create_task(self.process(row_id, before, parsed, attempts, finished))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._in_flight.discard(row_id)
            if admitted:
                self._admitted.release()
            if not finished.done():
                finished.set_result(None)
            for k in keys:
                if self._tails.get(k) is finished:
                    del self._tails[k]

        task.add_done_callback(done)
        return task

    async def retry_stored(self, older_than: timedelta = timedelta(minutes=1)) -> int:
        """Process stored bodies left by a failure or a crash; returns how many were started.

        Waits for those bodies only (new webhooks keep coming meanwhile)."""
        ids = await self.lanes.run(stored_webhooks, self.factory, self.runtime.clock() - older_than)
        started = [i for i in ids if i not in self._in_flight]
        tasks = []
        for row_id in started:  # in storage order, each after its residents' earlier bodies
            stored = await self.lanes.run(load_webhook, self.factory, row_id)
            if stored is not None and row_id not in self._in_flight:
                parsed = parse_webhook(stored[0], self.phone_number_id)
                task = self._spawn(row_id, {m.key for m in parsed.messages}, parsed, stored[1])
                if task is not None:
                    tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(started)

    # -------------------------------------------------------------- processing

    async def process(self, row_id: int, after: set[asyncio.Future[None]] | None = None,
                      parsed: Parsed | None = None, attempts: int = 0,
                      finished: asyncio.Future[None] | None = None) -> None:
        """Messages in order (one resident at a time), then statuses; keep the body on failure.

        ``after``: the processing of the same residents' earlier bodies, awaited first.
        ``finished`` is set once the replies went out: the residents' next body may go while
        this one's bookkeeping is written (with other bodies', in one transaction).
        """
        if after:
            await asyncio.wait(after)
        try:
            if parsed is None:
                stored = await self.lanes.run(load_webhook, self.factory, row_id)
                if stored is None:
                    return
                parsed, attempts = parse_webhook(stored[0], self.phone_number_id), stored[1]
            for incoming in parsed.messages:
                await self.handle(incoming)
            if parsed.statuses:
                missing = await self.lanes.run(record_statuses, self.factory, parsed.statuses,
                                               self.runtime.clock(), bool(self.sender.templates.name))
                ids = [s.message_id for s in missing]
                if missing and attempts < STATUS_RETRIES:  # it may arrive before we recorded the id
                    raise StatusNotYetKnown(f"failure status for unknown message(s) {ids}")
                if missing:  # not ours (another tool on the same number?) or long gone
                    log.warning("failure status for unknown WhatsApp message(s) %s: %s", ids,
                                "; ".join(f"{s.error_code} {s.error}" for s in missing))
        except StatusNotYetKnown as exc:  # expected now and then: looked at again, no traceback
            log.debug("WhatsApp webhook %s kept: %s", row_id, exc)
            await self.lanes.run(finish_webhook, self.factory, row_id, str(exc))
            return
        except Exception as exc:
            log.exception("WhatsApp webhook %s not processed; kept for a retry", row_id)
            await self.lanes.run(finish_webhook, self.factory, row_id, f"{type(exc).__name__}: {exc}")
            return
        if finished is not None and not finished.done():
            finished.set_result(None)
        self.replies.processed(row_id)
        await self.replies.flush()  # an error there is logged; the body stays and is retried

    def _turn(self, incoming: Incoming) -> tuple[str, list[OutboxMessage], tuple[str | None, Any]]:
        """One message on a database thread: the runtime's transaction, then the resident's
        language for rendering the replies (after the turn, which may change it); they have
        just written, so their 24-hour window is open."""
        assert incoming.event is not None
        now = self.runtime.clock()
        key = resolve_identity(self.factory, incoming.wa_id, incoming.user_id, now)
        rows = self.runtime.handle(Inbound(CHANNEL, key, key, incoming.event,
                                           event_key=event_key(incoming.message_id),
                                           display_name=incoming.name))
        return key, rows, (contact_language(self.factory, key) if rows else None, now)

    async def handle(self, incoming: Incoming) -> None:
        if incoming.changed is not None:
            moved = await self.lanes.run(change_number, self.factory, incoming, self.runtime.clock())
            log.info("WhatsApp resident changed number: contact %s", "moved" if moved else "not found")
            return
        if incoming.event is None:
            return

        async def work() -> None:
            key, rows, known = await self.lanes.run(self._turn, await self.keep_media(incoming))
            self.replies.released(key, rows)  # they wrote: parked messages are due (next flush)
            await self.replies.send(rows, known)

        await self._locks.run(incoming.key, work)

    async def keep_media(self, incoming: Incoming) -> Incoming:
        """Save a photo before Meta deletes it; on failure keep the media id and go on."""
        event = incoming.event
        media = event.media if event is not None else None
        if event is None or self.media_dir is None or not media or not media.get("media_id"):
            return incoming
        media_id = str(media["media_id"])
        if not await self.lanes.run(photo_wanted, self.factory, incoming.wa_id, incoming.user_id,
                              self.runtime.clock(), self.runtime.session_timeout):
            return incoming  # nobody asked for it: not downloaded, not stored
        try:
            data, mime = await self.sender.client.download(media_id)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", media_id)[:100]
            ext = mimetypes.guess_extension(mime or media.get("mime_type") or "") or ".bin"
            path = self.media_dir / f"{name}{ext}"
            await asyncio.to_thread(_write_file, path, data)
        except (GraphError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("WhatsApp media %s not saved (%s); keeping its id only", media_id, exc)
            return incoming
        saved = {**media, "path": str(path), "size": len(data),
                 "sha256_local": hashlib.sha256(data).hexdigest()}
        return replace(incoming, event=replace(event, media=saved))

    async def deliver(self, rows: list[OutboxMessage]) -> None:
        """Send committed rows in order and record them (the web desk's answers)."""
        await self.replies.deliver(rows)
