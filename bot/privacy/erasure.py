"""What erasure (UU 27/2022) leaves behind: nothing that identifies the person.

Complaints and survey scores stay with the agency, anonymised: the link to the person goes,
and the free text they (or staff, about them) wrote is scrubbed of NIK, phone numbers, e-mail
addresses and the person's own name. Copies of that text that Prima stores elsewhere (case
cards and relays in the outbox, case events, audit reasons, stored webhook bodies, digest
files) are scrubbed too: :func:`erase_contact` runs over every text and JSON column of every
table in the metadata, so a table added later is covered without a hand-kept list.

The text work is the scrubber's (bot/privacy/scrub.py); stored files are bot/privacy/files.py;
the confirmation reply and its purge are bot/privacy/purge.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, String, Table, Text, cast, delete, or_, select, update
from sqlalchemy.orm import Session

from bot.privacy.files import scrub_files
from bot.privacy.scrub import (
    EMAIL,
    LANDLINE,
    MIN_NAME_PART,
    MOBILE,
    NIK,
    Scrubber,
    digits,
    typed_names,
)
from bot.storage.models import (
    Agency,
    Base,
    Case,
    CaseEvent,
    Complaint,
    Contact,
    ConversationSession,
    OutboxMessage,
    Service,
    StatusChange,
    SurveyResponse,
    WhatsAppIdentity,
    WhatsAppWebhook,
)

# Tables the sweep leaves alone: the catalog (no personal data), and the contacts table, whose
# rows are other people's identities (the erased person's own row is gone by then).
NOT_SWEPT = frozenset({"agencies", "services", "contacts"})
IDENTITY_COLUMNS = frozenset({"reporter_name", "display_name"})


@cache
def bot_words() -> frozenset[str]:
    """Every word of the bot's own messages, in both languages ("Warga", "Bapak", "Petugas"):
    a resident named like one is still scrubbed by their full name, never by that word alone."""
    from bot.i18n import LANGUAGES, po_path

    words: set[str] = set()
    for lang in LANGUAGES:  # the translations' lines (ids are symbolic keys), read as plain text
        for line in po_path(lang).read_text(encoding="utf-8").splitlines():
            if line.startswith(("msgstr", '"')):
                words.update(w.lower() for w in re.findall(r"[^\W\d_]+", line.removeprefix("msgstr")))
    return frozenset(words)


def catalog_words(db: Session) -> frozenset[str]:
    """Words of agency and service names and aliases ("Pajak", "Samsat")."""
    texts = [*db.scalars(select(Agency.name)), *db.scalars(select(Agency.short_name)),
             *db.scalars(select(Service.name)),
             *(json.dumps(a, ensure_ascii=False) for a in db.scalars(select(Service.aliases)))]
    return frozenset(w.lower() for text in texts for w in re.findall(r"[^\W\d_]+", text))


@dataclass
class Erased:
    complaints: int
    surveys: int
    cases: int
    rows_scrubbed: int
    files_scrubbed: int


SHORT_CODE = 16  # String columns this short hold codes (status, channel, ticket), never a name or id


def _text_columns(table: Table) -> Iterator[Any]:
    """Columns that can hold text about a person: free text, JSON, identifiers."""
    for col in table.columns:
        t = col.type
        is_json = isinstance(t, JSON) or isinstance(getattr(t, "impl", None), JSON)
        if is_json or (isinstance(t, String) and (t.length is None or t.length > SHORT_CODE)):
            yield col


def _as_text(col: Any) -> Any:
    is_json = isinstance(col.type, JSON) or isinstance(getattr(col.type, "impl", None), JSON)
    return cast(col, Text) if is_json else col


def _like(text: Any, term: str, sqlite: bool) -> Any:
    """Case-insensitive substring test: SQLite's LIKE already is (ASCII), PostgreSQL has ILIKE."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return text.like(pattern, escape="\\") if sqlite else text.ilike(pattern, escape="\\")


def _found_terms(texts: Iterable[str]) -> set[str]:
    """NIK, phone numbers and e-mail addresses as written in the person's texts."""
    out: set[str] = set()
    for text in texts:
        for pattern in (EMAIL, NIK, MOBILE, LANDLINE):
            out.update(m.group(0) for m in pattern.finditer(text or ""))
    return out


def _search_terms(terms: Iterable[str]) -> set[str]:
    """Forms to look for with LIKE: as written, as digits, and JSON-escaped (SQLite's JSON)."""
    out: set[str] = set()
    for term in terms:
        term = term.strip()
        if len(term) < MIN_NAME_PART:
            continue
        out.add(term)
        d = digits(term)
        if len(d) >= 8:
            out.add(d)
        escaped = json.dumps(term)[1:-1]
        if escaped != term:
            out.add(escaped)
    return out


