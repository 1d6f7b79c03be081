"""``python bot.py staff ...`` and ``python bot.py digest ...``: the operator's side of digests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.catalog import agency_zone
from bot.config import Settings
from bot.desk import signin, staff
from bot.reports.digest.data import collect, find_agency
from bot.reports.digest.files import write_files
from bot.reports.digest.period import parse_week, previous_week
from bot.reports.digest.text import render_text

if TYPE_CHECKING:
    from bot.app import App


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = sub.add_parser("staff", help="agency heads and staff: invite codes, list, deactivate")
    st_sub = st.add_subparsers(dest="action", required=True)
    inv = st_sub.add_parser("invite", help="print a one-time code; the person sends /daftar <code> to the bot")
    inv.add_argument("--agency", required=True, help="agency slug (see catalog.yaml)")
    inv.add_argument("--role", required=True, choices=staff.ROLES)
    inv.add_argument("--days", type=int, default=staff.DEFAULT_DAYS, help="days the code stays valid (1-90)")
    ls = st_sub.add_parser("list", help="list registered heads and staff")
    ls.add_argument("--agency", help="only this agency")
    de = st_sub.add_parser("deactivate", help="deactivate a staff member (ID from 'staff list'); "
                           "their web desk sessions end at once")
    de.add_argument("id", type=int, help="staff member ID")

    dg = sub.add_parser("digest", help="build an agency's weekly digest by hand (does not send it)")
    dg.add_argument("--agency", required=True, help="agency slug")
    dg.add_argument("--week", help="ISO week like 2026-W47 (default: last complete week, agency time)")
    dg.add_argument("--out", type=Path, help="write text, chart PNG and XLSX here; without it print the text")
    dg.add_argument("--lang", choices=("id", "en"), help="language (default: DEFAULT_LANGUAGE)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_app

    app = build_app(settings)
    try:
        if args.command == "staff":
            return _staff(app, args)
        return _digest(app, args)
    finally:
        app.engine.dispose()


def _staff(app: App, args: argparse.Namespace) -> int:
    now = app.runtime.clock()
    if args.action == "invite":
        try:
            with app.factory() as db, db.begin():
                code = staff.create_invite(db, args.agency, args.role, now, args.days)
        except staff.StaffError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        print(code)
        print(f"One-time code for {args.role} of {args.agency}, valid {args.days} days. "
              f"The person sends: /daftar {code}", file=sys.stderr)
        return 0
    if args.action == "deactivate":
        with app.factory() as db, db.begin():
            member = signin.deactivate(db, args.id, now)
        if member is None:
            print(f"No staff member with ID {args.id} (see 'staff list').", file=sys.stderr)
            return 2
        print(f"Staff member {args.id} deactivated; their desk sessions and sign-in links are void.")
        return 0
    with app.factory() as db:
        rows = staff.members(db, args.agency)
    for member, agency, contact in rows:
        state = "active" if member.active else "inactive"
        print(f"{agency.slug}\t{member.role}\t{contact.display_name or '-'}\t{member.channel}:{member.chat_id}"
              f"\t{state}\tid={member.id}")
    if not rows:
        print("No staff registered yet.", file=sys.stderr)
    return 0


def _digest(app: App, args: argparse.Namespace) -> int:
    lang = args.lang or app.settings.default_language
    try:
        with app.factory() as db:
            agency = find_agency(db, args.agency)
            week = args.week or previous_week(app.runtime.clock(), agency_zone(agency))
            parse_week(week)
            data = collect(db, agency, week, app.runtime.clock())
            if args.out is None:
                print(render_text(data, lang, app.texts))
                return 0
            files = write_files(db, data, args.out, lang, app.texts)
    except (LookupError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(files.chart.with_suffix(".txt"))
    print(files.chart)
    print(files.xlsx)
    return 0
