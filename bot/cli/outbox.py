"""Operator commands for the outbox and deep links: ``outbox report|requeue|drain`` and ``qr``."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.config import Settings

QR_HELP = ("write a QR code PNG per service that opens its survey (t.me/<bot>?start=<code>, and "
           "PUBLIC_BASE_URL/chat/<code> for the web chat)")


def add_parsers(sub: Any) -> None:
    out = sub.add_parser("outbox", help="outbox: report stuck or failed messages, resend, send due now")
    out_sub = out.add_subparsers(dest="action", required=True)
    rep = out_sub.add_parser(
        "report", help="counts per status; messages claimed but never confirmed (after a crash), "
        "unknown outcomes and recent failures")
    rep.add_argument("--older-than", type=float, default=None, metavar="MINUTES",
                     help="claimed longer than this counts as stuck (default OUTBOX_CLAIM_TIMEOUT_MINUTES)")
    req = out_sub.add_parser("requeue", help="send these messages again (they may arrive twice)")
    req.add_argument("ids", nargs="+", type=int, metavar="ID")
    out_sub.add_parser("drain", help="send every message that is due now, then exit")
    qr = sub.add_parser("qr", help=QR_HELP)
    qr.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    qr.add_argument("--bot-username", default=None, help="the bot's @username (default TELEGRAM_BOT_USERNAME)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_app

    if args.command == "qr":
        return _qr(settings, args)
    app = build_app(settings)
    try:
        if args.action == "report":
            return _report(app, args)
        if args.action == "requeue":
            from bot.outbox.recovery import requeue

            n = requeue(app.factory, args.ids, app.runtime.clock())
            print(f"{n} of {len(args.ids)} message(s) queued again.")
            return 0 if n else 1
        return asyncio.run(_drain(app))
    finally:
        app.engine.dispose()


def _report(app: Any, args: argparse.Namespace) -> int:
    from bot.outbox.recovery import status_counts, stuck_rows
    from bot.storage.models import OutboxMessage

    minutes = args.older_than if args.older_than is not None else app.settings.outbox_claim_timeout_minutes
    now = app.runtime.clock()
    counts = status_counts(app.factory)
    print("Outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))
    stuck = stuck_rows(app.factory, now, timedelta(minutes=minutes))
    with app.factory() as db:
        unknown = list(db.scalars(select(OutboxMessage).where(OutboxMessage.status == "unknown")
                                  .order_by(OutboxMessage.id).limit(200)))
        failed = list(db.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")
                                 .order_by(OutboxMessage.id.desc()).limit(20)))
        uncertain = sum(r.uncertain for r in db.scalars(
            select(OutboxMessage).where(OutboxMessage.uncertain > 0)))
    if stuck:
        print(f"\nClaimed more than {minutes:g} min ago, never confirmed (maybe delivered; the "
              "dispatcher resends them or marks them unknown, per OUTBOX_RESEND_UNKNOWN):")
        for r in stuck:
            print(f"  #{r.id} {r.channel} {r.kind} claimed {r.claimed_at:%Y-%m-%d %H:%M} UTC")
    if unknown:
        print("\nOutcome unknown (timeout or dropped connection after sending; not resent):")
        for r in unknown:
            print(f"  #{r.id} {r.channel} {r.kind}: {r.last_error or '-'}")
    if failed:
        print("\nRecent failures:")
        for r in failed:
            print(f"  #{r.id} {r.channel} {r.kind} after {r.attempts} attempt(s): {r.last_error or '-'}")
    if uncertain:
        print(f"\nResent after an unknown outcome (possible duplicates): {uncertain}")
    if stuck or unknown:
        print("\nTo send some of them again: python bot.py outbox requeue ID [ID ...]")
    return 0


def senders_for(app: Any) -> tuple[dict[str, Any], list[Any]]:
    """The senders configured in the settings, and what to close afterwards."""
    settings = app.settings
    senders: dict[str, Any] = {}
    closers: list[Any] = []
    if settings.telegram_bot_token:
        from bot.channels.telegram.sender import TelegramSender, make_bot

        bot = make_bot(settings.telegram_bot_token, settings.telegram_api_base)
        try:
            from bot.channels.telegram.staffroom import telegram_sender

            senders["telegram"] = telegram_sender(bot, app.factory)
        except ImportError:  # pragma: no cover - a build without staff rooms
            senders["telegram"] = TelegramSender(bot)
        closers.append(bot.session.close)
    from bot.channels.whatsapp.channel import whatsapp_missing, whatsapp_requested

    if whatsapp_requested(settings) and not whatsapp_missing(settings):
        from bot.channels.whatsapp.graph import GraphClient
        from bot.channels.whatsapp.sender import Templates, WhatsAppSender

        client = GraphClient(settings.whatsapp_token or "", settings.whatsapp_phone_number_id or "",
                             settings.whatsapp_graph_url)
        senders["whatsapp"] = WhatsAppSender(client, app.factory, app.runtime.clock, app.texts,
                                             Templates.from_settings(settings), settings.default_language)
        closers.append(client.close)
    if settings.web_chat == "on" or (settings.web_chat == "auto" and senders):
        # web rows are "sent" by joining the thread the web chat page shows
        from bot.channels.webchat.thread import WebSender

        senders["web"] = WebSender()
    return senders, closers


def no_sender_message(settings: Any) -> str:
    """Why ``outbox drain`` has nothing to send through, and what to set."""
    from bot.channels.whatsapp.channel import whatsapp_missing, whatsapp_requested

    if whatsapp_requested(settings):
        return (f"WhatsApp is not fully configured (missing: {', '.join(whatsapp_missing(settings))}) "
                "and TELEGRAM_BOT_TOKEN is unset: nothing to send through")
    return ("No channel to send through is configured: set TELEGRAM_BOT_TOKEN (Telegram) or "
            "WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET and "
            "WHATSAPP_VERIFY_TOKEN (WhatsApp)")


async def _drain(app: Any) -> int:
    from bot.scheduler import build_dispatcher

    senders, closers = senders_for(app)
    if not senders:
        print(no_sender_message(app.settings), file=sys.stderr)
        return 2
    try:
        stats = await build_dispatcher(app, senders).drain()
    finally:
        for close in closers:
            await close()
    print(f"sent {stats.sent}, retry later {stats.retry}, failed {stats.failed}, "
          f"unknown {stats.unknown}, moved out of quiet hours {stats.deferred}, "
          f"left claimed by a stopped process {stats.recovered}")
    return 0


def deep_link(username: str, code: str) -> str:
    return f"https://t.me/{username.lstrip('@')}?start={code}"


def web_chat_base(settings: Settings) -> str | None:
    """Where the web chat is reachable (``PUBLIC_BASE_URL``), unless ``WEB_CHAT=off``."""
    base = (settings.public_base_url or "").strip().rstrip("/")
    return base if base and settings.web_chat != "off" else None


def _qr(settings: Settings, args: argparse.Namespace) -> int:
    import qrcode

    from bot.app import build_app
    from bot.storage.models import Agency, Service

    username = (args.bot_username or settings.telegram_bot_username or "").strip().lstrip("@")
    web = web_chat_base(settings)
    if not username and not web:
        print("The bot's username is needed: --bot-username NAME or TELEGRAM_BOT_USERNAME "
              "(or PUBLIC_BASE_URL for web chat links only).", file=sys.stderr)
        return 2
    if username and not username.replace("_", "").isalnum():
        print(f"Not a Telegram username: {username!r}", file=sys.stderr)
        return 2
    app = build_app(settings)
    try:
        with app.factory() as db:
            services = db.execute(
                select(Service.code, Service.name, Agency.short_name)
                .join(Agency, Service.agency_id == Agency.id)
                .where(Service.active, Agency.active).order_by(Agency.id, Service.id)
            ).all()
    finally:
        app.engine.dispose()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def picture(link: str, name: str) -> str:
        img = qrcode.make(link, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
        img.save(str(out / name))
        return name

    with (out / "links.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "service", "agency", "link", "file", "web_link", "web_file"])
        for code, name, agency in services:
            link = deep_link(username, code) if username else ""
            web_link = f"{web}/chat/{code}" if web else ""
            writer.writerow([code, name, agency, link, picture(link, f"{code}.png") if link else "",
                             web_link, picture(web_link, f"{code}-web.png") if web_link else ""])
    kinds = " and ".join(k for k, on in (("Telegram", username), ("web chat", web)) if on)
    print(f"{len(services)} QR code(s) ({kinds}) written to {out} (links in links.csv).")
    return 0
