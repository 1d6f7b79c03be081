"""Crash test for long polling: residents write, the bot is killed (-9) mid-run and restarted.

The bot runs as ``python bot.py`` (a real process, long polling) against a fake Bot API in
this process. Residents each send ``--messages`` texts; once ``--kill-at`` of the replies went
out the bot gets SIGKILL (or ``--signal TERM``), is started again, and the run ends when every
update is stored. Prints updates sent / stored / lost and replies owed / sent; lost must be 0.

    python bench/bench_crash.py                                # SQLite, 200 x 14
    python bench/bench_crash.py --residents 500
    python bench/bench_crash.py --postgres postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.storage.db import scratch_schema  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402
from tests.polling_load import (  # noqa: E402
    BotProcess,
    Residents,
    tally,
    traceback_lines,
    until_stored,
)


async def run(args: argparse.Namespace, database_url: str, workdir: Path) -> int:
    server = FakeTelegram()
    await server.start()
    bot = BotProcess(server, database_url, workdir)
    # Replies the killed process had claimed are resent once they are this old (the dispatcher
    # looks once a minute); the default of 10 minutes would make the run wait that long.
    bot.env["OUTBOX_CLAIM_TIMEOUT_MINUTES"] = str(args.claim_timeout)
    residents = Residents(server, count=args.residents, messages=args.messages)
    sig = signal.SIGKILL if args.signal == "KILL" else signal.SIGTERM
    try:
        await bot.start()
        started = time.monotonic()
        writing = asyncio.create_task(residents.write(seconds=args.seconds))
        target = int(residents.total * args.kill_at)
        await server.wait_for(lambda: len(server.sent) >= target, timeout=600)
        confirmed = len(residents.update_ids) - len(server.pending)
        code = await bot.stop(sig)
        print(f"SIG{args.signal} after {time.monotonic() - started:.1f} s: "
              f"{len(residents.update_ids)} updates sent so far, {confirmed} confirmed, "
              f"{len(server.sent)} replies delivered; exit code {code}")
        await bot.start()
        await writing
        await until_stored(database_url, residents, timeout=600)
        waited = time.monotonic()
        while time.monotonic() - waited < args.claim_timeout * 60 + 120:
            now = await asyncio.to_thread(tally, database_url, residents)
            if not now.replies_claimed and not now.replies_pending:
                break
            await asyncio.sleep(1)
        print(f"claimed replies settled {time.monotonic() - waited:.0f} s after every update was stored")
        await bot.stop(signal.SIGTERM)
        result = tally(database_url, residents)  # after the graceful stop: nothing in flight
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            bot.proc.kill()
        await server.stop()
    for line in result.lines():
        print(line)
    first = (workdir / "bot-1.err").read_text(errors="replace")
    print(f"tracebacks in the stopped process's stderr: {len(traceback_lines(first))}")
    return 0 if result.lost == 0 and result.out_of_order == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--messages", type=int, default=14, help="messages per resident")
    parser.add_argument("--seconds", type=float, default=10.0, help="spread the writing over this")
    parser.add_argument("--kill-at", type=float, default=0.4,
                        help="stop the bot once this share of the replies went out")
    parser.add_argument("--signal", choices=("KILL", "TERM"), default="KILL")
    parser.add_argument("--claim-timeout", type=float, default=0.5,
                        help="OUTBOX_CLAIM_TIMEOUT_MINUTES for the bot (claimed replies resent after it)")
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch schema is used)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.postgres:
            url, drop = scratch_schema(args.postgres, prefix="bench_crash_")
            try:
                return asyncio.run(run(args, url, workdir))
            finally:
                drop()
        return asyncio.run(run(args, f"sqlite:///{workdir / 'prima.db'}", workdir))


if __name__ == "__main__":
    sys.exit(main())
