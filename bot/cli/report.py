"""``python bot.py report``: the official periodic SKM report of an agency or the whole regency."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.config import Settings
from bot.reports.periodic.data import ALL, collect
from bot.reports.periodic.period import last_complete, parse_period
from bot.reports.periodic.text import render_text


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = sub.add_parser("report", help="build the periodic SKM report (PDF and XLSX with --out; "
                        "does not send it)")
    who = rp.add_mutually_exclusive_group(required=True)
    who.add_argument("--agency", help="agency slug")
    who.add_argument("--all", action="store_true", help="the whole regency: one IKM over all "
                     "agencies, and each agency's")
    rp.add_argument("--period", help="2026-Q4, 2026-S2 or 2026 (default: the last complete quarter)")
    rp.add_argument("--out", type=Path, help="write the PDF and XLSX here; without it print the text")
    rp.add_argument("--lang", choices=("id", "en"), help="language (default: DEFAULT_LANGUAGE)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_app

    app = build_app(settings)
    lang = args.lang or settings.default_language
    scope = ALL if args.all else args.agency
    try:
        period = parse_period(args.period) if args.period else last_complete(
            app.runtime.clock(), "Asia/Jakarta", "Q")
        with app.factory() as db:
            data = collect(db, scope, period)
            if args.out is None:
                print(render_text(data, lang, app.texts))
                return 0
            from bot.reports.periodic.files import write_files

            files = write_files(db, data, args.out, lang, app.texts)
    except (LookupError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        app.engine.dispose()
    for path in files:
        print(path)
    return 0
