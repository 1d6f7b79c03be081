"""``python bot.py backup --out FILE`` and ``python bot.py restore FILE``: the database and the
files the bot wrote (digests, periodic reports, residents' WhatsApp photos) in one ``.tar.gz``.

SQLite is copied through sqlite3's online backup API: one read transaction, so the copy is
consistent while the bot keeps writing. PostgreSQL is dumped by ``pg_dump`` in its custom
format, only the schema the bot uses::

    pg_dump --format=custom --no-owner --no-acl --schema=SCHEMA --file=database.pgdump DBURI

and restored by ``pg_restore --no-owner --no-acl --exit-on-error --single-transaction``.
pg_dump must be at least the server's major version (it refuses older servers' newer
siblings); install the ``postgresql-client`` package of the server's version.

The archive holds ``manifest.json`` (format version, database kind, alembic revision, time),
``database.sqlite3`` or ``database.pgdump``, and ``files/digests/...``, ``files/reports/...``, ``files/media/...``.
A restore goes only into an empty target (no SQLite file, no tables in the schema, empty
folders), then migrations bring the database to this code's head.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from bot.config import Settings

FORMAT = "prima-backup"
FORMAT_VERSION = 1
SQLITE_NAME = "database.sqlite3"
PG_NAME = "database.pgdump"
REVISION_SQL = "SELECT version_num FROM alembic_version"


class BackupError(Exception):
    """One line for the operator: what is wrong and what to do."""


def add_parsers(sub: Any) -> None:
    b = sub.add_parser("backup", help="database plus digests, reports and WhatsApp media into one .tar.gz "
                       "(safe while the bot runs)")
    b.add_argument("--out", type=Path, required=True, help="the archive to write (must not exist)")
    r = sub.add_parser("restore", help="restore a backup into an empty database and empty folders, "
                       "then migrate")
    r.add_argument("file", type=Path, help="archive written by `python bot.py backup`")


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.command == "backup":
            manifest = backup(settings, args.out)
            print(f"Backup written to {args.out}: {manifest['database']} at revision "
                  f"{', '.join(manifest['alembic_revision']) or '-'}, "
                  f"{sum(manifest['files'].values())} file(s).")
        else:
            manifest = restore(settings, args.file)
            print(f"Restored {args.file} (taken {manifest['created_at']}, revision "
                  f"{', '.join(manifest['alembic_revision']) or '-'}); the database is now "
                  "migrated to this version of Prima.")
    except BackupError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------- shared


def _folders(settings: Settings) -> dict[str, Path]:
    folders = {"digests": Path(settings.digest_dir), "reports": Path(settings.report_dir)}
    if settings.whatsapp_media_dir is not None:
        folders["media"] = Path(settings.whatsapp_media_dir)
    return folders


def _kind(url: str) -> str:
    return "sqlite" if make_url(url).drivername.startswith("sqlite") else "postgresql"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("DATABASE_URL: an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _revisions(rows: Any) -> list[str]:
    """The alembic revision(s) in ``SELECT version_num FROM alembic_version`` rows."""
    return sorted(str(r[0]) for r in rows)


# ---------------------------------------------------------------------- PostgreSQL tools


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """A URI pg_dump understands, and the environment carrying the password (not on ps)."""
    u: URL = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    uri = u.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found on PATH: install the PostgreSQL client tools of the "
                          f"server's major version (Debian/Ubuntu: apt install postgresql-client-NN)")
    return found


def tool_major(path: str) -> int:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    if not found:
        raise BackupError(f"cannot tell the version of {path} from {out.strip()!r}")
    return int(found.group(1))


def version_problem(tool_name: str, tool_version: int, server_version: int) -> str | None:
    """pg_dump refuses a server newer than itself: say so before it does, with the fix."""
    if tool_version < server_version:
        return (f"{tool_name} {tool_version} is older than the PostgreSQL {server_version} server "
                f"and cannot dump it: install postgresql-client-{server_version} and put its "
                f"{tool_name} first on PATH")
    return None


def _schema(conn: Any) -> str:
    """The schema the bot's tables live in: the first one on its search_path."""
    path = str(conn.execute(text("SHOW search_path")).scalar() or "")
    for item in (p.strip().strip('"') for p in path.split(",")):
        if item and item != "$user":
            return item
    return "public"


