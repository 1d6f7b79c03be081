"""The runtime as the channels see it: one inbound event -> one database transaction -> outbox
rows to send.

:meth:`Runtime.handle` de-duplicates the delivery, locks the contact (serialising work per
resident, also across processes on PostgreSQL), runs the turn (bot.runtime.turn: the pure
engine and every effect), and stores the new session state, all in one transaction. Nothing is
half-saved. The runtime also keeps what turns share: the catalog and per-agency caches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import agency_quiet_hours, agency_zone, snapshot, survey_window
from bot.desk import intake
from bot.i18n import TEXTS
from bot.metrics import Metrics
from bot.outbox import followups
from bot.outbox.store import SendPolicy
from bot.privacy import purge
from bot.runtime import identity
from bot.runtime.turn import Turn
from bot.runtime.types import Clock, Inbound, utcnow
from bot.storage import hotsql, roundtrips
from bot.storage.models import Agency, OutboxMessage, Service
from flows.helpers.catalog import Catalog
from flows.machine.types import Texts

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        clock: Clock = utcnow,
        texts: Texts = TEXTS,
        default_language: str = "id",
        session_timeout: timedelta = timedelta(minutes=30),
        survey_reminder: timedelta | None = timedelta(hours=3),
        catalog_ttl: timedelta = timedelta(seconds=60),
        data_dirs: tuple[Path, ...] = (),
        send_policy: SendPolicy | None = None,
        metrics: Metrics | None = None,
        public_base_url: str | None = None,
    ) -> None:
        self.factory = factory
        self.metrics = metrics or Metrics()  # this app's counters (/metrics), one registry each
        self.public_base_url = public_base_url  # the web desk, for /masuk links
        self.send_policy = send_policy or SendPolicy()  # immediate replies fail like outbox sends
        self.clock = clock
        self.texts = texts
        self.default_language = default_language
        self.session_timeout = session_timeout
        self.catalog_ttl = catalog_ttl
        self.survey_reminder = survey_reminder  # None: no reminder for unfinished surveys
        self.data_dirs = data_dirs  # stored files scrubbed on erasure (digests)
        self.erasures: set[int] = set()  # erasure confirmations not yet sent (bot/privacy/purge.py)
        self._catalog: Catalog | None = None
        self._catalog_at: datetime | None = None
        self._service_ids: dict[str, tuple[int, int]] | None = None
        self._quiet: dict[int, Callable[[datetime], datetime]] = {}
        self._generation = 0  # catalog reloads so far: what is cached with it is per generation
        self._rules: dict[int, str] = {}
        self._rules_at = -1
        self._periods: dict[int, tuple[ZoneInfo, int | None]] = {}
        self._periods_at = -1
        self.engine: Engine = factory.kw["bind"]
        self.postgres = factory.kw["bind"].dialect.name == "postgresql"
        self.sql = hotsql.for_dialect(factory.kw["bind"].dialect.name)
        self._raw: hotsql.RawSQL | None = None
        self._turn_seconds: dict[str, Any] = {}

    @property
    def raw(self) -> hotsql.RawSQL:
        """The hot statements compiled for this engine (once it has connected and knows its server)."""
        if self._raw is None:
            self._raw = hotsql.RawSQL(self.factory.kw["bind"].dialect)
        return self._raw

    # ------------------------------------------------------------------ catalog

    def catalog(self, db: Session | Callable[[], Session], now: datetime) -> Catalog:
        """The catalog, reloaded after ``catalog_ttl``. ``db`` may be a function giving a
        session, called only for a reload (most turns never need the ORM)."""
        if self._catalog is None or self._catalog_at is None or now - self._catalog_at > self.catalog_ttl:
            self._catalog = snapshot(db() if callable(db) else db)
            self._catalog_at = now
            self._generation += 1  # what is cached with the catalog is read again
        return self._catalog

    def reload_catalog(self) -> None:
        self._catalog = None

    def service_ids(self, db: Session | Callable[[], Session], now: datetime,
                    ) -> dict[str, tuple[int, int]]:
        """Service code -> (service id, agency id), refreshed with the catalog."""
        if self._service_ids is None or self._catalog_at is None or now - self._catalog_at > self.catalog_ttl:
            db = db() if callable(db) else db
            self._service_ids = {
                code: (sid, aid)
                for code, sid, aid in db.execute(select(Service.code, Service.id, Service.agency_id))
            }
        return self._service_ids

    def survey_rule(self, db: Session | Callable[[], Session], agency_id: int) -> str:
        """The agency's survey escalation rule (bot.desk.intake.survey_rule), refreshed with the catalog."""
        if self._rules_at != self._generation:
            self._rules, self._rules_at = {}, self._generation
        if agency_id not in self._rules:
            agency = (db() if callable(db) else db).get(Agency, agency_id)
            assert agency is not None
            self._rules[agency_id] = intake.survey_rule(agency)
        return self._rules[agency_id]

    def survey_period(self, db: Session | Callable[[], Session], service_id: int, agency_id: int,
                      ) -> tuple[ZoneInfo, int | None]:
        """A service's questionnaire period (its agency's zone, ``survey_once_per`` in hours or
        None for the local day), refreshed with the catalog: a survey check reads no rows for it."""
        if self._periods_at != self._generation:
            self._periods, self._periods_at = {}, self._generation
        if service_id not in self._periods:
            session = db() if callable(db) else db
            service, agency = session.get(Service, service_id), session.get(Agency, agency_id)
            assert service is not None and agency is not None
            self._periods[service_id] = (ZoneInfo(agency_zone(agency)),
                                         survey_window(service.survey_once_per))
        return self._periods[service_id]

    def agency_quiet(self, db: Session | Callable[[], Session], agency_id: int,
                     ) -> Callable[[datetime], datetime]:
        """Quiet-hours adjustment for an agency's scheduled messages (cached per agency)."""
        if agency_id not in self._quiet:
            agency = (db() if callable(db) else db).get(Agency, agency_id)
            assert agency is not None
            tz, start, end = agency_quiet_hours(agency).as_tuple()  # checked: bad rows fall back
            self._quiet[agency_id] = lambda when: followups.quiet_adjust(when, tz, start, end)
        return self._quiet[agency_id]

    # ------------------------------------------------------------------ entry point

    def handle(self, inbound: Inbound) -> list[OutboxMessage]:
        """Process one inbound event. Returns the committed replies to send now (status claimed).

        Its time goes to the turn latency histogram (``prima_turn_seconds``), failures too.
        """
        started = time.perf_counter()
        try:
            return self._handle(inbound)
        finally:
            histogram = self._turn_seconds.get(inbound.channel)
            if histogram is None:  # a labelled child per channel, looked up once
                histogram = self._turn_seconds[inbound.channel] = self.metrics.turns.labels(inbound.channel)
            histogram.observe(time.perf_counter() - started)

    def _handle(self, inbound: Inbound) -> list[OutboxMessage]:
        now = self.clock()
        # A Core transaction; an ORM session joins it only in turns that need one: the
        # session's own transaction bookkeeping cost as much as the rest of a short turn.
        work: Turn | None = None
        try:
            # PostgreSQL: BEGIN and COMMIT go in the turn's batches (bot/storage/roundtrips.py)
            with self.engine.connect() as conn, roundtrips.transaction(conn) as (cur, own):
                contact = identity.arrive(self, cur, inbound, now, begin=own)
                if contact is None:
                    log.info("duplicate delivery %s/%s ignored", inbound.channel, inbound.event_key)
                    return []
                work = Turn(self, conn, inbound, contact, now, cur)
                work.run()
                # COMMIT goes with the last batch unless the ORM still has to flush
                work.persist(commit=own and work.orm is None and not work.later)
                for row in work.later:  # a staff room on another channel: its dispatcher sends it
                    if row.channel != inbound.channel:
                        row.status, row.claimed_at = "pending", None
                if work.orm is not None:
                    work.orm.flush()  # what the session holds is written before the commit
                if work.erased:
                    self.erasures.update(row.id for row in work.outbox)
                # staff-room rows last: their failure never holds a reply
                return work.outbox + [r for r in work.later if r.channel == inbound.channel]
        finally:
            if work is not None and work.orm is not None:
                work.orm.close()

    def settle_erasures(self, sent_ids: Iterable[int]) -> None:
        """After a send: an erasure confirmation that went out is deleted (bot/privacy/purge.py).

        Costs nothing for other rows; rows sent by another path are purged by the scheduler.
        """
        done = self.erasures.intersection(sent_ids)
        if not done:
            return
        self.erasures -= done
        with self.factory() as db, db.begin():
            purge.purge_sent(db)
