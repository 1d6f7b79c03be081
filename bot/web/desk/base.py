"""What every desk handler shares: the bot's App, the channels' hooks, and database work off the
event loop.

The web layer sits below the channels, so what only a channel can do is handed in as
:class:`DeskHooks`: send committed outbox rows now (else they go to the outbox dispatcher),
refresh a case's card in its Telegram topic, and fetch a resident's photo from the channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.storage.db import transaction
from bot.storage.models import OutboxMessage
from bot.web.desk.viewer import Viewer

if TYPE_CHECKING:
    from bot.app import App

T = TypeVar("T")
Deliver = Callable[[list[OutboxMessage]], Awaitable[None]]
EditCard = Callable[[str, str, dict[str, Any]], Awaitable[None]]
FetchMedia = Callable[[str, dict[str, Any]], Awaitable[tuple[bytes, str] | None]]


@dataclass
class DeskHooks:
    deliver: Deliver | None = None  # send rows now (the channel's own deliver)
    edit_card: EditCard | None = None  # (room chat id, card message id, card payload)
    fetch_media: FetchMedia | None = None  # (channel, stored media) -> (bytes, content type)


@dataclass
class Current:
    """This request's language, signed-in person and posted form (set by the desk's middleware;
    a context variable, as each request runs in its own task)."""

    lang: str = "id"
    viewer: Viewer | None = None
    form: dict[str, str] = field(default_factory=dict)


CURRENT: ContextVar[Current] = ContextVar("desk_current")


def current() -> Current:
    return CURRENT.get(Current())


def current_viewer() -> Viewer:
    """The signed-in person (the middleware lets no other request through to the handlers)."""
    found = current().viewer
    assert found is not None
    return found


APP: web.AppKey[App] = web.AppKey("desk_app")  # the bot's App
HOOKS = web.AppKey("desk_hooks", DeskHooks)


async def run_db(request: web.Request, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in one transaction in a worker thread; the event loop keeps serving."""
    app: App = request.app[APP]

    def work() -> T:
        with transaction(app.factory) as db:
            return fn(db)

    return await asyncio.to_thread(work)


async def send_rows(request: web.Request, rows: list[OutboxMessage]) -> None:
    """Send what an action queued: through the channel when it gave a hook, else hand the rows
    to the outbox dispatcher (claimed rows released to pending)."""
    if not rows:
        return
    hooks = request.app[HOOKS]
    if hooks.deliver is not None:
        await hooks.deliver(rows)
        return
    ids = [row.id for row in rows]

    def release(db: Session) -> None:
        db.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.status == "claimed")
                   .values(status="pending", claimed_at=None))

    await run_db(request, release)


async def refresh_card(request: web.Request, card: dict[str, Any] | None, room: str | None,
                       card_id: str | None) -> None:
    hooks = request.app[HOOKS]
    if card is not None and room and card_id and hooks.edit_card is not None:
        await hooks.edit_card(room, card_id, card)
