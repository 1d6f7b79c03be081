"""Scale-out: Telegram webhook updates/s with 1, 2 and 4 bot processes on one PostgreSQL.

For each process count the benchmark creates a scratch PostgreSQL schema (dropped after),
starts the fake Bot API, that many real bot processes (``python bot.py run`` in webhook mode,
each on its own HTTP_PORT, ``SEND_BUDGET=postgres``) and a small aiohttp round-robin
balancer in front of them: the one webhook address Telegram posts to. A driver then plays
Telegram: it posts signed updates (the secret-token header) for residents who each do a full
survey (/start, consent, menu, agency, service, nine answers, a typed suggestion: 15 updates),
pressing the keyboards the bot really sent. Like Telegram, it never has two updates of one
chat in flight: a resident's next update goes only after the previous one got its 200 and its
reply arrived (a person reads before tapping). At most ``--concurrency`` requests are in flight
(Telegram's webhook ``max_connections`` defaults to 40). A share of updates (``--duplicates``)
is delivered a second time, as Telegram does after a timeout; round robin sends the copy to
another process.

Reported per run: updates/s, p50/p99 time to the 200 and to the reply (at the fake Bot API),
CPU per update of the bot processes (from /proc), of their PostgreSQL backends, and of this
benchmark's own process (driver, balancer, fake API). Checked after each run: one inbound
row per update (copies not stored twice), nine answers per resident, every reply row sent and
received once, each resident's replies received in the order they were committed, every press
answered once (the bot puts that answer in the webhook's 200, and the driver makes the call as
Telegram would).

Sends are not paced (TELEGRAM_RATE_TOTAL=0, TELEGRAM_RATE_CHAT=0): the figure is the bot's
capacity, not Telegram's 30 messages/s.

    python bench/bench_scale.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/bench_scale.py --database URL --updates 3000 --processes 1,2,4 --concurrency 40
    python bench/bench_scale.py --database URL --processes 1 --py-spy   # where a process spends its CPU
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from bot.app import build_app  # noqa: E402
from bot.channels.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import InboundEvent, OutboxMessage, SurveyAnswer  # noqa: E402
from tests.fake_telegram import TOKEN, FakeTelegram  # noqa: E402

SECRET = "bench-scale-secret-token"
SUGGESTION = "Pelayanan cepat, petugas ramah, antrean tertib."
# /start, consent, menu "Nilai layanan", first agency, first service, nine answers, a suggestion
SCRIPT: list[str | int] = ["/start", 0, 0, 0, 0, *([0] * 9), SUGGESTION]
TICK = os.sysconf("SC_CLK_TCK")
UPDATE_IDS = itertools.count(1)


class ReplyTelegram(FakeTelegram):
    """The fake Bot API, noting each chat's messages as they arrive and waking that chat only."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN)
        self.by_chat: dict[int, list[tuple[float, Any]]] = defaultdict(list)
        self.arrived: dict[int, asyncio.Event] = {}

    def _store(self, method: str, params: dict[str, Any], text: str | None) -> dict[str, Any]:
        result = super()._store(method, params, text)
        sent = self.sent[-1]
        self.by_chat[sent.chat_id].append((time.perf_counter(), sent))
        event = self.arrived.get(sent.chat_id)
        if event is not None:
            event.set()
        return result

    def _notify(self) -> None:  # nobody waits on the shared condition here: no task per request
        return None


class Balancer:
    """Round robin over the bot processes, as an nginx upstream would."""

    def __init__(self) -> None:
        self.backends: list[str] = []
        self.turn = itertools.count()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._http: ClientSession | None = None

    async def start(self) -> None:
        self._http = ClientSession(connector=TCPConnector(limit=0), timeout=ClientTimeout(total=60))
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.forward)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        backend = self.backends[next(self.turn) % len(self.backends)]
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", SECRET_HEADER.lower())}
        async with self._http.post(backend + request.path_qs, data=body, headers=headers) as resp:
            return web.Response(status=resp.status, body=await resp.read(), content_type=resp.content_type)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/<pid>/stat), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Run:
    processes: int
    updates: int = 0
    copies: int = 0
    presses: int = 0  # callback queries posted (copies too): each must be answered
    failures: list[str] = field(default_factory=list)
    to_200: list[float] = field(default_factory=list)
    to_reply: list[float] = field(default_factory=list)
    chats: list[int] = field(default_factory=list)
    elapsed: float = 0.0
    cpu_bots: float = 0.0
    cpu_db: float = 0.0
    cpu_bench: float = 0.0
    checks: dict[str, bool] = field(default_factory=dict)
    profile: str = ""
    load: float = 0.0  # the host's 1-minute load average at the end of the run


