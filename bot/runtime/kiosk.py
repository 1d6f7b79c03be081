"""Kiosks: a tablet at the counter that collects one service's SKM, each questionnaire an
anonymous respondent.

A kiosk is registered by an admin (``python bot.py kiosk add``) and reached through a URL with
a secret token; only the token's SHA-256 is stored. A questionnaire from it (:func:`record`)
is stored in the same tables as a chat questionnaire (``survey_responses`` with its nine
``survey_answers``, ``counted_at`` = its start, the profile snapshot), with channel "kiosk",
no contact and ``kiosk_id`` set, so the IKM, the digest, the periodic report and the public
pages count it with no special case. Two rules hold in the one transaction that stores it:

- idempotency: the page sends a key per questionnaire (a UUID it keeps until the server
  confirms); the response key is ``kiosk:<kiosk id>:<key>``, unique, so a retry of a stored
  questionnaire stores nothing and gets the same thank-you;
- ballot stuffing is bounded: the kiosk's row is locked and at most one questionnaire per
  ``KIOSK_MIN_INTERVAL`` seconds is stored; a faster one is refused with the seconds to wait.

No case is opened for a very low kiosk questionnaire (nobody could be answered), and no
reminder is scheduled (it is complete when stored).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import Agency, Kiosk, Service, SurveyAnswer, SurveyResponse
from flows.helpers.profile import CODES
from flows.helpers.skm import ELEMENTS

CHANNEL = "kiosk"
PATH = "/kiosk/"
SKIP = "x"  # "Tidak tahu": stored as a NULL score, like the chat's
KEY = re.compile(r"[A-Za-z0-9-]{8,64}")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Place:
    """What a kiosk page shows: its agency and service (names in both languages)."""

    kiosk_id: int
    name: str
    agency: str
    service: str
    service_en: str
    state: str  # ok | revoked | retired
    code: str = ""  # the service's code (a revoked kiosk points to the web chat's survey of it)


def add(db: Session, agency_slug: str, service_code: str, name: str | None, now: datetime) -> tuple[Kiosk, str]:
    """Register a kiosk; returns it and its token (shown once: only the hash is kept)."""
    agency = db.scalars(select(Agency).where(Agency.slug == agency_slug)).first()
    if agency is None or not agency.active:
        raise LookupError(f"Unknown or retired agency {agency_slug!r}.")
    svc = db.scalars(select(Service).where(Service.code == service_code)).first()
    if svc is None or not svc.active or svc.agency_id != agency.id:
        raise LookupError(f"Service {service_code!r} is not an active service of {agency_slug!r}.")
    if not name:
        n = db.scalar(select(func.count()).select_from(Kiosk).where(Kiosk.agency_id == agency.id)) or 0
        name = f"Kiosk {n + 1}"
    token = secrets.token_urlsafe(24)
    kiosk = Kiosk(agency_id=agency.id, service_id=svc.id, name=name[:100], token_hash=token_hash(token),
                  created_at=now)
    db.add(kiosk)
    db.flush()
    return kiosk, token


def revoke(db: Session, kiosk_id: int, now: datetime) -> Kiosk | None:
    kiosk = db.get(Kiosk, kiosk_id)
    if kiosk is not None and kiosk.revoked_at is None:
        kiosk.revoked_at = now
    return kiosk


def completed(db: Session, kiosk_ids: list[int], since: datetime | None = None) -> dict[int, int]:
    """Questionnaires stored per kiosk (since a time, or ever)."""
    if not kiosk_ids:
        return {}
    stmt = select(SurveyResponse.kiosk_id, func.count()).where(SurveyResponse.kiosk_id.in_(kiosk_ids))
    if since is not None:
        stmt = stmt.where(SurveyResponse.started_at >= since)
    rows = db.execute(stmt.group_by(SurveyResponse.kiosk_id))
    return {int(k): int(n) for k, n in rows if k is not None}


def place(db: Session, token: str) -> Place | None:
    """The kiosk a token opens, or None for a wrong token."""
    kiosk = db.scalars(select(Kiosk).where(Kiosk.token_hash == token_hash(token))).first()
    if kiosk is None:
        return None
    svc = db.get(Service, kiosk.service_id)
    agency = db.get(Agency, kiosk.agency_id)
    assert svc is not None and agency is not None
    state = "revoked" if kiosk.revoked_at is not None else \
        "retired" if not (svc.active and agency.active) else "ok"
    return Place(kiosk.id, kiosk.name, agency.name, svc.name,
                 str((svc.aliases or {}).get("name_en", "")) or svc.name, state, svc.code)


@dataclass(frozen=True)
class Questionnaire:
    key: str
    answers: dict[int, int | None]  # element 1..9 -> score, None for "Tidak tahu"
    profile: dict[str, str | None]  # gender/age/education/job -> code, None when not given


def parse(form: Mapping[str, str]) -> Questionnaire | None:
    """A submitted questionnaire, checked completely; None when anything is not a valid choice.

    Every element must be answered (a score 1-4 or "x" for "Tidak tahu"); profile values must
    come from the official lists, or be empty (not given).
    """
    key = str(form.get("key", ""))
    if not KEY.fullmatch(key):
        return None
    answers: dict[int, int | None] = {}
    for element in range(1, len(ELEMENTS) + 1):
        value = str(form.get(f"e{element}", ""))
        if value == SKIP:
            answers[element] = None
        elif value in ("1", "2", "3", "4"):
            answers[element] = int(value)
        else:
            return None
    profile: dict[str, str | None] = {}
    for field, codes in CODES.items():
        value = str(form.get(field, ""))
        if value and value not in codes:
            return None
        profile[field] = value or None
    return Questionnaire(key, answers, profile)


@dataclass(frozen=True)
class Outcome:
    status: str  # stored | duplicate | wait | revoked | unknown
    retry_after: int = 0


def record(factory: sessionmaker[Session], token: str, q: Questionnaire, now: datetime,
           min_interval: float) -> Outcome:
    """Store one kiosk questionnaire once, at most one per ``min_interval`` seconds per kiosk."""
    try:
        with factory() as db, db.begin():
            return _record(db, token, q, now, min_interval)
    except IntegrityError:  # the same key stored by a concurrent request a moment ago
        return Outcome("duplicate")


def _record(db: Session, token: str, q: Questionnaire, now: datetime, min_interval: float) -> Outcome:
    # Locked: two tablets' requests for one kiosk (or a retry racing its original) take turns.
    kiosk = db.scalars(select(Kiosk).where(Kiosk.token_hash == token_hash(token)).with_for_update()).first()
    if kiosk is None:
        return Outcome("unknown")
    response_key = f"{CHANNEL}:{kiosk.id}:{q.key}"
    if db.scalar(select(SurveyResponse.id).where(SurveyResponse.response_key == response_key)) is not None:
        return Outcome("duplicate")
    if kiosk.revoked_at is not None:
        return Outcome("revoked")
    svc = db.get(Service, kiosk.service_id)
    agency = db.get(Agency, kiosk.agency_id)
    if svc is None or agency is None or not (svc.active and agency.active):
        return Outcome("revoked")
    last = kiosk.last_completed_at
    if last is not None and min_interval > 0:
        wait = min_interval - (now - last).total_seconds()
        if wait > 0:
            return Outcome("wait", max(1, math.ceil(wait)))
    kiosk.last_completed_at = now
    resp = SurveyResponse(
        response_key=response_key, contact_id=None, agency_id=kiosk.agency_id, service_id=svc.id,
        channel=CHANNEL, status="complete", suggestion=None, started_at=now, completed_at=now,
        updated_at=now, kiosk_id=kiosk.id,
        **{f"profile_{field}": value for field, value in q.profile.items()},
    )
    resp.answers = [
        SurveyAnswer(agency_id=kiosk.agency_id, service_id=svc.id, element=element, score=score,
                     answered_at=now, counted_at=now)
        for element, score in sorted(q.answers.items())
    ]
    db.add(resp)
    db.flush()
    return Outcome("stored")

