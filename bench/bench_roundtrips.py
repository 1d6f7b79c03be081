"""What one round trip to PostgreSQL costs the bot's own process, and what a turn's shape costs.

A turn's statements are cheap for the server; each wait for its answer is not: the thread
blocks, both processes are woken, and on a virtualised host the kernel's share of a wake-up is
several times the driver's Python. This measures, on one connection and in this process only
(user and kernel CPU of the thread, ``getrusage``), the same transaction of three small writes
sent three ways:

- ``psycopg default``: psycopg's own transaction: BEGIN waited for, each statement waited for,
  COMMIT waited for (5 round trips);
- ``pipeline``: the statements in one pipeline, psycopg's BEGIN and COMMIT on their own
  (3 round trips, what turns did before ``bot.storage.roundtrips``);
- ``own BEGIN/COMMIT``: BEGIN, the statements and COMMIT in one pipeline (1 round trip);
- ``one message``: BEGIN, the statements and COMMIT as one simple query, values bound on the
  client (1 round trip, and none of the pipeline's per-statement bookkeeping). The bot does not
  send turns this way: the values become part of the SQL text, and PostgreSQL writes the text
  of a failing statement to its log by default (``log_min_error_statement``), so a failed
  turn would put a resident's words there; bound parameters are not logged on error;
- ``libpq pipeline``: BEGIN, the statements and COMMIT in one pipeline of libpq's, driven by
  ``bot.storage.pgpipe`` (what the bot does): values bound on the server, statements sent
  unnamed (on a connection where psycopg prepares statements itself) or ``prepared`` once
  per connection (the bot's engine, where psycopg prepares nothing).

Besides the bot's CPU it prints the server's: the CPU time of the connection's backend
process over the same transactions (from ``/proc``, so only with the server on this host).

    python bench/bench_roundtrips.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.storage import pgpipe  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402

WRITE = "INSERT INTO bench_rt (n) VALUES (%s)"


def backend_cpu(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds of the connection's server process so far (None: not on this host)."""
    try:
        with open(f"/proc/{conn.info.backend_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(label: str, trips: int, n: int, run: Callable[[int], None],
            conn: psycopg.Connection[Any]) -> None:
    for i in range(50):  # warm: statements prepared, buffers sized
        run(i)
    s0 = backend_cpu(conn)
    r0, w0 = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter()
    for i in range(n):
        run(i)
    r1, wall = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter() - w0
    user = (r1.ru_utime - r0.ru_utime) / n * 1e6
    system = (r1.ru_stime - r0.ru_stime) / n * 1e6
    waits = (r1.ru_nvcsw - r0.ru_nvcsw) / n
    s1 = backend_cpu(conn)
    server = "" if s0 is None or s1 is None else f"  server CPU {(s1 - s0) / n * 1e6:6.1f} us"
    print(f"{label:24} {trips} trips  CPU {user + system:6.1f} us/transaction "
          f"(user {user:6.1f}, kernel {system:6.1f})  wall {wall / n * 1e6:7.1f} us  "
          f"blocking waits {waits:4.1f}{server}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--postgres", required=True, help="a PostgreSQL URL (a scratch schema is made)")
    p.add_argument("--transactions", type=int, default=2000)
    args = p.parse_args()
    url, drop = scratch_schema(args.postgres, prefix="bench_")
    try:
        from sqlalchemy.engine import make_url

        u = make_url(url)
        options = u.query.get("options")
        where = {"host": u.host or "127.0.0.1", "port": u.port or 5432, "user": u.username,
                 "password": u.password, "dbname": u.database,
                 "options": options if isinstance(options, str) else None}
        conn = psycopg.connect(**where)  # type: ignore[arg-type]
        own = psycopg.connect(**where, prepare_threshold=None)  # type: ignore[arg-type]
        conn.execute("CREATE TABLE bench_rt (id bigserial PRIMARY KEY, n int)")
        conn.commit()
        cur = conn.cursor()

        def default(i: int) -> None:
            for k in range(3):
                cur.execute(WRITE, (i + k,))
            conn.commit()

        def pipelined(i: int) -> None:
            with conn.pipeline():
                for k in range(3):
                    cur.execute(WRITE, (i + k,))
            conn.commit()

        def own_begin(i: int) -> None:
            conn.autocommit = True
            with conn.pipeline():
                cur.execute(b"BEGIN", prepare=False)
                for k in range(3):
                    cur.execute(WRITE, (i + k,))
                cur.execute(b"COMMIT", prepare=False)
            conn.autocommit = False

        ccur = psycopg.ClientCursor(conn)

        def message(i: int) -> None:
            conn.autocommit = True
            ccur.execute(";".join(["BEGIN", *(ccur.mogrify(WRITE, (i + k,)) for k in range(3)), "COMMIT"]))
            conn.autocommit = False

        numbered = WRITE.replace("%s", "$1").encode()

        def libpq(connection: psycopg.Connection[Any]) -> Callable[[int], None]:
            def run(i: int) -> None:
                connection.autocommit = True
                pipe = pgpipe.Pipe(connection)
                pipe.add(b"BEGIN", None)
                for k in range(3):
                    pipe.add(numbered, [i + k])
                pipe.add(b"COMMIT", None)
                pipe.send()
                connection.autocommit = False
            return run

        print(f"{args.transactions} transactions of three INSERTs each, one connection, "
              "CPU of this thread only, then of the connection's server process")
        measure("psycopg default", 5, args.transactions, default, conn)
        measure("pipeline", 3, args.transactions, pipelined, conn)
        measure("own BEGIN/COMMIT", 1, args.transactions, own_begin, conn)
        measure("one message", 1, args.transactions, message, conn)
        measure("libpq pipeline", 1, args.transactions, libpq(conn), conn)
        measure("libpq pipeline, prepared", 1, args.transactions, libpq(own), own)
        rows = conn.execute("SELECT count(*) FROM bench_rt").fetchone()
        expected = 6 * 3 * (args.transactions + 50)
        if rows is None or rows[0] != expected:
            raise SystemExit(f"{rows} rows stored, {expected} expected")
        conn.close()
        own.close()
    finally:
        drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
