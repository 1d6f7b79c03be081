"""A photo the resident sends while staff handle their case is shown on the web desk (it was
"[photo]"), only to the agency's staff, and goes with the conversation when retention clears
the finished case."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.app import App
from bot.desk import cases, relay
from bot.privacy.retention import Policy, run_retention
from bot.storage.models import Case, CaseEvent, Contact
from flows.machine.types import Event
from tests.conftest import FakeClock
from tests.desk_support import desk_client, member, open_case, person, sign_in


async def test_relayed_photo_on_the_desk_then_gone_with_the_conversation(app: App, clock: FakeClock,
                                                                          tmp_path: Path) -> None:
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    saved = media_dir / "wamid.77.jpg"
    saved.write_bytes(b"\xff\xd8 antrean")
    app.settings.whatsapp_media_dir = media_dir
    resident = person(app, "Wati", channel="whatsapp")
    budi, _ = member(app, "Budi")
    other, _ = member(app, "Sari", slug="bpprd")
    case = open_case(app, resident)
    photo = Event("photo", "wamid.77", media={"type": "photo", "media_id": "77", "path": str(saved),
                                               "mime_type": "image/jpeg", "caption": "antrean pagi ini"})
    with app.factory() as db, db.begin():
        contact = db.get(Contact, resident.id)
        assert contact is not None
        assert relay.relay_from_resident(db, contact, photo, "", clock()) is not None
        [ev] = db.scalars(select(CaseEvent).where(CaseEvent.kind == "from_resident")).all()
        ev_id = ev.id

    async def look() -> None:
        async with desk_client(app) as (client, _seen):
            await sign_in(client, app, budi)
            page = await (await client.get(f"/desk/case/{case.id}")).text()
            url = f"/desk/case/{case.id}/event/{ev_id}/photo"
            assert f'src="{url}"' in page and "antrean pagi ini" in page and "[photo]" not in page
            resp = await client.get(url)
            assert resp.status == 200 and await resp.read() == b"\xff\xd8 antrean"
            assert resp.content_type == "image/jpeg"
            assert (await client.get(f"/desk/case/{case.id}/event/{ev_id + 1}/photo")).status == 404
        async with desk_client(app) as (client, _seen):
            await sign_in(client, app, other)  # another agency's staff
            assert (await client.get(f"/desk/case/{case.id}/event/{ev_id}/photo")).status == 403

    await look()

    with app.factory() as db, db.begin():  # resolved long ago: retention clears the conversation
        row = db.get(Case, case.id)
        assert row is not None
        cases.set_status(db, row, "resolved", "test", None, clock())
    clock.advance(days=400)
    run_retention(app.factory, Policy.from_settings(app.settings), clock())
    with app.factory() as db:
        cleared = db.get(CaseEvent, ev_id)
        assert cleared is not None and cleared.media is None
    assert not saved.exists()
