"""Sending on WhatsApp: rendering rules, and every Graph API error code the issue names."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.whatsapp.graph import classify
from bot.channels.whatsapp.ids import parse_reply_id, reply_id
from bot.channels.whatsapp.inbound import parse_webhook
from bot.channels.whatsapp.render import flatten, render, template_message, unique_titles
from bot.i18n import Texts
from bot.outbox.store import SendError
from bot.storage.models import OutboxMessage
from tests import fake_graph as fg
from tests.conftest import FakeClock
from tests.whatsapp_harness import harness

TEXTS = Texts("id")
SITI = "6281234567890"


def payload(n: int, text: str = "Pilih:", nav: int = 0, label: str = "Pilihan") -> dict[str, Any]:
    choices = [{"id": f"c{i}", "label": f"{label} {i}", "nav": False} for i in range(1, n + 1)]
    choices += [{"id": f"nav:{i}", "label": ["« Kembali", "Batal"][i], "nav": True} for i in range(nav)]
    return {"text": text, "choices": choices, "q": 7}


# ---------------------------------------------------------------------- rendering


def test_three_choices_are_reply_buttons_cut_to_20() -> None:
    [msg] = render(payload(3, label="Sangat sopan dan ramah sekali"), "id", TEXTS)
    inter = msg["interactive"]
    assert inter["type"] == "button"
    titles = [b["reply"]["title"] for b in inter["action"]["buttons"]]
    assert all(len(t) <= 20 for t in titles) and len(set(titles)) == 3
    assert [b["reply"]["id"] for b in inter["action"]["buttons"]] == ["7:c1", "7:c2", "7:c3"]
    assert fg.check_message({"messaging_product": "whatsapp", "to": SITI, **msg}) is None


def test_four_to_ten_choices_are_a_list() -> None:
    for n in (4, 8, 10):
        [msg] = render(payload(n - 2, nav=2, label="Sangat kompeten dan sangat membantu warga"), "id", TEXTS)
        inter = msg["interactive"]
        rows = inter["action"]["sections"][0]["rows"]
        assert inter["type"] == "list" and len(rows) == n
        assert inter["action"]["button"] == "Pilih"
        assert all(len(r["title"]) <= 24 and len(r.get("description", "")) <= 72 for r in rows)
        assert rows[0]["description"].startswith("Sangat kompeten dan sangat membantu")
        assert fg.check_message({"messaging_product": "whatsapp", "to": SITI, **msg}) is None
    [en] = render(payload(5), "en", TEXTS)
    assert en["interactive"]["action"]["button"] == "Choose"


def test_more_than_ten_is_a_numbered_text() -> None:
    [msg] = render(payload(11, text="Kategori?", nav=2), "id", TEXTS)
    body = msg["text"]["body"]
    assert body.startswith("Kategori?\n\n1. Pilihan 1\n")
    assert "11. Pilihan 11" in body and "12." not in body  # back/cancel are words, not numbers
    assert "Balas dengan nomor atau nama pilihan." in body and "kembali / batal" in body


def test_long_texts_split_and_interactive_body_kept_short() -> None:
    long = "\n".join(f"Baris {i} " + "x" * 90 for i in range(60))  # ~6000 characters
    msgs = render({"text": long, "choices": payload(2)["choices"], "q": 1}, "id", TEXTS)
    assert [m["type"] for m in msgs][-1] == "interactive"
    assert all(len(m["text"]["body"]) <= 4096 for m in msgs[:-1])
    assert len(msgs[-1]["interactive"]["body"]["text"]) <= 1024
    joined = "\n".join([m["text"]["body"] for m in msgs[:-1]] + [msgs[-1]["interactive"]["body"]["text"]])
    assert joined.replace("\n", "") == long.replace("\n", "")  # nothing lost


def test_titles_unique_after_cutting() -> None:
    titles = unique_titles(["Kartu Identitas Anak (Disdukcapil)", "Kartu Identitas Anak (Kecamatan)"], 20)
    assert len(set(titles)) == 2 and all(len(t) <= 20 for t in titles)


def test_reply_ids_round_trip_and_malformed_refused() -> None:
    assert parse_reply_id(reply_id(12, "fu:c:3:yes")) == (12, "fu:c:3:yes")
    for bad in ("", "x:1", "12", "12:", "1:\x00", "9" * 300):
        assert parse_reply_id(bad) is None
    with pytest.raises(ValueError):
        reply_id(1, "x" * 300)


def test_template_text_is_flat() -> None:
    msg = template_message("t", "id", {"text": "Halo!\n\n  Tiket   K7QM-3XHD\tselesai?", "choices": [], "q": None})
    text = msg["template"]["components"][0]["parameters"][0]["text"]
    assert text == "Halo! · Tiket K7QM-3XHD selesai?" and flatten("") == "-"


def test_error_classification() -> None:
    assert classify(130429, 400, "r").retry_after is not None
    pair = classify(131056, 400, "r")
    assert not pair.permanent and pair.retry_after is None  # only this recipient backs off
    assert classify(131047, 400, "r").wait_for_contact
    assert classify(131026, 400, "r").permanent
    assert classify(100, 400, "r").permanent
    assert not classify(131000, 500, "r").permanent
    assert not classify(None, 502, "r").permanent
    assert not classify(190, 401, "r").permanent  # a token problem: keep the message


def test_parse_ignores_garbage() -> None:
    assert parse_webhook({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "messages": [{"type": "text"}, {"id": "x", "type": "text", "text": {"body": "hi"}}],
        "statuses": [{"id": "w"}]}}]}]}).messages == []
    parsed = parse_webhook(fg.webhook(messages=[fg.location_message(SITI, 91, "x")],  # type: ignore[arg-type]
                                      contacts=[fg.contact(SITI)]))
    assert parsed.messages[0].event is not None and parsed.messages[0].event.kind == "unsupported"


# ---------------------------------------------------------------------- error codes end to end


async def statuses(h: Any) -> list[tuple[str, int, str | None]]:
    with h.app.factory() as db:
        return [(r.status, r.attempts, r.last_error)
                for r in db.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


async def test_throughput_130429_backs_off_and_retries(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        h.graph.fail_next(130429)
        await h.say(SITI, "halo")
        assert h.graph.sent == [] and h.graph.refused[0][0] == 130429
        rows = await statuses(h)
        assert [r[0] for r in rows] == ["pending", "pending"]  # the second waits with the first
        assert "130429" in (rows[0][2] or "")
        await h.drain()
        assert h.graph.sent == []  # not due yet: it backs off
        clock.advance(seconds=3)
        await h.drain()
        assert [s.type for s in h.graph.to(SITI)] == ["text", "interactive"]  # in order
        assert [r[0] for r in await statuses(h)] == ["sent", "sent"]


async def test_pair_rate_131056_backs_off_for_that_resident_only(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        h.graph.fail_next(131056, to=SITI)
        await h.say(SITI, "halo")
        await h.say("6285212345678", "halo")
        assert len(h.graph.to("6285212345678")) == 2 and h.graph.to(SITI) == []
        clock.advance(seconds=10)
        await h.drain()
        assert len(h.graph.to(SITI)) == 2


async def test_permanent_error_fails_the_row_with_the_reason(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        h.graph.fail_next(131026)
        await h.say(SITI, "halo")
        rows = await statuses(h)
        assert [r[0] for r in rows] == ["failed", "failed"]
        assert "131026" in (rows[0][2] or "") and "Message undeliverable" in (rows[0][2] or "")
        clock.advance(hours=1)
        await h.drain()
        assert h.graph.sent == []  # never retried


async def test_server_error_and_bad_token_are_retried(sqlite_url: str, clock: FakeClock) -> None:
    async with harness(sqlite_url, clock) as h:
        h.graph.fail_next(131000)
        h.graph.fail_next(190)
        await h.say(SITI, "halo")
        clock.advance(seconds=5)
        await h.drain()  # 190 on the retry
        clock.advance(seconds=10)
        await h.drain()
        assert [r[0] for r in await statuses(h)] == ["sent", "sent"]
        assert [code for code, _ in h.graph.refused] == [131000, 190]


async def test_photo_payload_uploaded_then_sent(sqlite_url: str, clock: FakeClock, tmp_path: Any) -> None:
    async with harness(sqlite_url, clock) as h:
        await h.say(SITI, "halo")
        chart = tmp_path / "ikm.png"
        chart.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
        msg_id = await h.channel.sender.send(SITI, {"text": "IKM minggu ini", "choices": [], "q": None,
                                                    "photo": {"path": str(chart), "caption": "IKM"}})
        sent = h.graph.last_to(SITI)
        assert sent.wamid == msg_id and sent.type == "image" and sent.body["image"]["caption"] == "IKM"
        assert h.graph.uploads[0]["type"] == "image/png" and h.graph.uploads[0]["size"] == 108


async def test_file_outside_window_waits_even_with_a_template(sqlite_url: str, clock: FakeClock,
                                                             tmp_path: Any) -> None:
    async with harness(sqlite_url, clock, whatsapp_template_followup="prima_tindak_lanjut") as h:
        await h.say(SITI, "halo")
        clock.advance(hours=25)
        chart = tmp_path / "ikm.png"
        chart.write_bytes(b"\x89PNG\r\n\x1a\n")
        with pytest.raises(SendError) as err:
            await h.channel.sender.send(SITI, {"text": "IKM", "choices": [], "q": None,
                                               "photo": {"path": str(chart), "caption": "IKM"}})
        assert err.value.wait_for_contact and h.graph.uploads == []
        # plain text outside the window goes as the template
        await h.channel.sender.send(SITI, {"text": "Halo\nada kabar", "choices": [], "q": None})
        assert h.graph.last_to(SITI).type == "template"