def user(uid: int) -> dict[str, Any]:
    return {"id": uid, "is_bot": False, "first_name": f"Warga {uid}", "language_code": "id"}


def text_update(uid: int, body: str) -> dict[str, Any]:
    n = next(UPDATE_IDS)
    return {"update_id": n, "message": {"message_id": 10_000 + n, "date": int(time.time()),
                                        "chat": {"id": uid, "type": "private", "first_name": "W"},
                                        "from": user(uid), "text": body}}


def press_update(uid: int, sent: Any, row: int) -> dict[str, Any]:
    n = next(UPDATE_IDS)
    button = sent.reply_markup["inline_keyboard"][row][0]
    return {"update_id": n, "callback_query": {
        "id": f"cb{n}", "from": user(uid), "chat_instance": "ci", "data": button["callback_data"],
        "message": {"message_id": sent.message_id, "date": int(time.time()),
                    "chat": {"id": uid, "type": "private"}, "text": sent.text or "?",
                    "reply_markup": sent.reply_markup}}}


def answered(new: list[tuple[float, Any]], needs_keyboard: bool) -> bool:
    """The bot replied to the last update (with a keyboard, when the next step presses one)."""
    return bool(new) and (not needs_keyboard or any(
        s.reply_markup and s.reply_markup.get("inline_keyboard") for _, s in new))


class Driver:
    """Plays Telegram: posts each resident's updates in order to the one webhook address."""

    def __init__(self, url: str, tg: ReplyTelegram, concurrency: int, duplicates: float, seed: int) -> None:
        self.url = url
        self.tg = tg
        self.gate = asyncio.Semaphore(concurrency)
        self.duplicates = duplicates
        self.random = random.Random(seed)
        self.http: ClientSession | None = None

    async def post(self, update: dict[str, Any]) -> tuple[int, float]:
        """POST once a connection is free; (HTTP status, when it was sent): the wait for a free
        connection is Telegram's queue, not the bot's time."""
        assert self.http is not None
        async with self.gate:
            sent = time.perf_counter()
            async with self.http.post(self.url, json=update, headers={SECRET_HEADER: SECRET}) as resp:
                body = await resp.read()
                if resp.status == 200 and resp.content_type == "application/json":
                    await self.tg.webhook_call(json.loads(body))  # a call the 200 carries
                return resp.status, sent

    async def resident(self, uid: int, run: Run, timeout: float = 60.0) -> None:
        self.tg.arrived[uid] = event = asyncio.Event()
        for i, step in enumerate(SCRIPT):
            mine = self.tg.by_chat[uid]
            before = len(mine)
            if isinstance(step, str):
                update = text_update(uid, step)
            else:
                keyboards = [s for _, s in mine if s.reply_markup and s.reply_markup.get("inline_keyboard")]
                if not keyboards:
                    run.failures.append(f"resident {uid}: no keyboard to press at step {i}")
                    return
                update = press_update(uid, keyboards[-1], step)
            needs_keyboard = i + 1 < len(SCRIPT) and not isinstance(SCRIPT[i + 1], str)
            status, t0 = await self.post(update)
            run.to_200.append(time.perf_counter() - t0)
            run.updates += 1
            run.presses += "callback_query" in update
            if status != 200:
                run.failures.append(f"resident {uid}: HTTP {status} at step {i}")
                return
            deadline = t0 + timeout
            while not answered(mine[before:], needs_keyboard):
                event.clear()
                try:
                    await asyncio.wait_for(event.wait(), max(0.0, deadline - time.perf_counter()))
                except TimeoutError:
                    run.failures.append(f"resident {uid}: no reply within {timeout:g} s at step {i}")
                    return
            run.to_reply.append(mine[before][0] - t0)
            if self.random.random() < self.duplicates:  # Telegram redelivers: must change nothing
                run.copies += 1
                run.presses += "callback_query" in update
                if (await self.post(update))[0] != 200:
                    run.failures.append(f"resident {uid}: a redelivered update was refused")

    async def residents(self, uids: list[int], run: Run) -> None:
        self.http = ClientSession(connector=TCPConnector(limit=0), timeout=ClientTimeout(total=120))
        try:
            await asyncio.gather(*(self.resident(uid, run) for uid in uids))
        finally:
            await self.http.close()


