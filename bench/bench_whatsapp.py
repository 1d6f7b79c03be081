"""WhatsApp end-to-end throughput and time-to-200, against the bare runtime in the same run.

Simulated residents each walk a scripted conversation over WhatsApp: a greeting, the consent
button, the menu list, agency and service lists and more list taps (15 messages each). Every
tap uses the buttons or list the bot really sent. Each message is a signed webhook posted over
HTTP (127.0.0.1) to the real channel, which stores it, answers 200, processes it and sends the
replies to a fake Graph API. Residents run concurrently, each one in order: the next message
goes once the previous one's question has reached the fake Graph API.

The load (the residents' HTTP client and the fake Graph API) runs in a second process, as
Meta does on its own machines: the figures are what one Prima process does, and the time of
the load generator is not counted against it. The baseline replays the same kind of
conversation straight into ``Runtime.handle`` (no HTTP, no signature, no stored body, no
sending) in the same run.

    python bench/bench_whatsapp.py                   # SQLite, 40 residents (600 messages)
    python bench/bench_whatsapp.py --residents 400   # the full size
    python bench/bench_whatsapp.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/bench_whatsapp.py --profile         # where the Prima process spends its time
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing as mp
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, TCPConnector, web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App, build_app, settle_heap  # noqa: E402
from bot.channels.whatsapp.channel import WEBHOOK_PATH, WhatsAppChannel  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime.types import Inbound  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.web.server import build_web_app  # noqa: E402
from flows.machine.types import Event  # noqa: E402
from tests import fake_graph as fg  # noqa: E402

MESSAGES_PER_RESIDENT = 15
WAIT = 120.0  # seconds a resident waits for an answer before the run counts as failed


def make(url: str, graph_url: str | None = None) -> App:
    extra: dict[str, Any] = {}
    if graph_url is not None:
        extra = {"whatsapp_token": fg.TOKEN, "whatsapp_phone_number_id": fg.PHONE_NUMBER_ID,
                 "whatsapp_app_secret": fg.APP_SECRET, "whatsapp_verify_token": fg.VERIFY_TOKEN,
                 "whatsapp_api_base": graph_url}
    app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml",
                             survey_reminder_hours=0, **extra))
    settle_heap()  # as `python bot.py` does before serving
    return app


def pick(titles: list[str], step: int) -> str:
    """The tap a resident makes at ``step`` of the script."""
    wanted = {1: "Setuju", 2: "Nilai layanan", 3: "Disdukcapil", 4: "KTP Elektronik"}.get(step)
    for title in titles:  # titles show the number that may be typed: "1. Setuju"
        if wanted and title.split(". ", 1)[-1] == wanted:
            return title
    return titles[step % len(titles)]


# ------------------------------------------------------------------ the load (second process)

class Phones(fg.FakeGraph):
    """The fake Graph API, indexed by recipient: each resident waits for their own next question."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.waiting: dict[str, asyncio.Future[fg.Sent]] = {}
        self._seen = 0

    async def _messages(self, request: web.Request) -> web.Response:
        try:
            return await super()._messages(request)
        finally:
            for sent in self.sent[self._seen:]:
                waiter = self.waiting.get(sent.to)
                if waiter is not None and sent.options() and not waiter.done():
                    waiter.set_result(sent)
            self._seen = len(self.sent)


async def drive(conn: Connection, residents: int) -> None:
    graph = Phones()
    await graph.start()
    conn.send(graph.base_url)
    port = await asyncio.to_thread(conn.recv)
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    latencies: list[float] = []

    async def resident(http: ClientSession, n: int) -> None:
        wa_id = f"6282{n:09d}"
        question: fg.Sent | None = None
        for step in range(MESSAGES_PER_RESIDENT):
            if question is None:
                msg = fg.text_message(wa_id, "halo")
            elif step == MESSAGES_PER_RESIDENT - 1:
                msg = fg.text_message(wa_id, "Pelayanan cepat, terima kasih")
            else:
                option = question.option(pick(question.titles(), step))
                kind = question.interactive["type"]
                msg = fg.button_reply(wa_id, option) if kind == "button" else fg.list_reply(wa_id, option)
            raw = fg.encode(fg.webhook(messages=[msg], contacts=[fg.contact(wa_id)]))
            answer = graph.waiting[wa_id] = asyncio.get_running_loop().create_future()
            t0 = time.perf_counter()
            async with http.post(url, data=raw, headers={"X-Hub-Signature-256": fg.sign(raw)}) as resp:
                assert resp.status == 200, resp.status
            latencies.append(time.perf_counter() - t0)
            question = await asyncio.wait_for(answer, WAIT)  # the reply ends with the next question

    async with ClientSession(connector=TCPConnector(limit=0)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(resident(http, n) for n in range(residents)))
        elapsed = time.perf_counter() - start
    conn.send({"elapsed": elapsed, "latencies": latencies, "sent": len(graph.sent)})
    conn.recv()  # the Prima side has finished: stop the fake Graph API
    await graph.stop()


