"""Shared fixtures: real SQLite files, real PostgreSQL (one schema per test), an injected clock."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.app import App, build_app
from bot.config import Settings
from bot.storage.db import make_engine, migrate, scratch_schema

PG_URL = os.environ.get("PRIMA_TEST_POSTGRES_URL", "")
ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    """An injected clock: tests move time forward instead of sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'prima.db'}"


def _pg_schema_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PostgreSQL tests need PRIMA_TEST_POSTGRES_URL (CI sets it)")
    url, drop = scratch_schema(PG_URL, prefix="t_")
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_schema_url()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'prima.db'}"
    else:
        yield from _pg_schema_url()


def free_port() -> int:
    """A port nobody listens on now: the bot's HTTP server runs in every mode, so each test
    process gets its own HTTP_PORT instead of the default 8080 (tests run side by side)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def _migrated_template() -> Path:
    """One SQLite file migrated to the newest revision, made once per test run."""
    folder = tempfile.mkdtemp(prefix="prima-template-")
    atexit.register(shutil.rmtree, folder, True)
    template = Path(folder) / "migrated.db"
    engine = make_engine(f"sqlite:///{template}")
    migrate(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return template


def _migrated_sqlite(url: str) -> None:
    """A new SQLite file starts as a copy of :func:`_migrated_template`: the app's own
    migration then finds it at the newest revision (0.03 s instead of 0.4-0.7 s per app, and
    most tests build one). Files that already exist are left as they are."""
    if not url.startswith("sqlite:///"):
        return
    target = Path(url.removeprefix("sqlite:///"))
    if target.exists() or not target.parent.is_dir():
        return
    shutil.copyfile(_migrated_template(), target)


def make_app(url: str, clock: FakeClock, **overrides: object) -> App:
    _migrated_sqlite(url)
    settings = Settings(database_url=url, catalog_path=ROOT / "catalog.yaml", **overrides)  # type: ignore[arg-type]
    return build_app(settings, clock=clock)


@pytest.fixture
def app(db_url: str, clock: FakeClock) -> Iterator[App]:
    application = make_app(db_url, clock)
    yield application
    application.engine.dispose()


@pytest.fixture
def sqlite_app(sqlite_url: str, clock: FakeClock) -> Iterator[App]:
    application = make_app(sqlite_url, clock)
    yield application
    application.engine.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium per browser-test module (tests/browser_support.py)."""
    from playwright.async_api import async_playwright

    from tests.browser_support import ARGS, CHROMIUM

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    """Where browser tests leave screenshots: $PRIMA_TEST_ARTEFACTS, or the test's tmp dir."""
    folder = Path(os.environ.get("PRIMA_TEST_ARTEFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
