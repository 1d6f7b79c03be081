"""Command line: ``python bot.py [command]``. Without a command the bot runs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot import logs
from bot.catalog import CatalogError, load_catalog, read_catalog
from bot.cli import backup as cli_backup
from bot.cli import digest as cli_digest
from bot.cli import doctor as cli_doctor
from bot.cli import kiosk as cli_kiosk
from bot.cli import outbox as cli_outbox
from bot.cli import report as cli_report
from bot.cli import retention as cli_retention
from bot.config import ConfigError, Settings, load_settings
from bot.storage.db import (
    DATABASE_ERRORS,
    database_error,
    open_database,
    session_factory,
    transaction,
)

if TYPE_CHECKING:
    from bot.app import App


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bot.py", description="Prima citizen-feedback bot.")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (default): Telegram and/or WhatsApp if configured "
                   "(the web chat beside them), the web chat alone with WEB_CHAT=on, else the console chat")
    sub.add_parser("migrate", help="apply database migrations")
    cat = sub.add_parser("catalog", help="service catalog")
    cat_sub = cat.add_subparsers(dest="action", required=True)
    load = cat_sub.add_parser("load", help="load the catalog YAML into the database (idempotent)")
    load.add_argument("path", nargs="?", type=Path, help="YAML file (default: CATALOG_PATH)")
    sub.add_parser("doctor", help="check this deployment: settings, database, folders, Telegram, "
                   "WhatsApp, outbox, scheduler (exit code 1 on a failure)")
    cli_digest.add_parsers(sub)
    cli_report.add_parsers(sub)
    cli_backup.add_parsers(sub)
    cli_outbox.add_parsers(sub)
    cli_retention.add_parsers(sub)
    cli_kiosk.add_parsers(sub)
    return p


def _logging(settings: Settings, console: bool) -> None:
    level = getattr(logging, settings.log_level)
    if console and "LOG_LEVEL" not in {k.upper() for k in __import__("os").environ}:
        level = logging.WARNING  # keep the chat readable
    logs.configure(level, settings.log_format, sys.stderr)
    if level > logging.DEBUG:  # "Context impl SQLiteImpl" on every command helps nobody
        logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    quiet_scheduler_logs(level)


def quiet_scheduler_logs(level: int) -> None:
    """APScheduler logs two INFO lines per job run (every second for the outbox tick); below
    DEBUG only its warnings and errors (missed runs, crashed jobs) are worth a line."""
    for name in ("apscheduler.executors", "apscheduler.scheduler", "apscheduler"):
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG
                                         else max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "doctor":  # reports a bad setting as one of its lines
        try:
            checked = load_settings()
        except ConfigError:
            return cli_doctor.run()
        _logging(checked, console=False)  # like every command, before anything logs
        return cli_doctor.run(checked)
    try:
        settings = load_settings()
        command = args.command or "run"
        console = (command == "run" and not settings.telegram_bot_token and not settings.whatsapp_enabled
                   and settings.web_chat != "on")
        _logging(settings, console)
        if command == "migrate":
            open_database(settings.database_url)
            print("Database is up to date.")
            return 0
        if command == "catalog":
            path = args.path or settings.catalog_path
            read_catalog(path)  # a bad file is refused before the database is touched
            engine = open_database(settings.database_url)
            with transaction(session_factory(engine)) as db:
                stats = load_catalog(db, path)
            print(f"Catalog {path}: {stats['created']} created, {stats['updated']} updated, "
                  f"{stats['unchanged']} unchanged, {stats['retired']} retired.")
            return 0
        if command in ("staff", "digest"):
            return cli_digest.run(settings, args)
        if command == "report":
            return cli_report.run(settings, args)
        if command in ("backup", "restore"):
            return cli_backup.run(settings, args)
        if command in ("outbox", "qr"):
            return cli_outbox.run(settings, args)
        if command == "retention":
            return cli_retention.run(settings, args)
        if command == "kiosk":
            return cli_kiosk.run(settings, args)
        return _run(settings)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except CatalogError as exc:
        print(f"Catalog error: {exc}", file=sys.stderr)
        return 2
    except DATABASE_ERRORS as exc:  # locked or unreachable after start-up checks: one line, no SQL
        print(str(database_error(exc)), file=sys.stderr)
        return 2


def _run(settings: Settings) -> int:
    from bot.app import build_app, settle_heap

    app = build_app(settings)
    runner = _runner(app)
    settle_heap()  # after start-up and the channel's imports, before the first update
    return runner()


def _runner(app: App) -> Callable[[], int]:
    """What ``python bot.py`` runs for the channels configured."""
    settings = app.settings
    from bot.channels.whatsapp.channel import whatsapp_requested

    if whatsapp_requested(settings):  # WhatsApp, plus Telegram in the same process when configured
        from bot.channels.whatsapp.serve import run_whatsapp

        return lambda: run_whatsapp(app)
    if settings.telegram_bot_token:
        try:
            from bot.channels.telegram.run import run_telegram
        except ImportError:  # pragma: no cover - the Telegram channel is not built yet
            print("Telegram channel is not available in this build.", file=sys.stderr)
            return lambda: 2
        return lambda: run_telegram(app)
    if settings.web_chat == "on":  # the web chat alone: web server and scheduler, no console
        from bot.channels.webchat.serve import run_web_only

        return lambda: run_web_only(app)
    from bot.channels.console import ConsoleChannel

    return ConsoleChannel(app.runtime, app.texts, settings.default_language).run
