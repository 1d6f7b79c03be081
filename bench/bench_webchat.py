"""Web chat under load: N concurrent residents doing a full survey in their browsers' way (plain
form posts, each followed by the redirect to the page), against ``Runtime.handle`` alone in the
same run.

The bot's aiohttp app with the web chat listens on 127.0.0.1 in a process of its own (so the
clients' work does not share its interpreter lock); each resident has its own cookie jar and goes: open ``/chat/ktp``, start, consent, nine ratings, the suggestion. A step is one
form post and the page it redirects to (what a browser without JavaScript waits for). Then the
same turns go straight through ``Runtime.handle`` for as many fresh residents, one after the
other (the web chat's own database thread count on SQLite is one as well), so the difference is
what HTTP, cookies, CSRF, the page and its thread query cost.

    python bench/bench_webchat.py                                  # SQLite, 200 residents
    python bench/bench_webchat.py --residents 50
    python bench/bench_webchat.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, CookieJar, TCPConnector, web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App, build_app, settle_heap  # noqa: E402
from bot.channels.webchat.guard import Limits, RateLimit  # noqa: E402
from bot.channels.webchat.routes import add_webchat_routes  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime.types import Inbound  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.web.server import build_web_app  # noqa: E402
from flows.machine.types import Event  # noqa: E402

SCORES = ["4", "3", "2", "4", "skip", "4", "3", "2", "1"]
STEPS = ["open", "start", "consent", *(f"rate{i}" for i in range(1, 10)), "suggestion"]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CHOICE = re.compile(r'name="choice" value="(\d+):([^"]+)"')


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


class Browser:
    """One resident: a cookie jar, the page last seen, and the time of each step."""

    def __init__(self, base: str, connector: TCPConnector, timings: dict[str, list[float]], n: int) -> None:
        self.http = ClientSession(base_url=base, connector=connector, connector_owner=False,
                                  cookie_jar=CookieJar(unsafe=True), timeout=ClientTimeout(total=120))
        self.timings, self.n, self.page, self.sent = timings, n, "", 0

    async def step(self, name: str, data: dict[str, str] | None = None, path: str = "/chat/ktp") -> None:
        started = time.perf_counter()
        if data is None:
            async with self.http.get(path) as resp:
                self.page = await resp.text()
        else:
            self.sent += 1
            csrf = CSRF.search(self.page)
            assert csrf, self.page[:300]
            form = {**data, "csrf": csrf.group(1), "n": f"b{self.n:06d}s{self.sent:04d}xxxxxxxxx"}
            async with self.http.post("/chat/send", data=form) as resp:
                self.page = await resp.text()
                assert resp.status == 200, (resp.status, self.page[:300])
        self.timings[name].append(time.perf_counter() - started)

    def choice(self, wanted: str) -> str:
        for q, cid in CHOICE.findall(self.page):
            if cid == wanted:
                return f"{q}:{cid}"
        raise AssertionError(f"no choice {wanted} on the page")

    async def survey(self) -> None:
        try:
            await self.step("open")
            await self.step("start", {"text": "/start ktp"})
            await self.step("consent", {"choice": self.choice("agree")})
            for i, score in enumerate(SCORES, 1):
                await self.step(f"rate{i}", {"choice": self.choice(score)})
            await self.step("suggestion", {"text": "Antrean perlu nomor urut"})
            assert "Terima kasih" in self.page
        finally:
            await self.http.close()


async def serve_only(url: str, port_file: str) -> None:
    """The server side, in its own process (``--serve``): the clients' work is not on its GIL."""
    app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml",
                             survey_reminder_hours=0, _env_file=None))  # type: ignore[call-arg]
    web_app = build_web_app()
    unlimited = Limits(RateLimit(1e6, 1e6), RateLimit(1e6, 1e6), RateLimit(1e6, 1e6))
    add_webchat_routes(web_app, app, unlimited)
    settle_heap()  # as `python bot.py` does before serving
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    Path(port_file).write_text(str(site._server.sockets[0].getsockname()[1]))  # type: ignore[union-attr]
    await asyncio.sleep(3600)  # ended by the parent


