"""TelegramSender on its own: photos and documents, and the fake server's rate limit."""

from __future__ import annotations

from pathlib import Path

from bot.app import App
from bot.channels.telegram.sender import TelegramSender
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness


async def test_photo_and_document_with_buttons(sqlite_app: App, clock: FakeClock,
                                               tmp_path: Path) -> None:
    chart = tmp_path / "ikm.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 2000)
    sheet = tmp_path / "rekap.xlsx"
    sheet.write_bytes(b"PK" + b"1" * 500)
    async with harness(sqlite_app, clock) as h:
        sender = TelegramSender(h.bot)
        await sender.send("77", {"text": "Grafik IKM minggu ini", "q": 3, "choices": [
            {"id": "ok", "label": "Oke", "nav": False}], "photo": {"path": str(chart), "caption": ""}})
        await sender.send("77", {"text": "", "document": {
            "path": str(sheet), "filename": "rekap-ikm.xlsx", "caption": "Rekap IKM"}})
        photo, doc = h.server.chat(77)
        assert photo.method == "sendPhoto" and photo.text == "Grafik IKM minggu ini"
        assert photo.params["photo"]["size"] == chart.stat().st_size
        assert photo.labels() == ["Oke"] and photo.data_for("Oke") == "3:ok"
        assert doc.method == "sendDocument" and doc.text == "Rekap IKM"
        assert doc.params["document"] == {"filename": "rekap-ikm.xlsx", "size": 502}


async def test_server_rate_limit_is_honoured(sqlite_app: App, clock: FakeClock) -> None:
    async with harness(sqlite_app, clock) as h:
        h.server.clock = lambda: clock.now.timestamp()  # the server's bucket follows test time
        h.server.rate_limit = 1.0  # one message per second
        await h.channel.setup()
        await h.feed(h.server.message_update(User(id=88), "/start"))  # two replies
        assert len(h.server.chat(88)) == 2
        assert h.sleep.waits == [1.0]  # the second waited for its slot, as told by 429
        assert len(h.server.calls("sendMessage")) == 3


def test_timeout_after_sending_is_unknown_but_connect_failures_retry() -> None:
    """A read timeout or a dropped connection may hide a delivered message (its outcome is
    unknown: resent only under OUTBOX_RESEND_UNKNOWN, and counted); a refused connect did not."""
    import aiohttp
    from aiogram.exceptions import TelegramNetworkError
    from aiogram.methods import SendMessage

    from bot.channels.telegram.sender import classify

    method = SendMessage(chat_id=1, text="halo")

    def network_error(cause: BaseException) -> TelegramNetworkError:
        try:
            raise TelegramNetworkError(method=method, message=str(cause)) from cause
        except TelegramNetworkError as exc:
            return exc

    read_timeout = classify(network_error(aiohttp.SocketTimeoutError("read")))
    assert read_timeout.unknown and not read_timeout.permanent
    connect_timeout = classify(network_error(aiohttp.ConnectionTimeoutError("connect")))
    assert not connect_timeout.unknown and not connect_timeout.permanent
    reset = classify(network_error(aiohttp.ServerDisconnectedError()))
    assert reset.unknown and not reset.permanent
    refused = classify(network_error(aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, False, None, None, None),
        OSError(111, "refused"))))
    assert not refused.unknown