def load_process(conn: Connection, residents: int) -> None:
    asyncio.run(drive(conn, residents))


# ------------------------------------------------------------------ the Prima process

class Profile:
    """py-spy sampling this process (every thread) while the channel runs; a summary after."""

    def __init__(self, enabled: bool) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = Path(tempfile.mkdtemp()) / "profile.txt"
        if enabled and not shutil.which("py-spy"):
            sys.exit("--profile needs py-spy (pip install py-spy)")
        self.enabled = enabled

    def start(self) -> None:
        if self.enabled:
            self.proc = subprocess.Popen(["py-spy", "record", "--pid", str(os.getpid()), "--rate", "250",
                                          "--format", "raw", "--output", str(self.out), "--nonblocking",
                                          "--gil"],  # CPU time: only the thread holding the GIL
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached before the load starts

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)

    def report(self, top: int = 32) -> None:
        if self.proc is None or not self.out.exists():
            return
        inclusive: collections.Counter[str] = collections.Counter()
        own: collections.Counter[str] = collections.Counter()
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [re.sub(r" \((?:.*/)?([^/]+?):\d+\)$", r" (\1)", f) for f in stack.split(";") if f]
            if not frames:
                continue
            n = int(count)
            total += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
            thread = "database threads" if any(f.startswith("Lanes._work") for f in frames) else \
                "event loop" if any(f.startswith("BaseEventLoop.run_forever") for f in frames) else "other"
            inclusive[f"[{thread}]"] += n
        print(f"\nprofile of the Prima process: {total} samples of the thread holding the GIL (py-spy):")
        boring = ("threading.py", "thread.py", "runners.py", "base_events.py", "events.py", "<module>")
        shown = [(f, n) for f, n in inclusive.most_common() if not any(b in f for b in boring)]
        for frame, n in shown[:top]:
            print(f"  {100 * n / total:5.1f}%  {frame}")
        print("self time:")
        for frame, n in own.most_common(top // 2):
            print(f"  {100 * n / total:5.1f}%  {frame}")


async def channel_run(url: str, residents: int, profile: Profile, workers: int | None) -> dict[str, Any]:
    parent, child = mp.get_context("spawn").Pipe()
    load = mp.get_context("spawn").Process(target=load_process, args=(child, residents))
    load.start()
    graph_url = await asyncio.to_thread(parent.recv)
    app = make(url, graph_url)
    options: dict[str, Any] = {"workers": workers} if workers else {}
    channel = WhatsAppChannel.from_app(app, **options)
    web_app = build_web_app()
    channel.add_routes(web_app)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    profile.start()
    cpu = time.process_time()
    parent.send(port)
    result: dict[str, Any] = await asyncio.to_thread(parent.recv)
    result["cpu"] = time.process_time() - cpu  # every thread of this process, the load excluded
    profile.stop()
    await channel.idle()
    await runner.cleanup()
    await channel.close()
    parent.send("stop")
    await asyncio.to_thread(load.join, 30)
    app.engine.dispose()
    return result


def runtime_run(url: str, residents: int) -> tuple[float, float]:
    """The same kind of conversation straight into the runtime: the channel adds the difference.

    Returns the wall time and the CPU time."""
    app = make(url)
    start, cpu = time.perf_counter(), time.process_time()
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
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    app.engine.dispose()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--residents", type=int, default=40)
    parser.add_argument("--postgres", help="a PostgreSQL URL instead of a temporary SQLite file")
    parser.add_argument("--workers", type=int, help="processing threads on PostgreSQL (default: the channel's)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the Prima process with py-spy during the WhatsApp run")
    args = parser.parse_args()
    total = args.residents * MESSAGES_PER_RESIDENT
    profile = Profile(args.profile)
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
            base, base_cpu = runtime_run(urls[0], args.residents)
            result = asyncio.run(channel_run(urls[1], args.residents, profile, args.workers))
        finally:
            for drop in drops:
                drop()
    elapsed = result["elapsed"]
    lat = sorted(result["latencies"])
    p95 = lat[max(0, int(len(lat) * 0.95) - 1)] * 1000
    print(f"{'PostgreSQL' if args.postgres else 'SQLite'}: {total} messages from {args.residents} "
          f"residents; replies received by the fake Graph API: {result['sent']}")
    print(f"baseline  Runtime.handle only               : {total / base:8.1f} messages/s, "
          f"CPU {1000 * base_cpu / total:.2f} ms per message")
    print(f"WhatsApp  signed webhook -> stored -> reply : {total / elapsed:8.1f} messages/s "
          f"({elapsed / base:.2f}x the baseline's time), CPU {1000 * result['cpu'] / total:.2f} ms per message")
    print(f"time to the 200: median {statistics.median(lat) * 1000:.1f} ms, p95 {p95:.1f} ms, "
          f"max {lat[-1] * 1000:.1f} ms")
    profile.report()


if __name__ == "__main__":
    main()
