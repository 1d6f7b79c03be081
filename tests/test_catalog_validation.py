"""One agency's bad catalog data never stops another agency's work.

A bad value in the file is refused at load with one line naming the file, the agency and the
field, and nothing is written. A bad row that reached the database some other way falls back
to the defaults at run time, with one log line, and the other agencies go on.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot import catalog
from bot.app import App
from bot.catalog import CatalogError, load_catalog
from bot.desk import cases, outgoing
from bot.outbox import followups
from bot.reports.digest.job import digest_time, produce_digest, register_digest_jobs
from bot.runtime.types import local_time
from bot.storage.db import transaction
from bot.storage.models import Agency, Service
from tests.conftest import ROOT, FakeClock
from tests.outbox_support import RecordingSender, add_rows, dispatcher

BASE = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
SAMSAT = "  - slug: samsat\n"


def with_field(line: str) -> str:
    """The bundled catalog with ``line`` set in the samsat agency (replacing that key if there)."""
    head, _, rest = BASE.partition(SAMSAT)
    block, sep, tail = rest.partition("\n  - slug:")
    key = line.split(":", 1)[0]
    block = "\n".join(x for x in block.split("\n") if not x.startswith(f"    {key}:"))
    return head + SAMSAT + f"    {line}\n" + block + sep + tail


def snapshot_rows(app: App) -> list[tuple[object, ...]]:
    with app.factory() as db:
        return ([(a.slug, a.timezone, a.quiet_start, a.quiet_end, a.followup_days, a.settings)
                 for a in db.scalars(select(Agency).order_by(Agency.id))]
                + [(s.code, s.name) for s in db.scalars(select(Service).order_by(Service.id))])


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ('quiet_start: "25:99"', "quiet_start", "HH:MM"),
        ('quiet_end: "7"', "quiet_end", "HH:MM"),
        ("timezone: Asia/Bungo", "timezone", "unknown time zone"),
        ("followup_days: 0", "followup_days", "greater than or equal to 1"),
        ('digest_time: "24:00"', "digest_time", "HH:MM"),
        ('ikm_weights: "0.2"', "ikm_weights", "exact"),
        ("quiet_hours: 21-07", "quiet_hours", "Extra inputs are not permitted"),
        ('sla: {office_hours: "8-16:00:00"}', "sla", "office_hours"),
    ],
)
def test_a_bad_field_is_refused_naming_file_agency_and_field(
    app: App, tmp_path: Path, line: str, field: str, message: str
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(with_field(line).replace("name: KTP Elektronik", "name: KTP-el"), encoding="utf-8")
    before = snapshot_rows(app)
    with pytest.raises(CatalogError) as err, transaction(app.factory) as db:
        load_catalog(db, path)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: agency 'samsat': {field}") and message in text
    assert snapshot_rows(app) == before  # the good edit in the same file was not applied either


def test_duplicate_slug_and_binary_file_are_refused(app: App, tmp_path: Path) -> None:
    dup = tmp_path / "dup.yaml"
    dup.write_text(BASE.replace("slug: bpprd", "slug: samsat"), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"agency slug used twice: samsat$"):
        catalog.read_catalog(dup)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00")
    with pytest.raises(CatalogError, match="not a UTF-8 text file"):
        catalog.read_catalog(binary)


def test_optional_digest_settings_are_stored_and_removed_again(app: App, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(with_field('digest_time: "06:45"').replace(
        SAMSAT, SAMSAT + '    ikm_weights: "0.111"\n', 1), encoding="utf-8")
    with transaction(app.factory) as db:
        load_catalog(db, path)
    with app.factory() as db:
        samsat = db.scalars(select(Agency).where(Agency.slug == "samsat")).one()
        assert samsat.settings["digest_time"] == "06:45" and samsat.settings["ikm_weights"] == "0.111"
        assert digest_time(app, samsat) == (6, 45)
    with transaction(app.factory) as db:
        load_catalog(db, ROOT / "catalog.yaml")
    with app.factory() as db:
        samsat = db.scalars(select(Agency).where(Agency.slug == "samsat")).one()
        assert "digest_time" not in samsat.settings and "ikm_weights" not in samsat.settings


async def test_a_bad_row_in_the_database_does_not_stop_other_agencies(
    app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    catalog._reported.clear()
    with app.factory() as db, db.begin():
        ids = {a.slug: a.id for a in db.scalars(select(Agency))}
        db.execute(update(Agency).where(Agency.slug == "samsat").values(
            quiet_start="25:99", timezone="Mars/Base", followup_days=0,
            settings={"office_hours": "pagi", "digest_time": "99:99", "ikm_weights": "x",
                      "complaint_sla_days": "lama"}))
    clock.now = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # Monday 12:00 WIB: nobody is quiet
    add_rows(app.factory, 3, lambda i: clock.now - timedelta(minutes=1), clock.now,
             agency_id=ids["samsat"], urgent=False, prefix="bad")
    add_rows(app.factory, 3, lambda i: clock.now - timedelta(minutes=1), clock.now,
             agency_id=ids["disdukcapil"], urgent=False, prefix="good")
    sender = RecordingSender(clock=clock)
    caplog.set_level(logging.INFO)
    for _ in range(3):  # several ticks, one log line
        await dispatcher(app.factory, sender, clock).drain()
    assert sorted(sender.counts()) == ["bad0", "bad1", "bad2", "good0", "good1", "good2"]
    quiet_lines = [r for r in caplog.records if "samsat" in r.getMessage() and "quiet hours" in r.getMessage()]
    assert len(quiet_lines) == 1 and quiet_lines[0].levelno == logging.ERROR
    assert not [r for r in caplog.records if r.exc_info]

    # Everything else that reads agency settings at run time falls back the same way.
    with app.factory() as db:
        samsat = db.get(Agency, ids["samsat"])
        assert samsat is not None
        assert catalog.agency_quiet_hours(samsat).as_tuple() == ("Asia/Jakarta", "21:00", "07:00")
        assert catalog.agency_followup_days(samsat) == 7
        assert followups.agency_quiet(samsat, clock.now) == clock.now
        assert app.runtime.agency_quiet(db, samsat.id)(clock.now) == clock.now
        sla = cases.policy(samsat)
        assert sla.first_response_hours == 8 and sla.hours.tz == "Asia/Jakarta"
        assert digest_time(app, samsat) == (7, 30)
        assert catalog.agency_ikm_weights(samsat) == "exact"
        assert outgoing.local_time(clock.now, catalog.agency_zone(samsat)).endswith("WIB")
        assert local_time(clock.now, samsat.timezone).endswith("WIB")  # a resident's ticket lookup
        names = [a.name for a in catalog.snapshot(db).agencies]
        assert len(names) == len(ids)
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone="UTC")
    register_digest_jobs(scheduler, app)  # a bad zone used to stop every digest job
    assert {j.id for j in scheduler.get_jobs()} == {f"digest:{slug}" for slug in ids}
    result = produce_digest(app, "samsat", None, clock.now)
    assert result is not None
