"""Consent (flow "start"): the privacy notice a resident must agree to before anything else.

A deep link (``/start <service>``) waits here and opens that service's survey once agreed.
"""

from __future__ import annotations

from typing import Any

from flows.machine.registry import Question, StepSpec, register
from flows.machine.turn import Turn
from flows.machine.types import Choice, RecordConsent, SetLanguage
from flows.steps.service import SvcChoose
from flows.steps.status import CLAIM_PREFIX, start_claim


@register("start", "consent")
class Consent(StepSpec):
    def ask(self, turn: Turn) -> Question:
        other = "en" if turn.lang == "id" else "id"
        return Question(
            turn.t("consent.notice"),
            (
                Choice("agree", turn.t("consent.agree")),
                Choice("decline", turn.t("consent.decline")),
                Choice(f"lang:{other}", turn.t(f"lang.name.{other}")),
            ),
            nav=False,
        )

    def choice(self, turn: Turn, choice: str) -> None:
        if choice == "agree":
            turn.emit(RecordConsent())
            turn.consented = True
            deep = turn.data.get("deep")
            turn.say("consent.thanks")
            turn.home()
            if deep and deep.startswith(CLAIM_PREFIX):
                start_claim(turn, deep)
            elif deep and turn.ctx.catalog.service(deep):
                SvcChoose().start(turn, "survey", service=deep)
            elif deep:
                turn.say("start.unknown_code")
        elif choice == "decline":
            turn.call("decline_consent")  # the runtime forgets the contact (bot/privacy.py)
        elif choice.startswith("lang:"):
            lang = choice.split(":", 1)[1]
            turn.state["lang"] = lang
            turn.emit(SetLanguage(lang))

    def result(self, turn: Turn, result: dict[str, Any]) -> None:
        turn.say("consent.declined")
        # Leave the consent question: a later "1" must not count as a yes unseen.
        turn.goto("start", "declined", push=False)
        turn.ask_after = False
