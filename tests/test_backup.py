"""``python bot.py backup`` / ``restore``: round trips on SQLite (also while another connection
writes) and PostgreSQL (pg_dump / pg_restore into a fresh database), and the refusals."""

from __future__ import annotations

import json
import sqlite3
import tarfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, insert, select, text

from bot.cli import backup as bk
from bot.cli import main as cli
from bot.config import Settings
from bot.storage.db import make_engine, normalise_url
from bot.storage.models import Agency, Base, OutboxMessage, Service
from tests.conftest import PG_URL, ROOT, FakeClock, make_app

HEAD = ScriptDirectory(str(ROOT / "bot" / "storage" / "migrations")).get_current_head()

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def settings_for(url: str, root: Path) -> Settings:
    return Settings(database_url=url, catalog_path=ROOT / "catalog.yaml",
                    digest_dir=root / "digests", whatsapp_media_dir=root / "media",
                    report_dir=root / "reports")


def populate(url: str, root: Path) -> None:
    """Catalog, some outbox rows, a digest file and a resident's photo."""
    app = make_app(url, FakeClock())
    try:
        with app.factory() as db, db.begin():
            for i in range(25):
                db.add(OutboxMessage(channel="telegram", chat_id=str(1000 + i), kind="reply",
                                     payload={"text": f"pesan {i}"}, status="sent" if i % 2 else "pending",
                                     due_at=NOW, created_at=NOW, ref=f"r{i}"))
    finally:
        app.engine.dispose()
    (root / "digests" / "dinkes").mkdir(parents=True)
    (root / "digests" / "dinkes" / "2026-W47.xlsx").write_bytes(b"PK\x03\x04 spreadsheet")
    (root / "reports" / "dinkes").mkdir(parents=True)  # the archived periodic reports
    (root / "reports" / "dinkes" / "2026-Q4.pdf").write_bytes(b"%PDF-1.7 report")
    (root / "media").mkdir(parents=True)
    (root / "media" / "wamid.1.jpg").write_bytes(b"\xff\xd8\xff photo")


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


def some_rows(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(select(OutboxMessage.id, OutboxMessage.chat_id, OutboxMessage.payload,
                                            OutboxMessage.status, OutboxMessage.ref)
                                     .order_by(OutboxMessage.id).limit(5)))
            rows += list(conn.execute(select(Agency.slug, Agency.name).order_by(Agency.id).limit(3)))
            rows += list(conn.execute(select(Service.code).order_by(Service.id).limit(3)))
            return rows
    finally:
        engine.dispose()


def assert_same(source: tuple[str, Path], target: tuple[str, Path]) -> None:
    assert counts(target[0]) == counts(source[0])
    assert counts(target[0])["outbox"] == 25 and counts(target[0])["services"] > 0
    assert some_rows(target[0]) == some_rows(source[0])
    for rel in ("digests/dinkes/2026-W47.xlsx", "media/wamid.1.jpg", "reports/dinkes/2026-Q4.pdf"):
        assert (target[1] / rel).read_bytes() == (source[1] / rel).read_bytes()


def test_sqlite_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src_url, dst_url = f"sqlite:///{src / 'prima.db'}", f"sqlite:///{dst / 'prima.db'}"
    populate(src_url, src)
    archive = tmp_path / "out" / "prima.tar.gz"
    manifest = bk.backup(settings_for(src_url, src), archive)
    assert manifest["database"] == "sqlite" and manifest["alembic_revision"] == [HEAD]
    assert manifest["files"] == {"digests": 1, "media": 1, "reports": 1}
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        member = tar.extractfile("manifest.json")
        assert member is not None
        assert json.loads(member.read())["format_version"] == bk.FORMAT_VERSION
    assert {"manifest.json", bk.SQLITE_NAME, "files/digests/dinkes/2026-W47.xlsx",
            "files/media/wamid.1.jpg"} <= names
    bk.restore(settings_for(dst_url, dst), archive)
    assert_same((src_url, src), (dst_url, dst))


