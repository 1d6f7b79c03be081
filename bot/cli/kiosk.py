"""``kiosk add|list|revoke``: register the tablets at the counter that collect a service's SKM.

``add`` prints the kiosk's URL (``PUBLIC_BASE_URL/kiosk/<token>``) once, and can write it as a
QR code PNG for setting up the tablet: only a hash of the token is stored, so the link cannot
be shown again (revoke the kiosk and add a new one instead).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.config import Settings


def add_parsers(sub: Any) -> None:
    k = sub.add_parser("kiosk", help="kiosks: tablets at the counter that collect a service's SKM")
    k_sub = k.add_subparsers(dest="action", required=True)
    a = k_sub.add_parser("add", help="register a kiosk and print its URL (shown only once)")
    a.add_argument("--agency", required=True, help="agency slug")
    a.add_argument("--service", required=True, help="service code (of that agency)")
    a.add_argument("--name", default=None, help='a name staff recognise, e.g. "Loket 2"')
    a.add_argument("--qr", type=Path, default=None, metavar="FILE.png", help="also write the URL as a QR code PNG")
    ls = k_sub.add_parser("list", help="kiosks with their questionnaires (last 7 days, all)")
    ls.add_argument("--agency", default=None, help="only this agency")
    r = k_sub.add_parser("revoke", help="stop a kiosk: its page then says it is not in use")
    r.add_argument("id", type=int)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_app

    base = (settings.public_base_url or "").rstrip("/")
    if args.action == "add" and not base:
        print("PUBLIC_BASE_URL is not set: it is the address the tablet opens "
              "(e.g. https://prima.example.go.id). Set it and run the command again.", file=sys.stderr)
        return 2
    app = build_app(settings)
    try:
        if args.action == "add":
            return _add(app, args, base)
        if args.action == "list":
            return _list(app, args.agency)
        return _revoke(app, args.id)
    finally:
        app.engine.dispose()


def _add(app: Any, args: argparse.Namespace, base: str) -> int:
    from bot.runtime import kiosk
    from bot.storage.db import transaction

    try:
        with transaction(app.factory) as db:
            row, token = kiosk.add(db, args.agency, args.service, args.name, app.runtime.clock())
            kid, name = row.id, row.name
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    url = f"{base}{kiosk.PATH}{token}"
    print(f"Kiosk {kid} ({name}) for {args.service}, {args.agency}:")
    print(url)
    print("Open it on the tablet now; this link is not shown again (only its hash is stored).")
    if args.qr is not None:
        import qrcode

        args.qr.parent.mkdir(parents=True, exist_ok=True)
        qrcode.make(url, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10,
                    border=4).save(str(args.qr))
        print(f"QR code written to {args.qr}")
    return 0


def _list(app: Any, agency: str | None) -> int:
    from bot.runtime import kiosk
    from bot.storage.models import Agency, Kiosk, Service

    now = app.runtime.clock()
    with app.factory() as db:
        stmt = (select(Kiosk, Agency.slug, Service.code).join(Agency, Kiosk.agency_id == Agency.id)
                .join(Service, Kiosk.service_id == Service.id).order_by(Kiosk.id))
        if agency:
            stmt = stmt.where(Agency.slug == agency)
        rows = db.execute(stmt).all()
        ids = [k.id for k, _, _ in rows]
        week = kiosk.completed(db, ids, now - timedelta(days=7))
        ever = kiosk.completed(db, ids)
    if not rows:
        print("No kiosks." + ("" if agency else " Add one: python bot.py kiosk add --agency SLUG --service CODE"))
        return 0
    for k, slug, code in rows:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        last = f"{k.last_completed_at:%Y-%m-%d %H:%M} UTC" if k.last_completed_at else "-"
        print(f"{k.id:>4}  {k.name}  {slug}/{code}  {state}  questionnaires 7 days {week.get(k.id, 0)}, "
              f"all {ever.get(k.id, 0)}, last {last}")
    return 0


def _revoke(app: Any, kiosk_id: int) -> int:
    from bot.runtime import kiosk
    from bot.storage.db import transaction

    with transaction(app.factory) as db:
        row = kiosk.revoke(db, kiosk_id, app.runtime.clock())
        name = row.name if row is not None else None
    if name is None:
        print(f"No kiosk {kiosk_id}.", file=sys.stderr)
        return 1
    print(f"Kiosk {kiosk_id} ({name}) revoked: its page now says it is not in use; its questionnaires stay counted.")
    return 0
