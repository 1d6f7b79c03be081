"""``python bot.py retention [--dry-run]``: apply the retention periods now, or show what they would do.

The scheduler runs the same rules daily (bot/privacy/retention.py); this command is for the
operator who changed a period, or wants to see before the night's run what it will remove.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from bot.config import Settings


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("retention", help="delete or anonymise personal data older than its "
                       "retention period (RETENTION_* settings); the bot also does it daily")
    p.add_argument("--dry-run", action="store_true",
                   help="only count what would be deleted or anonymised; change nothing")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.privacy.retention import Policy, run_retention
    from bot.storage.db import open_database, session_factory

    engine = open_database(settings.database_url)
    try:
        now = datetime.now(UTC)
        outcomes = run_retention(session_factory(engine), Policy.from_settings(settings), now,
                                 dry_run=args.dry_run)
    finally:
        engine.dispose()
    head = "Retention, dry run (nothing changed)" if args.dry_run else "Retention"
    print(f"{head} at {now:%Y-%m-%d %H:%M} UTC:")
    for outcome in outcomes:
        print(f"  {outcome.line()}")
    return 0
