"""Helpers for the web desk tests over HTTP (no browser): people, cases, a signed-in client."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import App
from bot.desk import cases, signin, staff
from bot.storage.models import Agency, Case, Contact, OutboxMessage, StaffMember
from bot.web.desk.base import DeskHooks
from bot.web.desk.routes import add_desk_routes
from bot.web.server import build_web_app

_ids = itertools.count(1)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Recorded:
    """What the desk handed to the channel hooks."""

    rows: list[OutboxMessage] = field(default_factory=list)
    cards: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def person(app: App, name: str, channel: str = "telegram") -> Contact:
    now = app.runtime.clock()
    with app.factory() as db, db.begin():
        contact = Contact(channel=channel, external_id=f"{name}-{next(_ids)}", display_name=name,
                          language="id", consent_at=now, created_at=now, last_inbound_at=now)
        db.add(contact)
        db.flush()
        db.expunge(contact)
    return contact


def member(app: App, name: str, slug: str = "disdukcapil", role: str = "staff",
           channel: str = "telegram") -> tuple[Contact, StaffMember]:
    contact = person(app, name, channel)
    now = app.runtime.clock()
    with app.factory() as db, db.begin():
        code = staff.create_invite(db, slug, role, now)
        row = db.get(Contact, contact.id)
        assert row is not None
        assert staff.register(db, row, contact.external_id, code, now).ok
        db.flush()
        found = db.scalars(select(StaffMember).where(StaffMember.contact_id == contact.id)).one()
        db.expunge(found)
    return contact, found


def open_case(app: App, resident: Contact, slug: str = "disdukcapil", summary: str = "Antrean KTP lama",
              channel: str | None = None) -> Case:
    now = app.runtime.clock()
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == slug)).one()
        opened = cases.open_case(db, agency=agency, source_key=f"test:{next(_ids)}", trigger="manual",
                                 reasons=[], summary=summary, now=now, actor="test",
                                 contact=db.get(Contact, resident.id), channel=channel or resident.channel,
                                 relay=True)
        db.flush()
        case = opened.case
        db.expunge(case)
    return case


def get_case(app: App, case_id: int) -> Case:
    with app.factory() as db:
        case = db.get(Case, case_id)
        assert case is not None
        db.expunge(case)
        return case


def outbox(app: App) -> list[OutboxMessage]:
    with app.factory() as db:
        return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@asynccontextmanager
async def desk_client(app: App, base_url: str = "http://desk.test") -> AsyncIterator[tuple[TestClient[Any, Any], Recorded]]:
    """The desk on a test server; rows and card edits are recorded, not sent."""
    seen = Recorded()

    async def deliver(rows: list[OutboxMessage]) -> None:
        seen.rows.extend(rows)

    async def edit_card(chat_id: str, message_id: str, card: dict[str, Any]) -> None:
        seen.cards.append((chat_id, message_id, card))

    app.runtime.public_base_url = base_url
    web_app = build_web_app()
    add_desk_routes(web_app, app, DeskHooks(deliver=deliver, edit_card=edit_card))
    client: TestClient[Any, Any] = TestClient(TestServer(web_app), cookie_jar=CookieJar(unsafe=True))
    await client.start_server()
    try:
        yield client, seen
    finally:
        await client.close()


def link_for(app: App, contact: Contact) -> str:
    with app.factory() as db, db.begin():
        row = db.get(Contact, contact.id)
        assert row is not None
        url = signin.issue_link(db, row, app.runtime.clock(), "http://desk.test")
    assert url is not None
    return url.rsplit("/", 1)[1]


async def sign_in(client: TestClient[Any, Any], app: App, contact: Contact) -> str:
    """Sign in with a fresh link; returns the session's CSRF token (read from the page)."""
    client.session.cookie_jar.clear()
    resp = await client.post(f"/desk/login/{link_for(app, contact)}", allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return await csrf(client)


async def csrf(client: TestClient[Any, Any]) -> str:
    page = await (await client.get("/desk/")).text()
    found = CSRF.search(page)
    assert found, page[:500]
    return found.group(1)


async def act(client: TestClient[Any, Any], token: str, case_id: int, **form: str) -> str:
    """POST an action on the case page; returns the page it leads to."""
    resp = await client.post(f"/desk/case/{case_id}", data={"csrf": token, **form})
    assert resp.status == 200, (resp.status, await resp.text())
    return await resp.text()
