"""Residents writing to a real bot process (``python bot.py``, long polling) through the fake
Bot API, and a tally of what the database stored and what was answered.

Used by the crash/stop tests and by ``bench/bench_crash.py``: the bot runs as a subprocess so
a kill -9 is a real crash, not a cancelled task.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, text

from bot.storage.db import normalise_url
from tests.conftest import free_port
from tests.fake_telegram import FakeTelegram, User

ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    """``python bot.py`` in polling mode against ``server``; output goes to files, not pipes
    (a pipe nobody reads would block the bot once full)."""

    def __init__(self, server: FakeTelegram, database_url: str, workdir: Path,
                 log_level: str = "WARNING") -> None:
        self.env = {**os.environ, "TELEGRAM_BOT_TOKEN": server.token,
                    "TELEGRAM_API_BASE": server.base_url, "DATABASE_URL": database_url,
                    "LOG_LEVEL": log_level, "PYTHONUNBUFFERED": "1",
                    "HTTP_PORT": str(free_port())}  # the HTTP server runs in polling mode too
        self.env.pop("TELEGRAM_WEBHOOK_URL", None)
        self.server = server
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0
        self._err: IO[bytes] | None = None

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"bot-{self.runs}.err"

    async def start(self) -> None:
        """Start the process and wait until it polls (it deletes any webhook first)."""
        self.runs += 1
        before = len(self.server.calls("deleteWebhook"))
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115 (closed in wait())
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), cwd=self.workdir, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=self._err)
        await self.server.wait_for(lambda: len(self.server.calls("deleteWebhook")) > before,
                                   timeout=60)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await self.wait(timeout)

    async def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        finally:
            if self._err is not None:
                self._err.close()
                self._err = None
        return code

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@dataclass
class Residents:
    """``count`` residents who each send ``messages`` texts, a round at a time."""

    server: FakeTelegram
    count: int
    messages: int = 14
    first_id: int = 810_000
    update_ids: list[int] = field(default_factory=list)
    users: list[User] = field(init=False)

    def __post_init__(self) -> None:
        self.users = [User(id=self.first_id + n, first_name=f"Warga {n}", language_code="id")
                      for n in range(self.count)]

    @property
    def total(self) -> int:
        return self.count * self.messages

    async def write(self, seconds: float) -> None:
        """Queue every message over about ``seconds``, each resident's in order."""
        pause = seconds / max(1, self.messages)
        for n in range(self.messages):
            for user in self.users:
                upd = self.server.message(user, "/start" if n == 0 else f"pesan {n} dari {user.id}")
                self.update_ids.append(upd["update_id"])
            await asyncio.sleep(pause)


@dataclass
class Tally:
    sent: int  # updates the residents sent
    stored: int  # of those, stored (an inbound_events row)
    out_of_order: int  # residents whose updates were stored in another order than sent
    replies_owed: int  # reply rows the turns committed
    replies_sent: int
    replies_claimed: int  # taken for sending by a process that then died
    replies_pending: int

    @property
    def lost(self) -> int:
        return self.sent - self.stored

    def lines(self) -> list[str]:
        return [f"updates sent {self.sent}, stored {self.stored}, lost {self.lost}, "
                f"residents out of order {self.out_of_order}",
                f"replies owed {self.replies_owed}, sent {self.replies_sent}, "
                f"claimed but unsent {self.replies_claimed}, pending {self.replies_pending}"]


def tally(database_url: str, residents: Residents) -> Tally:
    """Read what the bot stored (its own tables, as an operator would)."""
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT event_key FROM inbound_events WHERE channel = 'telegram' ORDER BY id")).all()
            replies: dict[str, int] = {str(status): int(n) for status, n in conn.execute(text(
                "SELECT status, count(*) FROM outbox WHERE kind = 'reply' GROUP BY status"))}
    finally:
        engine.dispose()
    stored_order = [int(r[0]) for r in rows if r[0].isdigit()]
    sent = set(residents.update_ids)
    stored = [u for u in stored_order if u in sent]
    owner: dict[int, int] = {}
    for n, uid in enumerate(residents.update_ids):
        owner[uid] = residents.users[n % residents.count].id
    per_resident: dict[int, list[int]] = {}
    for uid in stored:
        per_resident.setdefault(owner[uid], []).append(uid)
    out_of_order = sum(1 for ids in per_resident.values() if ids != sorted(ids))
    return Tally(sent=len(sent), stored=len(set(stored)), out_of_order=out_of_order,
                 replies_owed=sum(replies.values()), replies_sent=replies.get("sent", 0),
                 replies_claimed=replies.get("claimed", 0), replies_pending=replies.get("pending", 0))


async def until_stored(database_url: str, residents: Residents, timeout: float = 120) -> Tally:
    """Wait (polling the database, as an operator would) until every update is stored, no
    reply is pending and the claimed ones stopped changing (sending has settled), or
    ``timeout``; returns the last tally."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Tally | None = None
    steady = 0
    while True:
        result = await asyncio.to_thread(tally, database_url, residents)
        settled = result.stored == result.sent and not result.replies_pending
        steady = steady + 1 if settled and last is not None and last == result else 0
        if steady >= 3 or loop.time() > deadline:
            return result
        last = result
        await asyncio.sleep(0.5)


def traceback_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Traceback" in line]


def count(lines: str, needle: str) -> int:
    return sum(1 for line in lines.splitlines() if needle in line)

