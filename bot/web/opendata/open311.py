"""Read-only Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) over Prima's complaints.

What a request shows and what it never shows:
- listed: the ticket (``service_request_id``), open/closed and Prima's status word, the service,
  the agency, the filing/update/deadline times, and the category label as ``description``;
- never: the resident's words, name, chat, photos, typed address (``address`` stays empty);
- a confidential complaint is never listed, not even by its ticket (it is only counted in /data);
- coordinates only when the complaint is not confidential and its reporter agreed to share the
  location publicly: ``attachments["location_public"] is True``. The complaint flow asks that
  once, right after a location is sent (flows/steps/complaint.py); skipping it means no.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.storage.models import Agency, Complaint, Service
from bot.web.opendata.figures import first_cases

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-01T00:00:00Z"  # when this endpoint's behaviour last changed
DEFAULT_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
CLOSED = ("resolved", "closed")
LOCATION_CONSENT = "location_public"  # the attachments key that records the reporter's consent


class Open311Error(ValueError):
    """A bad query: answered 400 with GeoReport's ``[{"code", "description"}]`` body."""


@dataclass(frozen=True)
class RequestQuery:
    """The filters of ``requests.json`` after validation (normalised, usable as a cache key)."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    agency: str = ""
    start: datetime | None = None
    end: datetime | None = None


def _when(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise Open311Error(f"{name} must be a W3C date-time such as 2026-11-01T00:00:00+07:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _list(params: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(sorted({v.strip() for v in params.get(name, "").split(",") if v.strip()}))


def parse_query(params: Mapping[str, str], now: datetime) -> RequestQuery:
    """GeoReport's filters; without dates the last 90 days, one date alone spans 90 days."""
    ids = _list(params, "service_request_id")
    if ids:  # the spec: other parameters are ignored when ids are given
        return RequestQuery(ids=ids)
    statuses = _list(params, "status")
    if any(s not in ("open", "closed") for s in statuses):
        raise Open311Error("status must be open, closed, or both separated by a comma")
    start = _when(params["start_date"], "start_date") if params.get("start_date") else None
    end = _when(params["end_date"], "end_date") if params.get("end_date") else None
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - DEFAULT_SPAN
    if end is None:
        end = start + DEFAULT_SPAN
    if end < start:
        raise Open311Error("end_date is before start_date")
    return RequestQuery((), _list(params, "service_code"), statuses,
                        params.get("agency", "").strip(), start.astimezone(UTC), end.astimezone(UTC))


def services(db: Session) -> list[dict[str, Any]]:
    """Every active service of an active agency, as GeoReport service types."""
    out = []
    for svc, agency in db.execute(
        select(Service, Agency).join(Agency, Service.agency_id == Agency.id)
        .where(Service.active.is_(True), Agency.active.is_(True)).order_by(Agency.slug, Service.id)
    ):
        aliases = (svc.aliases or {}).get("aliases") or []
        out.append({
            "service_code": svc.code, "service_name": svc.name,
            "description": f"{svc.name} ({agency.name})", "metadata": False, "type": "realtime",
            "keywords": ",".join(str(a) for a in aliases), "group": agency.short_name,
        })
    return out


def location_shared(complaint: Complaint) -> bool:
    """Coordinates may be published: not confidential, and the reporter agreed to it."""
    return (not complaint.confidential and complaint.latitude is not None
            and complaint.longitude is not None
            and (complaint.attachments or {}).get(LOCATION_CONSENT) is True)


def requests(db: Session, query: RequestQuery, label: Callable[[str], str]) -> list[dict[str, Any]]:
    """Non-confidential complaints matching ``query``, newest first, at most 1000.

    ``label`` turns a category code into its published label (never the resident's words)."""
    c = Complaint
    cases = first_cases()
    stmt = (
        select(c, Service.code, Service.name, Agency, cases.c.due)
        .join(Service, c.service_id == Service.id).join(Agency, c.agency_id == Agency.id)
        .join(cases, cases.c.complaint_id == c.id, isouter=True)
        .where(c.confidential.is_(False))
        .order_by(c.created_at.desc(), c.id.desc()).limit(MAX_REQUESTS)
    )
    if query.ids:
        stmt = stmt.where(c.ticket.in_(query.ids))
    else:
        assert query.start is not None and query.end is not None
        stmt = stmt.where(c.created_at >= query.start, c.created_at <= query.end)
        if query.service_codes:
            stmt = stmt.where(Service.code.in_(query.service_codes))
        if query.agency:
            stmt = stmt.where(Agency.slug == query.agency)
        if query.statuses == ("open",):
            stmt = stmt.where(c.status.not_in(CLOSED))
        elif query.statuses == ("closed",):
            stmt = stmt.where(c.status.in_(CLOSED))
    return [_request(comp, code, name, agency, due, label) for comp, code, name, agency, due in db.execute(stmt)]


def _iso(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else None


def _request(complaint: Complaint, code: str, name: str, agency: Agency, due: datetime | None,
             label: Callable[[str], str]) -> dict[str, Any]:
    zone = ZoneInfo(agency_zone(agency))
    shared = location_shared(complaint)
    return {
        "service_request_id": complaint.ticket,
        "status": "closed" if complaint.status in CLOSED else "open",
        "status_notes": complaint.status,
        "service_name": name,
        "service_code": code,
        "description": label(complaint.category),
        "agency_responsible": agency.name,
        "service_notice": "",
        "requested_datetime": _iso(complaint.created_at, zone),
        "updated_datetime": _iso(complaint.updated_at, zone),
        "expected_datetime": _iso(due, zone),
        "address": "",
        "address_id": "",
        "zipcode": "",
        "lat": complaint.latitude if shared else None,
        "long": complaint.longitude if shared else None,
        "media_url": "",
    }


def discovery(base_url: str) -> dict[str, Any]:
    return {
        "changeset": CHANGESET,
        "contact": "",
        "key_service": "",
        "endpoints": [{
            "specification": SPEC, "url": f"{base_url}/open311/v2", "changeset": CHANGESET,
            "type": "production", "formats": ["application/json"],
        }],
    }
