import gc
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.config import Settings
from bot.storage.models import Agency, Service


def test_app_migrates_and_loads_catalog(app: App) -> None:
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(Agency)) == 6  # five agencies and the one taking unlisted complaints
        assert (db.scalar(select(func.count()).select_from(Service)) or 0) >= 15


def test_bot_serves_with_startup_heap_out_of_the_collectors_reach(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python bot.py`` freezes what start-up built before the channel runs, so the oldest
    generation's collections do not walk the catalog, texts and libraries again and again."""
    from bot.cli import main as cli

    seen: list[int] = []

    def runner(app: App) -> Callable[[], int]:
        assert gc.get_freeze_count() == 0  # nothing frozen while start-up builds
        def run() -> int:
            seen.append(gc.get_freeze_count())
            return 0

        return run

    monkeypatch.setattr(cli, "_runner", runner)
    try:
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'prima.db'}")
        assert cli._run(settings) == 0
    finally:
        gc.unfreeze()
    assert seen and seen[0] > 100_000  # the catalog, models and libraries, not a handful
