"""Global commands and navigation: what /menu, /batal, /kembali, /start, /daftar, /masuk ... do.

They work on every question of every flow (the engine routes them here, and the back and
cancel buttons too); which words are commands is read in :mod:`flows.engine`.
"""

from __future__ import annotations

from flows.machine.registry import STEPS
from flows.machine.turn import Turn
from flows.machine.types import SurveyCancelled
from flows.steps import plan, status
from flows.steps.service import SvcChoose
from flows.steps.staff import StaffLogin, StaffRegister


def run(turn: Turn, name: str, arg: str) -> None:
    """Do what the global command ``name`` (from :func:`flows.engine.parse_command`) asks."""
    if name == "help":
        turn.say("help")
        if turn.state.get("wait"):
            turn.ask_after = False
        return
    if name == "lang":
        turn.goto("lang", "choose")
        return
    if name == "register":  # staff registration does not wait for resident consent (bot/desk/staff.py)
        StaffRegister().start(turn, arg)
        return
    if name == "login":  # a sign-in link to the web desk, for registered staff only
        StaffLogin().start(turn)
        return
    if name == "plan":  # heads and admins: the follow-up plan (the runtime checks the role)
        plan.start(turn)
        return
    if name == "start":
        turn.state["stack"] = []
        if turn.consented and arg.startswith(status.CLAIM_PREFIX):
            turn.say("greeting_back")
            status.start_claim(turn, arg)
            return
        if not turn.consented:
            turn.goto("start", "consent", {"deep": arg[:64]}, push=False)
            turn.say("greeting")
            return
        if arg and turn.ctx.catalog.service(arg):
            turn.home()
            turn.say("greeting_back")
            SvcChoose().start(turn, "survey", service=arg)
            return
        turn.say("greeting_back")
        if arg:  # a QR code or link for a service that is not (or no longer) in the catalog
            turn.say("start.unknown_code")
        turn.home()
        return
    if not turn.consented:
        turn.goto("start", "consent", push=False)
        turn.say("consent_needed")
        return
    if name == "menu":
        turn.home()
    elif name == "cancel":
        in_survey = turn.state.get("flow") == "survey"
        if in_survey and turn.data.get("key"):
            turn.emit(SurveyCancelled(str(turn.data["key"])))
        if turn.state.get("flow") not in (None, "menu"):
            # "your answers are kept" only when there are answers to keep
            turn.say("cancelled" if in_survey and turn.data.get("answers") else "cancelled.nothing")
        turn.home()
    elif name == "back":
        photos = turn.data.get("photos") if turn.state.get("flow") == "complaint" else None
        if not turn.back():
            turn.home()
        elif photos and turn.state.get("flow") == "complaint":
            turn.data["photos"] = photos  # photos already sent are kept until "Hapus foto"
    elif name == "status" and arg:  # "/status K7QM-3XHD": look it up straight away
        turn.home()
        turn.goto("status", "ask")
        STEPS[("status", "ask")].text(turn, arg)
    elif name in ("survey", "complaint", "status", "data", "person"):
        turn.home()
        STEPS[("menu", "main")].choice(turn, name)
