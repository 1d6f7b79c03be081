from sqlalchemy import func, select

from bot.app import App
from bot.storage.models import Agency, Service


def test_app_migrates_and_loads_catalog(app: App) -> None:
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(Agency)) == 6  # five agencies and the one taking unlisted complaints
        assert (db.scalar(select(func.count()).select_from(Service)) or 0) >= 15
