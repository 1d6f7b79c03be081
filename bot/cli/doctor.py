"""``python bot.py doctor``: is this deployment set up right? One line per check, OK/WARN/FAIL.

The IT person who deploys Prima runs it after installing, after an upgrade, and when something
looks wrong. Every line says what was checked and, when it is not OK, what to do. Nothing is
changed: no migration, no catalog load, no webhook set, no message sent (the WhatsApp and
Telegram checks are reads). Exit code 1 when any line is FAIL, else 0.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from bot.cli.doctor_whatsapp import check_whatsapp
from bot.config import ConfigError, Settings, load_settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"
FREE_FAIL = 100 * 1024**2  # below this a digest or a photo may not fit
FREE_WARN = 1024**3
CLOCK_SKEW = 5.0  # seconds
OVERDUE = timedelta(minutes=5)  # a due row still pending after this: is the dispatcher running?
PENDING_UPDATES_WARN = 100
HTTP_TIMEOUT = 5.0


@dataclass
class Report:
    """The lines printed so far."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)
    echo: Callable[[str], None] = print

    def add(self, level: str, name: str, detail: str) -> None:
        self.lines.append((level, name, detail))
        self.echo(f"{level:<4}  {name}: {detail}")

    @property
    def failed(self) -> bool:
        return any(level == FAIL for level, _, _ in self.lines)


def run(settings: Settings | None = None, today: date | None = None) -> int:
    """Run every check, print one line each; 1 when any failed."""
    report = Report()
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            report.add(FAIL, "settings", f"{exc} (nothing else can be checked)")
            return 1
    report.add(OK, "settings", "valid")
    check_all(settings, report, today or datetime.now(UTC).date())
    return 1 if report.failed else 0


def check_all(settings: Settings, report: Report, today: date) -> None:
    engine = check_database(settings, report)
    check_catalog(settings, report)
    check_directories(settings, report)
    if engine is not None:
        try:
            check_clock(engine, report)
            check_outbox(settings, engine, report)
            check_agencies(engine, report)
        finally:
            engine.dispose()
        check_scheduler(settings, report)
    asyncio.run(_remote(settings, report, today))


# ---------------------------------------------------------------------- database


def _one_line(exc: BaseException) -> str:
    from bot.storage.db import database_error

    if isinstance(exc, ConfigError):
        return str(exc)
    return str(database_error(exc)) if isinstance(exc, Exception) else repr(exc)


def check_database(settings: Settings, report: Report) -> Engine | None:
    """Reachable and at the newest migration; the engine when it is (else None)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from bot.storage.db import DATABASE_ERRORS, alembic_config, make_engine

    url = make_url(settings.database_url)
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:" \
            and not Path(url.database).exists():
        report.add(FAIL, "database", f"no database file at {url.database}: run `python bot.py "
                   "migrate` (or start the bot, which creates it)")
        return None
    try:
        engine = make_engine(settings.database_url)
    except ConfigError as exc:
        report.add(FAIL, "database", str(exc))
        return None
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except DATABASE_ERRORS as exc:
        engine.dispose()
        report.add(FAIL, "database", _one_line(exc))
        return None
    script = ScriptDirectory.from_config(alembic_config(engine))
    heads = set(script.get_heads())
    known = {rev.revision for rev in script.walk_revisions()}
    where = f"{engine.dialect.name} {url.render_as_string(hide_password=True)}"
    if current == heads:
        report.add(OK, "database", f"reachable ({where}), migrations at head {', '.join(sorted(heads))}")
        return engine
    if not current:
        report.add(FAIL, "migrations", f"the database ({where}) has no tables yet: run "
                   "`python bot.py migrate`")
    elif current - known:
        report.add(FAIL, "migrations", f"the database is at {', '.join(sorted(current - known))}, "
                   "a revision this code does not know: it was written by a newer Prima; "
                   "install that version again (or restore the backup taken before it)")
    else:
        report.add(FAIL, "migrations", f"the database is at {', '.join(sorted(current))}, this "
                   f"code needs {', '.join(sorted(heads))}: back up, then run `python bot.py "
                   "migrate` (the bot also migrates when it starts)")
    engine.dispose()
    return None


def check_clock(engine: Engine, report: Report) -> None:
    """The database's clock against ours: deadlines and quiet hours mix the two."""
    query = "SELECT clock_timestamp()" if engine.dialect.name == "postgresql" else "SELECT CURRENT_TIMESTAMP"
    before = time.time()
    with engine.connect() as conn:
        value = conn.execute(text(query)).scalar()
    after = time.time()
    if isinstance(value, str):  # SQLite: 'YYYY-MM-DD HH:MM:SS' in UTC
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        report.add(WARN, "clock", f"the database answered {value!r} for its time")
        return
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    skew = value.timestamp() - (before + after) / 2
    slack = (after - before) / 2 + (1.0 if engine.dialect.name == "sqlite" else 0.0)  # whole seconds
    if abs(skew) > CLOCK_SKEW + slack:
        report.add(WARN, "clock", f"the database's clock is {skew:+.1f} s from this machine's: "
                   "run NTP (systemd-timesyncd or chrony) on both")
    else:
        report.add(OK, "clock", f"in sync with the database ({skew:+.1f} s)")


