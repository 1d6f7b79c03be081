"""The WhatsApp channel: webhook routes, webhook processing, and replies sent after commit.

The adapter only translates. A signed webhook is stored, answered 200 at once, and then
processed: each message becomes one :class:`bot.runtime.Inbound` keyed by its message id
(the runtime's unique key makes Meta's redeliveries harmless), each status is written on
its outbox row. A body whose processing fails stays stored and is retried, so nothing a
resident sent is lost. One resident's bodies are processed in the order they were stored,
other residents' side by side.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import mimetypes
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import web

from bot.channels.common import KeyedLocks, Pacer
from bot.channels.whatsapp.graph import GraphClient, GraphError
from bot.channels.whatsapp.ids import CHANNEL, event_key
from bot.channels.whatsapp.inbound import SIGNATURE_HEADER, Incoming, parse_webhook, valid_signature
from bot.channels.whatsapp.sender import Templates, WhatsAppSender
from bot.channels.whatsapp.store import (
    change_number,
    finish_webhook,
    load_webhook,
    photo_wanted,
    record_statuses,
    release_waiting,
    resolve_identity,
    store_webhook,
    stored_webhooks,
)
from bot.config import ConfigError, Settings
from bot.outbox.ratelimit import SendBudget
from bot.outbox.store import SendError, mark_sent, record_failure, send_within
from bot.runtime.facade import Runtime
from bot.runtime.types import Inbound
from bot.storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
T = TypeVar("T")

WEBHOOK_PATH = "/whatsapp/webhook"
# Meta sends webhook bodies of up to 3 MB; a body refused with 413 is redelivered for days.
# 4 MiB leaves room (the rest of the server keeps bot.web.server.MAX_BODY).
MAX_WEBHOOK_BODY = 4 * 1024 * 1024
STATUS_RETRIES = 2  # a failure status for a message id we do not know yet: look again twice
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
    ) -> None:
        self.runtime = runtime
        self.factory = runtime.factory
        self.sender = sender
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.phone_number_id = phone_number_id
        self.media_dir = media_dir
        threads = workers or (4 if runtime.postgres else 1)  # SQLite has one writer
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="prima-wa")
        # Storing a body gets its own thread: the 200 never queues behind message processing.
        self.intake = ThreadPoolExecutor(1, thread_name_prefix="prima-wa-in")
        self._locks = KeyedLocks()
        self.pacer = Pacer(CHANNEL, limiter, metrics=runtime.metrics)
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()
        self._tails: dict[str, asyncio.Future[None]] = {}  # per resident: their last body's end

    @classmethod
    def from_app(cls, app: App, limiter: SendBudget | None = None) -> WhatsAppChannel:
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
                   media_dir=s.whatsapp_media_dir, limiter=limiter)

    def add_routes(self, web_app: web.Application, path: str = WEBHOOK_PATH) -> None:
        """Serve the webhook on ``path`` of the shared aiohttp app (next to /healthz)."""
        web_app.router.add_get(path, self.verify)
        web_app.router.add_post(path, self.webhook)

    async def close(self) -> None:
        """Finish what was accepted, then stop."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sender.client.close()
        self.executor.shutdown(wait=True)
        self.intake.shutdown(wait=True)

    async def idle(self) -> None:
        """Wait until every accepted webhook has been processed (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -------------------------------------------------------------- HTTP

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription handshake: echo the challenge for the right token only."""
        q = request.query
        token = q.get("hub.verify_token", "")
        if q.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), self.verify_token.encode()):
            return web.Response(text=q.get("hub.challenge", ""))
        return web.Response(status=403, text="forbidden")

    async def webhook(self, request: web.Request) -> web.Response:
        """Check the signature, store the body, answer 200; the work happens after."""
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
        messages = parse_webhook(body, self.phone_number_id).messages
        metrics.updates.labels(CHANNEL).inc(len(messages))
        keys = {m.key for m in messages}
        # One intake thread: bodies are stored, and spawned below, in the order they came in.
        row_id = await asyncio.get_running_loop().run_in_executor(
            self.intake, store_webhook, self.factory, body, self.runtime.clock())
        self._spawn(row_id, keys)
        return web.json_response({"ok": True})

    def resident_keys(self, body: dict[str, Any]) -> set[str]:
        """The residents a body is about: its processing waits for their earlier bodies."""
        return {m.key for m in parse_webhook(body, self.phone_number_id).messages}

    def _spawn(self, row_id: int, keys: set[str] | None = None) -> None:
        """Start processing a stored body after the earlier bodies of the same residents.

        Called in storage order; each body waits for the previous one of each of its
        residents, so one resident's messages are handled in the order they were stored
        while other residents' bodies go side by side.
        """
        if row_id in self._in_flight:
            return
        self._in_flight.add(row_id)
        before = {self._tails[k] for k in keys or () if k in self._tails}
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for k in keys or ():
            self._tails[k] = finished
        task = asyncio.create_task(self.process(row_id, before))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._in_flight.discard(row_id)
            finished.set_result(None)
            for k in keys or ():
                if self._tails.get(k) is finished:
                    del self._tails[k]

        task.add_done_callback(done)

    async def retry_stored(self, older_than: timedelta = timedelta(minutes=1)) -> int:
        """Process stored bodies left by a failure or a crash; returns how many were started."""
        ids = await self._db(stored_webhooks, self.factory, self.runtime.clock() - older_than)
        started = [i for i in ids if i not in self._in_flight]
        for row_id in started:  # in storage order, each after its residents' earlier bodies
            stored = await self._db(load_webhook, self.factory, row_id)
            if stored is not None and row_id not in self._in_flight:
                self._spawn(row_id, self.resident_keys(stored[0]))
        await self.idle()
        return len(started)

    # -------------------------------------------------------------- processing

    async def process(self, row_id: int, after: set[asyncio.Future[None]] | None = None) -> None:
        """Messages in order (one resident at a time), then statuses; keep the body on failure.

        ``after``: the processing of the same residents' earlier bodies, awaited first.
        """
        if after:
            await asyncio.wait(after)
        try:
            stored = await self._db(load_webhook, self.factory, row_id)
            if stored is None:
                return
            body, attempts = stored
            parsed = parse_webhook(body, self.phone_number_id)
            for incoming in parsed.messages:
                await self.handle(incoming)
            if parsed.statuses:
                missing = await self._db(record_statuses, self.factory, parsed.statuses,
                                         self.runtime.clock(), bool(self.sender.templates.name))
                ids = [s.message_id for s in missing]
                if missing and attempts < STATUS_RETRIES:  # it may arrive before we recorded the id
                    raise StatusNotYetKnown(f"failure status for unknown message(s) {ids}")
                if missing:  # not ours (another tool on the same number?) or long gone
                    log.warning("failure status for unknown WhatsApp message(s) %s: %s", ids,
                                "; ".join(f"{s.error_code} {s.error}" for s in missing))
        except StatusNotYetKnown as exc:  # expected now and then: looked at again, no traceback
            log.debug("WhatsApp webhook %s kept: %s", row_id, exc)
            await self._db(finish_webhook, self.factory, row_id, str(exc))
            return
        except Exception as exc:
            log.exception("WhatsApp webhook %s not processed; kept for a retry", row_id)
            await self._db(finish_webhook, self.factory, row_id, f"{type(exc).__name__}: {exc}")
            return
        await self._db(finish_webhook, self.factory, row_id, None)

    def _handle_sync(self, incoming: Incoming) -> list[OutboxMessage]:
        assert incoming.event is not None
        now = self.runtime.clock()
        key = resolve_identity(self.factory, incoming.wa_id, incoming.user_id, now)
        rows = self.runtime.handle(Inbound(CHANNEL, key, key, incoming.event,
                                           event_key=event_key(incoming.message_id),
                                           display_name=incoming.name))
        release_waiting(self.factory, key, self.runtime.clock())
        return rows

    async def handle(self, incoming: Incoming) -> None:
        if incoming.changed is not None:
            moved = await self._db(change_number, self.factory, incoming, self.runtime.clock())
            log.info("WhatsApp resident changed number: contact %s", "moved" if moved else "not found")
            return
        if incoming.event is None:
            return
        key = incoming.key

        async def work() -> None:
            rows = await self._db(self._handle_sync, await self.keep_media(incoming))
            await self.deliver(rows)

        await self._locks.run(key, work)

    async def keep_media(self, incoming: Incoming) -> Incoming:
        """Save a photo before Meta deletes it; on failure keep the media id and go on."""
        event = incoming.event
        media = event.media if event is not None else None
        if event is None or self.media_dir is None or not media or not media.get("media_id"):
            return incoming
        media_id = str(media["media_id"])
        if not await self._db(photo_wanted, self.factory, incoming.wa_id, incoming.user_id,
                              self.runtime.clock(), self.runtime.session_timeout):
            return incoming  # nobody asked for it: not downloaded, not stored
        try:
            data, mime = await self.sender.client.download(media_id)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", media_id)[:100]
            ext = mimetypes.guess_extension(mime or media.get("mime_type") or "") or ".bin"
            path = self.media_dir / f"{name}{ext}"
            await self._db(_write_file, path, data)
        except (GraphError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("WhatsApp media %s not saved (%s); keeping its id only", media_id, exc)
            return incoming
        saved = {**media, "path": str(path), "size": len(data),
                 "sha256_local": hashlib.sha256(data).hexdigest()}
        return replace(incoming, event=replace(event, media=saved))

    async def deliver(self, rows: list[OutboxMessage]) -> None:
        """Send committed replies in order; after a failure the rest wait behind it.

        A send whose outcome is unknown (timeout, dropped connection) follows
        ``OUTBOX_RESEND_UNKNOWN`` like any outbox send: the dispatcher resends it (counted as
        a possible duplicate), so the reply carrying a ticket number is not lost.
        """
        sent: list[tuple[int, str | None]] = []
        failed: list[tuple[int, SendError, list[int]]] = []
        behind: list[int] | None = None
        timeout = self.runtime.send_policy.send_timeout
        for row in rows:
            if behind is not None:
                behind.append(row.id)
                continue
            await self.pacer.wait(row.chat_id)
            try:
                sent.append((row.id, await send_within(self.sender, row.chat_id, row.payload, timeout)))
                self.pacer.record()
            except SendError as err:
                self.pacer.record(err)
                untried: list[int] = []
                failed.append((row.id, err, untried))
                if err.retry_after is not None:
                    await self.pacer.penalise(row.chat_id, err.retry_after)
                behind = untried
        if sent or failed:
            await self._db(self._record, sent, failed)

    def _record(self, sent: list[tuple[int, str | None]],
                failed: list[tuple[int, SendError, list[int]]]) -> None:
        now = self.runtime.clock()
        policy = self.runtime.send_policy
        mark_sent(self.factory, sent, now)
        self.runtime.settle_erasures(r for r, _ in sent)  # erasure confirmations: deleted once sent
        for row_id, err, untried in failed:
            status = record_failure(self.factory, row_id, err, now, max_attempts=policy.max_attempts,
                                    resend_unknown=policy.resend_unknown, untried=untried)
            log.warning("outbox %s not sent (%s): %s", row_id, status, err.reason)
