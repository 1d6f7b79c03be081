"""The agency lines of ``python bot.py doctor``: values in the database the bot would replace
by a default, and agencies whose complaints reach nobody.

``catalog load`` refuses bad values, but a row changed by hand (an ``UPDATE``) or by an older
Prima is read at run time through the fallbacks in bot/catalog.py, bot/worktime.py and the
digest job, which log once and go on with the default. Here the same validators name the
agency and the field before anyone waits for a digest that comes at 07:30 instead.
Each check gives ``(level, name, detail)`` lines; ``bot.cli.doctor`` prints them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import (
    DEFAULT_FOLLOWUP_DAYS,
    DEFAULT_QUIET,
    DEFAULT_ZONE,
    IKM_WEIGHTS,
    MAX_FOLLOWUP_DAYS,
    sla_settings,
    valid_hhmm,
    valid_zone,
)
from bot.reports.digest.job import DEFAULT_TIME, TIME
from bot.storage.models import Agency, StaffMember, StaffRoom
from bot.worktime import policy_from_settings

OK, WARN = "OK", "WARN"
Line = tuple[str, str, str]
FIX = "fix it in the catalog and run `python bot.py catalog load`"


def agency_lines(db: Session) -> list[Line]:
    """One WARN per bad value and per agency nobody answers for; one OK when all is well."""
    agencies = list(db.scalars(select(Agency).where(Agency.active).order_by(Agency.id)))
    staffed = set(db.scalars(select(StaffMember.agency_id).where(StaffMember.active)))
    rooms = set(db.scalars(select(StaffRoom.agency_id)))
    lines: list[Line] = []
    for agency in agencies:
        name = f"agency {agency.slug}"
        for field, problem in bad_values(agency):
            lines.append((WARN, name, f"{field} {problem}; {FIX}"))
        if agency.id not in staffed and agency.id not in rooms:
            lines.append((WARN, name, "no staff registered and no staff room: its complaints "
                          "reach nobody; `python bot.py staff invite --agency "
                          f"{agency.slug} --role head` (or staff), or link a staff room with /ruangstaf"))
    if not lines:
        lines.append((OK, "agencies", f"{len(agencies)} active, stored settings valid, each has "
                      "staff or a staff room"))
    return lines


def bad_values(agency: Agency) -> list[tuple[str, str]]:
    """(field, what is wrong and what the bot uses instead) for every value the bot replaces."""
    found: list[tuple[str, str]] = []
    settings: dict[str, Any] = agency.settings if isinstance(agency.settings, dict) else {}
    if not valid_zone(agency.timezone):
        found.append(("timezone", f"{agency.timezone!r} is not a known time zone, the bot uses "
                      f"{DEFAULT_ZONE}"))
    if not (valid_hhmm(agency.quiet_start) and valid_hhmm(agency.quiet_end)):
        found.append(("quiet hours", f"{agency.quiet_start!r}-{agency.quiet_end!r} is not HH:MM-HH:MM, "
                      f"the bot uses {'-'.join(DEFAULT_QUIET)}"))
    days = agency.followup_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_FOLLOWUP_DAYS:
        found.append(("followup_days", f"{days!r} is not 1-{MAX_FOLLOWUP_DAYS}, the bot uses "
                      f"{DEFAULT_FOLLOWUP_DAYS}"))
    digest = settings.get("digest_time")
    if digest and not TIME.fullmatch(str(digest).strip()):
        found.append(("settings digest_time", f"{digest!r} is not a time HH:MM, the digest goes "
                      f"out at {DEFAULT_TIME}"))
    weights = settings.get("ikm_weights")
    if weights and weights not in IKM_WEIGHTS:
        found.append(("settings ikm_weights", f"{weights!r} is not one of {', '.join(IKM_WEIGHTS)}, "
                      "reports use exact"))
    zone = agency.timezone if valid_zone(agency.timezone) else DEFAULT_ZONE
    categories = settings.get("sla_categories")
    for category in [None, *(sorted(categories) if isinstance(categories, dict) else [])]:
        try:
            policy_from_settings(zone, sla_settings(settings, category))
        except (ValueError, TypeError, AttributeError) as exc:  # as bot.desk.cases.policy falls back
            where = f" (complaint category {category})" if category else ""
            found.append((f"settings{where}", f"{exc}, the bot uses the default working time "
                          "and limits"))
            if category is None:
                break  # every category inherits the same fault
    return found
