"""A case's states, the staff actions that move it between them, and the button data naming them.

Pure (no database): the card (bot/desk/cards.py), the state machine (bot/desk/cases.py), the
queue and the SLA check all read these, and the channels parse a button press with
:func:`parse_callback` before anything is loaded.

States: new -> open (taken) -> pending (waiting for the resident) -> resolved -> closed, and
reopened (a follow-up answered "not resolved", or staff pressed "Buka kembali" on a resolved
or closed case). A case answered in its topic before anyone took it is "open" without an
assignee; "take" then makes someone responsible (bot/desk/relay.py never assigns silently).
"""

from __future__ import annotations

ACTIVE = ("new", "open", "pending", "reopened")
URGENT = "urgent"  # Case.priority of a serious complaint (or raised by staff); else "normal"
PRIORITIES = (URGENT, "normal")  # the order of every view: urgent cases first
PREFIX = "cs:"
ACTIONS = ("take", "pending", "resolve", "reopen", "head", "note")
# action -> (statuses it may be applied in, new status; None keeps the status)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "take": (("new", "reopened", "pending", "open"), "open"),  # "open": only while unassigned
    "pending": (("open", "reopened"), "pending"),
    "resolve": (("new", "open", "pending", "reopened"), "resolved"),
    "reopen": (("resolved", "closed"), "reopened"),
    "head": (ACTIVE, None),
    "note": ((*ACTIVE, "resolved", "closed"), None),
}


def allowed(action: str, status: str, level: str, assigned: bool) -> bool:
    """May ``action`` be applied to a case in this state? (The card shows only these buttons.)"""
    statuses, _ = TRANSITIONS.get(action, ((), None))
    if status not in statuses or (action == "head" and level == "head"):
        return False
    return not (action == "take" and status == "open" and assigned)  # taken already


def callback(action: str, case_id: int, extra: str = "") -> str:
    return f"{PREFIX}{action}:{case_id}" + (f":{extra}" if extra else "")


def parse_callback(data: str | None) -> tuple[str, int, str] | None:
    """``cs:take:12`` -> ("take", 12, ""); ``cs:rate:12:5`` -> ("rate", 12, "5") (``cs:rate:12:no``:
    the resident says it is not solved yet); else None."""
    if not data or not data.startswith(PREFIX) or len(data) > 64:
        return None
    parts = data.split(":")
    if len(parts) not in (3, 4) or not parts[2].isdigit():
        return None
    action = parts[1]
    if action not in (*ACTIONS, "rate"):
        return None
    return action, int(parts[2]), parts[3] if len(parts) == 4 else ""
