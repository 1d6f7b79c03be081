"""Wiring: settings -> engine -> migrations -> catalog -> runtime."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import load_catalog
from bot.config import ConfigError, Settings
from bot.db import make_engine, migrate, session_factory, transaction
from bot.i18n import Texts
from bot.models import Agency
from bot.outbox import SendPolicy
from bot.ratelimit import RateLimiter
from bot.runtime import Clock, Runtime, utcnow

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    runtime: Runtime
    texts: Texts
    limiter: RateLimiter | None = None  # shared send pacing (bot.scheduler.shared_limiter)


def build_app(settings: Settings, clock: Clock = utcnow, load_default_catalog: bool = True) -> App:
    """Connect, migrate, load the bundled catalog on an empty database, build the runtime."""
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(f"Cannot open the database (DATABASE_URL): {reason}") from None
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
        survey_reminder=(
            timedelta(hours=settings.survey_reminder_hours) if settings.survey_reminder_hours else None
        ),
    )
    return App(settings, engine, factory, runtime, texts)