def bot_env(url: str, api: str, webhook: str, port: int, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("TELEGRAM_", "WHATSAPP_", "DATABASE_", "SEND_", "HTTP_", "REDIS_"))}
    env.update(DATABASE_URL=url, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE=api, TELEGRAM_WEBHOOK_URL=webhook,
               TELEGRAM_WEBHOOK_SECRET=SECRET, HTTP_HOST="127.0.0.1", HTTP_PORT=str(port), SEND_BUDGET="postgres",
               TELEGRAM_RATE_TOTAL="0", TELEGRAM_RATE_CHAT="0", CATALOG_PATH=str(ROOT / "catalog.yaml"),
               LOG_LEVEL="WARNING", DIGEST_DIR=str(tmp / "digests"), REPORT_DIR=str(tmp / "reports"),
               WHATSAPP_MEDIA_DIR=str(tmp / "media"), PYTHONPATH=str(ROOT))
    return env


async def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with ClientSession(timeout=ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"bot process exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    await resp.read()
                    return
            except OSError:
                await asyncio.sleep(0.3)
    raise RuntimeError(f"bot process on port {port} not up after {timeout:g} s")


def db_backends(url: str, app_name: str) -> list[int]:
    """PIDs of the PostgreSQL backends serving the bot processes (by application_name)."""
    from bot.storage.db import make_engine

    engine = make_engine(url.split("?")[0])
    try:
        with engine.connect() as conn:
            return [int(p) for p in conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"), {"a": app_name}).scalars()]
    finally:
        engine.dispose()


def check(url: str, run: Run, replies: dict[int, list[Any]], residents: int, answered: int) -> None:
    """Exactly-once storage and per-resident order, from the database and the fake Bot API."""
    from bot.storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            inbound = conn.scalar(select(func.count()).select_from(InboundEvent)
                                  .where(InboundEvent.channel == "telegram")) or 0
            answers = conn.scalar(select(func.count()).select_from(SurveyAnswer)) or 0
            rows: dict[str, list[tuple[str, str]]] = defaultdict(list)
            for chat, status, payload in conn.execute(  # replies: not the follow-ups due later
                    select(OutboxMessage.chat_id, OutboxMessage.status, OutboxMessage.payload)
                    .where(OutboxMessage.channel == "telegram", OutboxMessage.due_at <= datetime.now(UTC))
                    .order_by(OutboxMessage.id)):
                rows[chat].append((status, str(payload.get("text") or payload.get("caption") or "")))
    finally:
        engine.dispose()
    run.checks["one inbound row per update"] = inbound == run.updates
    run.checks["9 answers per resident"] = answers == 9 * residents
    unsent = sum(status != "sent" for r in rows.values() for status, _ in r)
    run.checks["every reply row sent"] = unsent == 0
    # The fake shows texts as sent (rendered): compare the count and the order of first lines.
    bad = 0
    for uid, got in replies.items():
        want = [t for _, t in rows.get(str(uid), [])]
        seen = [(s.text or "") for _, s in got]
        if len(want) != len(seen) or any(not g.startswith(w.split("\n")[0][:20]) for w, g in zip(want, seen, strict=False)):
            bad += 1
            if os.environ.get("BENCH_SCALE_DEBUG"):
                print(uid, want, seen, sep="\n")
    run.checks["replies received once, in commit order"] = bad == 0
    run.checks["every press answered once"] = answered == run.presses
    if answered != run.presses:
        run.failures.append(f"checks: {answered} callback answers for {run.presses} presses")
    if bad or inbound != run.updates or answers != 9 * residents or unsent:
        run.failures.append(f"checks: inbound {inbound} for {run.updates} updates, {answers} answers for "
                            f"{residents} residents, {unsent} rows not sent, {bad} residents out of order")


async def one_run(base_url: str, processes: int, residents: int, concurrency: int, duplicates: float,
                  tmp: Path, profile: bool = False) -> Run:
    app_name = f"prima_bench_scale_{processes}"
    url, drop = scratch_schema(base_url, prefix="bench_scale_")
    url = f"{url}&application_name={app_name}"
    build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml")).engine.dispose()  # migrate once
    tg = ReplyTelegram()
    await tg.start()
    balancer = Balancer()
    await balancer.start()
    webhook = f"http://127.0.0.1:{balancer.port}{WEBHOOK_PATH}"
    procs: list[subprocess.Popen[bytes]] = []
    run = Run(processes)
    try:
        for k in range(processes):
            port = free_port()
            log = tmp / f"bot-{processes}-{k}.log"
            with log.open("wb") as out:
                procs.append(subprocess.Popen([sys.executable, str(ROOT / "bot.py"), "run"], cwd=tmp,
                                              env=bot_env(url, tg.base_url, webhook, port, tmp),
                                              stdout=out, stderr=subprocess.STDOUT))
            await wait_healthy(port, procs[-1], log)
            balancer.backends.append(f"http://127.0.0.1:{port}")
        driver = Driver(webhook, tg, concurrency, duplicates, seed=processes)
        warm = Run(processes)
        base = 300_000_000 + processes * 1_000_000
        await driver.residents([base + i for i in range(2 * processes)], warm)  # connections, caches
        uids = [base + 1000 + i for i in range(residents)]
        pids = db_backends(base_url, app_name)
        cpu0 = sum(cpu_seconds(p.pid) for p in procs), {p: cpu_seconds(p) for p in pids}, time.process_time()
        spies = [subprocess.Popen(["py-spy", "record", "--gil", "-r", "200", "--format", "raw", "-o",
                                   str(tmp / f"spy-{processes}-{k}.txt"), "-p", str(p.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for k, p in enumerate(procs)] if profile else []
        t0 = time.perf_counter()
        await driver.residents(uids, run)
        run.elapsed = time.perf_counter() - t0
        run.load = os.getloadavg()[0]
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has
            spy.wait(60)
        if spies:
            run.profile = profile_table([tmp / f"spy-{processes}-{k}.txt" for k in range(processes)])
        run.cpu_bots = sum(cpu_seconds(p.pid) for p in procs) - cpu0[0]
        run.cpu_db = sum(cpu_seconds(p) - cpu0[1].get(p, 0.0) for p in db_backends(base_url, app_name))
        run.cpu_bench = time.process_time() - cpu0[2]
        run.failures += warm.failures
        await asyncio.sleep(0.5)  # replies of the last turns are recorded as sent
        total = Run(processes, updates=run.updates + warm.updates, presses=run.presses + warm.presses)
        check(url, total, {uid: tg.by_chat[uid] for uid in uids + [base + i for i in range(2 * processes)]},
              residents + 2 * processes, len(tg.callback_answers))
        run.checks, run.failures = total.checks, run.failures + total.failures
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        await balancer.stop()
        await tg.stop()
        drop()
    return run


# Where a bot process spends its CPU: a sample counts for the first of these found on its stack,
# from the root (what the process was doing), and for the package of its innermost frame.
ACTIVITIES = (("outbox dispatcher ticks", ("apscheduler/", "bot/outbox/dispatcher.py")),
              ("turn in the database thread (runtime, SQL)", ("bot/runtime/", "bot/channels/telegram/turns.py")),
              ("Bot API calls (aiogram client, HTTP)", ("aiogram/client/", "bot/channels/telegram/sender.py")),
              ("webhook: HTTP server, update parsing, aiogram dispatch", ("aiohttp/web_protocol.py",)))
PACKAGES = ("sqlalchemy", "psycopg", "aiogram", "pydantic", "aiohttp", "asyncio", "json", "flows", "bot",
            "apscheduler", "jinja2", "multidict", "yarl", "logging", "threading", "concurrent")


def profile_table(raw: list[Path]) -> str:
    """Summarise py-spy's collapsed stacks (``--format raw``) of the bot processes."""
    activity: dict[str, int] = defaultdict(int)
    package: dict[str, int] = defaultdict(int)
    total = 0
    for path in raw:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            activity[next((name for name, marks in ACTIVITIES if any(m in stack for m in marks)), "other")] += n
            leaf = stack.rsplit(";", 1)[-1]
            where = leaf[leaf.rfind("(") + 1:]
            package[next((p for p in PACKAGES if where.startswith((p + "/", p + ".py"))
                          or f"/{p}/" in where), "other (stdlib, C)")] += n
    lines = [f"py-spy, {total} samples of the bot processes (GIL held)", "| what the process was doing | share |",
             "|---|---|"]
    lines += [f"| {k} | {v / total:.0%} |" for k, v in sorted(activity.items(), key=lambda kv: -kv[1])]
    lines += ["", "| innermost frame in | share |", "|---|---|"]
    lines += [f"| {k} | {v / total:.0%} |" for k, v in sorted(package.items(), key=lambda kv: -kv[1])[:10]]
    return "\n".join(lines)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] * 1000 if values else float("nan")


async def main_async(args: argparse.Namespace) -> int:
    residents = max(1, args.updates // len(SCRIPT))
    print(f"# scale-out: {residents} residents x {len(SCRIPT)} updates per run, concurrency "
          f"{args.concurrency}, {args.duplicates:.0%} redelivered, {os.cpu_count()} CPUs", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.processes.split(",")]:
            r = await one_run(args.database, n, residents, args.concurrency, args.duplicates, Path(tmp),
                              args.py_spy)
            runs.append(r)
            print(f"  {n} process(es): {r.updates / r.elapsed:.0f} updates/s, checks "
                  f"{'ok' if all(r.checks.values()) and not r.failures else 'FAILED'}", flush=True)
            for f in r.failures[:5]:
                print(f"    {f}")
            if r.profile:
                print(r.profile, flush=True)
    print("\n| processes | updates/s | p50 / p99 to 200 ms | p50 / p99 to reply ms | CPU ms/update: bots "
          "| PostgreSQL | bench (driver, balancer, fake API) | host load | checks |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        ok = all(r.checks.values()) and not r.failures
        print(f"| {r.processes} | {r.updates / r.elapsed:.0f} | {statistics.median(r.to_200) * 1000:.0f} / "
              f"{pct(r.to_200, 0.99):.0f} | {statistics.median(r.to_reply) * 1000:.0f} / {pct(r.to_reply, 0.99):.0f} "
              f"| {r.cpu_bots / r.updates * 1000:.2f} | {r.cpu_db / r.updates * 1000:.2f} "
              f"| {r.cpu_bench / r.updates * 1000:.2f} | {r.load:.1f} | {'ok' if ok else 'FAILED'} |")
    print("checks: " + ", ".join(runs[0].checks) if runs else "")
    return 0 if all(all(r.checks.values()) and not r.failures for r in runs) else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", required=True, help="PostgreSQL URL (a scratch schema per run, dropped after)")
    p.add_argument("--updates", type=int, default=3000, help="updates per run (15 per resident)")
    p.add_argument("--processes", default="1,2,4", help="process counts to run, comma-separated")
    p.add_argument("--concurrency", type=int, default=40, help="requests in flight (Telegram's max_connections)")
    p.add_argument("--duplicates", type=float, default=0.02, help="share of updates delivered twice")
    p.add_argument("--py-spy", action="store_true",
                   help="profile the bot processes with py-spy during each run (where the CPU goes)")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