def test_sqlite_backup_while_another_connection_writes(tmp_path: Path) -> None:
    """Each write adds two rows in one transaction: a consistent copy never holds an odd count."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src_url, dst_url = f"sqlite:///{src / 'prima.db'}", f"sqlite:///{dst / 'prima.db'}"
    populate(src_url, src)
    stop, written = threading.Event(), [0]

    def writer() -> None:
        conn = sqlite3.connect(src / "prima.db", timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            for _ in range(2):
                conn.execute("INSERT INTO outbox (channel, chat_id, kind, payload, status, due_at, "
                             "attempts, created_at, urgent, uncertain, ref) VALUES ('telegram', '7', "
                             "'reply', '{}', 'pending', '2026-11-23 02:00:00', 0, "
                             "'2026-11-23 02:00:00', 1, 0, 'pair')")
            conn.execute("COMMIT")
            written[0] += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 20:  # the writer is busy before the backup starts
            threading.Event().wait(0.01)
        archive = tmp_path / "live.tar.gz"
        bk.backup(settings_for(src_url, src), archive)
        at_backup = written[0]
    finally:
        stop.set()
        thread.join()
    assert written[0] > 20
    bk.restore(settings_for(dst_url, dst), archive)
    engine = make_engine(dst_url)
    try:
        with engine.connect() as conn:
            pairs = conn.execute(text("SELECT count(*) FROM outbox WHERE ref = 'pair'")).scalar_one()
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    finally:
        engine.dispose()
    assert pairs % 2 == 0 and 40 <= pairs <= 2 * (at_backup + 1)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards): where a restore goes."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need PRIMA_TEST_POSTGRES_URL (CI sets it)")
    name = "prima_restore_" + uuid.uuid4().hex[:10]
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def in_database(url: str, database: str) -> str:
    """The same server and search_path (schema), another database."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def test_postgres_round_trip(pg_url: str, pg_database: str, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    populate(pg_url, src)
    archive = tmp_path / "pg.tar.gz"
    manifest = bk.backup(settings_for(pg_url, src), archive)
    assert manifest["database"] == "postgresql" and manifest["schema"].startswith("t_")
    assert manifest["alembic_revision"] == [HEAD]
    dst_url = in_database(pg_url, pg_database)  # the schema does not exist there yet
    bk.restore(settings_for(dst_url, dst), archive)
    assert_same((pg_url, src), (dst_url, dst))
    # the sequences came along: a new row gets the next id, not a duplicate key
    engine = make_engine(dst_url)
    try:
        with engine.begin() as conn:
            new_id = conn.execute(insert(OutboxMessage).values(
                channel="telegram", chat_id="1", kind="reply", payload={}, status="pending",
                due_at=NOW, created_at=NOW).returning(OutboxMessage.id)).scalar_one()
        assert new_id == 26
    finally:
        engine.dispose()


def test_postgres_refuses_a_database_with_tables(pg_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    populate(pg_url, src)
    archive = tmp_path / "pg.tar.gz"
    bk.backup(settings_for(pg_url, src), archive)
    with pytest.raises(bk.BackupError, match=r"already has .* table"):
        bk.restore(settings_for(pg_url, tmp_path / "elsewhere"), archive)
    assert not (tmp_path / "elsewhere").exists()  # nothing written


def test_public_schema_whole_database_round_trip(pg_database: str, tmp_path: Path) -> None:
    """A plain deployment: tables in ``public`` of their own database, restored into a new one."""
    src_url = in_database(PG_URL, pg_database)
    src = tmp_path / "src"
    populate(src_url, src)
    archive = tmp_path / "public.tar.gz"
    assert bk.backup(settings_for(src_url, src), archive)["schema"] == "public"
    name = "prima_restore_" + uuid.uuid4().hex[:10]
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        dst_url = in_database(PG_URL, name)
        bk.restore(settings_for(dst_url, tmp_path / "dst"), archive)
        assert_same((src_url, src), (dst_url, tmp_path / "dst"))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_sqlite_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src_url = f"sqlite:///{src / 'prima.db'}"
    populate(src_url, src)
    archive = tmp_path / "b.tar.gz"
    bk.backup(settings_for(src_url, src), archive)
    with pytest.raises(bk.BackupError, match="exists already"):
        bk.backup(settings_for(src_url, src), archive)
    # onto an existing database file
    with pytest.raises(bk.BackupError, match=r"prima\.db exists"):
        bk.restore(settings_for(src_url, tmp_path / "other"), archive)
    # into folders that already hold files
    with pytest.raises(bk.BackupError, match="not empty"):
        bk.restore(settings_for(f"sqlite:///{tmp_path / 'new.db'}", src), archive)
    assert not (tmp_path / "new.db").exists()
    # a SQLite backup into PostgreSQL
    with pytest.raises(bk.BackupError, match="holds a sqlite database"):
        bk.restore(settings_for("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path / "x"), archive)
    # not a backup
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(bk.BackupError, match="not a Prima backup"):
        bk.restore(settings_for(f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "y"), junk)
    # through the command line: exit code 2 and one line
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", src_url)
    assert cli.main(["restore", str(archive)]) == 2
    assert "exists: restore only into an empty place" in capsys.readouterr().err


def test_truncated_backup_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``head -c N b.tar.gz > t.tar.gz``: one line, exit code 2, nothing written."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    populate(f"sqlite:///{src / 'prima.db'}", src)
    archive = tmp_path / "b.tar.gz"
    bk.backup(settings_for(f"sqlite:///{src / 'prima.db'}", src), archive)
    cut = tmp_path / "t.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{dst / 'prima.db'}")
    monkeypatch.setenv("DIGEST_DIR", str(dst / "digests"))
    monkeypatch.setenv("WHATSAPP_MEDIA_DIR", str(dst / "media"))
    monkeypatch.setenv("REPORT_DIR", str(dst / "reports"))
    capsys.readouterr()  # what the set-up logged
    assert cli.main(["restore", str(cut)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{cut} is damaged or incomplete (it ends early or is corrupt): copy the backup "
                   "again; nothing was restored"]
    assert not dst.exists()


def test_pg_dump_missing_or_too_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bk.shutil, "which", lambda _name: None)
    with pytest.raises(bk.BackupError, match="pg_dump not found on PATH"):
        bk.tool("pg_dump")
    problem = bk.version_problem("pg_dump", 14, 16)
    assert problem and "postgresql-client-16" in problem
    assert bk.version_problem("pg_dump", 16, 16) is None
    assert bk.version_problem("pg_dump", 17, 16) is None