def _forget_cases(db: Session, contact_id: int, now: datetime) -> None:
    """The agency keeps the case, without the person or a way to reach them (an audit row
    says why). Here rather than in bot/desk, which sits above this module: it needs only the
    stored rows."""
    for case in db.scalars(select(Case).where(Case.contact_id == contact_id).with_for_update()):
        case.contact_id = None
        case.chat_id = None
        case.reporter_name = None
        case.relay = False
        db.add(CaseEvent(case_id=case.id, kind="status", actor="resident", from_status=case.status,
                         to_status=case.status, reason="reporter deleted their personal data", at=now))


def erase_contact(
    db: Session, contact: Contact, now: datetime, *, names: Iterable[str] = (),
    keep_outbox: Iterable[int] = (), files: Iterable[Path] = (),
) -> Erased:
    """Remove a resident: the contact, session, identities and messages go; what the agency keeps
    (complaints, cases, survey scores) loses the link and the personal data in its text.

    ``names``: other names the channel knows them by (Telegram username, WhatsApp profile
    name); ``files``: directories whose files are scrubbed too (digests); ``keep_outbox``: rows
    of this turn (the confirmation) that must still be sent.
    """
    cid = contact.id
    complaints = list(db.scalars(select(Complaint).where(Complaint.contact_id == cid).with_for_update()))
    complaint_ids = [c.id for c in complaints]
    case_cond = Case.contact_id == cid
    if complaint_ids:
        case_cond = or_(case_cond, Case.complaint_id.in_(complaint_ids))
    my_cases = list(db.scalars(select(Case).where(case_cond)))
    case_ids = [c.id for c in my_cases]
    responses = list(db.scalars(select(SurveyResponse).where(SurveyResponse.contact_id == cid)))
    events = list(db.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(case_ids)))) if case_ids else []
    changes = list(db.scalars(select(StatusChange).where(StatusChange.complaint_id.in_(complaint_ids)))) \
        if complaint_ids else []

    # Everything the person wrote, to learn the names, numbers and addresses they gave.
    theirs = [c.description for c in complaints] + [c.occurred or "" for c in complaints] \
        + [r.suggestion or "" for r in responses] + [c.summary for c in my_cases] \
        + [e.reason or "" for e in events if e.kind == "from_resident"]
    all_names = {n for n in (contact.display_name, *names) if n}
    all_names |= {c.reporter_name for c in complaints if c.reporter_name}
    all_names |= {c.reporter_name for c in my_cases if c.reporter_name}
    for text in theirs:
        all_names.update(typed_names(text))
    numbers = [contact.external_id] if digits(contact.external_id) == contact.external_id else []
    vocab = bot_words() | catalog_words(db)
    scrubber = Scrubber(names=sorted(all_names), numbers=numbers, keep_words=vocab)

    # The agency keeps these, anonymised.
    _forget_cases(db, cid, now)
    for complaint in complaints:
        complaint.contact_id = None
        complaint.reporter_name = None
        complaint.contact_consent = False
        complaint.anonymised_at = now
        complaint.description = scrubber.scrub(complaint.description)
        complaint.occurred = scrubber.scrub(complaint.occurred) if complaint.occurred else None
        complaint.location_text = scrubber.scrub(complaint.location_text) if complaint.location_text else None
        complaint.attachments = scrubber.scrub_value(complaint.attachments)
        db.add(StatusChange(complaint_id=complaint.id, from_status=complaint.status,
                            to_status=complaint.status, actor="resident",
                            reason="reporter deleted their personal data", at=now))
    for change in changes:
        change.reason = scrubber.scrub(change.reason) if change.reason else change.reason
    for case in my_cases:
        case.summary = scrubber.scrub(case.summary)
        case.reasons = scrubber.scrub_value(case.reasons)
        case.reporter_name = None
    for event in events:
        event.reason = scrubber.scrub(event.reason) if event.reason else event.reason
        event.media = scrubber.scrub_value(event.media) if event.media else event.media  # a caption
    for response in responses:
        response.contact_id = None
        # The profile kept with each questionnaire could point back at them in a small office.
        response.profile_gender = response.profile_age = None
        response.profile_education = response.profile_job = None
        response.suggestion = scrubber.scrub(response.suggestion) if response.suggestion else None

    # What only existed for the person goes.
    keep = list(keep_outbox)
    gone = delete(OutboxMessage).where(OutboxMessage.contact_id == cid)
    db.execute(gone.execution_options(synchronize_session=False))
    mine = delete(OutboxMessage).where(OutboxMessage.channel == contact.channel,
                                       OutboxMessage.chat_id == contact.external_id)
    if keep:
        mine = mine.where(OutboxMessage.id.not_in(keep))
    db.execute(mine.execution_options(synchronize_session=False))
    db.execute(delete(ConversationSession).where(ConversationSession.contact_id == cid))
    if contact.channel == "whatsapp":
        _forget_whatsapp(db, contact.external_id)
    db.flush()
    external = contact.external_id
    db.delete(contact)
    db.flush()

    # Copies elsewhere (staff-room rows, queue lists, tables added later): every text and JSON
    # column of every table is searched for the person's identifiers and scrubbed.
    # A name that is one of the bot's own words ("Warga") would match everyone's messages:
    # it is scrubbed in the person's own rows above, not searched for elsewhere.
    names_sought = [n for n in all_names if n.strip().lower() not in vocab]
    terms = _search_terms([*names_sought, *_found_terms(theirs), external])
    scrubbed = sweep(db, scrubber, terms, skip_outbox=keep, case_ids=case_ids)
    files_done = sum(scrub_files(d, scrubber, terms) for d in files)
    return Erased(len(complaints), len(responses), len(my_cases), scrubbed, files_done)


