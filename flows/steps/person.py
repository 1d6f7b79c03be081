"""Asking for a person: the menu item "Bicara dengan petugas", ``/petugas`` or typed phrases.

The resident picks the agency (skipped when the catalog has only one); the runtime opens or
finds the case (bot/desk/cases.py) and from then on the resident's messages go to staff.
"""

from __future__ import annotations

from typing import Any

from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice


@register("person", "agency")
class PersonAgency(StepSpec):
    def start(self, turn: Turn) -> None:
        agencies = turn.ctx.catalog.agencies
        turn.goto("person", "agency", {})
        if len(agencies) == 1:
            self.chosen(turn, agencies[0].slug)

    def ask(self, turn: Turn) -> Question:
        return Question(
            turn.t("person.ask_agency"),
            tuple(Choice(f"a:{a.slug}", a.short_name) for a in turn.ctx.catalog.agencies),
            free_text=True,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        self.chosen(turn, choice.removeprefix("a:"))

    def text(self, turn: Turn, text: str) -> None:
        match = turn.ctx.catalog.matcher.match(text)
        if match.decided and match.decided.startswith("@"):
            self.chosen(turn, match.decided[1:])
        elif match.decided:
            svc = turn.ctx.catalog.service(match.decided)
            if svc:
                self.chosen(turn, svc.agency)
        else:
            turn.say("person.unknown")

    def chosen(self, turn: Turn, slug: str) -> None:
        if turn.ctx.catalog.agency(slug) is None:
            turn.say("person.unknown")
            return
        turn.call("request_person", agency=slug)

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        if not result.get("ok"):
            turn.say("person.unknown")
            return
        key = "person.already" if result.get("already") else "person.queued"
        turn.say(key, agency=result.get("agency", ""), ticket=result.get("ticket", ""),
                 due=result.get("due", ""))
        turn.home()
        turn.data["to_staff"] = True  # what they type next is for staff, even "KTP hilang"
        turn.ask_after = False  # the resident now writes to staff; no menu in the way
