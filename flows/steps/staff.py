"""Staff registration (flow "staff"): ``/daftar <code>`` makes someone a head or staff member;
``/masuk`` sends a registered one a sign-in link to the web desk.

The runtime checks the code (bot/desk/staff.py) and issues the link (bot/desk/signin.py); these
steps only talk.
"""

from __future__ import annotations

from typing import Any

from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn


@register("staff", "register")
class StaffRegister(StepSpec):
    """``/daftar <code>``: become a head or staff member of an agency (bot/desk/staff.py decides)."""

    def start(self, turn: Turn, code: str) -> None:
        if not code.strip():
            turn.say("staff.need_code")
            turn.ask_after = turn.consented
            return
        turn.goto("staff", "register", {})
        turn.call("register_staff", code=code.strip()[:64])

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("still_working"), nav=False)  # the call answers in the same turn

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        reason = str(result.get("reason", "invalid"))
        if result.get("ok"):
            role = turn.t(f"staff.role.{result.get('role', 'staff')}")
            turn.say(f"staff.{reason}", agency=result.get("agency", ""), role=role)
            turn.say("staff.privacy")
            turn.say("staff.next")  # what to do now: the staff room, the queue, the web desk
        else:
            turn.say(f"staff.refused.{reason}")
        if not turn.back():
            turn.home()
        # Someone who has not agreed as a resident is not pushed into the resident notice here.
        turn.ask_after = turn.consented


@register("staff", "login")
class StaffLogin(StepSpec):
    """``/masuk`` (``/login``): a one-time link to the web desk, or a polite refusal."""

    def start(self, turn: Turn) -> None:
        turn.goto("staff", "login", {})
        turn.call("desk_login")

    def ask(self, turn: Turn) -> Question:
        return Question(turn.t("still_working"), nav=False)  # the call answers in the same turn

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        reason = str(result.get("reason", "not_staff"))
        if result.get("ok"):
            turn.say("desk.login.link", url=result.get("url", ""), minutes=result.get("minutes", 10))
        else:
            turn.say(f"desk.login.{reason}")
        if not turn.back():
            turn.home()
        turn.ask_after = turn.consented
