"""What a public page shows, computed from the open data figures: aggregates only.

The IKM and complaint rows come from ``bot.web.opendata.figures`` (the under-5 rule already
applied there); this module adds the minimum sample (bot/reports/sample.py), the trend over the
last 8 quarters and the follow-up plan's done actions. No resident's words ever pass through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.reports import sample
from bot.storage.models import Agency, PlanAction, Service
from bot.web.opendata import figures
from bot.web.opendata.periods import Period, default_periods, quarter_of

TREND_QUARTERS = 8
LOW_NRR = 3.0  # an element under this is what residents said needs work


@dataclass
class AgencyPage:
    slug: str
    name: str
    service: str = ""
    service_name: str = ""
    ikm: list[dict[str, Any]] = field(default_factory=list)  # previous, current quarter
    complaints: list[dict[str, Any]] = field(default_factory=list)
    trend: list[dict[str, Any]] = field(default_factory=list)
    done: list[dict[str, Any]] = field(default_factory=list)
    services: list[tuple[str, str]] = field(default_factory=list)


def quarters_back(now: datetime, zone: str, n: int) -> list[Period]:
    current = default_periods(now, zone)[1]
    out = [current]
    while len(out) < n:
        out.insert(0, quarter_of(out[0].first - timedelta(days=1)))
    return out


def _sample(db: Session, agency: Agency, service: str, row: dict[str, Any], period: Period) -> dict[str, Any]:
    stmt = select(Service.population, Service.population_per).where(
        Service.agency_id == agency.id, Service.population.is_not(None))
    if service:
        stmt = stmt.where(Service.code == service)
    pops = [(int(n or 0), str(per or "year")) for n, per in db.execute(stmt)]
    respondents = row["respondents"] or 0
    weeks = sample.PERIOD_WEEKS["quarter"]
    s = sample.minimum_sample(respondents, pops, weeks)
    return {**row, "minimum": s.minimum, "enough": row["status"] == "ok" and row["respondents"] is not None
            and s.enough}


def _pick(rows: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["service"] == service]


def _done(db: Session, agency: Agency, service_id: int | None, nrr: dict[int, float | None],
          limit: int) -> list[dict[str, Any]]:
    stmt = select(PlanAction).where(PlanAction.agency_id == agency.id, PlanAction.status == "done")
    if service_id is not None:
        stmt = stmt.where((PlanAction.service_id == service_id) | PlanAction.service_id.is_(None))
    stmt = stmt.order_by(PlanAction.done_at.desc(), PlanAction.id.desc()).limit(limit)
    return [{"agency": agency.slug, "agency_name": agency.name, "element": a.element,
             "nrr": nrr.get(a.element), "what": a.what, "done_text": a.done_text or "",
             "done_at": a.done_at} for a in db.scalars(stmt)]


def agency_page(db: Session, agency: Agency, service: Service | None, now: datetime,
                trend: bool = True) -> AgencyPage:
    code = service.code if service else ""
    zone = agency_zone(agency)
    periods = quarters_back(now, zone, TREND_QUARTERS if trend else 2)
    ikm_rows = _pick(figures.ikm_rows(db, periods, now, agency.slug), code)
    complaint_rows = _pick(figures.complaint_rows(db, periods[-2:], now, agency.slug), code)
    page = AgencyPage(agency.slug, agency.name, code, service.name if service else "")
    page.ikm = [_sample(db, agency, code, r, p) for r, p in zip(ikm_rows[-2:], periods[-2:], strict=True)]
    page.complaints = complaint_rows
    page.trend = ikm_rows
    latest = next((r for r in reversed(page.ikm) if r["status"] == "ok"), page.ikm[-1])
    nrr = {e: latest[f"nrr_{e}"] for e in range(1, figures.ELEMENTS + 1)}
    page.done = _done(db, agency, service.id if service else None, nrr, 10)
    page.services = [(s.code, s.name) for s in db.scalars(
        select(Service).where(Service.agency_id == agency.id, Service.active.is_(True)).order_by(Service.id))]
    return page


def regency(db: Session, now: datetime) -> tuple[list[AgencyPage], list[dict[str, Any]]]:
    """Every active agency's figures (current and previous quarter) and the latest done actions."""
    agencies = list(db.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.slug)))
    pages = [agency_page(db, a, None, now, trend=False) for a in agencies]
    done = sorted((d for p in pages for d in p.done), key=lambda d: d["done_at"], reverse=True)[:10]
    return pages, done


def find(db: Session, slug: str, code: str | None) -> tuple[Agency, Service | None] | None:
    agency = db.scalars(select(Agency).where(Agency.slug == slug, Agency.active.is_(True))).first()
    if agency is None:
        return None
    if not code:
        return agency, None
    svc = db.scalars(select(Service).where(Service.agency_id == agency.id, Service.code == code)).first()
    return (agency, svc) if svc is not None else None