def check_outbox(settings: Settings, engine: Engine, report: Report) -> None:
    """Counts of rows due and not sent, claimed by a process that died, and waiting (WhatsApp)."""
    from bot.storage.db import session_factory
    from bot.storage.models import OutboxMessage as O

    now = datetime.now(UTC)
    timeout = timedelta(minutes=settings.outbox_claim_timeout_minutes)
    with session_factory(engine)() as db:
        counts = {status: n for status, n in db.execute(select(O.status, func.count()).group_by(O.status))}
        overdue = db.scalar(select(func.count()).select_from(O)
                            .where(O.status == "pending", O.due_at < now - OVERDUE)) or 0
        stuck = db.scalar(select(func.count()).select_from(O)
                          .where(O.status == "claimed", O.claimed_at < now - timeout)) or 0
    detail = (f"pending {counts.get('pending', 0)} ({overdue} due over {OVERDUE.seconds // 60} min "
              f"ago), claimed {counts.get('claimed', 0)} ({stuck} stuck over "
              f"{settings.outbox_claim_timeout_minutes:g} min), waiting for the resident "
              f"{counts.get('waiting', 0)}, failed {counts.get('failed', 0)}, "
              f"unknown {counts.get('unknown', 0)}")
    todo = []
    if overdue:
        todo.append("is the bot running? `python bot.py outbox drain` sends what is due")
    if stuck or counts.get("unknown"):
        todo.append("see `python bot.py outbox report`")
    report.add(WARN if todo else OK, "outbox", detail + ("; " + "; ".join(todo) if todo else ""))


def check_agencies(engine: Engine, report: Report) -> None:
    """Stored values the bot would replace by a default, and agencies nobody answers for."""
    from bot.cli.doctor_agencies import agency_lines
    from bot.storage.db import session_factory

    with session_factory(engine)() as db:
        for result in agency_lines(db):
            report.add(*result)


def check_scheduler(settings: Settings, report: Report) -> None:
    """Build the scheduler the bot would run (not started) and name its jobs."""
    from bot.app import build_app
    from bot.scheduler import DISPATCH_JOB, build_scheduler

    try:
        app = build_app(settings, load_default_catalog=False)  # at head: migrating is a no-op
    except Exception as exc:
        report.add(FAIL, "scheduler", f"cannot build the app: {_one_line(exc)}")
        return
    try:
        ids = [job.id for job in build_scheduler(app, {}).get_jobs()]
    except Exception as exc:
        report.add(FAIL, "scheduler", f"jobs could not be registered: {type(exc).__name__}: {exc}")
        return
    finally:
        app.engine.dispose()
    if DISPATCH_JOB not in ids:
        report.add(FAIL, "scheduler", f"no outbox dispatcher among the jobs ({', '.join(ids)})")
    elif not any(i.startswith("digest:") for i in ids):
        report.add(WARN, "scheduler", f"{len(ids)} jobs ({', '.join(ids)}), no weekly digest: "
                   "no active agency; load the catalog (`python bot.py catalog load`)")
    else:
        report.add(OK, "scheduler", f"{len(ids)} jobs: {', '.join(ids)}")


