"""The web desk over HTTP (the browser test covers sign-in by link and the reply end to end):
actions in step with the Telegram card, duplicates, canned replies, roles and refusals,
sessions (idle expiry, logout, deactivation), /masuk on WhatsApp."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.app import App
from bot.cli import main as cli
from bot.i18n import TEXTS
from bot.runtime.types import Inbound
from bot.storage.models import CaseEvent, Complaint, Contact, DeskLoginToken, DeskSession
from flows.machine.types import Event
from tests.conftest import FakeClock, make_app
from tests.desk_support import (
    act,
    desk_client,
    get_case,
    link_for,
    member,
    open_case,
    outbox,
    person,
    sign_in,
)

_ids = itertools.count(1)


def say(app: App, channel: str, user: str, text: str) -> list[str]:
    n = next(_ids)
    rows = app.runtime.handle(Inbound(channel, user, user, Event("text", f"w{n}", text=text), event_key=f"w{n}"))
    return [str(r.payload.get("text", "")) for r in rows]


def events(app: App, case_id: int) -> list[CaseEvent]:
    with app.factory() as db:
        return list(db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))


async def test_actions_go_through_the_case_machine_and_refresh_the_card(app: App, clock: FakeClock) -> None:
    resident = person(app, "Siti")
    budi, budi_m = member(app, "Budi")
    _ani, ani_m = member(app, "Ani")
    _head, _ = member(app, "Kepala", role="head")
    case = open_case(app, resident)
    async with desk_client(app) as (client, seen):
        token = await sign_in(client, app, budi)
        page = await act(client, token, case.id, do="take")
        assert 'class="notice"' in page and 'class="notice bad"' not in page  # what the card's press says
        assert "Kasus ini sekarang Anda tangani." in page
        assert get_case(app, case.id).status == "open" and get_case(app, case.id).assignee_id == budi_m.id
        assert any("Petugas sedang menangani" in r.payload["text"] for r in seen.rows)
        await act(client, token, case.id, do="note", text="Cek loket 3 besok pagi")
        assert events(app, case.id)[-1].kind == "note"
        assert not any("loket 3" in str(r.payload) for r in outbox(app))  # a note never leaves the desk
        await act(client, token, case.id, do="assign", assignee=str(ani_m.id))
        assert get_case(app, case.id).assignee_id == ani_m.id
        await act(client, token, case.id, do="pending")
        assert get_case(app, case.id).status == "pending"
        before = len(outbox(app))
        await act(client, token, case.id, do="head")
        assert get_case(app, case.id).level == "head"
        assert any("dinaikkan kepada Anda" in str(r.payload.get("text")) for r in outbox(app)[before:])
        await act(client, token, case.id, do="resolve")
        assert get_case(app, case.id).status == "resolved"
        assert any(r.kind == "case_rating" for r in outbox(app))  # the resident is asked to rate
        await act(client, token, case.id, do="close")
        assert get_case(app, case.id).status == "closed"
        page = await act(client, token, case.id, do="reopen")
        assert get_case(app, case.id).status == "reopened"
        # every state change is in the thread, in order
        kinds = [e.kind for e in events(app, case.id)]
        assert kinds.count("status") >= 6 and "assign" in kinds and "escalate" in kinds
        assert "Cek loket 3 besok pagi" in page and "Dibuka kembali" in page
        # a stale action changes nothing, and says so
        await act(client, token, case.id, do="take")
        page = await act(client, token, case.id, do="take")
        assert 'class="notice bad"' in page and get_case(app, case.id).status == "open"
    # cards went to the topic hook only when the case has a topic (here it has none: no room)
    assert seen.cards == []


async def test_card_is_refreshed_when_the_case_has_a_topic(app: App) -> None:
    resident = person(app, "Siti")
    budi, _ = member(app, "Budi")
    case = open_case(app, resident)
    with app.factory() as db, db.begin():
        row = db.get(type(case), case.id)
        assert row is not None
        row.room_chat_id, row.card_message_id = "-100123", "77"
    async with desk_client(app) as (client, seen):
        token = await sign_in(client, app, budi)
        await act(client, token, case.id, do="take")
    [(room, message, card)] = seen.cards
    assert (room, message) == ("-100123", "77") and "Ditangani" in card["text"]


async def test_duplicate_follows_the_surviving_case(app: App) -> None:
    first, second = person(app, "Siti"), person(app, "Rudi")
    budi, _ = member(app, "Budi")
    survivor = open_case(app, first, summary="Jalan rusak di depan kantor")
    dup = open_case(app, second, summary="Jalan berlubang depan kantor")
    async with desk_client(app) as (client, seen):
        token = await sign_in(client, app, budi)
        await act(client, token, dup.id, do="duplicate", ticket=dup.ticket)  # itself: refused
        assert get_case(app, dup.id).duplicate_of is None
        page = await act(client, token, dup.id, do="duplicate", ticket=survivor.ticket.lower())
        assert survivor.ticket in page
        assert get_case(app, dup.id).duplicate_of == survivor.id and get_case(app, dup.id).status == "closed"
        assert any(r.contact_id == second.id and survivor.ticket in r.payload["text"] for r in seen.rows)
        await act(client, token, survivor.id, do="reply", text="Perbaikan dijadwalkan Kamis.")
    to_second = [r for r in outbox(app) if r.contact_id == second.id and "Kamis" in r.payload["text"]]
    to_first = [r for r in seen.rows if r.contact_id == first.id and "Kamis" in r.payload["text"]]
    assert to_first and to_second and to_second[0].status == "pending"  # queued for the dispatcher


async def test_canned_replies_per_agency(app: App) -> None:
    resident = person(app, "Siti")
    budi, _ = member(app, "Budi")
    andi, _ = member(app, "Andi", slug="bpprd")
    case = open_case(app, resident)
    async with desk_client(app) as (client, seen):
        token = await sign_in(client, app, budi)
        page = await (await client.get("/desk/canned")).text()
        agency_id = page.split('name="agency" value="')[1].split('"')[0]
        resp = await client.post("/desk/canned", data={"csrf": token, "agency": agency_id, "title": "Salam",
                                                       "body": "Terima kasih, laporan Anda kami proses."})
        assert resp.status == 200
        page = await (await client.get("/desk/canned")).text()
        reply_id = page.split('name="id" value="')[1].split('"')[0]
        await client.post("/desk/canned", data={"csrf": token, "agency": agency_id, "id": reply_id,
                                                "title": "Salam", "body": "Terima kasih, sedang kami proses."})
        page = await (await client.get(f"/desk/case/{case.id}")).text()
        assert "Salam" in page and "sedang kami proses" in page
        await act(client, token, case.id, do="reply", text="", canned=reply_id)
        assert any("sedang kami proses" in r.payload["text"] for r in seen.rows)
        # staff of another agency can neither use nor edit them
        other = await sign_in(client, app, andi)
        resp = await client.post("/desk/canned", data={"csrf": other, "agency": agency_id, "id": reply_id,
                                                       "title": "x", "body": "y"})
        assert resp.status == 403


async def test_who_sees_what(app: App) -> None:
    resident = person(app, "Siti")
    mine = open_case(app, resident, summary="Kasus Disdukcapil")
    theirs = open_case(app, resident, slug="bpprd", summary="Kasus BPPRD")
    budi, _ = member(app, "Budi")
    admin, _ = member(app, "Admin", slug="setda", role="admin")
    async with desk_client(app) as (client, _seen):
        token = await sign_in(client, app, budi)
        page = await (await client.get("/desk/")).text()
        assert mine.ticket in page and theirs.ticket not in page
        resp = await client.get(f"/desk/case/{theirs.id}")
        assert resp.status == 403
        resp = await client.post(f"/desk/case/{theirs.id}", data={"csrf": token, "do": "take"})
        assert resp.status == 403 and get_case(app, theirs.id).status == "new"
        assert [e.kind for e in events(app, theirs.id)].count("refused") == 2
        assert (await client.get("/desk/staff")).status == 200  # the page, without deactivate buttons
        # filters: search by ticket, status, overdue
        assert mine.ticket in await (await client.get(f"/desk/?q={mine.ticket.replace('-', '')}")).text()
        assert mine.ticket not in await (await client.get("/desk/?status=closed")).text()
        assert mine.ticket not in await (await client.get("/desk/?overdue=1")).text()
        # an admin sees every agency, acts only where registered
        await sign_in(client, app, admin)
        page = await (await client.get("/desk/")).text()
        assert mine.ticket in page and theirs.ticket in page
        page = await (await client.get(f"/desk/case/{theirs.id}")).text()
        assert "tidak terdaftar di instansinya" in page


async def test_sessions_end_on_idle_logout_and_deactivation(app: App, clock: FakeClock) -> None:
    budi, budi_m = member(app, "Budi")
    admin, _ = member(app, "Admin", role="admin")
    async with desk_client(app) as (client, _seen):
        token = await sign_in(client, app, budi)
        clock.advance(minutes=app.settings.desk_session_idle_minutes + 1)
        resp = await client.get("/desk/", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/desk/signed-out"
        token = await sign_in(client, app, budi)
        resp = await client.post("/desk/logout", data={"csrf": token}, allow_redirects=False)
        assert resp.status == 303
        assert (await client.get("/desk/", allow_redirects=False)).status == 303
        # an admin deactivates Budi: his open session ends, his unused link is void
        await sign_in(client, app, budi)
        budi_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/desk/"))["desk_session"].value
        with app.factory() as db, db.begin():
            from bot.desk import signin

            row = db.get(Contact, budi.id)
            assert row is not None
            spare = signin.issue_link(db, row, clock(), "http://desk.test")
        assert spare is not None
        admin_token = await sign_in(client, app, admin)
        resp = await client.post(f"/desk/staff/{budi_m.id}/deactivate", data={"csrf": admin_token})
        assert resp.status == 200
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({"desk_session": budi_cookie}, client.make_url("/desk/"))
        assert (await client.get("/desk/", allow_redirects=False)).status == 303
        resp = await client.post(f"/desk/login/{spare.rsplit('/', 1)[1]}", allow_redirects=False)
        assert resp.status == 403
    with app.factory() as db:
        assert all(s.ended_at is not None for s in db.scalars(select(DeskSession)
                                                               .where(DeskSession.contact_id == budi.id)))
    # /masuk now refuses him
    assert "hanya untuk petugas" in say(app, "telegram", budi.external_id, "/masuk")[0]


def test_cli_deactivate(tmp_path: Path, monkeypatch: object, clock: FakeClock, capsys: object) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    app = make_app(url, clock)
    try:
        _budi, budi_m = member(app, "Budi")
        monkeypatch.setenv("DATABASE_URL", url)  # type: ignore[attr-defined]
        assert cli.main(["staff", "list"]) == 0
        assert f"id={budi_m.id}" in capsys.readouterr().out  # type: ignore[attr-defined]
        assert cli.main(["staff", "deactivate", str(budi_m.id)]) == 0
        assert cli.main(["staff", "deactivate", "999"]) == 2
        assert cli.main(["staff", "list"]) == 0
        assert "inactive" in capsys.readouterr().out  # type: ignore[attr-defined]
    finally:
        app.engine.dispose()


async def test_masuk_on_whatsapp_and_without_a_desk(app: App, clock: FakeClock) -> None:
    _ = clock
    wa_staff, _ = member(app, "Wati", channel="whatsapp")
    app.runtime.public_base_url = "https://prima.example.go.id/"
    reply = say(app, "whatsapp", wa_staff.external_id, "/login")[0]
    assert "https://prima.example.go.id/desk/login/" in reply
    token = reply.rsplit("/", 1)[1]
    with app.factory() as db:  # only its hash is stored
        stored = db.scalars(select(DeskLoginToken.token_hash)).one()
    assert token not in stored
    assert "hanya untuk petugas" in say(app, "whatsapp", "62811", "/masuk")[0]
    app.runtime.public_base_url = None
    assert "PUBLIC_BASE_URL" in say(app, "whatsapp", wa_staff.external_id, "/masuk")[0]


async def test_whatsapp_window_and_stored_photo(app: App, clock: FakeClock, tmp_path: Path) -> None:
    resident = person(app, "Wati", channel="whatsapp")
    budi, _ = member(app, "Budi")
    case = open_case(app, resident)
    photo = tmp_path / "media" / "p1.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8jpeg")
    app.settings.whatsapp_media_dir = photo.parent
    now = clock()
    with app.factory() as db, db.begin():
        c = Complaint(ticket=case.ticket, contact_id=resident.id, agency_id=case.agency_id,
                      service_id=db.scalars(select(Complaint.service_id)).first() or 1, channel="whatsapp",
                      description="Foto antrean", category="penundaan", source_key="cx",
                      attachments={"photos": [{"path": str(photo), "mime_type": "image/jpeg"},
                                              {"path": "/etc/passwd"}]},
                      latitude=-6.2, longitude=106.8, created_at=now, updated_at=now)
        db.add(c)
        db.flush()
        row = db.get(type(case), case.id)
        assert row is not None
        row.complaint_id = c.id
        contact = db.get(Contact, resident.id)
        assert contact is not None
        contact.last_inbound_at = now - timedelta(hours=25)
    async with desk_client(app) as (client, _seen):
        await sign_in(client, app, budi)
        page = await (await client.get(f"/desk/case/{case.id}")).text()
        assert "balasan menunggu sampai warga menulis lagi" in page
        assert "openstreetmap.org/?mlat=-6.200000" in page
        resp = await client.get(f"/desk/case/{case.id}/photo/0")
        assert resp.status == 200 and await resp.read() == b"\xff\xd8jpeg"
        assert (await client.get(f"/desk/case/{case.id}/photo/1")).status == 404  # outside the folder
        assert (await client.get(f"/desk/case/{case.id}/photo/5")).status == 404


async def test_notices_follow_the_desk_language(app: App, clock: FakeClock) -> None:
    """An English desk says what an action did in English (the case layer speaks Indonesian
    to the Telegram staff room)."""
    resident = person(app, "Siti")
    budi, _ = member(app, "Budi")
    case = open_case(app, resident)
    async with desk_client(app) as (client, _seen):
        token = await sign_in(client, app, budi)
        await client.get("/desk/lang/en", allow_redirects=False)
        page = await act(client, token, case.id, do="take")
        assert "You now handle this case." in page and "Kasus" not in page.split("<main")[-1][:400]
        page = await act(client, token, case.id, do="take")  # taken already: nothing changes
        # and the case layer's reason is given in English too, status included
        assert f"Nothing changed: the case is now “{TEXTS('en', 'case.status.open')}”." in page
        assert "Tidak ada" not in page


async def test_language_cookie_flags_and_headers(app: App) -> None:
    budi, _ = member(app, "Budi")
    app.settings.public_base_url = "https://prima.example.go.id"
    async with desk_client(app) as (client, _seen):
        resp = await client.post(f"/desk/login/{link_for(app, budi)}", allow_redirects=False)
        cookie = resp.cookies["desk_session"]
        assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax"
        assert cookie["path"] == "/desk"
        client.session.cookie_jar.update_cookies({"desk_session": cookie.value}, client.make_url("/desk/"))
        page = await client.get("/desk/")
        assert "Antrean" in await page.text() and page.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        app.settings.public_base_url = None  # plain http from here: the test client keeps Secure cookies back
        resp = await client.get("/desk/lang/en?next=/desk/canned", allow_redirects=False)
        assert resp.headers["Location"] == "/desk/canned"
        assert "Canned replies" in await (await client.get("/desk/canned")).text()
        # no open redirect through the language switch
        for evil in ("//evil.example/x", "https://evil.example/", "/desk\\\\evil"):
            resp = await client.get("/desk/lang/id", params={"next": evil}, allow_redirects=False)
            assert resp.headers["Location"] == "/desk/"
        # signed out: GET goes to the sign-in help, POST is refused
        client.session.cookie_jar.clear()
        resp = await client.get("/desk/", allow_redirects=False)
        assert resp.headers["Location"] == "/desk/signed-out"
        assert "/masuk" in await (await client.get("/desk/signed-out")).text()
        assert (await client.post("/desk/case/1", data={"do": "take"})).status == 401


async def test_old_links_and_sessions_are_forgotten(app: App, clock: FakeClock) -> None:
    budi, _ = member(app, "Budi")
    async with desk_client(app) as (client, _seen):
        await sign_in(client, app, budi)
    link_for(app, budi)  # unused, expires
    clock.advance(days=31)
    link_for(app, budi)
    with app.factory() as db:
        assert len(list(db.scalars(select(DeskLoginToken)))) == 1
        assert list(db.scalars(select(DeskSession))) == []
