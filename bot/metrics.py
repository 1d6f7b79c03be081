"""The process's own counters for ``/metrics``: what flowed through it since it started.

One :class:`Metrics` per :class:`bot.runtime.facade.Runtime` (so per app), each with its own
``CollectorRegistry``: two apps in one test process never share or collide. Counted here:
updates and webhooks received, turn latency, send outcomes, digests produced, and the outbox
dispatcher's last tick (read by ``/healthz``). What lives in the database (outbox rows by
status, open cases) is counted at scrape time by bot/web/metrics.py, never kept here.

This module sits in the lowest layer (it imports only prometheus_client), so the outbox
dispatcher, the runtime and the channels can all count into it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

# A turn is a database transaction: a few ms usually, seconds when the database struggles.
TURN_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Classified(Protocol):
    """What a failed send tells the counters (:class:`bot.outbox.store.SendError`)."""

    @property
    def outcome(self) -> str: ...

    @property
    def code(self) -> str | None: ...


class SchedulerBeat:
    """When the outbox dispatcher last finished a tick, and how often it should (``/healthz``)."""

    def __init__(self, last_tick: Gauge) -> None:
        self.started_at: datetime | None = None
        self.interval: float | None = None
        self.last_tick: datetime | None = None
        self._gauge = last_tick

    def started(self, now: datetime, interval: float) -> None:
        self.started_at, self.interval = now, interval

    def ticked(self, now: datetime) -> None:
        self.last_tick = now
        self._gauge.set(now.timestamp())

    @property
    def running(self) -> bool:
        """A scheduler was started in this process, or a dispatcher has ticked in it."""
        return self.started_at is not None or self.last_tick is not None


class Metrics:
    """Counters, a histogram and the scheduler's beat, in one registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter("prima_updates_received", "Updates received from the platform "
                               "(Telegram updates, WhatsApp messages), by channel",
                               ["channel"], registry=r)
        self.webhooks = Counter("prima_webhooks_received", "Webhook requests that passed the "
                                "secret or signature check, by channel", ["channel"], registry=r)
        self.turns = Histogram("prima_turn_seconds", "Time of one turn (Runtime.handle: one "
                               "inbound event, one transaction), by channel", ["channel"],
                               buckets=TURN_BUCKETS, registry=r)
        self.sends = Counter("prima_sends", "Send attempts by channel, path (reply: right after "
                             "the turn; outbox: the dispatcher), result (sent, retry, rate_limited, "
                             "permanent, unknown, waiting) and the platform's error code",
                             ["channel", "path", "result", "code"], registry=r)
        self.digests = Counter("prima_digests_produced", "Weekly digests produced by this "
                               "process, by agency", ["agency"], registry=r)
        self.scheduler = SchedulerBeat(Gauge(
            "prima_scheduler_last_tick_timestamp_seconds",
            "Unix time of the outbox dispatcher's last finished tick", registry=r))
        self._collectors: dict[str, Collector] = {}

    def use(self, name: str, collector: Collector) -> None:
        """Register a scrape-time collector under ``name``, replacing an earlier one of that
        name (a second web app for the same runtime must not count everything twice)."""
        old = self._collectors.pop(name, None)
        if old is not None:
            self.registry.unregister(old)
        self.registry.register(collector)
        self._collectors[name] = collector

    def send(self, channel: str, path: str, error: Classified | None = None) -> None:
        """Count one send attempt: ``error`` None when it went out."""
        if error is None:
            self.sends.labels(channel, path, "sent", "").inc()
        else:
            self.sends.labels(channel, path, error.outcome, error.code or "").inc()
