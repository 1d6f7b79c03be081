"""The resident and staff: messages relayed to the staff handling their case, asking for a
person, staff redeeming an invite and asking for a web desk link (bot.desk.cases,
bot.desk.staff, bot.desk.signin).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.desk import intake, signin, staff
from bot.desk import relay as desk_relay
from flows import engine
from flows.helpers.tickets import normalise_ticket
from flows.machine.types import Choice, Reply
from flows.steps.menu import COMPLAINT_WORDS, STATUS_WORDS, SURVEY_WORDS, Menu

if TYPE_CHECKING:
    from bot.runtime.turn import Turn

RELAYED_KINDS = ("text", "photo", "location")  # what bot.desk.relay passes to staff


def relay_to_staff(turn: Turn, state: dict[str, Any]) -> bool:
    """While staff handle a case, messages typed at the menu go to them (bot/desk/relay.py).

    Commands and buttons still reach the engine, so /menu and /batal always work.
    """
    assert turn.cid is not None
    ev = turn.inbound.event
    text = engine.clean_text(ev.text) if ev.kind == "text" else ""
    if ev.kind == "text" and (not text or engine.parse_command(text) is not None):
        return False
    idle = True
    if state.get("flow") not in (None, "menu") or state.get("wait"):
        try:
            idle = turn.now - datetime.fromisoformat(str(state.get("at"))) > turn.rt.session_timeout
        except ValueError:
            idle = False
    if not idle or ev.kind not in RELAYED_KINDS or picks_from_menu(turn, state, text):
        return False
    assert turn.contact is not None
    relayed = desk_relay.relay_from_resident(turn.db, turn.contact, ev, text, turn.now)
    if relayed is None:
        return False
    if relayed.notice:
        turn.reply(Reply(relayed.notice))
    turn.later.extend(relayed.rows)
    return True


def picks_from_menu(turn: Turn, state: dict[str, Any], text: str) -> bool:
    """The resident was just shown the menu (/menu) and typed one of its choices ("1",
    "Nilai layanan"): that is for the bot, as a pressed button would be, not for staff. Not
    when the bot just asked them to write to staff (no menu was shown): that message is theirs
    to staff even when it names a service ("syarat KTP hilang")."""
    if not text or state.get("flow") not in (None, "menu"):
        return False
    if (state.get("data") or {}).get("to_staff"):
        return False
    try:
        fresh = turn.now - datetime.fromisoformat(str(state.get("at"))) <= turn.rt.session_timeout
    except ValueError:
        return False
    if not fresh:
        return False
    items = Menu.ITEMS
    choices = tuple(Choice(item, turn.rt.texts(turn.language, f"menu.{item}"), key=str(n))
                    for n, item in enumerate(items, start=1))
    if engine.match_choice(text, choices) is not None:
        return True
    return menu_understands(turn, text)


def menu_understands(turn: Turn, text: str) -> bool:
    """Words the menu acts on ("pajak motor", a ticket number, "cek tiket", "lapor") are for the
    bot, not for staff: the same tests the menu's own text handler makes (flows/steps/menu.py)."""
    ticket = normalise_ticket(text)
    if ticket and any(ch.isdigit() for ch in text):
        return True
    words = set(text.lower().replace(",", " ").split())
    if any(w.startswith(COMPLAINT_WORDS + SURVEY_WORDS + STATUS_WORDS) for w in words):
        return True
    return turn.catalog.matcher.match(text, lang=turn.language).decided is not None


def request_person(turn: Turn, agency: str) -> dict[str, Any]:
    """The resident asked for a person: open (or find) their case (bot/desk/intake.py)."""
    assert turn.contact is not None
    result, rows = intake.request_person(
        turn.db, turn.contact, agency, turn.now, turn.inbound.event.event_id,
        chat_id=turn.inbound.chat_id, channel=turn.inbound.channel,
    )
    turn.later.extend(rows)
    return result


def register_staff(turn: Turn, code: str) -> dict[str, Any]:
    """/daftar <code>: redeem a staff invite (bot/desk/staff.py); the answer never echoes the code."""
    assert turn.contact is not None
    outcome = staff.register(turn.db, turn.contact, turn.inbound.chat_id, code, turn.now)
    if outcome.ok and turn.inbound.display_name:  # colleagues see who took a case
        turn.contact.display_name = turn.inbound.display_name[:200]
    return {"ok": outcome.ok, "reason": outcome.reason, "agency": outcome.agency, "role": outcome.role}


def desk_login(turn: Turn) -> dict[str, Any]:
    """/masuk: a one-time web desk link for registered staff (bot/desk/signin.py)."""
    assert turn.contact is not None
    base = turn.rt.public_base_url
    if not signin.staff_roles(turn.db, turn.contact.id):
        return {"ok": False, "reason": "not_staff"}
    if not base:
        return {"ok": False, "reason": "no_desk"}
    url = signin.issue_link(turn.db, turn.contact, turn.now, base)
    minutes = int(signin.LINK_TTL.total_seconds() // 60)
    return {"ok": url is not None, "reason": "not_staff", "url": url, "minutes": minutes}
