"""A malformed form body (a broken multipart boundary, as a scanner or a cut-off upload sends)
is a polite 400 on every web surface, never a 500 with a traceback, and stores nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import App
from bot.runtime import kiosk
from bot.storage.models import SurveyResponse
from bot.web.server import build_web_app
from tests.desk_support import desk_client, member, sign_in
from tests.webchat_support import Resident, chat_client

BROKEN = {"Content-Type": "multipart/form-data; boundary=xyz"}
GARBAGE = b"garbage without any boundary"


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


async def test_web_chat(sqlite_app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with chat_client(sqlite_app) as client:
        await Resident(client).open()  # a real cookie: the form itself is what is broken
        for path in ("/chat/send", "/chat/status"):
            resp = await client.post(path, data=GARBAGE, headers=BROKEN)
            assert resp.status == 400 and "tidak dapat dibaca" in await resp.text()
    no_tracebacks(caplog)


async def test_kiosk(app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with app.factory() as db, db.begin():
        _, token = kiosk.add(db, "disdukcapil", "ktp", "Loket 2", app.runtime.clock())
    async with TestClient(TestServer(build_web_app(app=app))) as http:
        resp = await http.post(f"/kiosk/{token}", data=GARBAGE, headers=BROKEN)
        assert resp.status == 400 and "Mohon jawab setiap pertanyaan" in await resp.text()
        resp = await http.post(f"/kiosk/{token}", data=GARBAGE,
                               headers={**BROKEN, "Accept": "application/json"})
        assert resp.status == 400 and (await resp.json())["status"] == "invalid"
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    no_tracebacks(caplog)


async def test_desk(app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    budi, _ = member(app, "Budi")
    async with desk_client(app) as (client, _seen):
        await sign_in(client, app, budi)
        resp: Any = await client.post("/desk/canned", data=GARBAGE, headers=BROKEN)
        assert resp.status == 400 and "tidak dapat dibaca" in await resp.text()
    no_tracebacks(caplog)