def _server_major(conn: Any) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar()) // 10000


# ---------------------------------------------------------------------- backup


def backup(settings: Settings, out: Path) -> dict[str, Any]:
    if out.exists():
        raise BackupError(f"{out} exists already: choose a new file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    kind = _kind(settings.database_url)
    manifest: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "database": kind,
                                "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".prima-backup-") as tmp:
        work = Path(tmp)
        if kind == "sqlite":
            name = SQLITE_NAME
            manifest["alembic_revision"] = _sqlite_snapshot(_sqlite_path(settings.database_url), work / name)
        else:
            name = PG_NAME
            manifest.update(_pg_dump(settings.database_url, work / name))
        manifest["files"] = {}
        partial = work / "archive.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(work / name, arcname=name)
            for label, folder in _folders(settings).items():
                count = 0
                if folder.is_dir():
                    for path in sorted(folder.rglob("*")):
                        if path.is_file() and not path.is_symlink():
                            tar.add(path, arcname=f"files/{label}/{path.relative_to(folder).as_posix()}")
                            count += 1
                manifest["files"][label] = count
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(data), int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(data))
        os.replace(partial, out)  # never a half-written archive under the operator's name
    return manifest


def _sqlite_snapshot(source: Path, target: Path) -> list[str]:
    """A consistent copy while the bot writes: the backup API copies in one read transaction."""
    if not source.is_file():
        raise BackupError(f"DATABASE_URL: no database file at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: everything in one step, one snapshot
        revisions = _revisions(dst.execute(REVISION_SQL).fetchall())
    except sqlite3.Error as exc:
        raise BackupError(f"DATABASE_URL: cannot read {source}: {exc}") from None
    finally:
        dst.close()
        src.close()
    return revisions


def _pg_dump(url: str, target: Path) -> dict[str, Any]:
    from bot.storage.db import make_engine

    pg_dump = tool("pg_dump")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            schema = _schema(conn)
            server = _server_major(conn)
            revisions = _revisions(conn.execute(text(REVISION_SQL)).fetchall())
    finally:
        engine.dispose()
    version = tool_major(pg_dump)
    problem = version_problem("pg_dump", version, server)
    if problem:
        raise BackupError(problem)
    uri, env = libpq(url)
    done = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--no-acl", f"--schema={schema}",
                           f"--file={target}", f"--dbname={uri}"],
                          capture_output=True, text=True, env=env, timeout=24 * 3600)
    if done.returncode:
        raise BackupError(f"pg_dump failed: {_last_line(done.stderr)}")
    return {"alembic_revision": revisions, "schema": schema, "server_version": server,
            "pg_dump_version": version}


def _last_line(text_: str) -> str:
    lines = [x for x in text_.strip().splitlines() if x.strip()]
    return lines[-1] if lines else "no message"


# ---------------------------------------------------------------------- restore


def restore(settings: Settings, archive: Path) -> dict[str, Any]:
    from bot.storage.db import open_database

    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the `with tar` below
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{archive} is not a Prima backup (not a .tar.gz: {exc})") from None
    with tar:
        try:  # read to the end first: a cut-off copy is refused before anything is written
            tar.getmembers()
        except (EOFError, tarfile.TarError, zlib.error, OSError):
            raise BackupError(f"{archive} is damaged or incomplete (it ends early or is corrupt): "
                              "copy the backup again; nothing was restored") from None
        manifest = _manifest(tar, archive)
        kind = _kind(settings.database_url)
        if manifest["database"] != kind:
            raise BackupError(f"{archive} holds a {manifest['database']} database but DATABASE_URL "
                              f"points at {kind}: restore into the same kind of database")
        if kind == "sqlite":
            _refuse_sqlite_target(_sqlite_path(settings.database_url))
        folders = _folders(settings)
        members = _file_members(tar, folders)
        for label, folder in folders.items():  # refuse before anything is written
            if folder.is_dir() and any(folder.iterdir()) and any(m[0] == label for m in members):
                raise BackupError(f"{folder} is not empty: restore into empty folders (move it away "
                                  "or point DIGEST_DIR / WHATSAPP_MEDIA_DIR elsewhere)")
        with tempfile.TemporaryDirectory(prefix=".prima-restore-") as tmp:
            if kind == "sqlite":
                target = _sqlite_path(settings.database_url)
                dump = _extract(tar, SQLITE_NAME, Path(tmp))
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".restoring")
                shutil.copyfile(dump, partial)
                os.replace(partial, target)
            else:
                _pg_restore(settings.database_url, _extract(tar, PG_NAME, Path(tmp)), manifest)
        for label, rel, member in members:
            dest = folders[label].joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            with source, dest.open("wb") as fh:
                shutil.copyfileobj(source, fh)
    open_database(settings.database_url).dispose()  # migrations: the backup's revision -> head
    return manifest


