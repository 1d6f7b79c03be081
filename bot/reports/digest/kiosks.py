"""Per-kiosk counts for the digest, and the burst flag that points at ballot stuffing.

A kiosk (bot/runtime/kiosk.py) stores at most one questionnaire per ``KIOSK_MIN_INTERVAL``, so
stuffing is bounded but not impossible: someone could keep filling the tablet in. The head
sees every kiosk's questionnaires of the week, and a kiosk is flagged when more than
:data:`BURST_PER_HOUR` were completed within any 60 minutes (a busy counter serves far fewer
residents than that who stop to answer thirteen questions; the 20-second limit alone would
allow 180).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.reports.digest.model import KioskLine
from bot.storage.models import Kiosk, Service, SurveyResponse

BURST_PER_HOUR = 30
HOUR = timedelta(hours=1)


def kiosk_lines(db: Session, agency_id: int, start: datetime, end: datetime) -> list[KioskLine]:
    """The agency's kiosks in use during [start, end) with their questionnaires, and any burst."""
    kiosks = db.execute(
        select(Kiosk.id, Kiosk.name, Service.name, Service.aliases)
        .join(Service, Kiosk.service_id == Service.id)
        .where(Kiosk.agency_id == agency_id, Kiosk.created_at < end,
               or_(Kiosk.revoked_at.is_(None), Kiosk.revoked_at >= start))
        .order_by(Kiosk.id)
    ).all()
    if not kiosks:
        return []
    times: dict[int, list[datetime]] = {}
    for kid, at in db.execute(
        select(SurveyResponse.kiosk_id, SurveyResponse.started_at)
        .where(SurveyResponse.agency_id == agency_id, SurveyResponse.kiosk_id.is_not(None),
               SurveyResponse.started_at >= start, SurveyResponse.started_at < end)
    ):
        if kid is not None:
            times.setdefault(kid, []).append(at)
    return [KioskLine(name, svc, str((aliases or {}).get("name_en", "")) or svc,
                      len(times.get(kid, [])), burst(times.get(kid, [])))
            for kid, name, svc, aliases in kiosks]


def burst(times: list[datetime]) -> tuple[int, datetime] | None:
    """The most questionnaires within any 60 minutes and when they began, if above the limit."""
    times = sorted(times)
    best, best_at, first = 0, None, 0
    for i, at in enumerate(times):
        while at - times[first] >= HOUR:
            first += 1
        if i - first + 1 > best:
            best, best_at = i - first + 1, times[first]
    return (best, best_at) if best > BURST_PER_HOUR and best_at is not None else None