async def web_run(url: str, residents: int, tmp: str) -> tuple[dict[str, list[float]], float]:
    port_file = Path(tmp) / "port"
    server = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", url, str(port_file))
    timings: dict[str, list[float]] = defaultdict(list)
    connector = TCPConnector(limit=0)
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text():
                break
            await asyncio.sleep(0.1)
        port = int(port_file.read_text())
        started = time.perf_counter()
        await asyncio.gather(*(Browser(f"http://127.0.0.1:{port}", connector, timings, n).survey()
                               for n in range(residents)))
        elapsed = time.perf_counter() - started
    finally:
        await connector.close()
        server.terminate()
        await server.wait()
    return timings, elapsed


def runtime_run(app: App, residents: int) -> tuple[dict[str, list[float]], float]:
    """The same turns through Runtime.handle alone, resident after resident."""
    timings: dict[str, list[float]] = defaultdict(list)
    rt = app.runtime
    k = 0
    started = time.perf_counter()
    for n in range(residents):
        user = f"bench-runtime-{n:06d}"
        q: dict[str, Any] = {}

        def turn(name: str, event: Event, user: str = user, q: dict[str, Any] = q) -> None:
            nonlocal k
            k += 1
            t0 = time.perf_counter()
            rows = rt.handle(Inbound("web", user, user, event, event_key=f"rt{k}"))
            timings[name].append(time.perf_counter() - t0)
            q["q"] = rows[-1].payload.get("q") if rows else None

        turn("start", Event("text", f"e{k}", text="/start ktp"))
        turn("consent", Event("choice", f"e{k}", choice="agree", q=q["q"]))
        for i, score in enumerate(SCORES, 1):
            turn(f"rate{i}", Event("choice", f"e{k}", choice=score, q=q["q"]))
        turn("suggestion", Event("text", f"e{k}", text="Antrean perlu nomor urut"))
    return timings, time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--residents", type=int, default=200)
    p.add_argument("--postgres", default=None, help="a PostgreSQL URL (a scratch schema is used)")
    p.add_argument("--serve", nargs=2, metavar=("URL", "PORT_FILE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve_only(*args.serve))
        return
    drop = None
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        if args.postgres:
            url, drop = scratch_schema(args.postgres, "bench_webchat_")
        app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml",
                                 survey_reminder_hours=0, _env_file=None))  # type: ignore[call-arg]
        try:
            web_t, web_s = asyncio.run(web_run(url, args.residents, tmp))
            rt_t, rt_s = runtime_run(app, args.residents)
        finally:
            app.engine.dispose()
            if drop is not None:
                drop()
    db = "PostgreSQL" if args.postgres else "SQLite"
    web_requests = sum(len(v) for v in web_t.values())
    rt_turns = sum(len(v) for v in rt_t.values())
    print(f"{db}, {args.residents} concurrent web chat residents, a full survey each")
    print(f"web chat: {web_requests} steps (post + redirected page) in {web_s:.1f} s = "
          f"{web_requests / web_s:,.0f} steps/s")
    print(f"Runtime.handle alone (same turns, same run): {rt_turns} turns in {rt_s:.1f} s = "
          f"{rt_turns / rt_s:,.0f} turns/s")
    print(f"{'step':<11} {'web p50':>8} {'web p99':>8} {'handle p50':>11} {'handle p99':>11}  (ms)")
    for name in STEPS:
        w, r = web_t.get(name, []), rt_t.get(name, [])
        print(f"{name:<11} {statistics.median(w) * 1000:8.1f} {pct(w, 99):8.1f} "
              + (f"{statistics.median(r) * 1000:11.2f} {pct(r, 99):11.2f}" if r else f"{'-':>11} {'-':>11}"))
    everything_web = [v for vals in web_t.values() for v in vals]
    everything_rt = [v for vals in rt_t.values() for v in vals]
    print(f"{'all':<11} {statistics.median(everything_web) * 1000:8.1f} {pct(everything_web, 99):8.1f} "
          f"{statistics.median(everything_rt) * 1000:11.2f} {pct(everything_rt, 99):11.2f}")


if __name__ == "__main__":
    main()