def _manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    try:
        member = tar.extractfile("manifest.json")
        manifest = json.loads(member.read()) if member else None
    except (KeyError, ValueError, tarfile.TarError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a Prima backup (no manifest.json)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{archive} has backup format {manifest.get('format_version')}; this "
                          f"Prima reads format {FORMAT_VERSION}: restore with the version that wrote it")
    return manifest


def _file_members(tar: tarfile.TarFile, folders: dict[str, Path]) -> list[tuple[str, PurePosixPath, tarfile.TarInfo]]:
    """Regular files under files/<label>/, with safe relative paths (no .., no absolute)."""
    found = []
    for member in tar.getmembers():
        parts = PurePosixPath(member.name).parts
        if len(parts) < 3 or parts[0] != "files" or not member.isfile():
            continue
        rel = PurePosixPath(*parts[2:])
        if ".." in rel.parts or rel.is_absolute():
            raise BackupError(f"refusing a file outside its folder in the archive: {member.name}")
        if parts[1] in folders:
            found.append((parts[1], rel, member))
    return found


def _extract(tar: tarfile.TarFile, name: str, folder: Path) -> Path:
    try:
        source = tar.extractfile(name)
    except KeyError:
        source = None
    if source is None:
        raise BackupError(f"the archive has no {name}: it is damaged")
    path = folder / name
    with source, path.open("wb") as fh:
        shutil.copyfileobj(source, fh)
    return path


def _refuse_sqlite_target(target: Path) -> None:
    for path in (target, target.with_name(target.name + "-wal")):
        if path.exists() and path.stat().st_size > 0:
            raise BackupError(f"{path} exists: restore only into an empty place (move the old "
                              "database away first, or point DATABASE_URL at a new file)")


def _pg_restore(url: str, dump: Path, manifest: dict[str, Any]) -> None:
    from bot.storage.db import make_engine

    pg_restore = tool("pg_restore")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            schema = _schema(conn)
            if manifest.get("schema") and manifest["schema"] != schema:
                raise BackupError(f"the backup holds schema {manifest['schema']}, DATABASE_URL "
                                  f"uses {schema}: set the same search_path")
            tables = conn.execute(text("SELECT count(*) FROM information_schema.tables "
                                       "WHERE table_schema = :s"), {"s": schema}).scalar()
            if tables:
                raise BackupError(f"the database already has {tables} table(s) in schema {schema}: "
                                  "restore only into an empty database (createdb a new one)")
            quoted = conn.dialect.identifier_preparer.quote(schema)
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            conn.commit()
    finally:
        engine.dispose()
    # The schema exists now (public always does): skip the dump's CREATE SCHEMA and its comment.
    listing = subprocess.run([pg_restore, "--list", str(dump)], capture_output=True, text=True, timeout=600)
    if listing.returncode:
        raise BackupError(f"pg_restore cannot read the dump: {_last_line(listing.stderr)}")
    keep = [x for x in listing.stdout.splitlines() if not re.search(r"\b(SCHEMA|COMMENT) - ", x)]
    toc = dump.with_suffix(".list")
    toc.write_text("\n".join(keep) + "\n")
    uri, env = libpq(url)
    done = subprocess.run([pg_restore, "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction",
                           f"--use-list={toc}", f"--dbname={uri}", str(dump)],
                          capture_output=True, text=True, env=env, timeout=24 * 3600)
    if done.returncode:
        raise BackupError(f"pg_restore failed (nothing was restored): {_last_line(done.stderr)}")
