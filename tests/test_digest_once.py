"""A digest for (agency, week) is produced once: two processes racing, a retry after a failure."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.app import App
from bot.reports.digest.job import payloads, produce_digest, run_digest_job
from bot.storage.models import Contact, Digest, OutboxMessage
from tests.conftest import FakeClock, make_app
from tests.digest_data import add_head, add_response

DIGEST_TIME = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # Monday 07:30 WIB
MESSAGES_PER_HEAD = 3  # photo, text, spreadsheet


def counts(app: App) -> tuple[int, int]:
    with app.factory() as db:
        return (
            db.scalar(select(func.count()).select_from(Digest)) or 0,
            db.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "digest")) or 0,
        )


def _race(url: str, out_dir: str, barrier: Any, results: Any) -> None:
    app = make_app(url, FakeClock(DIGEST_TIME), digest_dir=Path(out_dir))
    try:
        barrier.wait(timeout=60)
        produced = produce_digest(app, "disdukcapil", None, DIGEST_TIME)
        results.put(None if produced is None else (produced.recipients, produced.messages))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(repr(exc))
    finally:
        app.engine.dispose()


@pytest.fixture
def seeded(app: App, tmp_path: Path) -> App:
    app.settings.digest_dir = tmp_path / "digests"
    add_head(app, "disdukcapil", "501", DIGEST_TIME)
    add_head(app, "disdukcapil", "502", DIGEST_TIME, language="en")
    add_head(app, "samsat", "503", DIGEST_TIME)  # another agency's head gets nothing
    add_response(app, "ktp", datetime(2026, 11, 18, 3, tzinfo=UTC), [4, 3, 3, 3, 4, 3, 3, 3, 4])
    return app


def test_two_processes_produce_it_once(seeded: App, db_url: str, tmp_path: Path) -> None:
    with seeded.factory() as db, db.begin():  # one language: each process renders one set of files
        db.execute(update(Contact).where(Contact.external_id == "502").values(language="id"))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(db_url, str(tmp_path / "digests"), barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(outcomes, key=str) == [(2, 2 * MESSAGES_PER_HEAD), None]
    assert counts(seeded) == (1, 2 * MESSAGES_PER_HEAD)
    with seeded.factory() as db:
        chats = [r.chat_id for r in db.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
        row = db.scalars(select(Digest)).one()
    assert sorted(chats) == ["501"] * 3 + ["502"] * 3
    assert (row.week, row.recipients, row.summary["ikm"]) == ("2026-W47", 2, "83.33")


def test_retry_after_a_failure_produces_it_once(
    seeded: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = payloads
    calls = {"n": 0}

    def failing_once(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        calls["n"] += 1
        if calls["n"] == 2:  # fails for the second head, after the row and first messages were added
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr("bot.reports.digest.job.payloads", failing_once)
    with pytest.raises(OSError, match="disk full"):
        produce_digest(seeded, "disdukcapil", "2026-W47", DIGEST_TIME)
    assert counts(seeded) == (0, 0)  # nothing half-done stays behind
    produced = produce_digest(seeded, "disdukcapil", "2026-W47", DIGEST_TIME)
    assert produced is not None and produced.messages == 2 * MESSAGES_PER_HEAD
    assert produce_digest(seeded, "disdukcapil", "2026-W47", DIGEST_TIME) is None
    assert counts(seeded) == (1, 2 * MESSAGES_PER_HEAD)
    # the English-speaking head gets the English digest
    with seeded.factory() as db:
        texts = [r.payload["text"] for r in db.scalars(
            select(OutboxMessage).where(OutboxMessage.chat_id == "502").order_by(OutboxMessage.id))]
    assert texts[1].startswith("📊 Weekly digest, Disdukcapil")


def test_the_scheduled_job_firing_twice_sends_once(seeded: App) -> None:
    seeded.runtime.clock = FakeClock(DIGEST_TIME)
    first = asyncio.run(run_digest_job(seeded, "disdukcapil"))
    again = asyncio.run(run_digest_job(seeded, "disdukcapil"))
    assert first is not None and first.week == "2026-W47"
    assert again is None
    assert counts(seeded) == (1, 2 * MESSAGES_PER_HEAD)