# ---------------------------------------------------------------------- files


def check_catalog(settings: Settings, report: Report) -> None:
    from bot.catalog import CatalogError, read_catalog

    try:
        spec = read_catalog(settings.catalog_path)
    except CatalogError as exc:
        report.add(FAIL, "catalog", f"{settings.catalog_path}: {exc}; fix the file (CATALOG_PATH)")
        return
    services = sum(len(a.services) for a in spec.agencies)
    report.add(OK, "catalog", f"{settings.catalog_path}: {len(spec.agencies)} agencies, {services} services")


def _directories(settings: Settings) -> list[tuple[str, Path]]:
    from bot.channels.whatsapp.channel import whatsapp_requested

    dirs = [("DIGEST_DIR", Path(settings.digest_dir)), ("REPORT_DIR", Path(settings.report_dir))]
    if settings.whatsapp_media_dir is not None and whatsapp_requested(settings):
        dirs.append(("WHATSAPP_MEDIA_DIR", Path(settings.whatsapp_media_dir)))
    url = make_url(settings.database_url)
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        dirs.append(("DATABASE_URL folder", Path(url.database).parent))
    return dirs


def check_directories(settings: Settings, report: Report) -> None:
    for name, path in _directories(settings):
        report.add(*_directory(name, path))


def _directory(name: str, path: Path) -> tuple[str, str, str]:
    """Writable (tried, not guessed: root passes every permission test) and with free space."""
    label = f"{name} {path}"
    existing = path
    while not existing.exists():  # the bot creates missing folders: their parent must allow it
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return FAIL, label, f"{existing} is a file, not a folder: move it or change {name}"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".prima-doctor-"):
            pass
    except OSError as exc:
        return FAIL, label, (f"cannot write in {existing} ({exc.strerror or exc}): give the bot's "
                             f"user write access (chown/chmod) or change {name}")
    free = shutil.disk_usage(existing).free
    where = "" if existing == path else f" (does not exist yet; {existing} allows creating it)"
    if free < FREE_FAIL:
        return FAIL, label, f"only {free / 1024**2:.0f} MiB free{where}: free some disk space"
    if free < FREE_WARN:
        return WARN, label, f"only {free / 1024**2:.0f} MiB free{where}: free some disk space soon"
    return OK, label, f"writable, {free / 1024**3:.1f} GiB free{where}"


# ---------------------------------------------------------------------- remote services


def channel_line(settings: Settings) -> tuple[str, str, str] | None:
    """A FAIL when no channel is set: `python bot.py` would open the console chat and, with no
    terminal (a systemd service), end at once."""
    from bot.channels.whatsapp.channel import whatsapp_requested

    if settings.telegram_bot_token or whatsapp_requested(settings) or settings.web_chat == "on":
        return None
    return (FAIL, "channels", "no channel configured: `python bot.py` would only open the console "
            "chat (a service stops at once); set TELEGRAM_BOT_TOKEN (from @BotFather) and/or "
            "WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN, "
            "or WEB_CHAT=on (the web chat only)")


def webhook_scheme_line(settings: Settings) -> tuple[str, str, str] | None:
    """Telegram's Bot API delivers webhooks only to https://; a self-hosted Bot API server
    (TELEGRAM_API_BASE, --local) also to http://, so there it is a warning."""
    wanted = settings.telegram_webhook_url or ""
    if not wanted or wanted.startswith("https://"):
        return None
    if settings.telegram_api_base:
        return (WARN, "telegram webhook url", f"{wanted}: Telegram's own Bot API delivers only to "
                "https://; fine only if the server at TELEGRAM_API_BASE runs with --local")
    return (FAIL, "telegram webhook url", f"{wanted}: Telegram delivers only to https:// (ports "
            "443, 80, 88 or 8443): put nginx with a certificate in front and set "
            "TELEGRAM_WEBHOOK_URL=https://...")


