"""Loading the catalog YAML: idempotent, and a broken file gets an error that says where."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.catalog import CatalogError, load_catalog, read_catalog, snapshot
from bot.storage.db import normalise_url, transaction
from bot.storage.models import Agency, Service
from tests.conftest import ROOT


def rows(app: App) -> list[tuple]:
    with app.factory() as db:
        agencies = [(a.slug, a.name, a.timezone) for a in db.scalars(select(Agency).order_by(Agency.id))]
        services = [(s.code, s.name, s.agency_id, s.aliases) for s in db.scalars(select(Service).order_by(Service.id))]
    return agencies + services


def test_loading_twice_changes_nothing(app: App) -> None:
    before = rows(app)  # build_app loaded it once into the empty database
    with transaction(app.factory) as db:
        stats = load_catalog(db, ROOT / "catalog.yaml")
    assert stats["created"] == 0 and stats["updated"] == 0 and stats["unchanged"] == len(before)
    assert rows(app) == before


def test_editing_a_service_updates_it_in_place(app: App, tmp_path: Path) -> None:
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "catalog.yaml"
    edited.write_text(text.replace("name: KTP Elektronik", "name: KTP-el"), encoding="utf-8")
    with transaction(app.factory) as db:
        stats = load_catalog(db, edited)
    assert stats["updated"] == 1 and stats["created"] == 0
    with app.factory() as db:
        assert db.scalars(select(Service.name).where(Service.code == "ktp")).one() == "KTP-el"


KIA = """      - code: kia
        name: Kartu Identitas Anak
        free_by_law: true
        aliases: [kia, kartu anak, kartu identitas anak]
        name_en: Child Identity Card (KIA)
        aliases_en: [child id card, child identity card, children's id card, kia]
"""


def load(app: App, text: str, tmp_path: Path) -> dict[str, int]:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    with transaction(app.factory) as db:
        return load_catalog(db, path)


def live(app: App) -> tuple[set[str], set[str]]:
    """Agencies and services residents can choose."""
    with app.factory() as db:
        cat = snapshot(db)
    return {a.slug for a in cat.agencies}, {s.code for s in cat.services}


def test_a_service_left_out_is_retired_and_comes_back(app: App, tmp_path: Path) -> None:
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    assert KIA in text
    stats = load(app, text.replace(KIA, ""), tmp_path)
    assert stats["retired"] == 1 and stats["created"] == 0 and stats["updated"] == 0
    assert "kia" not in live(app)[1]
    with app.factory() as db:  # kept, not deleted: its surveys and complaints still point at it
        assert db.scalars(select(Service.active).where(Service.code == "kia")).one() is False
    assert load(app, text.replace(KIA, ""), tmp_path)["retired"] == 0  # twice: no change
    stats = load(app, text, tmp_path)
    assert stats["updated"] == 1 and stats["retired"] == 0 and "kia" in live(app)[1]


def test_active_false_retires_a_service_or_an_agency(app: App, tmp_path: Path) -> None:
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    stats = load(app, text.replace("        free_by_law: true\n        aliases: [kia,",
                                   "        free_by_law: true\n        active: false\n        aliases: [kia,"),
                 tmp_path)
    assert stats["retired"] == 1 and "kia" not in live(app)[1]
    stats = load(app, text.replace("  - slug: bpprd\n", "  - slug: bpprd\n    active: false\n"), tmp_path)
    agencies, services = live(app)
    assert "bpprd" not in agencies and not {"pbb", "bphtb", "pajak-daerah"} & services
    assert stats["retired"] == 4 and stats["updated"] == 1  # bpprd and its 3 services; kia is back
    stats = load(app, text.replace("  - slug: bpprd\n", "  - slug: bpprd\n    active: true\n"), tmp_path)
    assert stats["updated"] == 4 and "bpprd" in live(app)[0]


def test_an_agency_left_out_is_retired(app: App, tmp_path: Path) -> None:
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    start, end = text.index("  - slug: bpprd\n"), text.index("  - slug: samsat\n")
    stats = load(app, text[:start] + text[end:], tmp_path)
    assert stats["retired"] == 4 and "bpprd" not in live(app)[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("agencies: [", "not valid YAML"),
        ("agencies: []", "agencies"),
        ("agencies:\n  - slug: x\n    name: Dinas X\n    short_name: X\n    timezone: Mars/Base\n"
         "    services: [{code: a, name: Layanan A}]", "unknown time zone"),
        ("agencies:\n  - slug: x\n    name: Dinas X\n    short_name: X\n"
         "    services: [{code: 'a b', name: Layanan A}]", "code must be"),
        ("agencies:\n  - slug: x\n    name: Dinas X\n    short_name: X\n"
         "    services: [{code: a, name: Layanan A}, {code: a, name: Layanan B}]", "used twice"),
    ],
)
def test_broken_catalog_files_say_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError, match=message):
        read_catalog(path)


def test_missing_catalog_file() -> None:
    with pytest.raises(CatalogError, match="not found"):
        read_catalog(Path("/nonexistent/catalog.yaml"))


def test_database_urls_are_normalised(tmp_path: Path) -> None:
    assert normalise_url("postgresql+asyncpg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    url = normalise_url(f"sqlite:///{tmp_path}/sub/prima.db")
    assert url.endswith("/sub/prima.db") and (tmp_path / "sub").is_dir()


def test_migrations_have_one_head_and_match_the_models(app: App) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from bot.storage.db import alembic_config
    from bot.storage.models import Base

    assert len(ScriptDirectory.from_config(alembic_config(app.engine)).get_heads()) == 1
    with app.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff
