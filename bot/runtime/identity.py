"""Who is writing: a delivery seen once, the resident's contact row (found or made, locked),
and the effects that change it (language, consent).

The contact is read with its session state in one statement; the ORM object is loaded only by
turns that need it, so the usual turn changes the row with direct statements.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.runtime.types import Inbound
from bot.storage import hotsql, roundtrips

if TYPE_CHECKING:
    from bot.runtime.facade import Runtime
    from bot.runtime.turn import Turn


# How stale ``contacts.last_inbound_at`` may be before a turn refreshes it. It only opens
# WhatsApp's 24-hour window, so an older value closes that window at most this much early (the
# safe side); refreshing it on every message was one write in twelve of a turn.
SEEN_EVERY = timedelta(seconds=60)


def arrive(rt: Runtime, cur: Any, inbound: Inbound, now: datetime, begin: bool = False,
           ) -> tuple[Any, ...] | None:
    """Record the delivery (channel, event key) and read the resident's row, locked, with the
    session state (``hotsql.RawSQL.contact_state``): None for a delivery seen before.

    Both statements go out together (one round trip on PostgreSQL); the lock serialises one
    resident's turns, also across processes. RETURNING, not rowcount, tells a first delivery:
    psycopg reports rowcount -1 for that insert. ``begin``: the transaction starts here, with
    them (``roundtrips.own_transaction``).
    """
    raw = rt.raw
    params = {"channel": inbound.channel, "external_id": inbound.user_id}
    after = raw.session_after_lock
    with hotsql.batch(cur):
        if begin:
            roundtrips.begin(cur)
        fresh = None if not inbound.event_key else raw.first_delivery.send(
            cur, {"channel": inbound.channel, "event_key": inbound.event_key, "received_at": now})
        found = raw.contact_state.send(cur, params)
        state = None if after is None else after.send(cur, params)
    if fresh is not None and raw.first_delivery.fetch(fresh) is None:
        return None
    contact = raw.contact_state.fetch(found)
    if contact is not None and after is not None and state is not None:
        contact = _with_session(contact, after.fetch(state))
    if contact is None:  # a new resident: the usual turn never tries this insert
        hint = (inbound.language_hint or "").split("-")[0].lower()
        language = hint if hint in ("id", "en") else rt.default_language
        # no display name: it is stored with the consent (RecordConsent)
        raw.contact_insert.run(cur, {**params, "language": language, "created_at": now})
        contact = raw.contact_state.one(cur, params)
        assert contact is not None
        if after is not None:  # another process may have made them and their session meanwhile
            contact = _with_session(contact, after.one(cur, params))
    # They wrote to us, so they have not blocked the bot. A direct UPDATE, before the ORM
    # ever loads the contact (only turns that need it do): it then sees these values. Skipped
    # while nothing would change but a last_inbound_at younger than SEEN_EVERY.
    seen, unreachable = contact[6], contact[7]
    if unreachable is not None or seen is None or now - seen >= SEEN_EVERY:
        raw.contact_seen.run(cur, {"cid": contact[0], "now": now})
    return contact


def _with_session(contact: tuple[Any, ...], session: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """The contact row with the session columns read after its lock (PostgreSQL)."""
    return (*contact[:4], *(session or (None, None)), *contact[6:])


def set_language(turn: Turn, language: str) -> None:
    """SetLanguage: on the ORM object if the turn loaded it, else a direct UPDATE."""
    turn.language = language
    if turn.loaded_contact is not None:
        turn.loaded_contact.language = language
    else:  # no ORM object this turn: a direct UPDATE, which a later load sees
        turn.rt.raw.contact_language.run(turn.cur, {"cid": turn.cid, "language": language})


def record_consent(turn: Turn) -> None:
    """RecordConsent: the resident agreed, so their channel name may be stored from now on."""
    turn.consented = True
    name = turn.inbound.display_name[:200] if turn.inbound.display_name else None
    contact = turn.loaded_contact
    if contact is not None:
        contact.consent_at = turn.now
        if name:
            contact.display_name = name
    else:  # a direct UPDATE (loading the ORM object for it cost a new resident ~1 ms)
        turn.rt.raw.contact_consent.run(turn.cur, {"cid": turn.cid, "now": turn.now, "name": name})