async def _remote(settings: Settings, report: Report, today: date) -> None:
    from bot.channels.whatsapp.channel import whatsapp_requested

    missing = channel_line(settings)
    if missing:  # instead of two "not configured" lines that read as OK
        report.add(*missing)
    if settings.telegram_bot_token:
        scheme = webhook_scheme_line(settings)
        if scheme:
            report.add(*scheme)
        await check_telegram(settings, report)
    elif not missing:
        report.add(OK, "telegram", "not configured (TELEGRAM_BOT_TOKEN unset)")
    if whatsapp_requested(settings):
        for result in await check_whatsapp(settings, today):
            report.add(*result)
    elif not missing:
        report.add(OK, "whatsapp", "not configured (WHATSAPP_* unset)")
    public = getattr(settings, "public_base_url", None) or os.environ.get("PUBLIC_BASE_URL")
    if public:
        report.add(*await _reachable("PUBLIC_BASE_URL", str(public)))


async def _reachable(name: str, url: str) -> tuple[str, str, str]:
    """Any HTTP answer below 500 means something listens there (a 405 for a GET on a webhook too)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)) as http, \
                http.get(url, allow_redirects=False) as resp:
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        return WARN, name, (f"{url} does not answer ({reason}): is the bot running, and does the "
                            "proxy (nginx) forward to HTTP_HOST:HTTP_PORT?")
    if status >= 500:
        return WARN, name, f"{url} answers HTTP {status}: see the bot's and the proxy's logs"
    return OK, name, f"{url} answers (HTTP {status})"


async def check_telegram(settings: Settings, report: Report) -> None:
    from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError

    from bot.channels.telegram.sender import make_bot

    bot = make_bot(settings.telegram_bot_token or "", settings.telegram_api_base, timeout=10)
    try:
        try:
            me = await bot.get_me()
            info = await bot.get_webhook_info()
        except TelegramUnauthorizedError:
            report.add(FAIL, "telegram", "Telegram refused TELEGRAM_BOT_TOKEN (Unauthorized): copy "
                       "the token again from @BotFather (/mybots, API Token)")
            return
        except TelegramNetworkError as exc:
            report.add(FAIL, "telegram", f"cannot reach the Bot API ({exc.message}): check the "
                       "network, a firewall or TELEGRAM_API_BASE")
            return
        except TelegramAPIError as exc:
            report.add(FAIL, "telegram", f"the Bot API answered: {exc.message}")
            return
    finally:
        await bot.session.close()
    username = settings.telegram_bot_username
    if username and username.lstrip("@").lower() != (me.username or "").lower():
        report.add(WARN, "telegram", f"the token belongs to @{me.username}, but "
                   f"TELEGRAM_BOT_USERNAME is {username}: QR codes would open the wrong bot")
    else:
        report.add(OK, "telegram", f"token valid: @{me.username} (id {me.id})")
    wanted = settings.telegram_webhook_url or ""
    if wanted and info.url == wanted:
        report.add(OK, "telegram webhook", f"set to {wanted}")
    elif wanted:
        report.add(WARN, "telegram webhook", f"Telegram has {info.url or 'no webhook'}, "
                   f"TELEGRAM_WEBHOOK_URL is {wanted}: the bot sets it when it starts; if it is "
                   "running, another deployment uses this token")
    elif info.url:
        report.add(WARN, "telegram webhook", f"a webhook is set ({info.url}) but this deployment "
                   "polls (TELEGRAM_WEBHOOK_URL unset): the bot removes it when it starts; if "
                   "another deployment uses this token, they take each other's updates")
    else:
        report.add(OK, "telegram webhook", "none (long polling)")
    if info.last_error_message:
        when = f" at {info.last_error_date:%Y-%m-%d %H:%M} UTC" if info.last_error_date else ""
        report.add(WARN, "telegram webhook", f"last delivery error{when}: "
                   f"{info.last_error_message}; check the proxy (nginx) and its TLS certificate")
    pending = info.pending_update_count
    report.add(WARN if pending > PENDING_UPDATES_WARN else OK, "telegram updates",
               f"{pending} waiting at Telegram" + ("; is the bot running?" if pending > PENDING_UPDATES_WARN else ""))
    if wanted:
        report.add(*await _reachable("telegram webhook reachable", wanted))
