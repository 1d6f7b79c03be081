"""``/metrics`` in Prometheus text format, and the gauges read from the database at scrape time.

The process's counters (bot/metrics.py) count what flowed through this process. What the
database holds is shared by every process, so it is not counted in memory but read when
Prometheus scrapes, by :class:`DatabaseCollector`, on one connection: outbox rows by status
and channel (one GROUP BY), the due backlog and stuck rows (two index range counts, as
``/healthz``), open and overdue cases per agency (one GROUP BY over the active cases), and
what channels add (:func:`add_probe`: WhatsApp's stored webhook bodies). With the database
away the scrape still answers, with ``prima_database_up 0``.

``METRICS_TOKEN`` (optional) protects ``/metrics`` and ``/healthz``'s detailed body with a
bearer token, compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import Connection, and_, case, func, or_, select

from bot.desk.states import ACTIVE
from bot.privacy import retention
from bot.storage.models import Agency, Case, OutboxMessage
from bot.web.health import outbox_counts

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
Probe = Callable[[Connection, datetime], Iterable[Metric]]
WINDOW_CHANNEL = "whatsapp"  # the channel whose rows wait for the resident's next message


def authorized(request: web.Request, token: str | None) -> bool:
    """No token configured: open. Else ``Authorization: Bearer <token>``, constant-time."""
    if not token:
        return True
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def unauthorized() -> web.Response:
    return web.Response(status=401, text="unauthorized: Authorization: Bearer <METRICS_TOKEN>\n",
                        headers={"WWW-Authenticate": 'Bearer realm="prima"'})


def outbox_rows(conn: Connection) -> list[tuple[str, str, int]]:
    """(status, channel, rows): the one GROUP BY over the outbox."""
    q = (select(OutboxMessage.status, OutboxMessage.channel, func.count())
         .group_by(OutboxMessage.status, OutboxMessage.channel))
    return [(str(s), str(c), int(n)) for s, c, n in conn.execute(q)]


def case_counts(conn: Connection, now: datetime) -> list[tuple[str, int, int]]:
    """(agency slug, open cases, of them past a deadline) for every agency, zeros included."""
    overdue = or_(Case.resolution_due < now,
                  and_(Case.first_response_at.is_(None), Case.first_response_due < now))
    q = (select(Agency.slug, func.count(Case.id),
                func.coalesce(func.sum(case((overdue, 1), else_=0)), 0))
         .select_from(Agency)
         .outerjoin(Case, and_(Case.agency_id == Agency.id, Case.status.in_(ACTIVE)))
         .group_by(Agency.slug))
    return [(str(slug), int(n), int(late)) for slug, n, late in conn.execute(q)]


class DatabaseCollector:
    """Gauges read from the database at scrape time (runs in the scrape's worker thread)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.probes: list[Probe] = []
        self._down = False

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("prima_database_up", "1 when the scrape could read the database")
        try:
            with self.app.engine.connect() as conn:
                families = list(self._read(conn, self.app.runtime.clock()))
        except Exception as exc:  # the scrape still answers: the process's own counters stand
            if not self._down:
                log.warning("metrics: database not readable (%s)", type(exc).__name__)
            self._down = True
            up.add_metric([], 0)
            yield up
            return
        self._down = False
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self, conn: Connection, now: datetime) -> Iterator[Metric]:
        rows = GaugeMetricFamily("prima_outbox_rows", "Outbox rows by status and channel",
                                 labels=["status", "channel"])
        waiting: dict[str, int] = {WINDOW_CHANNEL: 0}
        for status, channel, n in outbox_rows(conn):
            rows.add_metric([status, channel], n)
            if status == "waiting":
                waiting[channel] = waiting.get(channel, 0) + n
        yield rows
        window = GaugeMetricFamily("prima_outbox_waiting_for_window", "Outbox rows waiting for "
                                   "the resident's next message (WhatsApp's 24-hour window)",
                                   labels=["channel"])
        for channel, n in sorted(waiting.items()):
            window.add_metric([channel], n)
        yield window
        timeout = timedelta(minutes=self.app.settings.outbox_claim_timeout_minutes)
        backlog, stuck = outbox_counts(conn, now, timeout)
        yield GaugeMetricFamily("prima_outbox_backlog", "Pending outbox rows already due", value=backlog)
        yield GaugeMetricFamily("prima_outbox_stuck", "Outbox rows claimed longer than "
                                "OUTBOX_CLAIM_TIMEOUT_MINUTES", value=stuck)
        opened = GaugeMetricFamily("prima_cases_open", "Cases not yet resolved, by agency",
                                   labels=["agency"])
        late = GaugeMetricFamily("prima_cases_overdue", "Open cases past a deadline (first "
                                 "response or resolution), by agency", labels=["agency"])
        for slug, n, overdue in case_counts(conn, now):
            opened.add_metric([slug], n)
            late.add_metric([slug], overdue)
        yield opened
        yield late
        for probe in self.probes:
            yield from probe(conn, now)


COLLECTOR = web.AppKey("db_collector", DatabaseCollector)


class RetentionCollector:
    """What the daily retention job removed in this process, by kind (bot/privacy/retention.py)."""

    def collect(self) -> Iterator[Metric]:
        removed = CounterMetricFamily("prima_retention_removed", "Rows (photos for media) the "
                                      "retention job deleted or anonymised, by kind", labels=["kind"])
        for kind, count in sorted(retention.TOTALS.items()):
            removed.add_metric([kind], count)
        yield removed


def install(web_app: web.Application, app: App) -> None:
    """``GET /metrics`` for ``app``'s registry, with the database collector registered in it."""
    collector = DatabaseCollector(app)
    app.metrics.use("database", collector)
    app.metrics.use("retention", RetentionCollector())
    web_app[COLLECTOR] = collector
    token = app.settings.metrics_token
    registry = app.metrics.registry

    async def metrics(request: web.Request) -> web.Response:
        if not authorized(request, token):
            return unauthorized()
        # The collector queries the database: off the event loop.
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    web_app.router.add_get("/metrics", metrics)


def add_probe(web_app: web.Application, probe: Probe) -> None:
    """A channel's own gauges, read on the scrape's connection (no-op without ``/metrics``)."""
    collector = web_app.get(COLLECTOR)
    if collector is not None:
        collector.probes.append(probe)
