"""Wiring: settings -> engine -> migrations -> catalog -> runtime."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import load_catalog
from bot.config import Settings
from bot.i18n import Texts
from bot.metrics import Metrics
from bot.outbox.ratelimit import SendBudget
from bot.outbox.store import SendPolicy
from bot.runtime.facade import Runtime
from bot.runtime.types import Clock, utcnow
from bot.storage.db import open_database, session_factory, transaction
from bot.storage.models import Agency

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    runtime: Runtime
    texts: Texts
    limiter: SendBudget | None = None  # send pacing of every sender (bot.scheduler.shared_limiter)

    @property
    def metrics(self) -> Metrics:
        """The counters of this app (the runtime's), served on ``/metrics``."""
        return self.runtime.metrics


def settle_heap() -> None:
    """Move what start-up built (catalog, texts, models, libraries: some 300,000 objects) out
    of the cyclic garbage collector's reach before serving.

    Python's oldest generation is collected again and again while the bot runs, and each pass
    walked all of them: about 0.19 s of a 3,000-update benchmark went into one such pause, a
    turn's latency spike each time. Collected first, so start-up's own garbage is not kept;
    frozen objects still die by reference counting.
    """
    gc.collect()
    gc.freeze()


def _data_dirs(settings: Settings) -> tuple[Path, ...]:
    """Where stored files may name a resident (digests), scrubbed on erasure."""
    return (Path(settings.digest_dir),)


def build_app(settings: Settings, clock: Clock = utcnow, load_default_catalog: bool = True) -> App:
    """Connect, migrate, load the bundled catalog on an empty database, build the runtime."""
    engine = open_database(settings.database_url)  # ConfigError in one line when unusable
    factory = session_factory(engine)
    if load_default_catalog:
        with transaction(factory) as db:
            if not db.scalar(select(func.count()).select_from(Agency)):
                stats = load_catalog(db, settings.catalog_path)
                log.info("loaded catalog %s: %s", settings.catalog_path, stats)
    texts = Texts(settings.default_language)
    runtime = Runtime(
        factory,
        clock=clock,
        texts=texts,
        default_language=settings.default_language,
        send_policy=SendPolicy.from_settings(settings),
        session_timeout=timedelta(minutes=settings.session_timeout_minutes),
        data_dirs=_data_dirs(settings),
        public_base_url=settings.public_base_url,
        survey_reminder=(
            timedelta(hours=settings.survey_reminder_hours) if settings.survey_reminder_hours else None
        ),
    )
    return App(settings, engine, factory, runtime, texts)
