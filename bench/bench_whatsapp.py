"""WhatsApp webhook throughput and time-to-200, against the bare runtime in the same run.

Simulated residents each go through a full survey over WhatsApp: a greeting, the consent
button, the menu list, agency and service lists, nine answer rows and a typed suggestion
(15 messages each). Every tap uses the buttons or list the bot really sent. Each message is
a signed webhook posted over HTTP (127.0.0.1) to the real channel, which stores it, answers
200, processes it and sends the replies to a local fake Graph API. Residents run concurrently,
each one in order. The baseline replays the same conversations straight into
``Runtime.handle`` (no HTTP, no signature, no stored body, no sending) in the same run.

    python bench/bench_whatsapp.py                   # SQLite, 40 residents (600 messages)
    python bench/bench_whatsapp.py --residents 400   # the full size
    python bench/bench_whatsapp.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App, build_app  # noqa: E402
from bot.channels.whatsapp.channel import WEBHOOK_PATH, WhatsAppChannel  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime.types import Inbound  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.web.server import build_web_app  # noqa: E402
from flows.machine.types import Event  # noqa: E402
from tests import fake_graph as fg  # noqa: E402

MESSAGES_PER_RESIDENT = 15


def make(url: str, graph: fg.FakeGraph | None = None) -> App:
    extra: dict[str, Any] = {}
    if graph is not None:
        extra = {"whatsapp_token": graph.token, "whatsapp_phone_number_id": graph.phone_number_id,
                 "whatsapp_app_secret": fg.APP_SECRET, "whatsapp_verify_token": fg.VERIFY_TOKEN,
                 "whatsapp_api_base": graph.base_url}
    return build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml",
                              survey_reminder_hours=0, **extra))


def pick(titles: list[str], step: int) -> str:
    """The tap a resident makes at ``step`` of the survey script."""
    wanted = {1: "Setuju", 2: "Nilai layanan", 3: "Disdukcapil", 4: "KTP Elektronik"}.get(step)
    for title in titles:  # titles show the number that may be typed: "1. Setuju"
        if wanted and title.split(". ", 1)[-1] == wanted:
            return title
    return titles[step % len(titles)]


async def channel_run(url: str, residents: int) -> tuple[float, list[float], int]:
    graph = fg.FakeGraph()
    await graph.start()
    app = make(url, graph)
    channel = WhatsAppChannel.from_app(app)
    web_app = build_web_app()
    channel.add_routes(web_app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    latencies: list[float] = []

    def answered(wa_id: str, before: int) -> Callable[[], bool]:
        return lambda: len(graph.to(wa_id)) > before

    async def resident(http: ClientSession, n: int) -> None:
        wa_id = f"6282{n:09d}"
        for step in range(MESSAGES_PER_RESIDENT):
            if step == 0:
                msg = fg.text_message(wa_id, "halo")
            elif step == MESSAGES_PER_RESIDENT - 1:
                msg = fg.text_message(wa_id, "Pelayanan cepat, terima kasih")
            else:
                question = graph.last_question(wa_id)
                option = question.option(pick(question.titles(), step))
                kind = question.interactive["type"]
                msg = fg.button_reply(wa_id, option) if kind == "button" else fg.list_reply(wa_id, option)
            raw = fg.encode(fg.webhook(messages=[msg], contacts=[fg.contact(wa_id)]))
            before = len(graph.to(wa_id))
            t0 = time.perf_counter()
            async with http.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", data=raw,
                                 headers={"X-Hub-Signature-256": fg.sign(raw)}) as resp:
                assert resp.status == 200
            latencies.append(time.perf_counter() - t0)
            await graph.wait_for(answered(wa_id, before), timeout=60)
            await channel.idle()

    start = time.perf_counter()
    async with ClientSession() as http:
        await asyncio.gather(*(resident(http, n) for n in range(residents)))
    await channel.idle()
    elapsed = time.perf_counter() - start
    sent = len(graph.sent)
    await runner.cleanup()
    await channel.close()
    await graph.stop()
    app.engine.dispose()
    return elapsed, latencies, sent


def runtime_run(url: str, residents: int) -> float:
    """The same conversations straight into the runtime: what the channel adds is the difference."""
    app = make(url)
    start = time.perf_counter()
    for n in range(residents):
        user = f"6281{n:09d}"
        last: dict[str, Any] = {}
        for step in range(MESSAGES_PER_RESIDENT):
            eid = uuid.uuid4().hex
            if step == 0:
                event = Event("text", eid, text="halo")
            elif step == MESSAGES_PER_RESIDENT - 1:
                event = Event("text", eid, text="Pelayanan cepat, terima kasih")
            else:
                by_label = {c["label"]: c["id"] for c in last["choices"]}
                event = Event("choice", eid, choice=by_label[pick(list(by_label), step)], q=last["q"])
            rows = app.runtime.handle(Inbound("whatsapp", user, user, event, event_key=eid))
            questions = [r.payload for r in rows if r.payload.get("choices")]
            if questions:
                last = questions[-1]
    elapsed = time.perf_counter() - start
    app.engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=40)
    parser.add_argument("--postgres", help="a PostgreSQL URL instead of a temporary SQLite file")
    args = parser.parse_args()
    total = args.residents * MESSAGES_PER_RESIDENT
    with tempfile.TemporaryDirectory() as tmp:
        drops = []
        if args.postgres:
            urls = []
            for _ in range(2):
                url, drop = scratch_schema(args.postgres, prefix="bench_")
                urls.append(url)
                drops.append(drop)
        else:
            urls = [f"sqlite:///{tmp}/base.db", f"sqlite:///{tmp}/wa.db"]
        try:
            base = runtime_run(urls[0], args.residents)
            elapsed, latencies, sent = asyncio.run(channel_run(urls[1], args.residents))
        finally:
            for drop in drops:
                drop()
    lat = sorted(latencies)
    p95 = lat[int(len(lat) * 0.95) - 1] * 1000
    print(f"messages: {total} from {args.residents} residents; replies sent to the Graph API: {sent}")
    print(f"baseline  runtime.handle only   : {total / base:8.1f} messages/s")
    print(f"WhatsApp  signed webhook -> reply: {total / elapsed:8.1f} messages/s "
          f"({elapsed / base:.2f}x the baseline's time)")
    print(f"time to answer 200: median {statistics.median(lat) * 1000:.1f} ms, p95 {p95:.1f} ms, "
          f"max {lat[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