def sweep(db: Session, scrubber: Scrubber, terms: Iterable[str], *, skip_outbox: Iterable[int] = (),
          case_ids: Iterable[int] = ()) -> int:
    """Scrub every text/JSON value, in every table, that contains one of ``terms``."""
    terms = sorted(set(terms))
    needles = [t.lower() for t in terms]
    sqlite = db.get_bind().dialect.name == "sqlite"
    skip = set(skip_outbox)
    case_refs = [f"case:{i}" for i in case_ids]
    count = 0
    for table in Base.metadata.sorted_tables:
        if table.name in NOT_SWEPT:
            continue
        cols = list(_text_columns(table))
        pk = list(table.primary_key.columns)
        if not cols or not terms or not pk:
            continue
        # a LIKE per column and term: cheaper on SQLite than one over the columns joined
        # (NULL columns cost nothing, and a join is built for every row)
        cond = or_(*(_like(_as_text(c), t, sqlite) for c in cols for t in terms))
        if table.name == OutboxMessage.__tablename__ and case_refs:
            cond = or_(cond, table.c.ref.in_(case_refs))  # staff-room rows about their cases
        owner = [table.c.contact_id] if "contact_id" in table.c and table.c.contact_id not in pk else []
        refs = [table.c.ref] if table.name == OutboxMessage.__tablename__ else []
        for row in db.execute(select(*pk, *owner, *refs, *cols).where(cond)).mappings().all():
            key = {c.name: row[c.name] for c in pk}
            if table.name == OutboxMessage.__tablename__ and key.get("id") in skip:
                continue
            about_them = bool(refs) and row["ref"] in case_refs  # a copy of their case: all of it
            changes = {}
            for c in cols:
                if c.name in IDENTITY_COLUMNS and row.get("contact_id") is not None:
                    continue  # someone else's own name (a namesake), not a copy of the person's
                value = row[c.name]
                if value is None or not (about_them or _mentions(value, needles)):
                    continue  # only the values that name them: a namesake's other columns stay
                new = scrubber.scrub_value(value)
                if new != value:
                    changes[c.name] = new
            if changes:
                where = [c == key[c.name] for c in pk]
                db.execute(update(table).where(*where).values(**changes))
                count += 1
    return count


def _mentions(value: Any, needles: list[str]) -> bool:
    text = value if isinstance(value, str) else json.dumps(value)
    text_low = text.lower()
    if any(n in text_low for n in needles):
        return True
    if not isinstance(value, str):  # also as stored without escapes (PostgreSQL's JSON)
        plain = json.dumps(value, ensure_ascii=False).lower()
        return any(n in plain for n in needles)
    return False


def forget_unconsented(db: Session, contact: Contact) -> None:
    """Declined consent: the contact, its session and messages go, and on WhatsApp the
    identity link and stored bodies. Nothing was collected yet, so nothing is swept."""
    cid = contact.id
    db.execute(delete(OutboxMessage).where(OutboxMessage.contact_id == cid)
               .execution_options(synchronize_session=False))
    db.execute(delete(OutboxMessage).where(OutboxMessage.channel == contact.channel,
                                           OutboxMessage.chat_id == contact.external_id)
               .execution_options(synchronize_session=False))
    db.execute(delete(ConversationSession).where(ConversationSession.contact_id == cid))
    if contact.channel == "whatsapp":
        _forget_whatsapp(db, contact.external_id)
    db.flush()
    db.delete(contact)
    db.flush()


def _forget_whatsapp(db: Session, wa_id: str) -> None:
    db.execute(delete(WhatsAppIdentity).where(or_(WhatsAppIdentity.wa_id == wa_id,
                                                  WhatsAppIdentity.user_id == wa_id)))
    # stored bodies of their messages (processed ones are deleted already; these wait for a retry)
    db.execute(delete(WhatsAppWebhook).where(cast(WhatsAppWebhook.body, Text).contains(wa_id))
               .execution_options(synchronize_session=False))
